"""The parts of a keras-hub classifier, read off its structure instead of name conventions.

`clf` is a `hub_text_classifier` (keras-hub's `BertTextClassifier` & co., or
`HubCausalClassifier`); `hub_parts(clf)` gives the fields of its
`ptft_keras.training.parts.Parts` (a dict: this package sits below `training`):

* head: every variable outside `clf.backbone` (what keras-hub's `save_task_weights`
  stores): `logits` (+ `pooled_dense` for RoBERTa-like classifiers, whose pooler is in the
  task). BERT's `pooled_dense` is in the backbone, so a linear probe leaves it frozen.
* units, bottom to top: `embeddings` (the backbone's weight-owning layers before the first
  block), each block (`backbone.transformer_layers`, e.g. `transformer_layer_0`), then the
  layers after the last block (`pooled_dense`, GPT-2's final `layer_norm`).
* LoRA: keras-hub's own `backbone.enable_lora` (default targets `query`/`value`), through
  `ptft_keras.peft.hub.enable_hub_lora`, so the run saves keras-hub's `.lora.h5` file.

Adapters: keras-hub's backbones build their blocks inside `__init__` and record no adapter
option, so `add_hub_adapters` puts a `BottleneckAdapter` into each `TransformerEncoder` /
`TransformerDecoder` *in place*, where the toolkit's own block has them: on the attention
and feed-forward outputs, before their dropout and residual add (it replaces the block's
`_self_attention_dropout` / `_feedforward_dropout` by adapter-then-that-dropout; keras-hub
0.32's `call` uses those attributes only there). Pretrained variables are not touched or
copied; the adapters start as the identity. Limits: the adapters are not in the backbone's
config, so a `.keras` file or preset reloads without them (rebuild, `add_hub_adapters` with
the same `adapter_dim`, then `load_weights`); other block classes (DeBERTaV3, FNet, Llama,
Gemma, ...) are refused by name, since their `call` was not checked.
"""

import fnmatch

import keras
from keras_hub.layers import TransformerDecoder, TransformerEncoder

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.peft.hub import _forget_traced_functions, enable_hub_lora
from ptft_keras.variables import layer_paths, variable_map

_DROPOUT_ATTRIBUTE = {"attention": "_self_attention_dropout", "feedforward": "_feedforward_dropout"}
POSITIONS = tuple(_DROPOUT_ATTRIBUTE)
_ADAPTABLE = (TransformerEncoder, TransformerDecoder)  # blocks whose call() was read


def hub_parts(classifier):
    """The `Parts` fields of a keras-hub classifier (see the module doc), as a dict."""

    def enable_lora(model, rank, alpha):
        if alpha is not None and alpha != rank:
            raise ValueError(
                f"lora_alpha={alpha!r}: keras-hub's enable_lora fixes alpha = rank; leave "
                "lora_alpha unset for keras-hub models."
            )
        enable_hub_lora(model, rank)  # keras-hub's default targets (query, value)

    def add_adapters(model, adapter_dim):
        add_hub_adapters(model, adapter_dim)
        return model

    return dict(
        head=hub_head_patterns(classifier),
        units=hub_units(classifier),
        blocks=tuple(b.name for b in _blocks(classifier.backbone)),
        add_adapters=add_adapters,
        enable_lora=enable_lora,
    )


def _backbone_prefix(classifier):
    """The key prefix of the backbone's variables inside `classifier`."""
    for path, layer in layer_paths(classifier).items():
        if layer is classifier.backbone:
            return path + "/"
    raise ValueError(f"{classifier.name!r} does not contain its backbone as a sublayer.")


def hub_head_patterns(classifier):
    """Glob patterns of the head: one `<layer>/*` per top-level layer outside the backbone
    (`("logits/*",)` for BERT and GPT-2 classifiers)."""
    backbone_ids = {id(v) for v in classifier.backbone.weights}
    head = [k for k, v in variable_map(classifier).items() if id(v) not in backbone_ids]
    if not head:
        raise ValueError(f"{classifier.name!r} has no variable outside its backbone (no head).")
    return tuple(dict.fromkeys(k.split("/")[0] + "/*" if "/" in k else k for k in head))


