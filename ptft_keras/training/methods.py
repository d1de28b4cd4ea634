"""Every fine-tuning method, one registry: one spelling, one defaults table, one entry point.

    plan = prepare(model, "llrd", learning_rate=3e-4, epochs=4)   # inside a strategy scope
    plan.fit(x=x, y=y, batch_size=32)                            # compile + fit (or stages)
    plan.model                                                  # the model that trained

`model` is a toolkit `Classifier` / `TextClassifier` or a keras-hub text classifier: what
differs between them (head, units bottom to top, adapters, LoRA) is its `Parts`
(`ptft_keras.training.parts.parts_of`); the methods below are written once over parts.

| method     | trains                                         | at                       |
|------------|------------------------------------------------|--------------------------|
| `probe`    | the head                                       | head rate                |
| `full`     | everything                                     | rate                     |
| `lp-ft`    | the head, then everything (Kumar et al., 2022) | head rate, then rate     |
| `gradual`  | the head, + one unit a stage from the top,     | head rate, then rate     |
|            | then everything (ULMFiT)                       |                          |
| `llrd`     | everything; `j` units below the top: decay**j  | rate at the top          |
| `bitfit`   | every bias (+ LayerNorm gamma/beta), the head  | head rate                |
| `adapters` | bottleneck adapters (+ LayerNorm), the head    | head rate                |
| `lora`     | LoRA matrices and the head                     | head rate                |

The head rate is `head_lr_factor * learning_rate`: a new head and small new or sparse
parameter sets move too slowly at the rate that suits a whole pretrained backbone.
`prepare` changes `trainable` (and, for `adapters` on the toolkit's own models, returns a
new model carrying the same weights: use `plan.model`); `plan.fit` compiles with a new
optimizer, as Keras needs after any change of `trainable`.
"""

import dataclasses

import keras

from ptft_keras.peft import methods as peft_methods
from ptft_keras.training.layerwise_lr import LayerwiseAdamW, layerwise_lr_multipliers
from ptft_keras.training.parts import parts_of
from ptft_keras.training.schedules import warmup_then_decay
from ptft_keras.transfer.unfreezing import Stage, fit_stages, lp_ft_stages
from ptft_keras.variables import set_trainable, trainable_keys

METHODS = ("probe", "full", "lp-ft", "gradual", "llrd", "bitfit", "adapters", "lora")
STAGED = ("lp-ft", "gradual")  # several fits; they end with everything trainable

# The one defaults table. Every entry can be overridden per call (`prepare(..., **options)`).
DEFAULTS = {
    # Head-only and few-parameter phases train 10x faster: the toolkit's measured setting
    # (images 1e-3 -> 1e-2, text 3e-4 -> 3e-3); keras-hub's classifiers use 5e-5 / 1e-3.
    "head_lr_factor": 10.0,
    # Rank 8: Hu et al. (2021) find ranks 4-8 match full fine-tuning on GLUE; 8 is what the
    # CLI and the comparison always used (the keras-hub-only path used 4). Alpha None =
    # rank (scale 1, Keras's and keras-hub's default).
    "lora_rank": 8,
    "lora_alpha": None,
    "llrd_decay": 0.8,  # ELECTRA-base's layer-wise decay (Clark et al., 2020)
    # 16: an eighth of the toolkit's default width (hidden 128); Houlsby et al. (2019) stay
    # within 0.4% of full fine-tuning with 8-64 on BERT-base.
    "adapter_dim": 16,
    "bitfit_layer_norm": True,  # the toolkit's BitFit also trains LayerNorm gamma/beta
    "probe_share": 0.5,  # LP-FT: the share of the epochs that probes (at least 1)
}
# Which defaults each method reads; any other option is refused by name.
OPTIONS = {
    "probe": ("head_lr_factor",),
    "full": (),
    "lp-ft": ("head_lr_factor", "probe_share"),
    "gradual": ("head_lr_factor",),
    "llrd": ("llrd_decay",),
    "bitfit": ("head_lr_factor", "bitfit_layer_norm"),
    "adapters": ("head_lr_factor", "adapter_dim"),
    "lora": ("head_lr_factor", "lora_rank", "lora_alpha"),
}


