"""Explicit, verified weight transfer between Keras models (the nanoGPT weight-port habit).

Every variable is keyed by its layer-name path relative to the root passed in, found by
walking the layer tree (`ptft_keras.variables.variable_map`; not `variable.path`, which
depends on the build scope):

    encoder = autoencoder.encoder           # a functional model with layers conv_1a, ...
    variable_map(encoder)                   # {"conv_1a/kernel": <var>, "conv_1a/bias": ...}
    variable_map(autoencoder)               # {"encoder/conv_1a/kernel": ..., "decoder/...": ...}

`transfer_weights(source, target)` matches every *target* key to a source key (the same
key, or `mapping[key]`), checks all counts and shapes first, and only then copies, so a
failed strict transfer leaves the target unchanged. After copying it reads every target
variable back and compares it with its source. The returned `TransferReport` lists what
moved (source key -> target key, shape), which target variables were left untouched and
why, and which source variables were not used; `print(report)` shows it as a table.
"""

import dataclasses
import fnmatch
import os

import keras
import numpy as np

from ptft_keras.variables import variable_map


class WeightTransferError(ValueError):
    """A strict transfer found missing or mis-shaped variables, or verification failed."""


@dataclasses.dataclass
class Moved:
    source_key: str
    target_key: str
    shape: tuple
    transform: str = ""  # "" (plain copy) or e.g. "cast float32->float16"


@dataclasses.dataclass
class TransferReport:
    source: str  # what the weights came from: a path, or "<class> '<name>'"
    target: str
    moved: list = dataclasses.field(default_factory=list)  # [Moved]
    untouched: list = dataclasses.field(default_factory=list)  # [(target_key, shape, reason)]
    unused: list = dataclasses.field(default_factory=list)  # [(source_key, shape)]
    problems: list = dataclasses.field(default_factory=list)  # [str], empty when ok

    @property
    def ok(self):
        return not self.problems

    @property
    def num_params_moved(self):
        return sum(int(np.prod(m.shape)) for m in self.moved)

    def __str__(self):
        n_target = len(self.moved) + len(self.untouched)
        lines = [
            f"TransferReport {self.source} -> {self.target}: {len(self.moved)}/{n_target} "
            f"target variables moved ({self.num_params_moved:,} parameters), "
            f"{len(self.untouched)} untouched, {len(self.unused)} source variables unused, "
            f"{len(self.problems)} problems"
        ]
        w1 = max([len(m.source_key) for m in self.moved] + [10])
        w2 = max([len(m.target_key) for m in self.moved] + [10])
        if self.moved:
            lines.append(f"  moved: {'source key':<{w1}} -> {'target key':<{w2}}  shape")
        for m in self.moved:
            extra = f"  [{m.transform}]" if m.transform else ""
            lines.append(f"         {m.source_key:<{w1}} -> {m.target_key:<{w2}}  {m.shape}{extra}")
        for key, shape, reason in self.untouched:
            lines.append(f"  untouched target: {key}  {shape}  ({reason})")
        for key, shape in self.unused:
            lines.append(f"  unused source:    {key}  {shape}")
        for problem in self.problems:
            lines.append(f"  PROBLEM: {problem}")
        return "\n".join(lines)


def transfer_weights(
    source, target, *, mapping=None, strict=True, allow_missing=(), source_model=None
):
    """Copy weights from `source` into `target`, key by key, checked and verified.

    Args:
      source: a built Keras layer/model, or a path to a `.keras` file (loaded with
        `keras.saving.load_model`) or a `.weights.h5` file (loaded into `source_model`,
        by default a fresh copy of `target`'s architecture, see below).
      target: a built Keras layer/model (call it once on a batch, or `build()` it).
      mapping: `{target_key: source_key}` or a callable `target_key -> source_key`
        (return `None` for "no source"). Unmapped keys are looked up unchanged.
      strict: if True (default), any target variable without a source of the same
        shape raises `WeightTransferError` naming the layer, the variable and both
        shapes, and nothing is copied. If False, those variables stay untouched and the
        report lists them under `problems`.
      allow_missing: glob patterns of target keys that may be absent from the source
        (e.g. `"head/*"`, `"*adapter*"`, `"*lora*"`); they keep their values.
      source_model: for a `.weights.h5` source, a built model with the architecture that
        saved the file. A `.weights.h5` file stores weights by object position, not by
        layer name, so it can only be read into a matching architecture.

    Returns:
      A `TransferReport`.
    """
    source_desc = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    source = _resolve_source(source, target, source_model)
    source_desc = source_desc or _describe(source)
    _check_built(source, "source")
    _check_built(target, "target")
    sources, targets = variable_map(source), variable_map(target)
    report = TransferReport(source=source_desc, target=_describe(target))
    lookup = _lookup(mapping, targets, report)

    plan = []  # (source_key, target_key): checked before anything is copied
    for target_key, variable in targets.items():
        shape, source_key = tuple(variable.shape), lookup(target_key)
        layer, name = _split(target_key)
        if source_key in sources and tuple(sources[source_key].shape) == shape:
            plan.append((source_key, target_key))
        elif any(fnmatch.fnmatchcase(target_key, p) for p in allow_missing):
            if source_key in sources:
                reason = f"allowed missing; source {source_key!r} has shape "
                reason += f"{tuple(sources[source_key].shape)}"
            else:
                reason = "allowed missing"
            report.untouched.append((target_key, shape, reason))
        elif source_key in sources:
            report.problems.append(
                f"shape mismatch: target layer {layer!r} variable {name!r} has shape {shape}, "
                f"source {source_key!r} has shape {tuple(sources[source_key].shape)}"
            )
            report.untouched.append((target_key, shape, "shape mismatch"))
        else:
            report.problems.append(
                f"missing: target layer {layer!r} variable {name!r} (shape {shape}) has no "
                f"source variable {source_key!r}"
            )
            report.untouched.append((target_key, shape, "missing in source"))
    used = {s for s, _ in plan}
    report.unused = [(k, tuple(v.shape)) for k, v in sources.items() if k not in used]
    if strict and report.problems:
        unused = [k for k, _ in report.unused][:20]
        raise WeightTransferError(
            f"Strict weight transfer {report.source} -> {report.target} found "
            f"{len(report.problems)} problems; nothing was copied:\n  - "
            + "\n  - ".join(report.problems)
            + f"\nUnused source keys (first 20): {unused}\nPass mapping= to rename keys, "
            "allow_missing= for target variables that should keep their values, or "
            "strict=False for a report."
        )

    for source_key, target_key in plan:
        value = keras.ops.convert_to_numpy(sources[source_key])
        variable = targets[target_key]
        dtype = keras.ops.convert_to_numpy(variable).dtype  # also bfloat16 (ml_dtypes)
        transform = "" if value.dtype == dtype else f"cast {value.dtype}->{dtype}"
        value = value.astype(dtype)
        variable.assign(value)
        if not np.array_equal(keras.ops.convert_to_numpy(variable), value, equal_nan=True):
            raise WeightTransferError(
                f"Verification failed: target {target_key!r} differs from source "
                f"{source_key!r} after copying."
            )
        report.moved.append(Moved(source_key, target_key, tuple(value.shape), transform))
    return report


