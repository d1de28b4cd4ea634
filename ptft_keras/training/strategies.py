"""Distribution strategies: the one place that knows how they are made.

Modelled on TF Model Garden's ``official/common/distribute_utils.py``: a name maps to a
strategy, nonsense raises a ``ValueError`` listing the valid names, and absent hardware
raises a ``RuntimeError`` saying what was looked for (never a hang).

Every entry point does::

    strategy = get_strategy(args.strategy)
    with strategy.scope():          # build AND compile inside the scope
        model = build_model(...)
        model.compile(..., jit_compile=xla_option(args.xla))
    model.fit(ds, ...)              # batch sizes are GLOBAL (whole step, all replicas)

Names (TensorFlow backend):
    auto          what the machine has: TPU if one is configured, ``multi_worker`` if
                  ``TF_CONFIG`` lists several tasks, ``mirrored`` on several GPUs, one
                  device otherwise.
    cpu           ``OneDeviceStrategy("/cpu:0")``.
    one_device    ``OneDeviceStrategy`` on the first GPU, else the CPU.
    mirrored      ``MirroredStrategy`` over all local GPUs (all logical CPUs if no GPU,
                  which is how tests exercise it on a CPU machine).
    multi_worker  ``MultiWorkerMirroredStrategy``; cluster and task from ``TF_CONFIG``.
                  Create it at program start, before any other TensorFlow op.
    tpu           ``TPUStrategy`` through ``TPUClusterResolver`` (``TPU_NAME`` or a TPU VM).

Within a process, the same name always returns the same strategy object (see
``_TF_STRATEGIES``), so entry points may call ``get_strategy`` as often as they like.

On the JAX backend the same names map to ``keras.distribution.DataParallel``, wrapped so
that it offers the same ``.scope()`` / ``.num_replicas_in_sync`` interface. JAX's
``model.fit`` reads the *process-global* distribution, so ``get_strategy`` installs it
with ``keras.distribution.set_distribution`` (single-device names clear it): on JAX the
last ``get_strategy`` call is the one in force.
"""

import contextlib
import glob
import json
import os
import threading

import keras

STRATEGY_NAMES = ("auto", "cpu", "one_device", "mirrored", "multi_worker", "tpu")
# Resolving a TPU may call the GCE metadata server; without one it can block for minutes.
TPU_RESOLVE_TIMEOUT_S = 60.0


def get_strategy(name="auto", *, tpu_address=None):
    """Return a strategy for ``name``; it has ``.scope()`` and ``.num_replicas_in_sync``.

    Args:
        name: one of ``STRATEGY_NAMES`` (case-insensitive, ``-`` and ``_`` alike).
        tpu_address: optional TPU name / ``grpc://`` address for ``"tpu"`` (default: the
            ``TPU_NAME`` environment variable, or the local TPU VM).

    Raises:
        ValueError: unknown name, or a malformed ``TF_CONFIG``.
        RuntimeError: the requested hardware is absent (no TPU, no cluster).
    """
    if not isinstance(name, str) or name.lower().replace("-", "_") not in STRATEGY_NAMES:
        raise ValueError(
            f"Unknown distribution strategy {name!r}; expected one of {', '.join(STRATEGY_NAMES)}."
        )
    name = name.lower().replace("-", "_")
    if keras.backend.backend() == "tensorflow":
        return _tf_strategy(name, tpu_address)
    if keras.backend.backend() == "jax":
        return _jax_strategy(name)
    if name in ("auto", "cpu", "one_device"):
        return SingleDeviceStrategy()
    raise RuntimeError(
        f"Strategy {name!r} needs the tensorflow or jax backend; "
        f"backend is {keras.backend.backend()!r}."
    )


def xla_option(xla):
    """Map a user's XLA choice to ``model.compile(jit_compile=...)``.

    Keras' default ``jit_compile="auto"`` is *off* on CPU-only machines and under any
    ``tf.distribute`` strategy, so XLA must be asked for explicitly: ``True`` turns it on,
    ``False`` off, ``"auto"``/``None`` leaves Keras' choice.
    """
    if xla is None or xla == "auto":
        return "auto"
    if isinstance(xla, bool):
        return xla
    raise ValueError(f"xla must be True, False, None or 'auto'; got {xla!r}.")


