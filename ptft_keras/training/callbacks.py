"""The callbacks every training entry point passes to ``model.fit``.

``training_callbacks(backup_dir, verbose)`` returns, in order:

* ``keras.callbacks.CSVLogger(backup_dir/training_log.csv, append=True)`` on the chief
  (``append`` so a resumed run continues the same log);
* ``AtomicBackupAndRestore(backup_dir)`` (``ptft_keras.training.checkpointing``): a
  checkpoint per epoch, written atomically, resumed from after an interruption;
* ``EpochLogger``: one line per epoch with the metrics and elapsed time, which reads well
  in the logs of long or multi-worker runs (Keras' progbar writes carriage returns).

Budgets for runs measured in steps, tokens or minutes (LM pretraining,
``ptft_keras.training.pretraining``): ``Budget`` stops ``fit`` and logs tokens and
tokens/s; ``TimeBudgetSchedule`` decays the learning rate over wall time.

Use ``fit(..., verbose=0)`` with ``verbose=True`` here to get only the one-line logs, or
keep Keras' progbar and pass ``verbose=False``.
"""

import os
import sys
import time

import keras
import numpy as np

from ptft_keras.training.checkpointing import AtomicBackupAndRestore
from ptft_keras.training.strategies import task_info

CSV_LOG = "training_log.csv"
UNTIL_STOPPED = 100_000  # `fit` epochs for a run that a `Budget` (time) stops instead
COUNTS = ("tokens", "tokens_per_second")  # logged as whole numbers


class EpochLogger(keras.callbacks.Callback):
    """Print ``epoch 3/10  loss=0.1234  val_loss=0.2000  12.3s (total 40.1s)`` per epoch."""

    def __init__(self, stream=None, prefix=""):
        super().__init__()
        self.stream = stream
        self.prefix = prefix

    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()
        self._epochs = self.params.get("epochs") if self.params else None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        metrics = "  ".join(f"{k}={_fmt(v, k)}" for k, v in sorted((logs or {}).items()))
        total = f"/{self._epochs}" if self._epochs and self._epochs != UNTIL_STOPPED else ""
        line = (
            f"{self.prefix}epoch {epoch + 1}{total}  {metrics}  "
            f"{now - self._epoch_start:.1f}s (total {now - self._train_start:.1f}s)"
        )
        print(line, file=self.stream or sys.stdout, flush=True)


def training_callbacks(backup_dir=None, verbose=True, *, delete_checkpoint=True):
    """Callbacks for fault-tolerant, well-logged training; pass them to ``model.fit``.

    Args:
        backup_dir: if given, a directory owned by this run: per-epoch checkpoints
            (resumed automatically by the next ``fit`` after an interruption) and a CSV
            log of every epoch. ``None`` turns both off.
        verbose: add the one-line-per-epoch ``EpochLogger``.
        delete_checkpoint: remove the checkpoints when ``fit`` ends normally (Keras'
            ``BackupAndRestore`` default; the next ``fit`` then starts from epoch 0).
    """
    callbacks = []
    if backup_dir is not None:
        backup_dir = os.fspath(backup_dir)
        if task_info()[2]:  # only the chief logs, so workers don't interleave one file
            os.makedirs(backup_dir, exist_ok=True)
            # Before the backup: a kill between the two repeats a log row, never drops one.
            csv_path = os.path.join(backup_dir, CSV_LOG)
            callbacks.append(keras.callbacks.CSVLogger(csv_path, append=True))
        callbacks.append(AtomicBackupAndRestore(backup_dir, delete_checkpoint=delete_checkpoint))
    if verbose:
        _, task_id, is_chief = task_info()
        callbacks.append(EpochLogger(prefix="" if is_chief else f"[worker {task_id}] "))
    return callbacks


def _fmt(value, name=""):
    try:
        return f"{float(value):,.0f}" if name in COUNTS else f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


class Budget(keras.callbacks.Callback):
    """Stop `fit` once `max_steps` optimizer steps or `max_seconds` of training are spent.

    Checked after every batch, so a run stops within one step of its budget. With
    `tokens_per_step`, it also logs `tokens` and `tokens_per_second` at each epoch end
    (the LM recipes' throughput figure). The clock counts this `fit` only: a resumed run
    gets its whole time budget again.
    """

    def __init__(self, max_steps=None, max_seconds=None, tokens_per_step=None):
        super().__init__()
        for name, value in (("max_steps", max_steps), ("max_seconds", max_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}.")
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.tokens_per_step = tokens_per_step
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        over_steps = self.max_steps is not None and self.steps >= self.max_steps
        elapsed = time.perf_counter() - self.start
        if over_steps or (self.max_seconds is not None and elapsed >= self.max_seconds):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.tokens_per_step and logs is not None:
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            logs["tokens"] = self.steps * self.tokens_per_step
            logs["tokens_per_second"] = logs["tokens"] / elapsed


class TimeBudgetSchedule(keras.callbacks.Callback):
    """Warmup then cosine decay over *wall time*: the learning rate at each step follows
    the fraction of `seconds` already spent, so a run stopped by a time budget (`Budget`)
    ends with its rate decayed, whatever the machine's speed."""

    def __init__(self, peak, seconds, warmup_fraction=0.02):
        super().__init__()
        self.peak, self.seconds, self.warmup = float(peak), float(seconds), warmup_fraction

    def on_train_begin(self, logs=None):
        self.clock, self.start = time.perf_counter, time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        done = min(1.0, (self.clock() - self.start) / self.seconds)
        if done < self.warmup:
            rate = self.peak * max(done / self.warmup, 1e-3)
        else:
            rate = self.peak * 0.5 * (1 + np.cos(np.pi * (done - self.warmup) / (1 - self.warmup)))
        self.model.optimizer.learning_rate.assign(rate)
