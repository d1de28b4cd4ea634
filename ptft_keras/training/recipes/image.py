"""Pretrain -> fine-tune recipes for the image autoencoder and classifier.

    ae = build_conv_autoencoder(latent_dim=64, latent_activation=None, contrastive_weight=1.0)
    pretrain_autoencoder(ae, unlabeled_images)          # denoising + contrastive, no labels
    clf = Classifier.from_pretrained(ae, num_classes=10)
    finetune_classifier(clf, few_images, few_labels)              # imprint -> LP -> FT
    self_train(clf, few_images, few_labels, unlabeled_images)     # + pseudo-labels

The defaults are what measured best on the 8k MNIST sample with 100 labels (README,
section `mnist`): a cosine head initialised from class-mean prototypes, a short linear
probe with the encoder frozen, then full fine-tuning at the same learning rate (a 10x
lower one left pretrained encoders under-trained: their weights are 1.3-2x larger than
a fresh init, so Adam's fixed-size steps barely move them), with small random shifts
and a fixed number of optimizer *steps* (not epochs: 100 labels are 3 batches an epoch).

Every phase compiles inside `strategy.scope()` when a strategy is given (Keras needs
model variables and optimizer state created there), and passes callbacks to `fit`:
`callbacks` is a list, or a function `phase_name -> list` so that each phase can get its
own backup directory (a backup belongs to one model and one `fit`). Step-based phases
run as "epochs" of `steps_per_epoch` steps, the unit of progress logs and backups.
"""

import contextlib

import keras
import numpy as np


