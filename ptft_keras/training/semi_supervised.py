"""Consistency training with `fit`: the batches and the training loop of FixMatch / UDA.

    batches = ConsistencyBatches(x, y, unlabeled, batch_size=32, mu=3, steps=100)
    trainer = ConsistencyTrainer(classifier, weak, strong, threshold=0.95)
    train_consistency(classifier, x, y, unlabeled, weak, strong, steps=1000)

`ConsistencyBatches` is a `keras.utils.PyDataset` (numpy, every backend): each item is
`({"labeled": (B, ...), "unlabeled": (mu*B, ...)}, labels (B,))`, the labeled batch drawn
with replacement (few labels: many passes), the unlabeled one walking through a fresh
permutation of the pool each pass, so the streams keep the ratio `mu` exactly and every
unlabeled input is seen once per pass. `prepare` maps a numpy batch to model inputs (for
token ids: `{"token_ids", "padding_mask"}`).

`train_consistency` wraps the classifier in a `ConsistencyTrainer`, compiles it with Adam
(cosine decay over the run; `ema` > 0 keeps an exponential moving average of the weights
that replaces them at the end, as FixMatch evaluates with), and fits `steps` steps as
epochs of `steps_per_epoch`. The classifier is trained in place and returned.
"""

import contextlib

import keras
import numpy as np

from ptft_keras.models.consistency import ConsistencyLogs, ConsistencyTrainer
from ptft_keras.variables import set_trainable


class ConsistencyBatches(keras.utils.PyDataset):
    """`steps` batches of (labeled + `mu` x unlabeled inputs, labels) (module docstring)."""

    def __init__(
        self, x, y, unlabeled, batch_size=32, mu=3, steps=100, seed=0, prepare=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.x, self.y, self.unlabeled = np.asarray(x), np.asarray(y), np.asarray(unlabeled)
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise ValueError(f"Expected one label per input: {len(self.x)} inputs, {len(self.y)}.")
        if len(self.unlabeled) == 0:
            raise ValueError("The unlabeled pool is empty.")
        if int(mu) < 1:
            raise ValueError(f"`mu` must be an int >= 1, got {mu!r}.")
        self.batch_size, self.mu, self.steps = int(batch_size), int(mu), int(steps)
        self.prepare = prepare or (lambda batch: batch.astype("float32"))
        self.rng = np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(len(self.unlabeled)), 0

    def __len__(self):
        return self.steps

    def _next_unlabeled(self, n):
        taken = []
        while n > 0:
            if self.position == len(self.order):
                self.order, self.position = self.rng.permutation(len(self.unlabeled)), 0
            chunk = self.order[self.position : self.position + n]
            self.position += len(chunk)
            taken.append(chunk)
            n -= len(chunk)
        return np.concatenate(taken)

    def __getitem__(self, index):
        take = self.rng.integers(0, len(self.x), self.batch_size)
        unlabeled = self.unlabeled[self._next_unlabeled(self.mu * self.batch_size)]
        inputs = {"labeled": self.prepare(self.x[take]), "unlabeled": self.prepare(unlabeled)}
        return inputs, self.y[take]


def train_consistency(
    classifier,
    x,
    y,
    unlabeled,
    weak,
    strong,
    steps=1000,
    batch_size=32,
    mu=3,
    threshold=0.95,
    learning_rate=3e-3,
    ema=0.99,
    distribution_alignment=False,
    unlabeled_weight=1.0,
    prepare=None,
    seed=0,
    steps_per_epoch=100,
    strategy=None,
    callbacks=(),
    verbose=0,
    optimizer=None,
    jit_compile="auto",
):
    """Train `classifier` in place by consistency training; returns the History.

    `x, y`: the few labeled inputs (numpy) and integer labels; `unlabeled`: the pool
    (numpy, same kind of inputs). `weak` / `strong`: the augmentation layers (see
    `ConsistencyTrainer`). The labeled loss is the classifier's own (`compile()` with no
    loss), the unlabeled one cross-entropy on confident pseudo-labels. `optimizer`
    replaces the default Adam + cosine decay (+ EMA).
    """
    set_trainable(classifier, "*")
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        trainer = ConsistencyTrainer(
            classifier,
            weak=weak,
            strong=strong,
            threshold=threshold,
            unlabeled_weight=unlabeled_weight,
            distribution_alignment=distribution_alignment,
        )
        if optimizer is None:
            schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps))
            optimizer = keras.optimizers.Adam(
                schedule, use_ema=ema > 0, ema_momentum=ema if ema > 0 else 0.99
            )
        classifier.compile()  # its default loss, for the labeled term
        trainer.compile(
            optimizer=optimizer,
            loss=classifier.loss,
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
    per_epoch = min(steps, steps_per_epoch)
    data = ConsistencyBatches(x, y, unlabeled, batch_size, mu, per_epoch, seed, prepare)
    return trainer.fit(
        data,
        epochs=max(1, -(-steps // per_epoch)),
        callbacks=[ConsistencyLogs(trainer), *(callbacks or [])],
        verbose=verbose,
    )
