"""The image recipe: pretrain an autoencoder without labels, then fine-tune with few.

    recipe = ImageRecipe()                                   # the measured defaults
    ae = build_autoencoder(spec, recipe, seed=0)             # conv, denoising + contrastive
    pretrain_autoencoder(ae, unlabeled)                      # arrays or a tf.data stream
    clf = make_classifier(ae, label_names, pretrained=True)  # or pretrained=False: scratch
    fit_few_labels(clf, x, y, unlabeled, recipe)             # imprint -> probe -> FT -> SSL

The defaults are what measured best on the 8k MNIST sample with 100 labels
(docs/images.md): a conv denoising autoencoder with a 64-d linear code and a contrastive
term over random augmentations; a cosine head initialised from class-mean prototypes, a
short linear probe with the encoder frozen, then full fine-tuning at the same learning
rate (a 10x lower one left pretrained encoders under-trained: their weights are 1.3-2x
larger than a fresh init, so Adam's fixed-size steps barely move them), with small random
shifts and a fixed number of optimizer *steps* (not epochs: 100 labels are 3 batches an
epoch); then FixMatch on the unlabeled pool (the default `semi_supervised="fixmatch"`;
`"self-training"` and `"none"` are the alternatives). The semi-supervised methods live in
`training/semi_supervised.py`, the numpy batches in `training/batches.py`, the metric in
`training/metrics.py`.

Data: images are float32 scaled by the model's `ImageSpec` (`ptft_keras.data.images`).
The unlabeled pool may be an array or an unbatched `tf.data.Dataset` of images (a folder
streamed from disk); the few labelled examples are arrays (a labeled dataset is read into
memory with `as_arrays`). The number of classes comes from the labels / label names.

Every phase compiles inside `strategy.scope()` when a strategy is given (Keras needs
model variables and optimizer state created there), and passes callbacks to `fit`:
`callbacks` is a list, or a function `phase_name -> list` so that each phase can get its
own backup directory (a backup belongs to one model and one `fit`). Step-based phases
run as "epochs" of `steps_per_epoch` steps, the unit of progress logs and backups.
Keras + numpy only: runs on every backend without TensorFlow (except for datasets).
"""

import dataclasses

import keras
import numpy as np

from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.training.batches import (
    ShiftedBatches,
    as_arrays,
    check_labelled,
    fit_steps,
    phase_callbacks,
)
from ptft_keras.training.semi_supervised import fixmatch, self_train
from ptft_keras.training.strategies import strategy_scope
from ptft_keras.variables import set_trainable

SEMI_SUPERVISED = ("fixmatch", "self-training", "none")


