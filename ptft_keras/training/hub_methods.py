"""Every fine-tuning method of the toolkit on keras-hub classifiers, as one call.

    plan = prepare_hub_method(clf, "llrd", decay=0.8)    # sets the trainable mask
    plan.fit(x=texts, y=labels, epochs=2)                # compile + fit (or fit_stages)

`clf` is a `hub_text_classifier` (keras-hub's `BertTextClassifier` & co., or
`HubCausalClassifier`). The toolkit's own functions do the work; what is keras-hub specific
is only where the parts are, read off the model's structure instead of name conventions:

* head: every variable outside `clf.backbone` (what keras-hub's `save_task_weights`
  stores): `logits` (+ `pooled_dense` for RoBERTa-like classifiers, whose pooler is in the
  task). BERT's `pooled_dense` is in the backbone, so a linear probe leaves it frozen.
* units, bottom to top: `embeddings` (the backbone's weight-owning layers before the first
  block), each block (`backbone.transformer_layers`, e.g. `transformer_layer_0`), then the
  layers after the last block (`pooled_dense`, GPT-2's final `layer_norm`).

| method               | trains                                | toolkit function reused     |
|----------------------|---------------------------------------|-----------------------------|
| `linear_probe`       | head                                  | `methods.linear_probe`      |
| `full`               | everything                            | `methods.full_finetuning`   |
| `lp_ft`              | head, then everything at a lower rate | `lp_ft_stages`, `fit_stages`|
| `gradual_unfreezing` | head, + one unit per stage, top first | `gradual_unfreezing_stages` |
| `llrd`               | everything, rate `decay**depth`       | `layerwise_lr_multipliers`  |
| `bitfit`             | biases (+ LayerNorm gamma/beta), head | `methods.bitfit`            |
| `adapters`           | bottleneck adapters, LayerNorm, head  | `methods.adapter_tuning`    |
| `lora`               | LoRA A/B + head                       | `hub.enable_hub_lora`       |

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

Every call changes `trainable`; `plan.fit` compiles with a new optimizer (Keras keeps the
old trainable list until then). Compile yourself if you fit without `plan.fit`.
"""

import dataclasses
import fnmatch

import keras
from keras_hub.layers import TransformerDecoder, TransformerEncoder

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.peft import methods
from ptft_keras.peft.hub import _forget_traced_functions, enable_hub_lora
from ptft_keras.training.layerwise_lr import LayerwiseAdamW, layerwise_lr_multipliers
from ptft_keras.transfer.unfreezing import fit_stages, gradual_unfreezing_stages, lp_ft_stages
from ptft_keras.variables import layer_paths, set_trainable, variable_map

# Options and defaults per method. Rates: 5e-5 when the backbone trains (keras-hub's own
# classifier default, BERT paper range 2e-5..5e-5); 1e-3 when only a few new or small
# parameter sets train (head, biases, adapters, LoRA), which move slowly at 5e-5.
HUB_METHODS = {
    "linear_probe": {"learning_rate": 1e-3},
    "full": {"learning_rate": 5e-5},
    "lp_ft": {"probe_epochs": 1, "finetune_epochs": 1, "probe_lr": 1e-3, "finetune_lr": 5e-5},
    "gradual_unfreezing": {
        "epochs_per_stage": 1,
        "final_epochs": 1,  # the last stage adds the embeddings
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-3,  # the head alone (stage 0) can move faster
    },
    "llrd": {"decay": 0.8, "learning_rate": 5e-5},  # 0.8: ELECTRA-base's decay
    "bitfit": {"learning_rate": 1e-3, "layer_norm": True},
    "adapters": {
        "adapter_dim": 64,  # Houlsby et al.'s width for BERT-base (hidden 768)
        "positions": ("attention", "feedforward"),  # both, as the toolkit's own block
        "train_layer_norm": True,
        "learning_rate": 1e-3,
    },
    "lora": {"rank": 4, "target_layer_names": None, "learning_rate": 1e-3},
}
_DROPOUT_ATTRIBUTE = {"attention": "_self_attention_dropout", "feedforward": "_feedforward_dropout"}
POSITIONS = tuple(_DROPOUT_ATTRIBUTE)
_ADAPTABLE = (TransformerEncoder, TransformerDecoder)  # blocks whose call() was read


@dataclasses.dataclass
class HubMethodPlan:
    """What `prepare_hub_method` set up: call `fit(...)`, or compile/fit yourself.

    Attributes:
        method: the method name.
        classifier: the keras-hub classifier, its trainable mask already set.
        trainable: sorted variable keys trainable now (staged: in the first stage).
        optimizer: the optimizer to compile with (staged: the template `fit_stages`
            copies, with each stage's learning rate).
        stages: `ptft_keras.transfer.unfreezing.Stage` list, or `None` (one phase).
    """

    method: str
    classifier: keras.Model
    trainable: list
    optimizer: keras.optimizers.Optimizer
    stages: list | None = None

    def fit(self, compile_kwargs=None, **fit_kwargs):
        """Compile with `optimizer` and `fit`, or `fit_stages` for staged methods.

        `compile_kwargs`: besides the optimizer (keras-hub's defaults: sparse cross-entropy
        from logits, accuracy). `fit_kwargs`: `x`, `y`, `batch_size`, ... (`epochs` only
        for one-phase methods: staged ones take theirs from the stages).
        """
        compile_kwargs = dict(compile_kwargs or {})
        if self.stages is not None:
            return fit_stages(
                self.classifier,
                self.stages,
                optimizer=self.optimizer,
                compile_kwargs=compile_kwargs,
                **fit_kwargs,
            )
        self.classifier.compile(optimizer=self.optimizer, **compile_kwargs)
        return self.classifier.fit(**fit_kwargs)


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