def _lookup(mapping, targets, report):
    """`target_key -> source_key` from `mapping`; unknown dict keys are problems."""
    if mapping is None:
        return lambda key: key
    if callable(mapping):
        return mapping
    if not isinstance(mapping, dict):
        raise TypeError(f"mapping must be a dict or a callable, got {type(mapping).__name__}.")
    for key in mapping:
        if key not in targets:
            report.problems.append(f"mapping names target key {key!r}, which does not exist")
    return lambda key: mapping.get(key, key)


def _split(key):
    layer, _, name = key.rpartition("/")
    return layer or "<root>", name


def _describe(layer):
    return f"{type(layer).__name__} {layer.name!r}"


def _check_built(root, role):
    """Raise if some layer that creates weights in `build()` has not been built yet.

    Containers (a subclassed model around built sub-models) and weightless layers
    (dropout, noise) may legitimately stay unbuilt until first called.
    """
    unbuilt = [
        layer.name
        for layer in root._flatten_layers(include_self=True)
        if not layer.built
        and not layer._flatten_layers(include_self=False, recursive=False)
        and type(layer).build is not keras.layers.Layer.build
    ]
    if unbuilt or not root.weights:
        raise WeightTransferError(
            f"The {role} {_describe(root)} is not built (unbuilt layers: {unbuilt}), so it has "
            f"no weights yet. Build it first: call it once on a batch, e.g. "
            f"`model(x[:1])`, or `model.build(input_shape)`."
        )


def _resolve_source(source, target, source_model):
    if isinstance(source, keras.layers.Layer):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"source must be a Keras layer/model or a path to a .keras or .weights.h5 file, "
            f"got {type(source).__name__}."
        )
    path = os.fspath(source)
    if not path.endswith((".keras", ".weights.h5")):
        raise ValueError(f"Unknown weights file {path!r}; expected a .keras or .weights.h5 path.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: {path!r}.")
    if path.endswith(".keras"):  # `import ptft_keras` registered the toolkit's classes
        return keras.saving.load_model(path, compile=False)
    model = source_model if source_model is not None else _fresh_copy(target)
    try:
        # Keras only warns when it skips part of a file; a count check makes that an error.
        stored = _count_h5_arrays(path)
        if stored != len(model.weights):
            raise ValueError(f"the file holds {stored} arrays, the model has {len(model.weights)}")
        model.load_weights(path)  # raises on mismatched layers or shapes
    except ValueError as e:
        raise WeightTransferError(
            f"{path!r} does not fit the architecture of {_describe(model)} "
            f"({'source_model' if source_model is not None else 'a copy of the target'}). A "
            f".weights.h5 file can only be read into the architecture that saved it: pass "
            f"source_model=, or save a .keras file instead. Keras said: {e}"
        ) from e
    return model


def _count_h5_arrays(path):
    import h5py  # a Keras dependency

    datasets = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None
        )
    return len(datasets)


def _fresh_copy(target):
    """A new model with `target`'s architecture (and new variables) to read a .weights.h5."""
    if not isinstance(target, keras.Model):
        raise ValueError(
            f"A .weights.h5 source needs source_model= when the target is a layer "
            f"({_describe(target)}), not a model."
        )
    return keras.models.clone_model(target)
