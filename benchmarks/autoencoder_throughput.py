"""MNIST autoencoder pretraining throughput: ptft_keras vs the same network in plain Keras.

Peers (same process, run alternately, same in-memory float32 images, batch, optimizer):
  ptft_keras      `build_conv_autoencoder()` (masking noise 0.3, BCE) trained by the recipe
                  `pretrain_autoencoder(...)` (numpy arrays -> `fit`, shuffled).
  plain_keras     the same conv layers as a `keras.Sequential`, `Dropout(0.3)` standing in
                  for the masking noise (about the same cost: one uniform draw and one
                  select per pixel, plus Dropout's rescale), `fit(x, x)` on the same
                  array, shuffled.
Each timed `fit` runs 1 + `--epochs` epochs; the first (tracing, warm-up) is not counted,
so a recipe that compiles anew on every call is measured at its steady state.

Input-pipeline wait (TensorFlow must be importable): our model trained from our tf.data
pipeline `make_dataset(images, batch_size, shuffle=True)` against the same model trained
from an input that costs nothing (one batch, already a tensor, repeated), and the
pipeline alone (iterated with no model). The headline figure is a bound that load on the
machine cannot blur: the training step can wait on the pipeline at most as long as the
pipeline takes to make the batches, so the wait share is <= `t_pipeline_alone /
t_training`, even with no overlap at all (`prefetch` adds overlap). The differential
estimate `1 - t_free / t_pipeline` (per round, median) is kept as a cross-check; it is a
difference of two noisy epoch times and means little on a loaded machine.

    python -m benchmarks.autoencoder_throughput --size reduced   # CPU: 2-5 min loaded
    python -m benchmarks.autoencoder_throughput --size full --json ae.json
"""

import time

import numpy as np

from benchmarks import common

SIZES = {
    # 2,048 images = 16 batches of 128 per epoch: enough steps to time, seconds on a CPU.
    "reduced": dict(images=2048, batch_size=128, epochs=1),
    # The whole bundled 8,000-image sample, the recipe's batch size, 3 timed epochs.
    "full": dict(images=8000, batch_size=128, epochs=3),
}
FILTERS = (32, 64)  # build_conv_autoencoder's default
NOISE_RATE = 0.3  # build_conv_autoencoder's default masking rate


def load_images(count):
    """`count` bundled MNIST digits as float32 in [0, 1], shape (count, 28, 28)."""
    from ptft_keras.data.datasets.mnist import load_mnist

    images, _ = load_mnist(source="bundled")
    if count > len(images):
        raise ValueError(f"Asked for {count} images; the bundled sample has {len(images)}.")
    return images[:count].astype("float32") / 255.0


