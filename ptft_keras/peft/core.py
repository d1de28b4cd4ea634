"""Shared machinery of the fine-tuning methods: variable keys, trainable masks, counts.

Every parameter-efficient method in this package comes down to one decision: which
variables the optimizer may change. We make that decision per *variable*, keyed by the
layer-name path relative to the model passed in (`block_0/attention/qkv/kernel`, the same
convention as `ptft_keras.transfer.weights.transfer_weights`), because LoRA needs a
trainable `lora_kernel_a` inside a layer whose `kernel` is frozen, which the layer-level
`layer.trainable` switch cannot express.

Keras facts this module relies on (keras 3.15, read from `keras/src/layers/layer.py`):

* `layer.trainable = x` sets `variable.trainable = x` on every variable the layer created
  as trainable, recursively. So unfreezing a layer undoes per-variable freezing, including
  the `kernel.trainable = False` done by `Dense.enable_lora`. `set_trainable` therefore
  always rebuilds the whole mask from its patterns.
* On the TensorFlow backend, `layer.trainable = True` on a layer whose `trainable` is
  already True does nothing at all (`KerasAutoTrackable.__setattr__` skips assigning a
  value that `is` the current one), so `model.trainable = True` does not unfreeze frozen
  sublayers there (it does on JAX). We set each layer explicitly.
* `layer.trainable_weights` is empty when the layer is not trainable, else its variables
  whose `trainable` flag is set.
* Keras caches the compiled train function and the optimizer's variable list: after any
  change, compile again with a new optimizer (see `ptft_keras.transfer.unfreezing`).
"""

import fnmatch

import keras
import numpy as np

from ptft_keras.transfer.freezing import layer_paths
from ptft_keras.transfer.weights import variable_map


def iter_layers(root):
    """`[(path, layer)]` for `root` (path `""`) and every layer under it, parents first.

    Paths come from `ptft_keras.transfer.freezing.layer_paths` (a layer reachable twice,
    e.g. a tied embedding, keeps its first path).
    """
    return [("", root)] + list(layer_paths(root).items())


def own_variables(layer):
    """Variables created by `layer` itself (not by its sublayers), in creation order."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def variable_items(root):
    """Ordered dict `{key: variable}` of every weight under `root`, keyed by layer path.

    Example keys: `block_0/attention/qkv/kernel`, `block_0/attention/qkv/lora_kernel_a`.
    The same keys as `transfer_weights` (this is its `variable_map`).
    """
    return variable_map(root)


def _as_predicate(selection):
    """Turn glob patterns (str or list of str) or a callable into `f(key, variable)`."""
    if callable(selection):
        return selection
    if isinstance(selection, str):
        selection = (selection,)
    patterns = tuple(selection)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(
                f"Trainable patterns must be strings (globs over variable keys such as "
                f"'block_0/*'), received {pattern!r}."
            )
    return lambda key, variable: any(fnmatch.fnmatchcase(key, p) for p in patterns)


def set_trainable(model, selection, *, check=True):
    """Make exactly the variables chosen by `selection` trainable; freeze all others.

    Args:
        model: a built Keras model or layer.
        selection: glob pattern(s) over variable keys (`"head/*"`, `"*lora_kernel_*"`,
            `"*"` for everything), or a callable `f(key, variable) -> bool`.
        check: raise if a glob pattern matches no variable (catches typos).

    Layers left with no trainable variable get `layer.trainable = False`, so
    BatchNormalization and Dropout-like layers behave as frozen layers (BatchNorm runs in
    inference mode). Compile the model again afterwards (with a new optimizer):
    Keras keeps using the old trainable list until then.

    Returns:
        The sorted list of trainable variable keys.
    """
    if not model.built:
        raise ValueError(f"Model '{model.name}' must be built before choosing trainable weights.")
    predicate = _as_predicate(selection)
    items = variable_items(model)
    if check and not callable(selection):
        patterns = (selection,) if isinstance(selection, str) else tuple(selection)
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(key, pattern) for key in items):
                raise ValueError(
                    f"Trainable pattern '{pattern}' matches no variable of '{model.name}'. "
                    f"Some keys: {list(items)[:8]}"
                )
    # Variables created non-trainable (BatchNorm moving statistics) always stay frozen.
    created_trainable = {
        id(v) for _, layer in iter_layers(model) for v in layer._trainable_variables
    }
    # Every layer trainable again. Not `model.trainable = True`: on the TensorFlow backend
    # `KerasAutoTrackable.__setattr__` skips assigning a value that `is` the current one, so
    # that would not reach frozen sublayers of a trainable model. Flags are set below.
    for _, layer in iter_layers(model):
        if not layer.trainable:
            layer.trainable = True
    chosen = []
    for key, variable in items.items():
        variable.trainable = id(variable) in created_trainable and bool(predicate(key, variable))
        if variable.trainable:
            chosen.append(key)
    # Freeze layers with nothing left to train, innermost first, so that BatchNorm runs
    # in inference mode; `layer.trainable = False` only clears flags already cleared.
    for _, layer in reversed(iter_layers(model)):
        if layer is not model and not any(v.trainable for v in layer.weights):
            layer.trainable = False
    return sorted(chosen)


def trainable_keys(model):
    """Sorted keys of the variables an optimizer would update now."""
    trainable = {id(v) for v in model.trainable_weights}
    return sorted(k for k, v in variable_items(model).items() if id(v) in trainable)


def count_parameters(model):
    """`(trainable, total)` scalar counts over the model's weights (each variable once)."""
    trainable = sum(int(np.prod(v.shape)) for v in _unique(model.trainable_weights))
    total = sum(int(np.prod(v.shape)) for v in _unique(model.weights))
    return trainable, total


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def print_trainable_parameters(model, print_fn=print):
    """Print trainable vs total parameters, like PEFT's `print_trainable_parameters`.

    Returns `(trainable, total)`.
    """
    trainable, total = count_parameters(model)
    share = 100.0 * trainable / total if total else 0.0
    print_fn(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {share:.4f}")
    return trainable, total


def snapshot(model):
    """`{key: numpy copy}` of every variable: for checking what `fit` changed."""
    return {k: np.array(keras.ops.convert_to_numpy(v)) for k, v in variable_items(model).items()}
