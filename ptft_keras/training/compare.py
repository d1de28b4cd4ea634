"""Run every fine-tuning method on one task, the same way, and collect one table.

`examples/finetuning_methods.py` describes a task (how to build the pretrained classifier,
its head / block / LoRA-target patterns, data, epochs, learning rates) as a
`FinetuneSpec`; `run_comparison` then fine-tunes a fresh copy of the pretrained model
with each method for the same number of epochs and measures trainable parameters,
accuracy and training time.
"""

import contextlib
import dataclasses
import time

import keras
import numpy as np

from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.peft import methods as peft_methods
from ptft_keras.peft.lora import TRANSFORMER_TARGETS, apply_lora
from ptft_keras.training.layerwise_lr import (
    LayerwiseAdamW,
    layerwise_lr_multipliers,
    transformer_lr_groups,
)
from ptft_keras.transfer.unfreezing import fit_stages, gradual_unfreezing_stages, lp_ft_stages
from ptft_keras.variables import count_parameters, layer_paths, variable_map

METHODS = (
    "linear_probe",
    "full",
    "lp_ft",
    "gradual_unfreezing",
    "llrd",
    "bitfit",
    "adapters",
    "lora",
)


@dataclasses.dataclass
class FinetuneSpec:
    """How to fine-tune one task. Patterns are globs over variable keys.

    Attributes:
        head: patterns of the task head (trained by every method).
        blocks: patterns of the backbone's blocks, bottom to top (gradual unfreezing).
        llrd_groups: bottom-to-top groups for layer-wise decay, ending with `"*"`.
        lora_targets: layer-path patterns of the projections that get LoRA.
        compile_kwargs: `compile` arguments besides the optimizer (loss, metrics).
        fit_kwargs: `fit` arguments besides epochs (x, y, batch_size, verbose, ...).
        epochs: epochs per method (staged methods split them over their stages).
        lr_full: learning rate when the backbone trains (full, LLRD top, LP-FT's FT).
        lr_head: learning rate when only the head or few parameters train.
    """

    head: tuple
    blocks: list
    llrd_groups: list
    lora_targets: tuple
    compile_kwargs: dict
    fit_kwargs: dict
    epochs: int
    lr_full: float = 3e-4
    lr_head: float = 3e-3
    llrd_decay: float = 0.7
    lora_rank: int = 8
    lora_alpha: float | None = None


