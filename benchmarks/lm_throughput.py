"""Causal-LM training throughput: ptft_keras `CausalLM` vs keras-hub `GPT2Backbone`.

Both peers are GPT-2-shaped decoders of the same size (layers, width, heads, vocabulary,
sequence, batch) with a tied output embedding, trained with `model.fit` on the same
numpy token ids, with the same optimizer (AdamW 3e-4), loss (sparse cross-entropy on
logits, no metrics), dtype policy and compile options, in one process, alternately.
The keras-hub peer is built exactly as in `/work/shared/reference/gpu_anchor.py`.

Figures: tokens/s (median of `--repeats` timed `fit` calls of `--steps` steps each, after
one warm-up call that compiles), model FLOPs per token `6N + 12*L*T*D` (nanoGPT; N = all
backbone parameters, as in the anchor), achieved TFLOP/s and, on a GPU, MFU against the
dense bf16 peak (`--peak-tflops`, default 989 = H100 SXM). On a CPU the JSON also gives
tokens per second of process CPU time, which a loaded machine barely disturbs.

    python -m benchmarks.lm_throughput --size reduced --backend jax      # CPU, seconds
    python -m benchmarks.lm_throughput --size full --backend jax --json lm.json   # H100

Nothing on the ptft_keras path imports TensorFlow; `--block-tensorflow` makes it
unimportable (as on a GPU box with only JAX/PyTorch) and the JSON records
`tensorflow_imported`.
"""

import numpy as np

from benchmarks import common

# Sizes: "full" is GPT-2 small as in the GPU anchor; "reduced" keeps every code path
# (several layers and heads, tied output, padding mask) but runs in seconds on a CPU.
SIZES = {
    "reduced": dict(
        num_layers=2,
        hidden_dim=128,
        num_heads=2,  # head size 64, as in the full size
        vocabulary_size=2048,  # a multiple of 128, like the full size's 50,304
        sequence_length=128,
        batch_size=4,
        steps=8,  # ~0.1 s a step on a CPU: compute, not per-step overhead, dominates
        dtype="float32",  # bf16 matmuls are emulated (slow) on most CPUs
    ),
    "cpu_default": dict(  # the text recipe's corpus pretraining (TextRecipe defaults)
        num_layers=2,
        hidden_dim=128,
        num_heads=4,
        vocabulary_size=4000,
        sequence_length=128,
        batch_size=64,
        steps=10,
        dtype="float32",
    ),
    "full": dict(
        num_layers=12,
        hidden_dim=768,
        num_heads=12,
        vocabulary_size=50304,  # GPT-2's 50,257 padded to a multiple of 64
        sequence_length=1024,
        batch_size=16,
        steps=30,  # as in the anchor: 30 timed steps after a warm-up
        dtype="mixed_bfloat16",
    ),
}
PEERS = ("ptft_keras", "keras_hub")
H100_BF16_PEAK_TFLOPS = 989.0  # H100 SXM dense bf16, the anchor's reference


def flops_per_token(num_params, num_layers, sequence_length, hidden_dim):
    """Training FLOPs per token: 6N (forward + backward matmuls) + 12*L*T*D (attention)."""
    return 6 * num_params + 12 * num_layers * sequence_length * hidden_dim


def backbone_shape(cfg):
    """The constructor arguments both peers share, so their shapes cannot drift apart."""
    return dict(
        vocabulary_size=cfg["vocabulary_size"],
        num_layers=cfg["num_layers"],
        num_heads=cfg["num_heads"],
        hidden_dim=cfg["hidden_dim"],
        intermediate_dim=4 * cfg["hidden_dim"],
        max_sequence_length=cfg["sequence_length"],
        dropout=0.0,
    )


def build_ptft_keras(cfg):
    """Our `CausalLM` over a causal `TransformerBackbone`; returns (model, backbone params)."""
    from ptft_keras.models.causal_lm import CausalLM
    from ptft_keras.models.transformer import TransformerBackbone

    backbone = TransformerBackbone(**backbone_shape(cfg))
    return CausalLM(backbone), backbone.count_params()