class ShiftedBatches(keras.utils.PyDataset):
    """`steps` random batches (sampled with replacement) of (images shifted by up to
    `max_shift` pixels, zero-filled, labels).

    Written here instead of `keras.layers.RandomTranslation` so that it runs the same on
    every backend and costs only a numpy pad + slice per batch on these tiny images.
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
        batch = self.images[take].copy()  # (batch, 28, 28[, 1])
        if self.max_shift:
            s = self.max_shift
            padded = np.pad(batch, [(0, 0), (s, s), (s, s)] + [(0, 0)] * (batch.ndim - 3))
            dy, dx = self.rng.integers(0, 2 * s + 1, 2)  # one shift per batch: cheap
            batch = padded[:, dy : dy + batch.shape[1], dx : dx + batch.shape[2]]
        return batch, self.labels[take]


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _check_labelled(images, labels):
    images, labels = np.asarray(images, "float32"), np.asarray(labels)
    if len(images) != len(labels) or labels.ndim != 1:
        raise ValueError(
            f"Expected one integer label per image: got {len(images)} images and labels of "
            f"shape {labels.shape}."
        )
    return images, labels


def _callbacks(callbacks, phase):
    return callbacks(phase) if callable(callbacks) else callbacks


def _fit_steps(model, data_fn, steps, steps_per_epoch, callbacks, phase, verbose):
    """`steps` optimizer steps as ceil(steps / steps_per_epoch) epochs of `data_fn(n)`."""
    epochs = max(1, -(-steps // steps_per_epoch))
    data = data_fn(min(steps, steps_per_epoch))
    return model.fit(data, epochs=epochs, callbacks=_callbacks(callbacks, phase), verbose=verbose)


def pretrain_autoencoder(
    autoencoder,
    images,
    epochs=40,
    batch_size=128,
    learning_rate=1e-3,
    strategy=None,
    callbacks=None,
    verbose=0,
):
    """Unsupervised pretraining: reconstruct `images` (no labels). Returns the History.

    Adam with the learning rate decayed to 0 over the run (cosine), so the last epochs
    settle instead of bouncing at the peak rate.
    """
    images = np.asarray(images, "float32")
    steps = epochs * -(-len(images) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps))
    with _scope(strategy):
        autoencoder.compile(optimizer=keras.optimizers.Adam(schedule))
    return autoencoder.fit(
        images,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=_callbacks(callbacks, "pretrain"),
        verbose=verbose,
    )


def finetune_classifier(
    classifier,
    images,
    labels,
    imprint=True,
    probe_steps=300,
    finetune_steps=600,
    learning_rate=1e-3,
    finetune_learning_rate=1e-3,
    batch_size=32,
    max_shift=2,
    seed=0,
    steps_per_epoch=100,
    strategy=None,
    callbacks=None,
    verbose=0,
):
    """Imprint -> linear probe -> full fine-tuning, on few labelled images.

    1. `imprint`: set cosine-head weights to the class means of the (frozen) features.
    2. `probe_steps` Adam steps on the head only (encoder frozen, `learning_rate`).
    3. `finetune_steps` steps on everything at `finetune_learning_rate`.
    Steps use random shifts of up to `max_shift` pixels. Returns {phase: History}.
    """
    images, labels = _check_labelled(images, labels)
    histories = {}
    if imprint:
        classifier.imprint(images, labels)
    phases = [("probe", probe_steps, learning_rate, False)]
    phases.append(("finetune", finetune_steps, finetune_learning_rate, True))
    for name, steps, lr, encoder_trainable in phases:
        if steps <= 0:
            continue
        classifier.encoder.trainable = encoder_trainable
        with _scope(strategy):  # compile again after changing `trainable`
            classifier.compile(optimizer=keras.optimizers.Adam(lr))
        data_fn = lambda n: ShiftedBatches(images, labels, batch_size, max_shift, seed, steps=n)
        histories[name] = _fit_steps(
            classifier, data_fn, steps, steps_per_epoch, callbacks, name, verbose
        )
    classifier.encoder.trainable = True
    return histories


def pseudo_label(classifier, images, threshold=0.95, per_class=None, batch_size=256):
    """Indices and labels of the `images` the classifier is confident about.

    Keeps predictions with softmax probability >= `threshold`; with `per_class`, at most
    that many of the most confident per class (keeps the pseudo-labels class-balanced).
    """
    logits = classifier.predict(np.asarray(images, "float32"), batch_size=batch_size, verbose=0)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    keep = np.where(confidence >= threshold)[0]
    if per_class is not None:
        keep = np.concatenate(
            [
                sorted(keep[predicted[keep] == c], key=lambda i: -confidence[i])[:per_class]
                for c in range(probs.shape[1])
            ]
        ).astype("int64")
    return keep, predicted[keep]


def self_train(
    classifier,
    images,
    labels,
    unlabeled_images,
    rounds=3,
    threshold=0.95,
    steps=600,
    learning_rate=1e-3,
    batch_size=64,
    max_shift=2,
    seed=0,
    steps_per_epoch=100,
    strategy=None,
    callbacks=None,
    verbose=0,
):
    """Semi-supervised rounds: pseudo-label the confident unlabeled images, train on them
    plus the true labels (labelled images repeated to weigh as much as the pseudo ones),
    repeat. Returns a list of {"round", "pseudo_labels"} dicts.
    """
    images, labels = _check_labelled(images, labels)
    unlabeled_images = np.asarray(unlabeled_images, "float32")
    log = []
    for r in range(rounds):
        keep, pseudo = pseudo_label(classifier, unlabeled_images, threshold)
        repeat = max(1, len(keep) // max(1, len(labels)))
        x = np.concatenate([np.repeat(images, repeat, axis=0), unlabeled_images[keep]])
        y = np.concatenate([np.repeat(labels, repeat, axis=0), pseudo])
        classifier.encoder.trainable = True
        with _scope(strategy):
            classifier.compile(optimizer=keras.optimizers.Adam(learning_rate))
        data_fn = lambda n, x=x, y=y, r=r: ShiftedBatches(
            x, y, batch_size, max_shift, seed + r + 1, steps=n
        )
        phase = f"self_train_{r + 1}"
        _fit_steps(classifier, data_fn, steps, steps_per_epoch, callbacks, phase, verbose)
        log.append({"round": r + 1, "pseudo_labels": int(len(keep))})
    return log