def make_epoch_timer():
    """A Keras callback recording every epoch's wall time (`seconds`) and process CPU
    time (`cpu_seconds`, all threads: barely moved by other load on the machine)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.cpu_seconds = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            # Epoch-end logs are converted to Python floats, so the work is done here.
            self.seconds.append(time.perf_counter() - self._start[0])
            self.cpu_seconds.append(time.process_time() - self._start[1])

    return EpochTimer()


def build_plain_keras(seed=0):
    """`build_conv_autoencoder()`'s layers, written as plain Keras."""
    import keras

    layers = [keras.Input((28, 28, 1)), keras.layers.Dropout(NOISE_RATE, seed=seed)]
    for f in FILTERS:
        layers += [
            keras.layers.Conv2D(f, 3, 2, "same", activation="relu"),
            keras.layers.Conv2D(f, 3, 1, "same", activation="relu"),
        ]
    for f in reversed(FILTERS):
        layers.append(keras.layers.Conv2DTranspose(f, 3, 2, "same", activation="relu"))
    layers.append(keras.layers.Conv2D(1, 3, 1, "same", activation="sigmoid"))
    model = keras.Sequential(layers, name="plain_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def images_per_second(fit_once, images_per_epoch):
    """Runs `fit_once(timer)` (1 warm-up + k timed epochs).

    Returns {"wall": images/s, "cpu": images per second of process CPU time}.
    """
    timer = make_epoch_timer()
    fit_once(timer)
    images = images_per_epoch * (len(timer.seconds) - 1)
    return {"wall": images / sum(timer.seconds[1:]), "cpu": images / sum(timer.cpu_seconds[1:])}


def throughput_peers(images, cfg):
    """name -> callable returning images/s, for `run_interleaved`."""
    from ptft_keras.models.autoencoder import build_conv_autoencoder
    from ptft_keras.training.recipes.image import pretrain_autoencoder

    ours = build_conv_autoencoder(seed=0)
    plain = build_plain_keras(seed=0)
    images_4d = images.reshape(-1, 28, 28, 1)  # a view: the very same memory
    epochs, batch = 1 + cfg["epochs"], cfg["batch_size"]
    steps = len(images) // batch
    n = steps * batch  # whole batches only: no smaller last batch to retrace
    return {
        "ptft_keras": lambda: images_per_second(
            lambda t: pretrain_autoencoder(
                ours, images[:n], epochs=epochs, batch_size=batch, callbacks=[t]
            ),
            n,
        ),
        "plain_keras": lambda: images_per_second(
            lambda t: plain.fit(
                images_4d[:n],
                images_4d[:n],
                epochs=epochs,
                batch_size=batch,
                shuffle=True,
                callbacks=[t],
                verbose=0,
            ),
            n,
        ),
    }


def pipeline_peers(images, cfg):
    """Our model fed by `make_dataset` vs by a free input (seconds per epoch)."""
    import keras
    import tensorflow as tf

    from ptft_keras.data.splits import make_dataset
    from ptft_keras.models.autoencoder import build_conv_autoencoder

    batch = cfg["batch_size"]
    steps = len(images) // batch
    model = build_conv_autoencoder(seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    pipeline = make_dataset(images[: steps * batch], batch_size=batch, shuffle=True)
    free = tf.data.Dataset.from_tensors(tf.constant(images[:batch])).repeat(steps)

    def seconds_per_epoch(dataset):
        timer = make_epoch_timer()
        model.fit(dataset, epochs=1 + cfg["epochs"], callbacks=[timer], shuffle=False, verbose=0)
        return float(np.mean(timer.seconds[1:]))

    def pipeline_alone():  # one epoch of batches, no model: the pipeline's own cost
        return common.timed(lambda: [batch.numpy() for batch in pipeline])

    return {
        "make_dataset": lambda: seconds_per_epoch(pipeline),
        "free_input": lambda: seconds_per_epoch(free),
        "pipeline_alone": pipeline_alone,
    }


def parse_args(argv):
    parser = common.make_parser(__doc__.split("\n")[0], SIZES)
    parser.add_argument("--images", type=int, default=None, help="override the size's count")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per run")
    parser.add_argument(
        "--skip-pipeline", action="store_true", help="skip the tf.data wait measurement"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common.check_repeats(args.repeats)
    backend = common.select_backend(args.backend)
    import keras

    cfg = dict(SIZES[args.size])
    if args.images is not None:
        cfg["images"] = args.images
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    if cfg["images"] < cfg["batch_size"] or cfg["epochs"] < 1:
        raise ValueError(f"Need >= 1 batch of {cfg['batch_size']} images and >= 1 epoch: {cfg}.")
    keras.utils.set_random_seed(0)
    images = load_images(cfg["images"])

    runs = common.run_interleaved(throughput_peers(images, cfg), args.repeats, warmup=1)
    measured = {name: common.by_key(r)["wall"] for name, r in runs.items()}
    per_cpu_s = {name: common.by_key(r)["cpu"] for name, r in runs.items()}
    rows = [[name, common.median(measured[name]), common.median(per_cpu_s[name])] for name in runs]
    key = "ptft_keras_over_plain_keras"
    ratio = common.ratio_summary(measured["ptft_keras"], measured["plain_keras"], key)
    ratio["by_cpu_time"] = common.ratio_summary(
        per_cpu_s["ptft_keras"], per_cpu_s["plain_keras"], key
    )

    pipeline, note = None, None
    if args.skip_pipeline:
        note = "skipped (--skip-pipeline)"
    else:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            note = "skipped: TensorFlow is not installed (tf.data unavailable)"
    if note is None:
        seconds = common.run_interleaved(pipeline_peers(images, cfg), args.repeats, warmup=1)
        shares = [
            1.0 - free / piped
            for piped, free in zip(seconds["make_dataset"], seconds["free_input"], strict=True)
        ]
        bound = common.median(seconds["pipeline_alone"]) / common.median(seconds["make_dataset"])
        pipeline = {
            "epoch_seconds": {k: common.summarize(v) for k, v in seconds.items()},
            "wait_share_upper_bound": round(bound, 4),
            "differential_wait_share_median": round(common.median(shares), 4),
            "differential_wait_share_per_round": [round(s, 4) for s in shares],
        }

    payload = {
        "benchmark": "autoencoder_throughput",
        "size": args.size,
        "config": cfg,
        "repeats": args.repeats,
        "machine": common.machine_info(),
        "peers": {
            name: {
                "images_per_s": common.summarize(measured[name], 1),
                "images_per_cpu_s": common.summarize(per_cpu_s[name], 1),
            }
            for name in runs
        },
        "ratio": ratio,
        "input_pipeline": pipeline,
        "input_pipeline_note": note,
    }
    print(f"autoencoder_throughput ({args.size}, {backend}, {payload['machine']['device']})")
    print(common.format_table(["peer", "images/s", "images/CPU-s"], rows))
    print(
        f"ptft_keras / plain_keras images/s: {ratio[key]:.3f} (median of per-round ratios "
        f"{ratio['per_round_median']:.3f}); by process CPU time "
        f"{ratio['by_cpu_time']['per_round_median']:.3f}"
    )
    if pipeline:
        print(
            f"tf.data input wait: <= {100 * pipeline['wait_share_upper_bound']:.2f}% of step "
            f"time (differential estimate {100 * pipeline['differential_wait_share_median']:.1f}%"
            ", noisy)"
        )
    else:
        print(f"tf.data input wait: {note}")
    common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
