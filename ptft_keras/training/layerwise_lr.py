"""Discriminative learning rates / layer-wise learning-rate decay (LLRD) for `fit`.

ULMFiT and ELECTRA/BEiT-style fine-tuning give lower layers smaller learning rates:
with `L` blocks and decay `d`, the top group trains at the base rate, the block below at
`d` times it, and so on down to the embeddings.

Why an optimizer subclass and not gradient scaling: Adam divides the first moment by the
square root of the second, so multiplying a gradient by `c` leaves the update unchanged
(up to epsilon). The learning rate itself must be scaled per variable.
`LayerwiseAdamW` overrides `update_step`, the per-variable hook every backend calls
(TensorFlow's distributed update included), so it runs on TensorFlow and JAX alike.
Decoupled weight decay is moved into `update_step` too, so it uses the same per-variable
rate (`variable -= variable * weight_decay * lr * multiplier`), as in AdamW with
parameter groups.
"""

import fnmatch

import keras
from keras import ops

from ptft_keras.variables import variable_map


@keras.saving.register_keras_serializable(package="ptft_keras")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is multiplied per variable.

    Args:
        lr_multipliers: dict mapping a variable's `variable.path` (or a glob over it) to a
            float multiplier. Exact paths win over globs; globs are tried in order; a
            variable matched by nothing trains at the base rate (multiplier 1).
            Build it with `layerwise_lr_multipliers`.
        **kwargs: `keras.optimizers.AdamW` arguments (`learning_rate`, `weight_decay`, ...).
    """

    def __init__(self, lr_multipliers=None, **kwargs):
        super().__init__(**kwargs)
        lr_multipliers = dict(lr_multipliers or {})
        for key, value in lr_multipliers.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"lr_multipliers['{key}'] must be a non-negative number, received {value!r}."
                )
        self.lr_multipliers = {str(k): float(v) for k, v in lr_multipliers.items()}

    def build(self, variables):
        super().build(variables)
        # `update_step` may receive the backend's own variable (a tf.Variable on
        # TensorFlow, which has no `.path`), so look multipliers up by the optimizer's key.
        self._multiplier_by_key = {self._var_key(v): self.multiplier(v) for v in variables}

    def multiplier(self, variable):
        """The (Python float) learning-rate multiplier of a Keras variable."""
        path = variable.path
        if path in self.lr_multipliers:
            return self.lr_multipliers[path]
        for pattern, value in self.lr_multipliers.items():
            if fnmatch.fnmatchcase(path, pattern):
                return value
        return 1.0

    def _apply_weight_decay(self, variables):
        # Decay happens in `update_step`, with the variable's own learning rate.
        return

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_by_key[self._var_key(variable)]
        lr = ops.multiply(ops.cast(learning_rate, variable.dtype), multiplier)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            wd = ops.cast(self.weight_decay, variable.dtype)
            self.assign_sub(variable, ops.multiply(ops.multiply(variable, wd), lr))
        super().update_step(gradient, variable, lr)

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


def layerwise_lr_multipliers(model, groups, decay):
    """Learning-rate multipliers for `LayerwiseAdamW`, decaying with depth.

    Args:
        model: the built model whose variables will be trained.
        groups: list from the bottom (input side) to the top (output side); each entry is
            a glob pattern or list of globs over variable keys relative to `model` (e.g.
            `"*token_embedding/*"`, `"*block_0/*"`). A variable belongs to the first group,
            scanning from the bottom, that matches it, so a final `"*"` catches the rest
            (head, final norm). Every variable must belong to a group.
        decay: factor in (0, 1]; group `j` of `n` gets `decay ** (n - 1 - j)`.

    Returns:
        `{variable.path: multiplier}`.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"`decay` must be in (0, 1], received {decay}.")
    if not groups:
        raise ValueError("`groups` must list at least one group of patterns.")
    groups = [(g,) if isinstance(g, str) else tuple(g) for g in groups]
    n = len(groups)
    multipliers, used = {}, set()
    for key, variable in variable_map(model).items():
        for j, patterns in enumerate(groups):
            if any(fnmatch.fnmatchcase(key, p) for p in patterns):
                value = float(decay ** (n - 1 - j))
                used.add(j)
                break
        else:
            raise ValueError(
                f"Variable '{key}' matches no group of {groups}; end the list with '*' to "
                "catch the rest."
            )
        if multipliers.get(variable.path, value) != value:
            raise ValueError(
                f"Two variables share the path '{variable.path}' but get different "
                "multipliers; give their layers unique names."
            )
        multipliers[variable.path] = value
    unused = [groups[j] for j in range(n) if j not in used]
    if unused:
        raise ValueError(f"These groups match no variable of '{model.name}': {unused}")
    return multipliers


def transformer_lr_groups(num_layers):
    """`layerwise_lr_multipliers` groups for a model holding a `TransformerBackbone`.

    Bottom to top: the token and position embeddings, `block_0` .. `block_{n-1}`, then
    everything else (final norm, head), matched anywhere in the variable keys.
    """
    blocks = [f"*block_{i}/*" for i in range(num_layers)]
    return [("*token_embedding/*", "*position_embedding/*"), *blocks, "*"]
