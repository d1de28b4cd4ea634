"""Explicit, seeded splits for pretrain-then-fine-tune experiments.

- `split_dataset`: hold out a test set; the rest is the *pool* (the unlabeled data for
  pretraining: its labels are returned only so that `sample_few_labels` can draw the
  few labelled examples from it).
- `sample_few_labels`: a class-balanced labelled subset of the pool (`budget` examples,
  `budget / num_classes` of each class).
- `make_dataset`: arrays -> cached, (optionally) shuffled, batched, prefetched `tf.data`.

All randomness comes from `np.random.default_rng(seed)`, so the same seed gives the same
split on every machine and backend.
"""

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    pool_x: np.ndarray  # (N - test_size, ...): the pretraining pool, labels hidden
    pool_y: np.ndarray  # (N - test_size,): only for drawing the few labels
    test_x: np.ndarray  # (test_size, ...)
    test_y: np.ndarray  # (test_size,)


def split_dataset(images, labels, test_size=2000, seed=0):
    """Shuffle with `seed` and hold out `test_size` examples as the test set."""
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; expected equal.")
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)):
        raise ValueError(f"test_size must be an int, got {test_size!r}.")
    if not 0 < test_size < len(images):
        raise ValueError(
            f"test_size={test_size} must be between 1 and {len(images) - 1} "
            f"(the data has {len(images)} examples and the pool must not be empty)."
        )
    order = np.random.default_rng(seed).permutation(len(images))
    test, pool = order[:test_size], order[test_size:]
    return Split(images[pool], labels[pool], images[test], labels[test])


def sample_few_labels(images, labels, budget, num_classes=None, seed=0):
    """Draw `budget` labelled examples, `budget // num_classes` from each class.

    `budget=None` or `"all"` returns every example. `num_classes` defaults to
    `max(labels) + 1`; classes are `0..num_classes-1`. The result is in a seeded shuffled
    order (classes interleaved). Raises `ValueError` when the budget is larger than the
    data, not divisible by `num_classes`, or when a class has too few examples.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; expected equal.")
    if budget is None or (isinstance(budget, str) and budget == "all"):
        return images, labels
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise ValueError(f"budget must be a positive int, None or 'all'; got {budget!r}.")
    if budget > len(labels):
        raise ValueError(f"budget={budget} is larger than the data ({len(labels)} examples).")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if budget % num_classes:
        raise ValueError(
            f"budget={budget} is not divisible by num_classes={num_classes}; expected a "
            f"multiple of {num_classes} for a class-balanced sample."
        )
    per_class = budget // num_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(
                f"class {c} has {len(members)} examples; budget={budget} needs {per_class} "
                f"per class."
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    chosen = rng.permutation(np.concatenate(chosen))
    return images[chosen], labels[chosen]


def make_dataset(x, y=None, batch_size=128, shuffle=False, seed=0):
    """Arrays -> `tf.data.Dataset`: cached, shuffled (if asked), batched, prefetched.

    `x` (and `y`) keep their dtype: uint8 images stay uint8, models rescale inside.
    `batch_size` is the global batch (split across replicas by `tf.distribute`).
    Shuffling reshuffles every epoch from a fixed `seed`.
    """
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} examples but y has {len(y)}; expected equal.")
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).cache()
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