def strategy_scope(strategy):
    """`strategy.scope()`, or no scope at all for `strategy=None` (library defaults)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def add_strategy_arguments(parser):
    """Add ``--strategy`` and ``--xla`` to an ``argparse`` parser (used by the examples)."""
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGY_NAMES,
        help="distribution strategy (see docs/distribution.md); batch sizes are global",
    )
    parser.add_argument(
        "--xla", action="store_true", help="compile the train step with XLA (jit_compile=True)"
    )
    return parser


def check_global_batch_size(batch_size, strategy):
    """Return ``batch_size`` (global) after checking it splits evenly over the replicas."""
    replicas = strategy.num_replicas_in_sync
    if not isinstance(batch_size, int) or batch_size < replicas or batch_size % replicas:
        raise ValueError(
            f"Global batch size {batch_size!r} must be a positive multiple of the "
            f"{replicas} replicas in sync (each replica gets batch_size / replicas)."
        )
    return batch_size


def task_info():
    """``(task_type, task_id, is_chief)`` for this process, from ``TF_CONFIG`` (or local)."""
    config = _tf_config()
    if not config:  # JAX multi-process runs number processes with keras.distribution's variable
        process_id = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))
        return (None if process_id == 0 else "worker"), process_id, process_id == 0
    task = config.get("task", {})
    task_type, task_id = task.get("type"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return task_type, task_id, is_chief


# --- TensorFlow ---------------------------------------------------------------------------


# One strategy object per kind and process. TF allows one MultiWorkerMirroredStrategy and
# one TPU initialisation per process, and two MirroredStrategy objects start their
# collective keys at the same value (``_collective_key_base = 0``): training under the
# second one fails with "Shape mismatch in the collective instance" (seen on TF 2.21).
_TF_STRATEGIES = {}


def _tf_strategy(name, tpu_address):
    import tensorflow as tf

    if name == "auto":
        name = _auto_name(tf, tpu_address)
    key = (name, tpu_address)
    if key not in _TF_STRATEGIES:
        _TF_STRATEGIES[key] = _new_tf_strategy(tf, name, tpu_address)
    return _TF_STRATEGIES[key]


def _new_tf_strategy(tf, name, tpu_address):
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return _fit_safe(tf, tf.distribute.MirroredStrategy)([d.name for d in devices])
    if name == "multi_worker":
        config = _tf_config()
        if not config or not config.get("cluster"):
            raise RuntimeError(
                "Strategy 'multi_worker' needs TF_CONFIG with a 'cluster' and a 'task' "
                "(see docs/distribution.md); TF_CONFIG is not set. Use 'mirrored' on one machine."
            )
        return _fit_safe(tf, tf.distribute.MultiWorkerMirroredStrategy)()
    return _tpu_strategy(tf, tpu_address)


def _fit_safe(tf, base):
    """``base`` (a ``tf.distribute`` strategy class) with a ``reduce`` Keras 3's ``fit`` can use.

    Keras 3's TF trainer (keras 3.15) calls ``strategy.reduce`` in ways that only the
    one-replica path accepts (keras-team/keras#20585, tensorflow/tensorflow#72388):

    * ``reduce("MEAN", first_batch, axis=None)`` only to learn input shapes
      (``_maybe_symbolic_build``): with >1 replica a *bool* or *string* input (a padding
      mask, raw text) dies in ``AddN`` ("attr 'T' of bool is not in the list"), so does a
      batch split unevenly over the replicas ("must have the same size and shape"), and
      under ``MultiWorkerMirroredStrategy`` the whole *tuple* reaches
      ``convert_to_tensor`` ("Attempt to convert a value (PerReplica");
    * ``reduce("MEAN", loss, axis=0)`` on every multi-worker step: a *scalar* has no
      axis 0 ("Invalid reduction dimension 0").

    So we reduce leaf by leaf, reduce scalars across replicas only (``axis=None``), and give
    back the first replica's value where no mean exists (bool/string leaves, or replicas
    holding different shapes with ``axis=None``): an error before, and Keras only wants the
    shape. Every reduction that worked before gives the same result.
    """

    class FitSafeStrategy(base):
        def reduce(self, reduce_op, value, axis):
            parent = super()

            def shapes_agree(v, results):
                if not isinstance(self, tf.distribute.MultiWorkerMirroredStrategy):
                    return len({tuple(r.shape) for r in results}) == 1
                # Other workers' shapes are remote: all-reduce [shape, shape**2]; they are
                # all equal iff n * sum(s**2) == sum(s)**2. Every worker gets the same answer.
                stats = self.run(
                    lambda x: tf.cast(tf.stack([tf.shape(x), tf.shape(x) ** 2]), "float32"),
                    args=(v,),
                )
                total = parent.reduce("SUM", stats, axis=None)
                n = float(self.num_replicas_in_sync)
                return bool(tf.reduce_all(n * total[1] == total[0] ** 2))

            def leaf(v):
                if not isinstance(v, tf.distribute.DistributedValues):
                    scalar = getattr(v, "shape", None) is not None and len(v.shape) == 0
                    return parent.reduce(reduce_op, v, None if scalar else axis)
                results = self.experimental_local_results(v)
                local = results[0]
                if tf.as_dtype(local.dtype) in (tf.bool, tf.string):
                    return local  # no mean exists; Keras only wants the shape
                if len(local.shape) == 0:
                    return parent.reduce(reduce_op, v, None)  # scalars: across replicas
                if axis is None and tf.executing_eagerly() and not shapes_agree(v, results):
                    return local  # uneven split: no element-wise mean exists
                return parent.reduce(reduce_op, v, axis)

            return tf.nest.map_structure(leaf, value)

    FitSafeStrategy.__name__ = FitSafeStrategy.__qualname__ = base.__name__
    return FitSafeStrategy


def _auto_name(tf, tpu_address):
    if tpu_address or _tpu_configured():
        return "tpu"
    config = _tf_config()
    if config and sum(len(v) for v in config.get("cluster", {}).values()) > 1:
        return "multi_worker"
    gpus = tf.config.list_logical_devices("GPU")
    return "mirrored" if len(gpus) > 1 else "one_device"


def _tpu_configured():
    # A TPU VM exposes /dev/accel*; others (and remote TPUs) are named by TPU_NAME ("local"
    # on a TPU VM). Checked *before* the resolver, which may query the GCE metadata server.
    return bool(os.environ.get("TPU_NAME") or glob.glob("/dev/accel*"))


def _tpu_strategy(tf, tpu_address):
    if not (tpu_address or _tpu_configured()):
        raise RuntimeError(
            "Strategy 'tpu' found no TPU: TPU_NAME is unset, no tpu_address was given and "
            "this is not a TPU VM (no /dev/accel*; set TPU_NAME=local on one that is). "
            "Use 'auto', 'cpu' or 'mirrored' here."
        )
    result = {}

    def resolve():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            result["strategy"] = tf.distribute.TPUStrategy(resolver)
        except Exception as error:  # re-raised below with context
            result["error"] = error

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(TPU_RESOLVE_TIMEOUT_S)
    if thread.is_alive():
        raise RuntimeError(
            f"Strategy 'tpu': resolving TPU {tpu_address or os.environ.get('TPU_NAME')!r} "
            f"did not finish within {TPU_RESOLVE_TIMEOUT_S:.0f} s."
        )
    if "error" in result:
        raise RuntimeError(f"Strategy 'tpu': could not connect to a TPU: {result['error']}")
    return result["strategy"]


def _tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw!r}") from error
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task'; got {raw!r}")
    return config


# --- JAX and others -----------------------------------------------------------------------


class SingleDeviceStrategy:
    """No distribution: ``scope()`` does nothing, one replica."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()

    def __repr__(self):
        return "SingleDeviceStrategy()"


