"""Variable keys and trainability: the one primitive that transfer, PEFT and training share.

Every weight is keyed by the path of layer names from the root passed in to the layer
that owns it, then the variable's name (`"encoder/conv_1a/kernel"`,
`"backbone/block_0/attention/qkv/lora_kernel_a"`). Weight transfer, LoRA adapter files,
layer-wise learning rates and freezing all use these keys, so they agree by construction.

Which variables an optimizer may change is decided per *variable* by `set_trainable`
(LoRA needs a trainable `lora_kernel_a` inside a layer whose `kernel` is frozen, which the
layer-level `layer.trainable` switch cannot express). Every freezing helper of this
package (`ptft_keras.transfer.freezing`, `ptft_keras.peft`, the training recipes) goes
through it.

Keras facts this module relies on (keras 3.15, read from `keras/src/layers/layer.py`):

* `layer.trainable = x` sets `variable.trainable = x` on every variable the layer created
  as trainable, recursively. So unfreezing a layer undoes per-variable freezing, including
  the `kernel.trainable = False` done by `Dense.enable_lora`; `set_trainable` therefore
  always rebuilds the whole mask.
* On the TensorFlow backend, `layer.trainable = True` on a layer whose `trainable` is
  already True does nothing at all (`KerasAutoTrackable.__setattr__` skips assigning a
  value that `is` the current one), also inside Keras's recursive setter, so
  `model.trainable = True` does not reach a frozen sublayer there (it does on JAX). We
  call the property setter on each layer explicitly.
* `layer.trainable_weights` is empty when the layer is not trainable, else its variables
  whose `trainable` flag is set; a frozen BatchNormalization runs in inference mode.
* Keras caches the compiled train function and the optimizer's variable list: after any
  change, compile again with a new optimizer (`ptft_keras.transfer.unfreezing` does so).
"""

import fnmatch

import keras
import numpy as np


class VariableKeyError(ValueError):
    """Two variables under one root would get the same key."""


def _children(layer):
    return layer._flatten_layers(include_self=False, recursive=False)


def layer_paths(root):
    """Ordered `{path: layer}` for every layer under `root`, parents before children.

    A layer reachable twice (e.g. a tied embedding) keeps its first path.
    """
    paths = {}

    def visit(layer, prefix):
        for child in _children(layer):
            if child is root or any(child is seen for seen in paths.values()):
                continue
            paths[prefix + child.name] = child
            visit(child, f"{prefix}{child.name}/")

    visit(root, "")
    return paths


def iter_layers(root):
    """`[(path, layer)]` for `root` (path `""`) and every layer under it, parents first."""
    return [("", root)] + list(layer_paths(root).items())


def own_variables(layer):
    """Variables created by `layer` itself (not by its sublayers), in creation order."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def variable_map(root):
    """Ordered `{key: variable}` for every weight under `root` (a layer or model).

    A key is the path of layer names from `root` (excluded) to the layer that owns the
    variable, then the variable's name: `"encoder/conv_1a/kernel"`. A variable shared by
    several layers is keyed once, at the first path met (depth first, tracking order).
    """
    entries, seen = {}, set()

    def visit(layer, prefix):
        children = _children(layer)
        child_ids = {id(v) for child in children for v in child.weights}
        for variable in layer.weights:  # own variables: not held by a child layer
            if id(variable) in child_ids or id(variable) in seen:
                continue
            key = prefix + variable.name
            if key in entries:
                raise VariableKeyError(
                    f"Two variables of {root.name!r} share the key {key!r}; give their "
                    f"layers distinct `name=`s."
                )
            entries[key] = variable
            seen.add(id(variable))
        for child in children:
            visit(child, f"{prefix}{child.name}/")

    visit(root, "")
    return entries


def set_layer_trainable(layer, value):
    """`layer.trainable = value` for `layer` and every sublayer, also on TensorFlow.

    Not just `layer.trainable = value`: see the module docstring (the TensorFlow backend
    skips assigning a flag its current value, so nested frozen layers would stay frozen).
    """
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        keras.layers.Layer.trainable.fset(sublayer, value)


def as_key_predicate(selection):
    """Glob pattern(s) over variable keys, or a callable `f(key, variable)`, as a callable."""
    if callable(selection):
        return selection
    patterns = (selection,) if isinstance(selection, str) else tuple(selection)
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
            `"*"` for everything, `()` for nothing), or a callable
            `f(key, variable) -> bool`.
        check: raise if a glob pattern matches no variable (catches typos).

    Layers left with no trainable variable get `layer.trainable = False`, so
    BatchNormalization and Dropout-like layers behave as frozen layers (BatchNorm runs in
    inference mode); `model` itself too when nothing is left to train. Compile the model
    again afterwards (with a new optimizer): Keras keeps using the old trainable list
    until then.

    Returns:
        The sorted list of trainable variable keys.
    """
    if not model.built:
        raise ValueError(f"Model '{model.name}' must be built before choosing trainable weights.")
    predicate = as_key_predicate(selection)
    items = variable_map(model)
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
    set_layer_trainable(model, True)  # every flag set below, from a known state
    chosen = []
    for key, variable in items.items():
        variable.trainable = id(variable) in created_trainable and bool(predicate(key, variable))
        if variable.trainable:
            chosen.append(key)
    # Freeze layers with nothing left to train, innermost first; `layer.trainable = False`
    # only clears flags already cleared.
    for _, layer in reversed(iter_layers(model)):
        if not any(v.trainable for v in layer.weights) and (layer is not model or not chosen):
            keras.layers.Layer.trainable.fset(layer, False)
    return sorted(chosen)


def trainable_keys(model):
    """Sorted keys of the variables an optimizer would update now."""
    trainable = {id(v) for v in model.trainable_weights}
    return sorted(k for k, v in variable_map(model).items() if id(v) in trainable)


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def count_parameters(model):
    """`(trainable, total)` scalar counts over the model's weights (each variable once)."""
    trainable = sum(int(np.prod(v.shape)) for v in _unique(model.trainable_weights))
    total = sum(int(np.prod(v.shape)) for v in _unique(model.weights))
    return trainable, total


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
    return {k: np.array(keras.ops.convert_to_numpy(v)) for k, v in variable_map(model).items()}
