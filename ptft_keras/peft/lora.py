"""LoRA on chosen projections, built on Keras's own `Dense`/`EinsumDense.enable_lora`.

What Keras 3.15 already does (read in `keras/src/layers/core/{dense,einsum_dense}.py`):

* `layer.enable_lora(rank, lora_alpha=None)` adds float32 `lora_kernel_a` (he_uniform) and
  `lora_kernel_b` (zeros), freezes `kernel` (bias stays trainable!) and computes
  `kernel + (lora_alpha / rank) * A @ B` in the forward pass. `lora_alpha` defaults to the
  rank, i.e. scale 1.
* `save_own_variables` writes the *merged* kernel and no LoRA matrices, and
  `load_own_variables` zeroes LoRA matrices; so a `.keras` file of a LoRA model holds merged
  kernels. Caveat: `Dense.build` re-enables LoRA from the config as
  `enable_lora(self.lora_rank)` without `lora_alpha` (EinsumDense passes it), so a
  functional model reloaded from config loses a non-default alpha.

What this module adds: choosing target layers by path pattern, freezing everything else
(the whole mask, not only the kernel), saving/loading *only* the adapter matrices keyed by
layer path (robust to layer order, unlike index-keyed adapter files; keras-hub issue
2701), and `merge_lora`, which returns a LoRA-free copy for export.
"""

import fnmatch
import json
import os
import tempfile

import keras
import numpy as np

from ptft_keras.variables import iter_layers, set_trainable, variable_map

# Projection names of `ptft_keras.models.transformer.TransformerBackbone` blocks.
TRANSFORMER_TARGETS = (
    "*attention/qkv",
    "*attention/output",
    "*mlp/intermediate",
    "*mlp/output",
)
LORA_VARIABLES = ("*lora_kernel_a", "*lora_kernel_b")
_LORA_LAYER_TYPES = (keras.layers.Dense, keras.layers.EinsumDense)


def lora_layers(model):
    """`{path: layer}` of the layers under `model` that have LoRA enabled."""
    return {
        path: layer
        for path, layer in iter_layers(model)
        if isinstance(layer, _LORA_LAYER_TYPES) and layer.lora_enabled
    }


def apply_lora(model, rank=8, alpha=None, targets=TRANSFORMER_TARGETS, train_also=()):
    """Enable LoRA on the layers whose path matches `targets`; train only LoRA (+ extras).

    Args:
        model: a built model.
        rank: LoRA rank (positive int).
        alpha: LoRA alpha; the update is scaled by `alpha / rank`. `None` = `rank`
            (scale 1, Keras's default).
        targets: glob patterns over layer paths, e.g. `"*attention/qkv"`.
            Every match must be a `Dense` or `EinsumDense`.
        train_also: glob patterns over variable keys that stay trainable too, typically
            the freshly initialised task head (`"head*"`).

    Returns:
        The sorted paths of the layers LoRA was enabled on.
    """
    if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
        raise ValueError(f"`rank` must be a positive int, received {rank!r}.")
    if alpha is not None and not alpha > 0:
        raise ValueError(f"`alpha` must be positive or None, received {alpha!r}.")
    if isinstance(targets, str):
        targets = (targets,)
    matched = {}
    for path, layer in iter_layers(model):
        if path and any(fnmatch.fnmatchcase(path, t) for t in targets):
            if not isinstance(layer, _LORA_LAYER_TYPES):
                raise ValueError(
                    f"LoRA target '{path}' is a {type(layer).__name__}; expected a Dense or "
                    f"EinsumDense layer. Narrow `targets` ({targets})."
                )
            matched[path] = layer
    if not matched:
        paths = [p for p, layer in iter_layers(model) if isinstance(layer, _LORA_LAYER_TYPES)]
        raise ValueError(
            f"No layer of '{model.name}' matches LoRA targets {tuple(targets)}. "
            f"Dense/EinsumDense layers: {paths[:12]}"
        )
    for layer in matched.values():
        if not layer.lora_enabled:
            layer.enable_lora(rank, lora_alpha=alpha)
    set_trainable(model, LORA_VARIABLES + tuple(train_also), check=False)
    return sorted(matched)


def lora_state(model):
    """`{key: numpy array}` of every LoRA matrix, keyed by variable path."""
    return {
        key: np.array(keras.ops.convert_to_numpy(v))
        for key, v in variable_map(model).items()
        if any(fnmatch.fnmatchcase(key, p) for p in LORA_VARIABLES)
    }