def build_keras_hub(cfg):
    """keras-hub `GPT2Backbone` + tied output, as the GPU anchor builds it."""
    import keras
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(**backbone_shape(cfg))
    logits = backbone.token_embedding(backbone.output, reverse=True)
    return keras.Model(backbone.inputs, logits), backbone.count_params()


def compile_lm(model, steps_per_execution, xla="on"):
    """The same compile call for both peers (the anchor's, no metrics). `xla="off"` gives
    `jit_compile=False` (on JAX Keras always jits the step; XLA is JAX's only compiler)."""
    import keras

    jit = "auto" if keras.backend.backend() == "torch" else xla == "on"
    model.compile(
        optimizer=keras.optimizers.AdamW(3e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=None,
        jit_compile=jit,
        steps_per_execution=steps_per_execution,
    )


def make_data(cfg, seed=0):
    """Random token ids for `steps` batches: x dict and next-token targets y (numpy)."""
    n, t = cfg["batch_size"] * cfg["steps"], cfg["sequence_length"]
    ids = np.random.default_rng(seed).integers(0, cfg["vocabulary_size"], (n, t + 1), "int32")
    x = {"token_ids": ids[:, :-1], "padding_mask": np.ones((n, t), "int32")}
    return x, ids[:, 1:]


def _block_until_done(model):
    # Every variable comes out of the same compiled step: reading one waits for the step.
    np.asarray(model.trainable_variables[-1].numpy())


def fit_tokens_per_second(model, x, y, cfg):
    """One `fit` over all batches of `x`: {"wall": tokens/s, "cpu": tokens per CPU-s}."""

    def run():
        model.fit(x, y, batch_size=cfg["batch_size"], epochs=1, shuffle=False, verbose=0)
        _block_until_done(model)

    tokens = cfg["batch_size"] * cfg["steps"] * cfg["sequence_length"]
    wall, cpu = common.timed_wall_and_cpu(run)
    return {"wall": tokens / wall, "cpu": tokens / cpu}


def parse_args(argv):
    parser = common.make_parser(__doc__.split("\n")[0], SIZES)
    parser.add_argument("--steps", type=int, default=None, help="steps per timed fit")
    parser.add_argument("--batch-size", type=int, default=None, help="override the size's batch")
    parser.add_argument("--vocabulary-size", type=int, default=None, help="e.g. 50257")
    parser.add_argument("--num-layers", type=int, default=None, help="override the size's depth")
    parser.add_argument("--hidden-dim", type=int, default=None, help="... width (FFN: 4x)")
    parser.add_argument("--num-heads", type=int, default=None, help="... attention heads")
    parser.add_argument("--dtype", default=None, help="dtype policy, e.g. mixed_bfloat16")
    parser.add_argument("--steps-per-execution", type=int, default=1, help="both peers")
    parser.add_argument(
        "--flash",
        choices=("auto", "on", "off"),
        default="auto",
        help="keras.config flash-attention switch (read by keras-hub's attention layer; "
        "ours asks keras.ops.dot_product_attention to decide)",
    )
    parser.add_argument(
        "--xla",
        choices=("on", "off"),
        default="on",
        help="jit_compile for both peers (TensorFlow: XLA vs graph mode; JAX always jits)",
    )
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--peak-tflops", type=float, default=None, help="for MFU (GPU: 989)")
    parser.add_argument(
        "--block-tensorflow", action="store_true", help="simulate a machine without TensorFlow"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common.check_repeats(args.repeats)
    if args.block_tensorflow:
        common.block_tensorflow()
    backend = common.select_backend(args.backend)
    import keras

    cfg = dict(SIZES[args.size])
    counts = ("steps", "batch_size", "vocabulary_size", "num_layers", "hidden_dim", "num_heads")
    for key in (*counts, "dtype"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown or not peers:
        raise ValueError(f"--peers must name some of {PEERS}, received {args.peers!r}.")
    for key in counts:
        if cfg[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, received {cfg[key]}.")
    if cfg["hidden_dim"] % cfg["num_heads"]:
        raise ValueError(
            f"--hidden-dim ({cfg['hidden_dim']}) must be a multiple of --num-heads "
            f"({cfg['num_heads']})."
        )
    if args.steps_per_execution < 1 or cfg["steps"] % args.steps_per_execution:
        raise ValueError(
            f"--steps ({cfg['steps']}) must be a multiple of --steps-per-execution "
            f"({args.steps_per_execution})."
        )
    keras.mixed_precision.set_global_policy(cfg["dtype"])
    if args.flash == "on":
        keras.config.enable_flash_attention()
    elif args.flash == "off":
        keras.config.disable_flash_attention()
    platform = common.accelerator_platform()
    peak = args.peak_tflops or (H100_BF16_PEAK_TFLOPS if platform == "gpu" else None)

    builders = {"ptft_keras": build_ptft_keras, "keras_hub": build_keras_hub}
    x, y = make_data(cfg)
    models, params, runs = {}, {}, {}
    for name in peers:
        keras.utils.set_random_seed(0)
        models[name], params[name] = builders[name](cfg)
        compile_lm(models[name], args.steps_per_execution, args.xla)
        runs[name] = lambda m=models[name]: fit_tokens_per_second(m, x, y, cfg)
    runs = common.run_interleaved(runs, args.repeats, warmup=1)
    measured = {name: common.by_key(runs[name])["wall"] for name in peers}
    per_cpu_s = {name: common.by_key(runs[name])["cpu"] for name in peers}

    results, rows = {}, []
    for name in peers:
        tps = common.median(measured[name])
        fpt = flops_per_token(
            params[name], cfg["num_layers"], cfg["sequence_length"], cfg["hidden_dim"]
        )
        tflops = tps * fpt / 1e12
        results[name] = {
            "tokens_per_s": common.summarize(measured[name], 1),
            "tokens_per_cpu_s": common.summarize(per_cpu_s[name], 1),
            "step_ms": round(1e3 * cfg["batch_size"] * cfg["sequence_length"] / tps, 3),
            "params": int(params[name]),
            "flops_per_token": int(fpt),
            "achieved_tflops": round(tflops, 4),
            "mfu": round(tflops / peak, 4) if peak else None,
        }
        r = results[name]
        rows.append([name, tps, r["step_ms"], r["params"], r["achieved_tflops"], r["mfu"]])
    ratio = None
    if set(PEERS) <= set(peers):
        ours, theirs = measured["ptft_keras"], measured["keras_hub"]
        ratio = common.ratio_summary(ours, theirs, "ptft_keras_over_keras_hub")
        ratio["by_cpu_time"] = common.ratio_summary(
            per_cpu_s["ptft_keras"], per_cpu_s["keras_hub"], "ptft_keras_over_keras_hub"
        )
    payload = {
        "benchmark": "lm_throughput",
        "size": args.size,
        "config": cfg,
        "repeats": args.repeats,
        "steps_per_execution": args.steps_per_execution,
        "flash": args.flash,
        "xla": args.xla,
        "peak_tflops": peak,
        "machine": common.machine_info(),
        "peers": results,
        "ratio": ratio,
        "tensorflow_imported": common.tensorflow_imported(),
    }
    columns = ["peer", "tokens/s", "step ms", "params", "TFLOP/s", "MFU"]
    print(f"lm_throughput ({args.size}, {backend}, {cfg['dtype']}, {payload['machine']['device']})")
    print(common.format_table(columns, rows))
    if ratio:
        print(
            f"ptft_keras / keras_hub tokens/s: {ratio['ptft_keras_over_keras_hub']:.3f} "
            f"(median of per-round ratios {ratio['per_round_median']:.3f}); by process CPU "
            f"time {ratio['by_cpu_time']['per_round_median']:.3f} (meaningful on a CPU only)"
        )
    common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
