"""Shared helpers of the benchmark suite: arguments, backend choice, interleaved timing,
medians, result tables and JSON.

Every benchmark compares ptft_keras against its peer *in the same process*: the peers
run alternately (A B, B A, A B, ...) after a warm-up, so load from other processes on a
shared machine hits both, and the ratio of their medians is the figure that travels.

Keras is imported lazily (inside `main`), because `--backend` must be set before the
first `import keras`.
"""

import argparse
import importlib.abc
import json
import os
import platform
import statistics
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")
# Top-level packages that `--block-tensorflow` makes unimportable (a GPU box with JAX and
# PyTorch only has none of them).
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tf_keras")


def make_parser(description, sizes):
    """An argparse parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=sorted(sizes), default="reduced", help="problem size")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per peer (median)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument(
        "--backend", choices=BACKENDS, default=None, help="Keras backend (default: KERAS_BACKEND)"
    )
    return parser


def check_repeats(repeats):
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, received {repeats}.")


class _TensorFlowBlocker(importlib.abc.MetaPathFinder):
    """Import hook that makes TensorFlow (and its add-ons) unimportable."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in TENSORFLOW_PACKAGES:
            raise ImportError(f"{name} is blocked (simulating a machine without TensorFlow)")
        return None


def block_tensorflow():
    """Simulate a machine without TensorFlow: later `import tensorflow` raises ImportError.

    Must run before anything imports TensorFlow; raises if it already has.
    """
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in TENSORFLOW_PACKAGES)
    if loaded:
        raise RuntimeError(f"Cannot block TensorFlow: already imported ({loaded[:3]}).")
    if not any(isinstance(f, _TensorFlowBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowBlocker())


def tensorflow_imported():
    return "tensorflow" in sys.modules


def select_backend(name):
    """Set the Keras backend before Keras is imported; returns the backend in use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name is not None:
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != name:
                raise ValueError(
                    f"--backend {name} requested, but Keras is already imported with the "
                    f"{keras.backend.backend()!r} backend; set KERAS_BACKEND={name} instead."
                )
        os.environ["KERAS_BACKEND"] = name
    import keras

    return keras.backend.backend()


def device_description():
    """The accelerator (or CPU) the backend computes on, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"jax {device.platform}: {getattr(device, 'device_kind', device)}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"torch cuda: {torch.cuda.get_device_name(0)}"
        return "torch cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"tensorflow {'gpu: ' + gpus[0].name if gpus else 'cpu'}"


def accelerator_platform():
    """'gpu', 'tpu' or 'cpu' for the current backend."""
    description = device_description()
    for kind in ("gpu", "cuda", "tpu"):
        if kind in description.split(":")[0]:
            return "tpu" if kind == "tpu" else "gpu"
    return "cpu"


def machine_info():
    """Where a run happened: needed to read any figure in the JSON."""
    import keras

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "backend": keras.backend.backend(),
        "device": device_description(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(load[0], 2) if load else None,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def timed(fn):
    """Seconds `fn()` takes (perf_counter); `fn` must block until its work is done."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_wall_and_cpu(fn):
    """(wall seconds, process CPU seconds) of `fn()`; CPU time sums all threads.

    On a CPU shared with other work, a process's CPU time barely moves with the load
    while its wall time swings several-fold, so CPU-time rates compare CPU runs better.
    (On a GPU the host's CPU time says nothing: use wall time there.)
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def by_key(runs):
    """[{key: value}, ...] -> {key: [value, ...]}."""
    return {key: [run[key] for run in runs] for key in runs[0]}


def run_interleaved(peers, repeats, warmup=1):
    """Run every peer `warmup` times untimed, then `repeats` times timed, alternating.

    Args:
        peers: dict name -> callable returning one measurement (e.g. seconds or items/s).
        repeats: timed runs per peer; the order flips every round (A B, B A, ...).
        warmup: untimed runs per peer first (compilation, caches, allocator).

    Returns:
        dict name -> list of the `repeats` measurements, in run order.
    """
    check_repeats(repeats)
    names = list(peers)
    for _ in range(warmup):
        for name in names:
            peers[name]()
    results = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            results[name].append(peers[name]())
    return results


def median(values):
    return float(statistics.median(values))


def summarize(values, digits=4):
    """{median, min, max, runs} of a list of measurements."""
    rnd = lambda v: round(float(v), digits)
    return {
        "median": rnd(median(values)),
        "min": rnd(min(values)),
        "max": rnd(max(values)),
        "runs": [rnd(v) for v in values],
    }


def ratio_summary(ours, theirs, key):
    """Ratio of medians (under `key`) plus the per-round ratios and their median.

    Rounds pair runs taken back to back, so the per-round median is the steadier figure
    when the machine's load drifts.
    """
    per_round = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {
        key: round(median(ours) / median(theirs), 4),
        "per_round": [round(r, 4) for r in per_round],
        "per_round_median": round(median(per_round), 4),
    }


def format_table(columns, rows):
    """A plain-text table: `columns` names, `rows` lists of values (floats get 4 sig.)."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
        return "-" if v is None else str(v)

    cells = [list(map(str, columns))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path, payload):
    """Write `payload` as indented JSON to `path` (parent folders created)."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