def _blocks(backbone):
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks:  # no list kept: the weight-owning layers that have sublayers
        blocks = [layer for layer in backbone.layers if layer.weights and layer._layers]
    if not blocks:
        raise ValueError(f"Found no transformer block in {backbone.name!r}.")
    return blocks


def hub_units(classifier):
    """`{unit: glob patterns}` of the backbone, bottom to top: `embeddings`, each block
    (`transformer_layer_0`, ...), then each layer after the last block (`pooled_dense`).

    Every backbone variable belongs to exactly one unit; raises otherwise (a structure
    this reading does not cover)."""
    backbone, prefix = classifier.backbone, _backbone_prefix(classifier)
    blocks = _blocks(backbone)
    block_ids = {id(b) for b in blocks}
    order = [layer for layer in backbone.layers if layer.weights]
    position = [i for i, layer in enumerate(order) if id(layer) in block_ids]
    first, last = position[0], position[-1]
    stray = [layer.name for layer in order[first:last] if id(layer) not in block_ids]
    if stray or len(position) != len(blocks):
        raise ValueError(
            f"{backbone.name!r}: layers {stray} sit between its blocks, or a block is not a "
            "direct layer of the backbone; no bottom-to-top units for this structure."
        )
    units = {"embeddings": tuple(f"{prefix}{layer.name}/*" for layer in order[:first])}
    units.update({b.name: (f"{prefix}{b.name}/*",) for b in order[first : last + 1]})
    units.update({layer.name: (f"{prefix}{layer.name}/*",) for layer in order[last + 1 :]})
    units = {name: patterns for name, patterns in units.items() if patterns}
    keys = [k for k in variable_map(classifier) if k.startswith(prefix)]
    counts = {k: sum(_match(k, p) for p in units.values()) for k in keys}
    bad = [k for k, n in counts.items() if n != 1]
    if bad:
        raise ValueError(f"Variables {bad[:5]} are in {counts[bad[0]]} units, not exactly one.")
    return units


def _match(key, patterns):
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


class _AdapterThenDropout(BottleneckAdapter):
    """`dropout(x + up(act(down(x))))`: a block's own dropout after a bottleneck adapter."""

    def __init__(self, bottleneck_dim, block_dropout, **kwargs):
        super().__init__(bottleneck_dim, **kwargs)
        self.block_dropout = block_dropout  # the keras-hub block's Dropout (no weights)

    def call(self, inputs, training=None):
        return self.block_dropout(super().call(inputs, training=training), training=training)


def add_hub_adapters(classifier, adapter_dim, positions=POSITIONS):
    """Insert a `BottleneckAdapter` (named `<position>_adapter`) into every keras-hub
    `TransformerEncoder` / `TransformerDecoder` block of the backbone, in place (see the
    module doc). Returns the adapter layer paths."""
    bad = [p for p in positions if p not in _DROPOUT_ATTRIBUTE]
    if bad or not positions:
        raise ValueError(f"positions must be from {tuple(_DROPOUT_ATTRIBUTE)}; got {positions!r}.")
    blocks = _blocks(classifier.backbone)
    other = sorted({type(b).__name__ for b in blocks if not isinstance(b, _ADAPTABLE)})
    if other:
        raise ValueError(
            f"Blocks of type {other} in {classifier.backbone.name!r}: adapters go only into "
            "keras-hub's TransformerEncoder/TransformerDecoder, whose call() was checked."
        )
    added = []
    for block in blocks:
        hidden = block._feedforward_output_dense.kernel.shape[-1]  # the residual width
        for position in positions:
            attribute = _DROPOUT_ATTRIBUTE[position]
            old = getattr(block, attribute)
            if isinstance(old, BottleneckAdapter):
                raise ValueError(f"{block.name!r} already has a {position} adapter.")
            adapter = _AdapterThenDropout(adapter_dim, old, name=f"{position}_adapter")
            with keras.name_scope(block.name):  # variable.path unique per block (LLRD)
                adapter.build((None, None, hidden))  # (batch, seq, hidden)
            block._tracker.unlock()  # a built layer refuses new sublayers otherwise
            block._tracker.untrack(old)  # now held (and called) by the adapter
            setattr(block, attribute, adapter)
            block._tracker.lock()
            added.append(f"{block.name}/{adapter.name}")
    _forget_traced_functions(classifier)
    return added