@dataclasses.dataclass
class Plan:
    """What `prepare` set up: call `fit(...)`, or compile and fit yourself.

    Attributes:
        method: the method name.
        model: the model to train (for own models with `adapters`, a new one).
        trainable: sorted variable keys trainable now (staged: in the first stage).
        optimizer: to compile with (staged: the template `fit_stages` copies per stage).
        epochs: epochs in all (staged: the sum over the stages).
        stages: `ptft_keras.transfer.unfreezing.Stage` list, or `None` (one fit).
    """

    method: str
    model: keras.Model
    trainable: list
    optimizer: keras.optimizers.Optimizer
    epochs: int
    stages: list | None = None

    def fit(self, compile_kwargs=None, **fit_kwargs):
        """Compile with `optimizer` and `fit` for `epochs`, or `fit_stages`. `compile_kwargs`:
        besides the optimizer (default: the model's own loss and metrics)."""
        compile_kwargs = dict(compile_kwargs or {})
        if self.stages is not None:
            return fit_stages(
                self.model,
                self.stages,
                optimizer=self.optimizer,
                compile_kwargs=compile_kwargs,
                **fit_kwargs,
            )
        self.model.compile(optimizer=self.optimizer, **compile_kwargs)
        return self.model.fit(epochs=self.epochs, **fit_kwargs)


def prepare(model, method, learning_rate, epochs, steps_per_epoch=None, **options):
    """Set `model` up for `method` (one of `METHODS`); see the module table.

    Args:
        model: a built classifier (see the module doc). Call inside the strategy's scope:
            LoRA, adapter and optimizer variables are created here.
        method: one of `METHODS`.
        learning_rate: the rate when the backbone trains; head-only phases use
            `head_lr_factor` times it.
        epochs: epochs in all; staged methods split them over their stages.
        steps_per_epoch: given, one-fit methods warm up over the first 10% of the steps,
            then decay (cosine) to 0 (`warmup_then_decay`); staged methods keep each
            stage's constant rate (`fit_stages` sets it). `None`: constant rates.
        **options: overrides of `DEFAULTS` that `method` reads (`OPTIONS[method]`).

    Returns a `Plan`.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown fine-tuning method {method!r}; expected one of {METHODS}.")
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for {method!r}; it takes {list(OPTIONS[method])}."
        )
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1; received {epochs!r}.")
    o = {**DEFAULTS, **options}
    head_lr = o["head_lr_factor"] * learning_rate
    parts = parts_of(model)
    if method in STAGED:
        stages = _stages(method, parts, learning_rate, head_lr, epochs, o)
        keys = set_trainable(model, stages[0].trainable)
        optimizer = keras.optimizers.AdamW(stages[0].learning_rate)
        total = sum(s.epochs for s in stages)
        return Plan(method, model, keys, optimizer, total, stages)
    rate = head_lr
    if method == "probe":
        peft_methods.linear_probe(model, parts.head)
    elif method in ("full", "llrd"):
        peft_methods.full_finetuning(model)
        rate = learning_rate
    elif method == "bitfit":
        _bitfit(model, parts.head, o["bitfit_layer_norm"])
    elif method == "adapters":
        model = parts.add_adapters(model, o["adapter_dim"])
        peft_methods.adapter_tuning(model, parts.head)
    else:  # lora
        parts.enable_lora(model, o["lora_rank"], o["lora_alpha"])
    if steps_per_epoch and steps_per_epoch * epochs >= 2:
        rate = warmup_then_decay(rate, steps_per_epoch * epochs)
    if method == "llrd":
        multipliers = layerwise_lr_multipliers(model, llrd_groups(parts), o["llrd_decay"])
        optimizer = LayerwiseAdamW(multipliers, learning_rate=rate)
    else:
        optimizer = keras.optimizers.AdamW(rate)
    return Plan(method, model, trainable_keys(model), optimizer, epochs)


def llrd_groups(parts):
    """`layerwise_lr_multipliers` groups: the embeddings, each block, then `"*"` (the layers
    above the blocks and the head, at the base rate)."""
    groups = [parts.units.get("embeddings", ()), *(parts.units[b] for b in parts.blocks), "*"]
    return [g for g in groups if g]


def _bitfit(model, head, layer_norm):
    if layer_norm:
        return peft_methods.bitfit(model, head)
    head = peft_methods.linear_probe(model, head)  # validates the patterns; the head's keys
    return set_trainable(model, lambda key, v: key in head or key.endswith("/bias"))


def _stages(method, parts, learning_rate, head_lr, epochs, o):
    if method == "lp-ft":
        probe = min(max(1, round(epochs * o["probe_share"])), max(1, epochs - 1))
        return lp_ft_stages(parts.head, probe, max(1, epochs - probe), head_lr, learning_rate)
    # gradual: the head, then one more unit per stage from the top (the embeddings come in
    # with the last stage, which trains everything); the rest of the epochs go to that one.
    above = [name for name in parts.units if name != "embeddings"]
    per = max(1, epochs // (len(above) + 2))
    stages = [Stage(parts.head, per, head_lr, "head")]
    trainable = tuple(parts.head)
    for name in reversed(above):
        trainable += tuple(parts.units[name])
        stages.append(Stage(trainable, per, learning_rate, f"+{name}"))
    stages.append(Stage("*", max(1, epochs - per * (len(above) + 1)), learning_rate, "all"))
    return stages