def save_lora_weights(model, filepath, extra=()):
    """Save only the LoRA matrices (plus variables matching `extra`, e.g. `"head*"`).

    The `.npz` file maps variable keys (`block_0/attention/qkv/lora_kernel_a`) to arrays,
    plus a JSON header with each layer's rank and alpha, so it loads by name into any model
    with the same layer paths, whatever their order.
    """
    if not str(filepath).endswith(".npz"):
        raise ValueError(f"LoRA weights are saved as .npz; received filepath '{filepath}'.")
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"Model '{model.name}' has no LoRA-enabled layer to save.")
    arrays = lora_state(model)
    for key, v in variable_map(model).items():
        if any(fnmatch.fnmatchcase(key, p) for p in extra):
            arrays[key] = np.array(keras.ops.convert_to_numpy(v))
    header = {
        path: {"rank": lay.lora_rank, "alpha": lay.lora_alpha} for path, lay in layers.items()
    }
    np.savez(filepath, __lora_config__=np.array(json.dumps(header)), **arrays)
    return sorted(arrays)


def load_lora_weights(model, filepath, strict=True):
    """Load a file written by `save_lora_weights` into `model`, matching by layer path.

    LoRA is enabled (with the saved rank and alpha) on layers that do not have it yet.
    With `strict`, every saved key must exist in `model` with the same shape and every
    LoRA layer of `model` must be in the file; otherwise `ValueError` names the offender.
    Returns the loaded keys.
    """
    with np.load(filepath) as data:
        header = json.loads(str(data["__lora_config__"]))
        arrays = {k: data[k] for k in data.files if k != "__lora_config__"}
    layers = dict(iter_layers(model))
    for path, spec in header.items():
        layer = _present(layers.get(path), f"layer '{path}'", model, strict)
        if layer is None:
            continue
        if not layer.lora_enabled:
            layer.enable_lora(spec["rank"], lora_alpha=spec["alpha"])
        elif (layer.lora_rank, layer.lora_alpha) != (spec["rank"], spec["alpha"]):
            raise ValueError(
                f"Layer '{path}' has LoRA rank/alpha {layer.lora_rank}/{layer.lora_alpha}, "
                f"the file has {spec['rank']}/{spec['alpha']}."
            )
    if strict:
        unsaved = sorted(set(lora_layers(model)) - set(header))
        if unsaved:
            raise ValueError(f"LoRA layers of '{model.name}' missing from the file: {unsaved}")
    items = variable_map(model)
    loaded = []
    for key, value in arrays.items():
        variable = _present(items.get(key), f"variable '{key}'", model, strict)
        if variable is None:
            continue
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"Shape mismatch for '{key}': model {tuple(variable.shape)}, "
                f"file {tuple(value.shape)}."
            )
        variable.assign(value)
        loaded.append(key)
    return sorted(loaded)


def _present(found, what, model, strict):
    """`found` (a layer or variable named in the file), or `None`; strict: a miss raises."""
    if found is None and strict:
        raise ValueError(f"LoRA file has {what}, which '{model.name}' lacks.")
    return found


def _strip_lora(config):
    """Remove `lora_rank`/`lora_alpha` from a (nested) serialized config."""
    if isinstance(config, dict):
        return {
            k: _strip_lora(v) for k, v in config.items() if k not in ("lora_rank", "lora_alpha")
        }
    if isinstance(config, list):
        return [_strip_lora(v) for v in config]
    return config


def merge_lora(model):
    """Return a copy of `model` without LoRA whose kernels are `kernel + alpha/rank * A @ B`.

    Uses Keras's own merge: `save_weights` stores merged kernels (see module doc); the copy is
    rebuilt from the model's config with LoRA settings removed, so it has no LoRA
    variables and no extra matmuls, and predicts what the LoRA model predicts.
    """
    if not lora_layers(model):
        raise ValueError(f"Model '{model.name}' has no LoRA-enabled layer to merge.")
    config = _strip_lora(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)  # an uncompiled copy: no optimizer state to match
    merged = keras.saving.deserialize_keras_object(config)
    if lora_layers(merged):
        raise ValueError(
            f"Could not remove LoRA from the config of '{model.name}'; its class rebuilds "
            f"LoRA layers itself: {sorted(lora_layers(merged))}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "merged.weights.h5")
        model.save_weights(path)
        merged.load_weights(path)
    return merged