def finetune(model, method, spec):
    """Fine-tune `model` in place with `method`; returns seconds spent in `fit`."""
    compile_kwargs, fit_kwargs, epochs = spec.compile_kwargs, spec.fit_kwargs, spec.epochs
    start = time.perf_counter()
    if method in ("lp_ft", "gradual_unfreezing"):
        if method == "lp_ft":
            probe = max(1, epochs // 2)
            stages = lp_ft_stages(spec.head, probe, epochs - probe, spec.lr_head, spec.lr_full)
        else:
            n = len(spec.blocks) + 2  # head, one per block, then everything
            per = max(1, epochs // n)
            stages = gradual_unfreezing_stages(
                spec.blocks, spec.head, per, max(1, epochs - per * (n - 1)), spec.lr_full
            )
            stages[0].learning_rate = spec.lr_head  # the head alone can move faster
        fit_stages(
            model,
            stages,
            optimizer=keras.optimizers.AdamW(spec.lr_full),
            compile_kwargs=compile_kwargs,
            **fit_kwargs,
        )
        return time.perf_counter() - start
    if method == "linear_probe":
        peft_methods.linear_probe(model, spec.head)
        optimizer = keras.optimizers.AdamW(spec.lr_head)
    elif method == "full":
        peft_methods.full_finetuning(model)
        optimizer = keras.optimizers.AdamW(spec.lr_full)
    elif method == "llrd":
        peft_methods.full_finetuning(model)
        multipliers = layerwise_lr_multipliers(model, spec.llrd_groups, spec.llrd_decay)
        # The top group trains at lr_head, the bottom one decay**(n-1) times slower.
        optimizer = LayerwiseAdamW(multipliers, learning_rate=spec.lr_head)
    elif method == "bitfit":
        peft_methods.bitfit(model, spec.head)
        optimizer = keras.optimizers.AdamW(spec.lr_head)
    elif method == "adapters":
        peft_methods.adapter_tuning(model, spec.head)
        optimizer = keras.optimizers.AdamW(spec.lr_head)
    elif method == "lora":
        apply_lora(model, spec.lora_rank, spec.lora_alpha, spec.lora_targets, spec.head)
        optimizer = keras.optimizers.AdamW(spec.lr_head)
    else:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
    start = time.perf_counter()
    model.compile(optimizer=optimizer, **compile_kwargs)
    model.fit(epochs=epochs, **fit_kwargs)
    return time.perf_counter() - start


def accuracy(model, x, y, batch_size=256):
    """Share of `x` whose argmax logit equals `y`."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y)))


def run_comparison(build_model, spec, eval_x, eval_y, methods=METHODS, log=print, strategy=None):
    """Fine-tune a fresh pretrained model per method; return rows (dicts) and the LoRA model.

    `build_model(adapter)`: a new classifier carrying the pretrained weights; with
    `adapter=True` its backbone has bottleneck adapters (zero-initialised up-projection).
    `strategy` (from `ptft_keras.training.strategies.get_strategy`): each model is built,
    given its LoRA/adapter variables, compiled and trained inside its scope.
    """
    rows, lora_model = [], None
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    # What full fine-tuning trains: every trainable weight of the plain pretrained model.
    full_trainable = count_parameters(build_model(adapter=False))[1]
    for method in methods:
        keras.utils.set_random_seed(0)
        with scope():  # variables (model, LoRA, optimizer) must be created in the scope
            model = build_model(adapter=method == "adapters")
            seconds = finetune(model, method, spec)
        trainable, total = count_parameters(model)
        if method in ("lp_ft", "gradual_unfreezing"):
            trainable = total  # it ends with everything unfrozen
        row = {
            "method": method,
            "trainable": trainable,
            "total": total,
            "share": trainable / total,
            "accuracy": accuracy(model, eval_x, eval_y),
            "seconds": seconds,
        }
        row["vs_full"] = trainable / full_trainable
        rows.append(row)
        log(f"{method:20s} acc {row['accuracy']:.4f}  trainable {trainable:,}  {seconds:.1f}s")
        if method == "lora":
            lora_model = model
    return rows, lora_model


def format_table(task, rows):
    """The comparison as a Markdown table."""
    lines = [
        task,
        "",
        "| method | trainable params | share of total | vs full FT | accuracy | train s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['trainable']:,} | {100 * r['share']:.2f}% | "
            f"{100 * r['vs_full']:.2f}% | {r['accuracy']:.4f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def weighted_layer_paths(model, under):
    """Paths of the weight-owning layers below `under` (e.g. "encoder"), input side first."""
    paths = []
    for key in variable_map(model):
        layer = key.rpartition("/")[0]
        if layer.startswith(under + "/") and layer not in paths:
            paths.append(layer)
    return paths


def structure_spec(model, fit_kwargs, epochs, lr_full=3e-4, lr_head=3e-3, compile_kwargs=None):
    """A `FinetuneSpec` read off the model's structure, for any `Classifier` or
    `TextClassifier`: the head is `head/*`; the blocks are the backbone's
    `block_{i}` (text) or the encoder's weight-owning layers (images), bottom to top;
    LLRD groups are those blocks (the embeddings first for text); LoRA targets every
    projection of the blocks (text) or every Dense layer of the encoder (images)."""
    if isinstance(model, TextClassifier):
        num_layers = model.backbone.num_layers
        blocks = [f"*block_{i}/*" for i in range(num_layers)]
        groups, targets = transformer_lr_groups(num_layers), TRANSFORMER_TARGETS
    else:
        layers = weighted_layer_paths(model, "encoder")
        blocks = [f"{path}/*" for path in layers]
        groups = [*blocks, "*"]
        dense = [p for p in layers if isinstance(_layer(model, p), keras.layers.Dense)]
        targets = tuple(dense)
    return FinetuneSpec(
        head=("head/*",),
        blocks=blocks,
        llrd_groups=groups,
        lora_targets=targets,
        compile_kwargs=dict(compile_kwargs or {}),
        fit_kwargs=dict(fit_kwargs),
        epochs=epochs,
        lr_full=lr_full,
        lr_head=lr_head,
    )


def _layer(model, path):
    return layer_paths(model)[path]
