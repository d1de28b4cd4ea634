"""Numpy batch pipelines for few-label training, and fitting a fixed number of steps.

    data = ShiftedBatches(x, y, batch_size=32, max_shift=2, steps=100)   # a PyDataset
    fit_steps(model, lambda n: ShiftedBatches(x, y, 32, steps=n), 600, 100, callbacks, "ft")

Keras + numpy only, so they run on every backend without TensorFlow (the `data`
package is tf.data throughout; `tests/test_layering.py` keeps this module free of it).
Step-based phases run as "epochs" of `steps_per_epoch` steps, the unit of progress logs
and backups; `callbacks` is a list, or a function `phase_name -> list` so that each phase
can get its own backup directory (a backup belongs to one model and one `fit`).
`fit_repeated` does the same for a dataset whose batches vary in number (length-bucketed
text): it repeats the data and fixes `steps_per_epoch`; resumed at `initial_epoch`, it
skips the batches the earlier epochs used, so a resumed run sees the same batches as an
uninterrupted one.
"""

import keras
import numpy as np


class ShiftedBatches(keras.utils.PyDataset):
    """`steps` random batches (sampled with replacement) of (images shifted by up to
    `max_shift` pixels, the uncovered border repeating the edge pixels, labels): zero on
    grey digits, the background colour on colour images rather than a black frame.

    Written here instead of `keras.layers.RandomTranslation` so that it runs the same on
    every backend and costs only a numpy pad + slice per batch.
    """

    def __init__(self, images, labels, batch_size, max_shift=2, seed=0, steps=1000, **kw):
        super().__init__(**kw)
        self.images, self.labels = np.asarray(images, "float32"), np.asarray(labels)
        self.batch_size, self.max_shift, self.steps = batch_size, max_shift, steps
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        take = self.rng.integers(0, len(self.images), self.batch_size)
        batch = self.images[take].copy()  # (batch, H, W[, C])
        if self.max_shift:
            s = self.max_shift
            widths = [(0, 0), (s, s), (s, s)] + [(0, 0)] * (batch.ndim - 3)
            padded = np.pad(batch, widths, mode="edge")  # no frame of a colour not there
            dy, dx = self.rng.integers(0, 2 * s + 1, 2)  # one shift per batch: cheap
            batch = padded[:, dy : dy + batch.shape[1], dx : dx + batch.shape[2]]
        return batch, self.labels[take]


def as_arrays(data):
    """An unbatched `tf.data.Dataset` of images or (image, label) -> numpy arrays."""
    if isinstance(data, np.ndarray):
        return data
    rows = [
        tuple(np.asarray(t) for t in (row if isinstance(row, tuple) else (row,))) for row in data
    ]
    if not rows:
        raise ValueError("The dataset is empty.")
    columns = [np.stack(c) for c in zip(*rows, strict=True)]
    return columns[0] if len(columns) == 1 else tuple(columns)


def check_labelled(images, labels):
    """`(float32 images, labels)`, or a clear error unless there is one integer label per
    image."""
    images, labels = np.asarray(images, "float32"), np.asarray(labels)
    if len(images) != len(labels) or labels.ndim != 1:
        raise ValueError(
            f"Expected one integer label per image: got {len(images)} images and labels of "
            f"shape {labels.shape}."
        )
    return images, labels


def phase_callbacks(callbacks, phase):
    """The callbacks of one phase: `callbacks(phase)` if it is a function, else itself."""
    return callbacks(phase) if callable(callbacks) else callbacks


def fit_steps(model, data_fn, steps, steps_per_epoch, callbacks, phase, verbose):
    """`steps` optimizer steps as ceil(steps / steps_per_epoch) epochs of `data_fn(n)`."""
    epochs = max(1, -(-steps // steps_per_epoch))
    data = data_fn(min(steps, steps_per_epoch))
    return model.fit(
        data, epochs=epochs, callbacks=phase_callbacks(callbacks, phase), verbose=verbose
    )


def fit_repeated(model, data, epochs, steps_per_epoch, callbacks=None, verbose=0, initial_epoch=0):
    """`fit` on a repeated variable-batch dataset with a fixed number of steps an epoch,
    from `initial_epoch` (its batches: those after the earlier epochs' in the stream)."""
    return model.fit(
        data.repeat().skip(initial_epoch * steps_per_epoch),
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
        callbacks=callbacks,
    )
