"""Freeze and unfreeze layers by name, depth or pattern.

Layers are named by their path relative to the model passed in, the same paths as the
variable keys of `ptft_keras.variables` without the variable name (`"encoder/conv_1a"`,
`"block_3/attention"`). Every helper sets trainability through
`ptft_keras.variables.set_trainable`, the package's one trainability primitive, and
returns the paths of the weight-owning layers whose trainability it changed (a layer that
owns weights *and* is the root passed in is listed under its own name).

Two Keras rules to know:

* **Compile again after changing `trainable`.** `compile()` (really the first `fit`)
  fixes the list of trainable variables and builds the optimizer on it; changing
  `layer.trainable` afterwards does not change what an already compiled model trains
  (on TensorFlow, `fit` keeps its traced train function). So: freeze/unfreeze, then
  `model.compile(optimizer=<a new optimizer>, ...)`, then `fit`. For schedules that
  change trainability between stages use `ptft_keras.transfer.unfreezing.fit_stages`.
* **A frozen BatchNormalization runs in inference mode**, even inside `fit`: Keras 3
  calls it with `training=False` when `trainable` is False, so it normalises with its
  moving statistics and does not update them (the behaviour fine-tuning needs). It goes
  back to batch statistics when unfrozen.
"""

import fnmatch
import re

import keras

from ptft_keras.variables import layer_paths, set_trainable

BLOCK_NAME = re.compile(r"^block_\d+$")  # a named block is one unit for unfreeze_top


def _children(layer):
    return layer._flatten_layers(include_self=False, recursive=False)


def _owns_weights(layer):
    child_ids = {id(v) for child in _children(layer) for v in child.weights}
    return any(id(v) not in child_ids for v in layer.weights)


def _trainable_state(root):
    """`{path: bool}`: is each weight-owning layer effectively trainable?"""
    state = {root.name: root.trainable} if _owns_weights(root) else {}

    def visit(layer, prefix, parents_trainable):
        for child in _children(layer):
            path = prefix + child.name
            trainable = parents_trainable and child.trainable
            if _owns_weights(child) and path not in state:
                state[path] = trainable
            visit(child, path + "/", trainable)

    visit(root, "", root.trainable)
    return state


def _changed(before, after):
    return [path for path, value in after.items() if before.get(path) != value]


def _inside(key, paths):
    """Is the variable `key` owned by a layer at one of `paths`, or below one?"""
    return any(key.startswith(p + "/") for p in paths)


def freeze(layer):
    """Freeze `layer` and all its sublayers; compile again afterwards."""
    before = _trainable_state(layer)
    set_trainable(layer, ())
    return _changed(before, _trainable_state(layer))


def unfreeze_all(model):
    """Make every weight of `model` trainable; compile again afterwards."""
    before = _trainable_state(model)
    set_trainable(model, "*")
    return _changed(before, _trainable_state(model))


def _set_exactly(model, trainable_paths):
    """Make exactly the layers at `trainable_paths` (and their sublayers) trainable."""
    before = _trainable_state(model)
    set_trainable(model, lambda key, _: _inside(key, trainable_paths))
    return _changed(before, _trainable_state(model))


def depth_units(model):
    """The layers `unfreeze_top` counts, bottom (input side) to top, as `[(path, layer)]`.

    Nested models (e.g. an `encoder` inside a classifier) are opened up; a layer with
    sublayers that is not a model (a transformer block layer), a model named `block_<i>`,
    and a plain weight-owning layer each count as one unit. Layers without weights do not
    count. The order is Keras's layer order: topological for functional models, creation
    order for subclassed ones.
    """
    units = []

    def visit(layer, prefix):
        for child in _children(layer):
            path = prefix + child.name
            if not child.weights:
                continue
            if isinstance(child, keras.Model) and not BLOCK_NAME.match(child.name):
                visit(child, path + "/")
            else:
                units.append((path, child))

    visit(model, "")
    return units


def unfreeze_top(model, n):
    """Make the top `n` units of `depth_units(model)` trainable and freeze the others.

    `n=0` freezes everything; `n` larger than the number of units raises. The result
    does not depend on the current state, so a schedule can call it with n = 1, 2, 3...
    Compile again afterwards.
    """
    units = depth_units(model)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(units):
        raise ValueError(
            f"n must be an int in 0..{len(units)} (the number of units of {model.name!r}: "
            f"{[p for p, _ in units]}), got {n!r}."
        )
    return _set_exactly(model, {path for path, _ in units[len(units) - n :]})


def unfreeze_matching(model, patterns):
    """Make trainable the layers whose path matches any pattern; others keep their state.

    `patterns`: a glob string (`"encoder/conv_2*"`, `"*block_3*"`), a compiled regex
    (`re.compile(r"block_(1|2)$")`, matched with `search`), or a list of these. Raises
    if a pattern matches no layer. Compile again afterwards.
    """
    patterns = [patterns] if isinstance(patterns, (str, re.Pattern)) else list(patterns)
    paths = layer_paths(model)
    matched = set()
    for pattern in patterns:
        if isinstance(pattern, re.Pattern):
            hits = {p for p in paths if pattern.search(p)}
        elif isinstance(pattern, str):
            hits = {p for p in paths if fnmatch.fnmatchcase(p, pattern)}
        else:
            raise TypeError(f"A pattern must be a str (glob) or re.Pattern, got {pattern!r}.")
        if not hits:
            raise ValueError(
                f"Pattern {pattern!r} matches no layer of {model.name!r}; layer paths are "
                f"{list(paths)}."
            )
        matched |= hits
    before = _trainable_state(model)
    training_now = {id(v) for v in model.trainable_weights}
    set_trainable(model, lambda key, v: id(v) in training_now or _inside(key, matched))
    return _changed(before, _trainable_state(model))
