"""Run every fine-tuning method on one task, the same way, and collect one table.

`examples/finetuning_methods.py` describes a task (how to build the pretrained classifier,
data, epochs, learning rate) as a `FinetuneSpec`; `run_comparison` then fine-tunes a
fresh copy of the pretrained model with each method of the registry
(`ptft_keras.training.methods`) for the same number of epochs and measures trainable
parameters, accuracy and training time. What trains and how comes from the registry and
the model's parts, not from this module.
"""

import contextlib
import dataclasses
import time

import keras

from ptft_keras.training.methods import DEFAULTS, METHODS, OPTIONS, STAGED, prepare
from ptft_keras.training.metrics import accuracy
from ptft_keras.variables import count_parameters


@dataclasses.dataclass
class FinetuneSpec:
    """How to fine-tune one task (every method alike).

    Attributes:
        fit_kwargs: `fit` arguments besides epochs (x, y, batch_size, verbose, ...).
        epochs: epochs per method (staged methods split them over their stages).
        learning_rate: the rate when the backbone trains (`methods.prepare`).
        compile_kwargs: `compile` arguments besides the optimizer (default: the model's).
        options: overrides of `methods.DEFAULTS` (e.g. `{"lora_rank": 4}`), given to each
            method that reads them.
    """

    fit_kwargs: dict
    epochs: int
    learning_rate: float = 3e-4
    compile_kwargs: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)


def finetune(model, method, spec):
    """Fine-tune `model` with `method` (`methods.prepare` + `fit`); returns the model that
    trained (a new one for `adapters` on the toolkit's own models) and the seconds in `fit`."""
    unknown = sorted(set(spec.options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown}; expected keys of {sorted(DEFAULTS)}.")
    options = {k: v for k, v in spec.options.items() if k in OPTIONS[method]}
    plan = prepare(model, method, spec.learning_rate, spec.epochs, **options)
    start = time.perf_counter()
    plan.fit(spec.compile_kwargs, **spec.fit_kwargs)
    return plan.model, time.perf_counter() - start


def run_comparison(build_model, spec, eval_x, eval_y, methods=METHODS, log=print, strategy=None):
    """Fine-tune a fresh pretrained model per method; return rows (dicts) and the LoRA model.

    `build_model()`: a new classifier carrying the pretrained weights.
    `strategy` (from `ptft_keras.training.strategies.get_strategy`): each model is built,
    given its LoRA/adapter variables, compiled and trained inside its scope.
    """
    rows, lora_model = [], None
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    # What full fine-tuning trains: every trainable weight of the plain pretrained model.
    full_trainable = count_parameters(build_model())[1]
    for method in methods:
        keras.utils.set_random_seed(0)
        with scope():  # variables (model, LoRA, optimizer) must be created in the scope
            model, seconds = finetune(build_model(), method, spec)
        trainable, total = count_parameters(model)
        if method in STAGED:
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
        log(f"{method:10s} acc {row['accuracy']:.4f}  trainable {trainable:,}  {seconds:.1f}s")
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
