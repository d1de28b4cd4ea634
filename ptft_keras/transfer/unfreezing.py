"""Staged fine-tuning: LP-FT and gradual unfreezing (ULMFiT), done so Keras sees the change.

What happens when `trainable` changes mid-training (measured on keras 3.15.1, a toy
model, Adam; `tests/transfer/test_unfreezing.py` keeps the checks):

* TensorFlow, no recompile: nothing. `fit` keeps the cached `train_function`, traced with
  the old trainable list, so the newly unfrozen layer silently stays frozen.
* TensorFlow, `make_train_function(force=True)` or `compile` again with the *same*
  optimizer: `ValueError: Unknown variable ...` (the optimizer is built on a fixed list).
* JAX, change inside `fit` (a callback): the end-of-fit state sync pairs the *new*
  trainable list with the values of the *old* one; we got `ValueError: The shape of the
  target variable ... must match` (the head's kernel value assigned to `block_1/kernel`);
  with matching shapes nothing would stop it. An optimizer pre-built on a superset of
  variables does not help on JAX: `stateless_apply` needs exactly the built list.

So the one way that is correct on both backends: change `trainable` *between* `fit`
calls, then `compile` again with a *new* optimizer built on exactly the new trainable
list. `fit_stages` does that, and copies the old optimizer's state (iteration count and
the moment slots of variables that were already training, matched by slot name) into the
new one, so Adam does not restart cold on the layers that were already moving. Epoch
numbers continue across stages (`initial_epoch`), so callbacks and schedules see one run.
"""

import dataclasses

import keras

from ptft_keras.variables import set_trainable


@dataclasses.dataclass
class Stage:
    """One phase of staged fine-tuning.

    Attributes:
        trainable: glob pattern(s) over variable keys, or `f(key, variable) -> bool`,
            passed to `ptft_keras.variables.set_trainable` (`"*"` = everything).
        epochs: number of epochs in this stage (>= 1).
        learning_rate: base learning rate for this stage (`None` keeps the optimizer's).
        name: label used in logs.
    """

    trainable: object
    epochs: int = 1
    learning_rate: float | None = None
    name: str = ""


def _carry_optimizer(old, learning_rate, variables):
    """A fresh optimizer like `old`, built on `variables`, with `old`'s state copied in."""
    config = old.get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    new = old.__class__.from_config(config)
    new.build(variables)
    if old.built:
        old_by_name = {v.path: v for v in old.variables}
        # The learning rate is an optimizer variable too: keep the stage's new value.
        skip = {id(new._learning_rate)} if learning_rate is not None else set()
        for v in new.variables:
            if id(v) in skip:
                continue
            source = old_by_name.get(v.path)
            if source is not None and tuple(source.shape) == tuple(v.shape):
                v.assign(source)
    return new


def fit_stages(model, stages, *, optimizer, compile_kwargs=None, **fit_kwargs):
    """Train `model` through `stages`, recompiling between them (see module doc).

    Args:
        model: a built model.
        stages: list of `Stage`.
        optimizer: a `keras.optimizers.Optimizer` used as the template (its class and
            config); it is not built or used itself.
        compile_kwargs: dict for `model.compile` besides the optimizer (`loss`, `metrics`).
        **fit_kwargs: passed to every `model.fit` call (`x`, `y`, `validation_data`,
            `batch_size`, `callbacks`, `verbose`, ...); not `epochs`/`initial_epoch`.

    Returns:
        A `keras.callbacks.History`-like object: `.history` (dict of per-epoch lists over
        all stages), `.epoch`, and `.stages` (list of `(name, first_epoch, trainable keys)`).
    """
    if not stages:
        raise ValueError("`stages` must contain at least one Stage.")
    for key in ("epochs", "initial_epoch"):
        if key in fit_kwargs:
            raise ValueError(f"Give epochs per Stage, not `{key}` in fit kwargs.")
    for stage in stages:
        if not isinstance(stage, Stage) or stage.epochs < 1:
            raise ValueError(f"Each stage must be a Stage with epochs >= 1, received {stage!r}.")
    compile_kwargs = dict(compile_kwargs or {})
    combined = keras.callbacks.History()
    combined.history, combined.epoch, combined.stages = {}, [], []
    current, epoch = optimizer, 0
    for i, stage in enumerate(stages):
        keys = set_trainable(model, stage.trainable)
        current = _carry_optimizer(current, stage.learning_rate, model.trainable_variables)
        model.compile(optimizer=current, **compile_kwargs)
        combined.stages.append((stage.name or f"stage_{i}", epoch, keys))
        history = model.fit(initial_epoch=epoch, epochs=epoch + stage.epochs, **fit_kwargs)
        for name, values in history.history.items():
            combined.history.setdefault(name, []).extend(values)
        combined.epoch.extend(history.epoch)
        epoch += stage.epochs
    return combined


def lp_ft_stages(head, probe_epochs, finetune_epochs, probe_lr, finetune_lr):
    """LP-FT (Kumar et al., 2022): train the head alone, then everything at a lower rate.

    `head`: glob pattern(s) over variable keys of the head, e.g. `"head*"`.
    """
    if finetune_lr >= probe_lr:
        raise ValueError(
            f"LP-FT fine-tunes with a lower rate than the probe; received probe_lr={probe_lr}, "
            f"finetune_lr={finetune_lr}."
        )
    return [
        Stage(head, probe_epochs, probe_lr, "linear_probe"),
        Stage("*", finetune_epochs, finetune_lr, "finetune_all"),
    ]


def gradual_unfreezing_stages(blocks, head, epochs_per_stage=1, final_epochs=1, learning_rate=None):
    """ULMFiT gradual unfreezing: head first, then one more block per stage from the top.

    Args:
        blocks: variable-key patterns of the blocks, bottom to top
            (e.g. `["*block_0/*", "*block_1/*"]`).
        head: pattern(s) of the head, trained in every stage.
        epochs_per_stage: epochs of each partial stage.
        final_epochs: epochs of the last stage, which trains everything (embeddings too);
            0 to stop when the bottom block is unfrozen.

    Returns a list of `Stage`; with B blocks: 1 (head) + B partial stages (+ 1 final).
    """
    head = (head,) if isinstance(head, str) else tuple(head)
    if not blocks:
        raise ValueError("`blocks` must name at least one block pattern.")
    stages = [Stage(head, epochs_per_stage, learning_rate, "head")]
    for k in range(1, len(blocks) + 1):
        unfrozen = tuple(blocks[-k:])
        stages.append(Stage(head + unfrozen, epochs_per_stage, learning_rate, f"top_{k}"))
    if final_epochs:
        stages.append(Stage("*", final_epochs, learning_rate, "all"))
    return stages
