"""Serving latency: exported SavedModels vs calling the Keras model directly.

Two models, each at batch 1 and batch 64, in one process, peers alternating:
  image   `Classifier` on the conv encoder, exported by `export_image_classifier`;
          float32 digits (N, 28, 28, 1) in, softmax probabilities out.
  text    `TextClassifier` on a bidirectional `TransformerBackbone`, exported with its
          WordPiece tokenizer by `export_text_classifier`; raw strings in, probabilities out.
Peers per model and batch:
  savedmodel      `tf.saved_model.load(path).serve(x)` (what a server calls).
  keras_compiled  the same computation as one `tf.function` around the live Keras model
                  (for text: `TextEncoder` + model + softmax), traced once in warm-up.
A measurement is the median latency of `--calls` calls per peer (outputs fetched to
numpy), the two peers' calls alternating one by one; the figure is the median over
`--repeats` measurements, and the ratio savedmodel / keras.

    python -m benchmarks.export_latency --size reduced
    python -m benchmarks.export_latency --size full --json export.json

Needs the TensorFlow backend (SavedModel); TensorFlow Text must be importable for the
text model (its WordPiece ops).
"""

import os
import tempfile

import numpy as np

from benchmarks import common

SIZES = {
    # "tiny"-preset transformer, short sequences, few calls: seconds on a CPU.
    "reduced": dict(text_preset="tiny", sequence_length=32, calls=20),
    # The "small" preset (4 layers, width 256) at SST-2 sentence length.
    "full": dict(text_preset="small", sequence_length=128, calls=100),
}
BATCH_SIZES = (1, 64)
MODELS = ("image", "text")
# A small review-like corpus: trains the WordPiece vocabulary and provides the inputs.
CORPUS = [
    "a gripping , beautifully acted film .",
    "Do n't waste your time on this one.",
    "It's a bad, bad movie; the plot makes no sense!",
    "The story is good and the music is even better.",
    "I loved every minute of it",
    "dull , predictable and far too long .",
    "An uneven but often funny comedy about growing up.",
    "The director's best work in years.",
]


def build_image_classifier():
    from ptft_keras.models.autoencoder import build_conv_autoencoder
    from ptft_keras.models.classifier import Classifier

    encoder = build_conv_autoencoder(seed=0).encoder
    return Classifier(encoder, num_classes=10)


def build_text_classifier(cfg):
    """(model, tokenizer): an untrained classifier sized like the preset, real tokenizer."""
    from ptft_keras.data.tokenizer import train_tokenizer
    from ptft_keras.models.text_classifier import TextClassifier
    from ptft_keras.models.transformer import TransformerBackbone

    tokenizer = train_tokenizer(CORPUS * 4, vocabulary_size=400)
    backbone = TransformerBackbone.from_preset(
        cfg["text_preset"],
        vocabulary_size=tokenizer.vocabulary_size(),
        max_sequence_length=cfg["sequence_length"],
        causal=False,
    )
    return TextClassifier(backbone, num_classes=2, head_dropout=0.0), tokenizer


def latency_peers(model_name, cfg, folder):
    """{batch: callable -> {peer: median seconds of `calls` calls}} for one model."""
    import tensorflow as tf

    if model_name == "image":
        from ptft_keras.export.image import export_image_classifier

        model = build_image_classifier()
        path = export_image_classifier(model, os.path.join(folder, "image"))
        direct = tf.function(lambda x: tf.nn.softmax(model(x, training=False), axis=-1))
        rng = np.random.default_rng(0)
        inputs = {b: tf.constant(rng.random((b, 28, 28, 1), "float32")) for b in BATCH_SIZES}
    else:
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops for loading)

        from ptft_keras.data.tokenizer import TextEncoder
        from ptft_keras.export.text import export_text_classifier

        model, tokenizer = build_text_classifier(cfg)
        encoder = TextEncoder(tokenizer, cfg["sequence_length"])
        path = export_text_classifier(
            model, tokenizer, os.path.join(folder, "text"), cfg["sequence_length"]
        )
        direct = tf.function(
            lambda text: tf.nn.softmax(model(encoder(text), training=False), axis=-1)
        )
        inputs = {b: tf.constant([CORPUS[i % len(CORPUS)] for i in range(b)]) for b in BATCH_SIZES}
    loaded = tf.saved_model.load(path)  # keep the object alive: it owns the variables
    serve = lambda x: loaded.serve(x)
    fetch = lambda out: out["probabilities"].numpy() if isinstance(out, dict) else out.numpy()

    peers = {"savedmodel": serve, "keras_compiled": direct}
    return {
        b: lambda x=inputs[b]: paired_latency(peers, x, cfg["calls"], fetch) for b in BATCH_SIZES
    }


def paired_latency(fns, x, calls, fetch):
    """{name: median seconds of `calls` calls}, the peers' calls alternating one by one
    (A B, B A, ...), so a burst of load on the machine hits both peers alike."""
    names = list(fns)
    seconds = {name: [] for name in names}
    for i in range(calls):
        for name in names if i % 2 == 0 else reversed(names):
            seconds[name].append(common.timed(lambda f=fns[name]: fetch(f(x))))
    return {name: common.median(values) for name, values in seconds.items()}


def parse_args(argv):
    parser = common.make_parser(__doc__.split("\n")[0], SIZES)
    parser.add_argument("--calls", type=int, default=None, help="calls per measurement")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common.check_repeats(args.repeats)
    backend = common.select_backend(args.backend)
    if backend != "tensorflow":
        raise ValueError(f"export_latency needs the tensorflow backend, not {backend!r}.")
    import keras

    cfg = dict(SIZES[args.size])
    if args.calls is not None:
        cfg["calls"] = args.calls
    if cfg["calls"] < 1:
        raise ValueError(f"--calls must be >= 1, received {cfg['calls']}.")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or set(models) - set(MODELS):
        raise ValueError(f"--models must name some of {MODELS}, received {args.models!r}.")

    results, rows = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for name in models:
            keras.utils.set_random_seed(0)
            results[name] = {}
            for batch, measure in latency_peers(name, cfg, folder).items():
                runs = common.run_interleaved({"pair": measure}, args.repeats, warmup=1)
                seconds = common.by_key(runs["pair"])
                saved, direct = seconds["savedmodel"], seconds["keras_compiled"]
                ratio = common.ratio_summary(saved, direct, "savedmodel_over_keras")
                results[name][f"batch_{batch}"] = {
                    "savedmodel_ms": common.summarize([1e3 * s for s in saved], 3),
                    "keras_compiled_ms": common.summarize([1e3 * s for s in direct], 3),
                    **ratio,
                }
                ms = [1e3 * common.median(saved), 1e3 * common.median(direct)]
                rows.append([name, batch, *ms, ratio["savedmodel_over_keras"]])
    payload = {
        "benchmark": "export_latency",
        "size": args.size,
        "config": cfg,
        "repeats": args.repeats,
        "machine": common.machine_info(),
        "models": results,
    }
    print(f"export_latency ({args.size}, {backend}, {payload['machine']['device']})")
    columns = ["model", "batch", "savedmodel ms", "keras ms", "savedmodel/keras"]
    print(common.format_table(columns, rows))
    common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
