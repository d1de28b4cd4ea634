"""A model's parts, as the fine-tuning methods need them: read off the model, not configured.

    parts = parts_of(model)      # Classifier, TextClassifier, or a keras-hub classifier
    parts.head                   # ("head/*",): glob patterns of the task head
    parts.units                  # {"embeddings": (...), "block_0": (...), ...} bottom to top
    parts.blocks                 # ("block_0", "block_1"): the units that are blocks (LLRD)
    model = parts.add_adapters(model, 16)      # bottleneck adapters (maybe a new model)
    parts.enable_lora(model, rank=8)           # LoRA on the parts' targets, head trains

`ptft_keras.training.methods` builds every method from these five things, so a new kind
of model needs one `Parts` and no change to any method. Two implementations: the
toolkit's own models here (`Classifier`: its encoder's weight-owning layers are the units;
`TextClassifier`: embeddings, then `block_i`), and keras-hub classifiers in
`ptft_keras.hub.parts` (imported only when such a model comes in: keras-hub stays out of
`import ptft_keras`).
"""

import dataclasses

import keras

from ptft_keras.models.classifier import Classifier
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.peft.lora import TRANSFORMER_TARGETS, apply_lora
from ptft_keras.peft.methods import with_adapters
from ptft_keras.transfer.weights import transfer_weights
from ptft_keras.variables import layer_paths, variable_map

HEAD = ("head/*",)  # both own tasks name their head layer "head"


@dataclasses.dataclass
class Parts:
    """Where a classifier's pieces are.

    Attributes:
        head: glob patterns (over variable keys) of the task head, trained by every method.
        units: `{name: patterns}` of the backbone, bottom (input side) to top; an
            `"embeddings"` unit, if present, is unfrozen last by gradual unfreezing.
        blocks: names of the units that are blocks; LLRD groups are the embeddings, each
            block, then everything else (the layers above the blocks and the head).
        add_adapters: `f(model, adapter_dim) -> model` with identity-initialised bottleneck
            adapters (a new model, weights moved, or the same one changed in place).
        enable_lora: `f(model, rank, alpha) -> None`: LoRA on, only LoRA + head trainable.
    """

    head: tuple
    units: dict
    blocks: tuple
    add_adapters: object
    enable_lora: object


def parts_of(model):
    """The `Parts` of `model`; a clear error for a model no implementation covers."""
    if isinstance(model, TextClassifier):
        return _text_parts(model)
    if isinstance(model, Classifier):
        return _image_parts(model)
    if any(c.__module__.startswith("keras_hub") for c in type(model).__mro__):
        from ptft_keras.hub.parts import hub_parts  # imports keras-hub: only for its models

        return Parts(**hub_parts(model))
    raise ValueError(
        f"No parts description for {type(model).__name__}; the fine-tuning methods take a "
        "ptft_keras Classifier or TextClassifier, or a keras-hub text classifier."
    )


def _text_parts(model):
    n = model.backbone.num_layers
    units = {"embeddings": ("*token_embedding/*", "*position_embedding/*")}
    units.update({f"block_{i}": (f"*block_{i}/*",) for i in range(n)})

    def enable_lora(model, rank, alpha):
        apply_lora(model, rank, alpha, TRANSFORMER_TARGETS, train_also=HEAD)

    return Parts(HEAD, units, tuple(units)[1:], _text_adapters, enable_lora)


def _text_adapters(model, adapter_dim):
    backbone = TransformerBackbone.from_config(
        {**model.backbone.get_config(), "adapter_dim": adapter_dim}
    )
    return _rebuilt(model, "backbone", backbone)


def weighted_layer_paths(model, under):
    """Paths of the weight-owning layers below `under` (e.g. "encoder"), input side first."""
    paths = []
    for key in variable_map(model):
        layer = key.rpartition("/")[0]
        if layer.startswith(under + "/") and layer not in paths:
            paths.append(layer)
    return paths


def _image_parts(model):
    layers = weighted_layer_paths(model, "encoder")
    units = {path: (f"{path}/*",) for path in layers}
    by_path = layer_paths(model)
    dense = tuple(p for p in layers if isinstance(by_path[p], keras.layers.Dense))

    def enable_lora(model, rank, alpha):
        if not dense:
            raise ValueError(
                f"LoRA needs Dense layers in the encoder of {model.name!r}; it has none "
                f"(weight-owning layers: {layers})."
            )
        apply_lora(model, rank, alpha, dense, train_also=HEAD)

    def add_adapters(model, adapter_dim):
        return _rebuilt(model, "encoder", with_adapters(model.encoder, adapter_dim))

    return Parts(HEAD, units, tuple(units), add_adapters, enable_lora)


def _rebuilt(model, key, part):
    """`model` rebuilt from its config with sub-model `key` replaced by `part`, then every
    variable of `model` copied in (strict, by path); only the new adapters start fresh."""
    config = {**model.get_config(), key: keras.saving.serialize_keras_object(part)}
    rebuilt = type(model).from_config(config)
    transfer_weights(model, rebuilt, allow_missing=("*adapter*",))
    return rebuilt