@dataclasses.dataclass
class ImageRecipe:
    """Every setting of the image recipe, with the measured defaults (module docstring)."""

    latent_dim: int = 64  # a compact linear code: frozen, it classifies far better than
    # a random encoder's; the 7x7x64 feature map is as good random as trained (MNIST)
    contrastive_weight: float = 1.0  # 0: the plain denoising autoencoder
    colour_augmentation: float | None = None  # None: 0.3 for RGB images in [0, 1], else 0
    input_normalization: bool | None = None  # None: on for RGB images, off for grey
    # (both measured on colour digits, docs/images.md#colour-images; grey is unchanged)
    background_distance: bool | None = None  # the colour-invariant input (layers/
    # background_distance.py); None: `for_data` turns it on for RGB shapes on plain
    # backgrounds (off where no data is seen); no colour views or input norm when on
    pretrain_epochs: int = 30
    pretrain_batch_size: int = 128
    pretrain_learning_rate: float = 1e-3
    probe_steps: int = 300
    finetune_steps: int = 600
    learning_rate: float = 1e-3  # probe
    finetune_learning_rate: float = 1e-3
    batch_size: int = 32
    max_shift: int | None = None  # None: about 1/14 of the image side (2 px at 28)
    semi_supervised: str = "fixmatch"
    self_train_rounds: int = 3
    self_train_steps: int = 600
    fixmatch_steps: int = 2000  # consistency training (training/semi_supervised.py)
    fixmatch_mu: int = 3  # unlabeled images per labeled one in a step
    fixmatch_threshold: float = 0.8
    fixmatch_learning_rate: float = 3e-3
    fixmatch_ema: float = 0.99  # weights averaged over steps replace the final ones
    fixmatch_strength: float = 0.5  # scales every strong-augmentation magnitude; on the
    # hardest MNIST label draw 0.5 gave 98.1% vs 96.5% at 1.0 (30 deg rotations, shear 0.3)
    fixmatch_alignment: bool = False  # distribution alignment of the pseudo-labels: no
    # consistent gain at 2 labels a class (docs/images.md#few-labels-a-class-fixmatch-at-2-a-class)
    steps_per_epoch: int = 100

    def __post_init__(self):
        if self.semi_supervised not in SEMI_SUPERVISED:
            raise ValueError(
                f"semi_supervised must be one of {SEMI_SUPERVISED}, got {self.semi_supervised!r}."
            )

    def for_data(self, images, image_spec):
        """This recipe with its data-dependent defaults decided from `images` (an
        `ImageFolder` or an array): `background_distance=None` becomes True for RGB images
        of which >= 80% are shapes on a plain colour (`plain_background_share`), else
        False. Returns `(recipe, reason)`, the reason a line for logs."""
        if self.background_distance is not None:
            return self, f"background distance {'on' if self.background_distance else 'off'} (set)"
        if image_spec.channels != 3:
            return dataclasses.replace(self, background_distance=False), (
                "background distance off (grey images)"
            )
        from ptft_keras.data.images import PLAIN_BACKGROUND_IMAGES, plain_background_share

        share = plain_background_share(images)
        on = share >= PLAIN_BACKGROUND_IMAGES
        reason = (
            f"background distance {'on' if on else 'off'}: {share:.0%} of sampled images are "
            f"shapes on one plain colour (on from {PLAIN_BACKGROUND_IMAGES:.0%}; "
            f"--{'no-' if on else ''}background-distance to override)"
        )
        return dataclasses.replace(self, background_distance=on), reason

    def colour_for(self, image_spec):
        """The contrastive views' colour distortion for images of `image_spec`."""
        if self.colour_augmentation is not None:
            return self.colour_augmentation
        if self.background_distance:
            return 0.0  # the encoder discards colour (measured this way, docs/images.md)
        rgb = image_spec is not None and image_spec.channels == 3
        return 0.3 if rgb and image_spec.scaling == "unit" and self.contrastive_weight else 0.0

    def normalize_for(self, image_spec):
        """Whether the encoder standardises each image per channel (RGB by default)."""
        if self.input_normalization is not None:
            return self.input_normalization
        if self.background_distance:
            return False  # the map is already scaled per image
        return image_spec is not None and image_spec.channels == 3

    def shift_for(self, image_shape):
        if self.max_shift is not None:
            return self.max_shift
        return max(1, round(min(image_shape[:2]) / 14))

    def smoke(self):
        """The same recipe shrunk to seconds, for tests and `--smoke` runs."""
        return dataclasses.replace(
            self,
            pretrain_epochs=1,
            probe_steps=5,
            finetune_steps=5,
            self_train_rounds=min(1, self.self_train_rounds),
            self_train_steps=5,
            fixmatch_steps=5,
            fixmatch_ema=0.0,  # an average over 5 steps is the starting weights, while
            # batch-norm statistics have followed the trained ones (docs/semi_supervised.md)
        )


def build_autoencoder(image_spec, recipe=None, seed=0, strategy=None):
    """The recipe's conv autoencoder for images of `image_spec` (built in the scope)."""
    recipe = recipe or ImageRecipe()
    with strategy_scope(strategy):
        return build_conv_autoencoder(
            latent_dim=recipe.latent_dim or None,
            latent_activation=None,
            contrastive_weight=recipe.contrastive_weight,
            colour_augmentation=recipe.colour_for(image_spec),
            input_normalization=recipe.normalize_for(image_spec),
            background_distance=bool(recipe.background_distance),
            seed=seed,
            image_spec=image_spec,
        )


def make_classifier(autoencoder, label_names, pretrained=True, strategy=None):
    """A `Classifier` on the autoencoder's encoder: its weights, or a random init of the
    same architecture (`pretrained=False`, the fair from-scratch baseline)."""
    with strategy_scope(strategy):
        if pretrained:
            return Classifier.from_pretrained(
                autoencoder, len(label_names), label_names=label_names
            )
        encoder = keras.Model.from_config(autoencoder.encoder.get_config())
        return Classifier(
            encoder, len(label_names), image_spec=autoencoder.image_spec, label_names=label_names
        )


