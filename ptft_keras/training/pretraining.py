"""Language-model pretraining with a budget and a held-out loss: one loop for every LM.

    history = pretrain_lm(lm, batches, peak_lr=2e-3, tokens_per_step=64 * 128,
                          steps_per_epoch=200, tokens=14_000_000)  # or steps= / seconds=
    history.history["tokens"], history.history["val_loss"]

`lm` is any compiled-by-us Keras LM: the toolkit's `CausalLM` / `MaskedLM` (batches of
packed token rows) or a keras-hub `MaskedLM` / `CausalLM` task (batches of raw strings,
which its preprocessor masks or shifts), compiled with the loss per target token
(`per_token_loss`), so the training loss and the held-out loss share a scale. The budget
is tokens, optimizer steps or seconds: with tokens or steps the rate warms up then decays
(cosine) over exactly the steps the budget buys (`optimizers.adamw`); with seconds it
follows the elapsed time (`TimeBudgetSchedule`). Every `steps_per_epoch` steps is an
"epoch": a log line with the loss, tokens seen and tokens/s (`Budget`), a checkpoint, and
a held-out loss:
- `validation_data`: a finite dataset Keras evaluates (the LM's own loss and metrics as
  `val_*`), or
- `held_out`: fixed, already preprocessed `(x, y, sample_weight)` batches whose mean loss
  per target token (`held_out_loss`: the same masks every time) becomes `val_loss`; it is
  also measured before the first step (`history.held_out_loss_before`).
The corpus pipelines that feed this loop are the text recipe's (`pretrain_on_corpus`).
"""

import contextlib

import keras

from ptft_keras.models.task import per_token_loss
from ptft_keras.training.callbacks import UNTIL_STOPPED, Budget, TimeBudgetSchedule
from ptft_keras.training.optimizers import adamw, time_budget_adamw


def budget_steps(tokens_per_step, tokens=None, steps=None):
    """Optimizer steps a token or step budget buys (at least one)."""
    if steps is not None:
        return max(1, int(steps))
    return max(1, int(tokens) // tokens_per_step)


def pretrain_lm(
    lm,
    batches,
    *,
    peak_lr,
    tokens_per_step,
    steps_per_epoch,
    tokens=None,
    steps=None,
    seconds=None,
    validation_data=None,
    held_out=None,
    strategy=None,
    callbacks=(),
    jit_compile="auto",
    initial_epoch=0,
):
    """Compile `lm` (AdamW) and fit it on `batches` (a finite dataset, repeated here)
    until exactly one budget of `tokens`, `steps` or `seconds` is spent (module
    docstring). Returns the History."""
    if sum(b is not None for b in (tokens, steps, seconds)) != 1:
        raise ValueError(
            f"Give exactly one budget: tokens={tokens!r}, steps={steps!r}, seconds={seconds!r}."
        )
    if seconds is None:
        total_steps = budget_steps(tokens_per_step, tokens, steps)
        epochs = -(-total_steps // steps_per_epoch)
        make_optimizer = lambda: adamw(peak_lr, total_steps)
        extra = [Budget(max_steps=total_steps, tokens_per_step=tokens_per_step)]
    else:
        epochs = UNTIL_STOPPED  # the time budget stops it
        make_optimizer = lambda: time_budget_adamw(peak_lr)
        extra = [
            TimeBudgetSchedule(peak_lr, seconds),
            Budget(max_seconds=seconds, tokens_per_step=tokens_per_step),
        ]
    if held_out is not None:
        extra.append(HeldOutLoss(held_out))
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:  # the optimizer's variables belong to the strategy too
        # keras-hub's tasks default to a mean over every mask slot / padded position
        # (a training loss of 0.23 beside a held-out 5.66); this loss is per target token.
        lm.compile(optimizer=make_optimizer(), loss=per_token_loss(), jit_compile=jit_compile)
    validation = {}
    if validation_data is not None:  # a fixed set of batches, counted once
        count = sum(1 for _ in validation_data)
        if count:
            # Keras keeps the validation iterator across epochs when given the steps.
            validation = dict(validation_data=validation_data.repeat(), validation_steps=count)
    history = lm.fit(
        batches.repeat(),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        initial_epoch=initial_epoch,
        callbacks=[*extra, *callbacks],  # Budget first: its tokens/s reach the loggers
        verbose=0,
        shuffle=False,  # the pipeline shuffles
        **validation,
    )
    if held_out is not None:
        history.held_out_loss_before = extra[-1].before
    return history


def held_out_loss(task, batches):
    """Mean cross-entropy per target token (masked tokens, or next tokens) over fixed,
    already preprocessed `(x, y, sample_weight)` batches: the same masks every time."""
    total = weight = 0.0
    for x, y, sample_weight in batches:
        logits = task(x, training=False)  # (batch, targets, vocab)
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        mask = keras.ops.cast(sample_weight, losses.dtype)  # (batch, targets)
        total += float(keras.ops.sum(losses * mask))
        weight += float(keras.ops.sum(mask))
    return total / weight if weight else float("nan")


class HeldOutLoss(keras.callbacks.Callback):
    """`val_loss` (`held_out_loss` on `batches`) in every epoch's logs, for the loggers
    after it; `before` holds the loss measured when training begins."""

    def __init__(self, batches):
        super().__init__()
        self.batches = list(batches)
        self.before = float("nan")

    def on_train_begin(self, logs=None):
        self.before = held_out_loss(self.model, self.batches)

    def on_epoch_end(self, epoch, logs=None):
        if self.batches and logs is not None:
            logs["val_loss"] = held_out_loss(self.model, self.batches)