def hub_lr_groups(classifier):
    """`layerwise_lr_multipliers` groups: embeddings, each block, then `"*"` (the layers
    after the last block and the head, at the base rate), as `transformer_lr_groups`."""
    units = hub_units(classifier)
    names = [b.name for b in _blocks(classifier.backbone)]
    groups = [units.get("embeddings", ()), *(units[n] for n in names), "*"]
    return [g for g in groups if g]


def hub_linear_probe(classifier):
    """Train the head only. Returns the trainable keys."""
    return methods.linear_probe(classifier, hub_head_patterns(classifier))


def hub_bitfit(classifier, layer_norm=True):
    """BitFit: every `bias` + the head; with `layer_norm`, LayerNorm gamma/beta too (the
    toolkit's `bitfit`, same as for its own models); without, the paper's biases only."""
    head = hub_head_patterns(classifier)
    if layer_norm:
        return methods.bitfit(classifier, head)
    return set_trainable(classifier, lambda key, v: _match(key, head) or key.endswith("/bias"))


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


def hub_adapter_tuning(classifier, adapter_dim, positions=POSITIONS, train_layer_norm=True):
    """`add_hub_adapters` (unless the blocks have them), then the toolkit's
    `adapter_tuning`: adapters (+ LayerNorm) + head train. Returns the trainable keys."""
    if not any(isinstance(x, BottleneckAdapter) for x in classifier.backbone._flatten_layers()):
        add_hub_adapters(classifier, adapter_dim, positions)
    return methods.adapter_tuning(classifier, hub_head_patterns(classifier), train_layer_norm)


def hub_lp_ft_stages(classifier, probe_epochs=1, finetune_epochs=1, probe_lr=1e-3,
                     finetune_lr=5e-5):  # fmt: skip
    """LP-FT stages (`lp_ft_stages`) with the head read off the classifier."""
    return lp_ft_stages(
        hub_head_patterns(classifier), probe_epochs, finetune_epochs, probe_lr, finetune_lr
    )


def hub_gradual_unfreezing_stages(classifier, epochs_per_stage=1, final_epochs=1,
                                  learning_rate=5e-5, head_learning_rate=1e-3):  # fmt: skip
    """ULMFiT stages (`gradual_unfreezing_stages`): head, then the units from the top (the
    layers after the last block, then each block down), then (`final_epochs`) everything,
    which adds the embeddings. Unit names label the stages (`+transformer_layer_1`)."""
    units = hub_units(classifier)
    above = [name for name in units if name != "embeddings"]  # bottom to top, one pattern
    stages = gradual_unfreezing_stages(
        [units[name][0] for name in above],
        hub_head_patterns(classifier),
        epochs_per_stage,
        final_epochs,
        learning_rate,
    )
    stages[0].learning_rate = head_learning_rate
    for stage, name in zip(stages[1:], reversed(above), strict=False):
        stage.name = f"+{name}"
    return stages


def prepare_hub_method(classifier, method, **options):
    """Set up `method` (one of `HUB_METHODS`) on a keras-hub classifier; see the module
    table. `options` are that method's entries in `HUB_METHODS` (defaults there).

    Returns a `HubMethodPlan`; `plan.fit(x=..., y=...)` trains it."""
    if method not in HUB_METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {tuple(HUB_METHODS)}.")
    unknown = sorted(set(options) - set(HUB_METHODS[method]))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for {method!r}; it takes {sorted(HUB_METHODS[method])}."
        )
    o = {**HUB_METHODS[method], **options}
    stages = None
    if method == "lp_ft":
        stages = hub_lp_ft_stages(classifier, **o)
    elif method == "gradual_unfreezing":
        stages = hub_gradual_unfreezing_stages(classifier, **o)
    if stages is not None:  # fit_stages sets each stage's mask and learning rate itself
        keys = set_trainable(classifier, stages[0].trainable)
        optimizer = keras.optimizers.AdamW(stages[0].learning_rate)
        return HubMethodPlan(method, classifier, keys, optimizer, stages)
    if method == "linear_probe":
        keys = hub_linear_probe(classifier)
    elif method in ("full", "llrd"):
        keys = methods.full_finetuning(classifier)
    elif method == "bitfit":
        keys = hub_bitfit(classifier, o["layer_norm"])
    elif method == "adapters":
        keys = hub_adapter_tuning(
            classifier, o["adapter_dim"], o["positions"], o["train_layer_norm"]
        )
    else:  # lora
        keys = enable_hub_lora(classifier, o["rank"], o["target_layer_names"])
    if method == "llrd":
        multipliers = layerwise_lr_multipliers(classifier, hub_lr_groups(classifier), o["decay"])
        optimizer = LayerwiseAdamW(multipliers, learning_rate=o["learning_rate"])
    else:
        optimizer = keras.optimizers.AdamW(o["learning_rate"])
    return HubMethodPlan(method, classifier, keys, optimizer)