def pretrain_autoencoder(
    autoencoder,
    images,
    epochs=40,
    batch_size=128,
    learning_rate=1e-3,
    strategy=None,
    callbacks=None,
    verbose=0,
    seed=0,
    initial_epoch=0,
):
    """Unsupervised pretraining: reconstruct `images` (no labels). Returns the History.

    `images`: an array (shuffled by `fit`); an `ImageFolder` (streamed from disk in
    per-epoch orders that depend only on `(seed, epoch)`, so a run resumed at
    `initial_epoch` by `AtomicBackupAndRestore` sees the batches an uninterrupted run
    saw: see `ptft_keras.data.images.epoch_image_stream`); or an unbatched
    `tf.data.Dataset` of images (or of (image, label) pairs, labels ignored) that
    reshuffles itself. Adam with the learning rate decayed to 0 over the run (cosine), so
    the last epochs settle instead of bouncing at the peak rate.
    """
    fit_kwargs = dict(initial_epoch=initial_epoch)
    if isinstance(images, (np.ndarray, list)):
        data = np.asarray(images, "float32")
        steps_per_epoch = -(-len(data) // batch_size)
        fit_kwargs.update(batch_size=batch_size, shuffle=True)
    elif hasattr(images, "files"):  # an ImageFolder
        from ptft_keras.data.images import epoch_image_stream  # tf.data: only for folders

        spec = autoencoder.image_spec
        data = epoch_image_stream(images, spec, batch_size, epochs, seed, initial_epoch)
        steps_per_epoch = -(-len(images) // batch_size)
        fit_kwargs.update(steps_per_epoch=steps_per_epoch, shuffle=False)
    else:  # a tf.data.Dataset
        data = images.map(lambda x, *_: x).batch(batch_size)
        steps_per_epoch = int(data.cardinality())
        if steps_per_epoch < 1:
            raise ValueError("Pass a dataset of known length (no filter / repeat).")
        fit_kwargs.update(shuffle=False)  # the pipeline shuffles
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, max(1, epochs * steps_per_epoch)
    )
    with strategy_scope(strategy):
        autoencoder.compile(optimizer=keras.optimizers.Adam(schedule))
    return autoencoder.fit(
        data,
        epochs=epochs,
        callbacks=phase_callbacks(callbacks, "pretrain"),
        verbose=verbose,
        **fit_kwargs,
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
    images, labels = check_labelled(images, labels)
    histories = {}
    if imprint:
        classifier.imprint(images, labels)
    phases = [("probe", probe_steps, learning_rate, "head/*")]
    phases.append(("finetune", finetune_steps, finetune_learning_rate, "*"))
    for name, steps, lr, trainable in phases:
        if steps <= 0:
            continue
        set_trainable(classifier, trainable)
        with strategy_scope(strategy):  # compile again after changing what trains
            classifier.compile(optimizer=keras.optimizers.Adam(lr))
        data_fn = lambda n: ShiftedBatches(images, labels, batch_size, max_shift, seed, steps=n)
        histories[name] = fit_steps(
            classifier, data_fn, steps, steps_per_epoch, callbacks, name, verbose
        )
    set_trainable(classifier, "*")
    return histories


def fit_few_labels(
    classifier,
    images,
    labels,
    unlabeled=None,
    recipe=None,
    seed=0,
    strategy=None,
    callbacks=None,
    on_stage=None,
    verbose=0,
):
    """The recipe's fine-tuning: imprint + probe, fine-tune, then semi-supervised.

    `on_stage(name, classifier)` is called after each stage ("frozen encoder",
    "fine-tune", "+ FixMatch" or "+ self-training"), e.g. to evaluate. Semi-supervised
    training needs `unlabeled` and runs when `recipe.semi_supervised != "none"`. Returns
    the classifier.
    """
    recipe = recipe or ImageRecipe()
    images, labels = check_labelled(as_arrays(images), labels)
    shift = recipe.shift_for(images.shape[1:])
    common = dict(
        seed=seed,
        strategy=strategy,
        callbacks=callbacks,
        steps_per_epoch=recipe.steps_per_epoch,
        verbose=verbose,
    )
    steps = dict(batch_size=recipe.batch_size, max_shift=shift, **common)
    report = on_stage or (lambda name, model: None)
    finetune_classifier(
        classifier,
        images,
        labels,
        probe_steps=recipe.probe_steps,
        finetune_steps=0,
        learning_rate=recipe.learning_rate,
        **steps,
    )
    report("frozen encoder", classifier)
    finetune_classifier(
        classifier,
        images,
        labels,
        imprint=False,
        probe_steps=0,
        finetune_steps=recipe.finetune_steps,
        finetune_learning_rate=recipe.finetune_learning_rate,
        **steps,
    )
    report("fine-tune", classifier)
    if recipe.semi_supervised == "fixmatch" and unlabeled is not None:
        fixmatch(classifier, images, labels, unlabeled, recipe, **common)
        report("+ FixMatch", classifier)
    if recipe.semi_supervised == "self-training" and unlabeled is not None:
        if recipe.self_train_rounds:
            self_train(
                classifier,
                images,
                labels,
                unlabeled,
                rounds=recipe.self_train_rounds,
                steps=recipe.self_train_steps,
                max_shift=shift,
                **common,
            )
            report("+ self-training", classifier)
    return classifier