class KerasDistributionStrategy:
    """A ``keras.distribution.Distribution`` with the ``tf.distribute``-style interface."""

    def __init__(self, distribution):
        self.distribution = distribution
        keras.distribution.set_distribution(distribution)  # fit() reads the global one

    @property
    def num_replicas_in_sync(self):
        return int(self.distribution.device_mesh.devices.size)

    def scope(self):
        return self.distribution.scope()

    def __repr__(self):
        return f"KerasDistributionStrategy({self.distribution!r})"


def _jax_strategy(name):
    from keras import distribution as kd

    if name == "multi_worker":
        if "KERAS_DISTRIBUTION_JOB_ADDRESSES" not in os.environ:
            raise RuntimeError(
                "Strategy 'multi_worker' on JAX needs KERAS_DISTRIBUTION_JOB_ADDRESSES, "
                "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID "
                "(see keras.distribution.initialize); KERAS_DISTRIBUTION_JOB_ADDRESSES is unset."
            )
        kd.initialize()  # reads those variables
    if name == "tpu":
        devices = kd.list_devices("tpu") if _has_device(kd, "tpu") else []
        if not devices:
            raise RuntimeError("Strategy 'tpu' found no TPU devices on the JAX backend.")
        return KerasDistributionStrategy(kd.DataParallel(devices=devices))
    devices = kd.list_devices()
    if name in ("cpu", "one_device") or (name == "auto" and len(devices) == 1):
        kd.set_distribution(None)  # fit() must not pick up an earlier DataParallel
        return SingleDeviceStrategy()
    return KerasDistributionStrategy(kd.DataParallel(devices=devices))


def _has_device(kd, kind):
    try:
        return bool(kd.list_devices(kind))
    except RuntimeError:
        return False
