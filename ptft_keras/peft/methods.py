"""Which weights each fine-tuning method trains, as one call each.

Every function sets the trainable mask of a built model (through
`ptft_keras.variables.set_trainable`) and returns the sorted keys of the trainable
variables. `head` patterns select the task head,
which every method trains because it starts from scratch. Compile the model again (with a
new optimizer) after calling any of them.

| method          | trains                                             | function            |
|-----------------|----------------------------------------------------|---------------------|
| linear probe    | head                                               | `linear_probe`      |
| full            | everything                                         | `full_finetuning`   |
| BitFit          | every bias + LayerNorm gamma/beta + head           | `bitfit`            |
| adapters        | BottleneckAdapter layers + LayerNorm + head        | `adapter_tuning`    |
| LoRA            | LoRA matrices + head                               | `peft.lora.apply_lora` |
"""

import fnmatch

import keras

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.transfer.weights import transfer_weights
from ptft_keras.variables import iter_layers, own_variables, set_trainable

DEFAULT_HEAD = ("head*",)
_NORM_TYPES = (keras.layers.LayerNormalization, keras.layers.RMSNormalization)


def _as_tuple(patterns):
    return (patterns,) if isinstance(patterns, str) else tuple(patterns)


def _norm_variable_ids(model):
    return {
        id(v)
        for _, layer in iter_layers(model)
        if isinstance(layer, _NORM_TYPES)
        for v in own_variables(layer)
    }


def _matching(model, head):
    """Predicate for the head patterns, raising if they match nothing (a typo)."""
    head = _as_tuple(head)
    set_trainable(model, head)  # validates the patterns; the mask is rebuilt by the caller
    return lambda key: any(fnmatch.fnmatchcase(key, p) for p in head)


def linear_probe(model, head=DEFAULT_HEAD):
    """Freeze everything but the head (a linear probe when the head is one Dense layer)."""
    return set_trainable(model, _as_tuple(head))


def full_finetuning(model):
    """Make every weight trainable (BatchNorm moving statistics stay non-trainable)."""
    return set_trainable(model, "*")


def bitfit(model, head=DEFAULT_HEAD):
    """BitFit (Ben Zaken et al., 2022): train only biases, LayerNorm scale/offset and head."""
    is_head = _matching(model, head)
    norms = _norm_variable_ids(model)
    return set_trainable(
        model,
        lambda key, v: is_head(key) or key.endswith("/bias") or id(v) in norms,
    )


def adapter_tuning(model, head=DEFAULT_HEAD, train_layer_norm=True):
    """Houlsby adapters: train the `BottleneckAdapter` layers (+ LayerNorm, as in the paper)
    and the head.

    Build the backbone with `adapter_dim > 0` and move the pretrained weights in with
    `transfer_weights(pretrained, model, allow_missing=("*adapter*",))`; the adapters start
    as the identity because their up-projection is zero-initialised.
    """
    adapter_ids = {
        id(v)
        for _, layer in iter_layers(model)
        if isinstance(layer, BottleneckAdapter)
        for v in layer.weights
    }
    if not adapter_ids:
        raise ValueError(
            f"Model '{model.name}' has no BottleneckAdapter layer; build its backbone with "
            "`adapter_dim > 0`."
        )
    is_head = _matching(model, head)
    norms = _norm_variable_ids(model) if train_layer_norm else set()
    return set_trainable(
        model, lambda key, v: is_head(key) or id(v) in adapter_ids or id(v) in norms
    )


def with_adapters(encoder, adapter_dim, after=(keras.layers.Dense,)):
    """A copy of a functional `encoder` with a `BottleneckAdapter` after each `after` layer.

    For sequential-style functional encoders (each layer feeds the next, e.g. the dense
    autoencoder's); a `TransformerBackbone` gets its adapters from `adapter_dim=` instead.
    The pretrained weights move in by layer path with `transfer_weights`
    (`allow_missing` for the new adapters, which start as the identity because their
    up-projection is zero-initialised). Adapters are named `<layer>_adapter`.
    """
    if not isinstance(encoder, keras.Model) or not hasattr(encoder, "layers"):
        raise ValueError(f"with_adapters needs a functional Keras model; got {encoder!r}.")
    inputs = keras.Input(encoder.input_shape[1:], name=encoder.layers[0].name)
    x = inputs
    for layer in encoder.layers[1:]:
        x = layer.__class__.from_config(layer.get_config())(x)
        if isinstance(layer, after):
            x = BottleneckAdapter(adapter_dim, name=f"{layer.name}_adapter")(x)
    adapted = keras.Model(inputs, x, name=encoder.name)
    transfer_weights(encoder, adapted, allow_missing=("*adapter*",))
    return adapted
