"""Semi-supervised training: FixMatch (images), UDA (text), self-training, and the
consistency-training loop and batches the first two share.

    fixmatch(classifier, x, y, unlabeled, image_recipe)   # weak shift / StrongAugment views
    uda(text_classifier, ids, y, unlabeled_ids, text_recipe)   # TokenAugmentation view
    self_train(classifier, x, y, unlabeled, rounds=3)     # rounds of confident pseudo-labels
    train_consistency(classifier, x, y, unlabeled, weak, strong, steps=1000)  # the loop

`ConsistencyBatches` is a `keras.utils.PyDataset` (numpy, every backend): each item is
`({"labeled": (B, ...), "unlabeled": (mu*B, ...)}, labels (B,))`, the labeled batch drawn
with replacement (few labels: many passes), the unlabeled one walking through a fresh
permutation of the pool each pass, so the streams keep the ratio `mu` exactly and every
unlabeled input is seen once per pass. `prepare` maps a numpy batch to model inputs (for
token ids: `{"token_ids", "padding_mask"}`).

`train_consistency` wraps the classifier in a `ConsistencyTrainer`, compiles it with Adam
(cosine decay over the run; `ema` > 0 keeps an exponential moving average of the weights
that replaces them at the end, as FixMatch evaluates with), and fits `steps` steps as
epochs of `steps_per_epoch`. The classifier is trained in place and returned. The
recipes (`training/recipes/`) call these with their settings (`ImageRecipe.fixmatch_*`,
`TextRecipe.uda_*`); docs/semi_supervised.md has the measurements.
"""

import keras
import numpy as np

from ptft_keras.models.consistency import ConsistencyLogs, ConsistencyTrainer
from ptft_keras.training.batches import (
    ShiftedBatches,
    as_arrays,
    check_labelled,
    fit_steps,
    phase_callbacks,
)
from ptft_keras.training.optimizers import adamw
from ptft_keras.training.strategies import strategy_scope, xla_option
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
    with strategy_scope(strategy):
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


def fixmatch(
    classifier,
    images,
    labels,
    unlabeled,
    recipe,
    seed=0,
    steps_per_epoch=100,
    strategy=None,
    callbacks=None,
    verbose=0,
):
    """FixMatch on the unlabeled pool (read into memory) with the `recipe`'s settings (an
    `ImageRecipe`): weak view = random shifts of up to `recipe.shift_for(shape)`, strong
    view = `StrongAugment`, confident pseudo-labels (`fixmatch_threshold`), EMA weights.
    Returns the History."""
    from ptft_keras.layers.image_augmentation import StrongAugment

    images, labels = check_labelled(images, labels)
    unlabeled = np.asarray(as_arrays(unlabeled), "float32")
    spec = classifier.image_spec
    shape = images.shape[1:] if spec is None else spec.shape
    fraction = recipe.shift_for(shape) / min(shape[:2])
    low, high = value_range(spec, images)
    weak = keras.layers.RandomTranslation(
        fraction, fraction, fill_mode="constant", fill_value=low, seed=seed
    )
    strong = StrongAugment((low, high), strength=recipe.fixmatch_strength, seed=seed + 1)
    if images.ndim == 3:  # (N, H, W) grey: the augmentation layers want channels
        images, unlabeled = images[..., None], unlabeled[..., None]
    return train_consistency(
        classifier,
        images,
        labels,
        unlabeled,
        weak,
        strong,
        steps=recipe.fixmatch_steps,
        batch_size=recipe.batch_size,
        mu=recipe.fixmatch_mu,
        threshold=recipe.fixmatch_threshold,
        learning_rate=recipe.fixmatch_learning_rate,
        ema=recipe.fixmatch_ema,
        distribution_alignment=recipe.fixmatch_alignment,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        callbacks=phase_callbacks(callbacks, "fixmatch"),
        verbose=verbose,
    )


def value_range(spec, images):
    """`(low, high)` of model inputs: [0, 1] for unit scaling, else what spans the data."""
    if spec is None or spec.scaling == "unit":
        return 0.0, 1.0
    return float(np.min(images)), float(np.max(images))


def uda(model, ids, labels, unlabeled_ids, recipe, seed=0, strategy=None, callbacks=None,
        verbose=0):  # fmt: skip
    """UDA-style consistency training (Xie et al. 2019) of a fine-tuned text classifier,
    with the `recipe`'s settings (a `TextRecipe`).

    Each step: `recipe.batch_size` labeled texts and `uda_mu` times as many unlabeled
    ones; an unlabeled text whose prediction (clean text) reaches `uda_threshold` trains
    its augmented copy (`TokenAugmentation`: masking, random replacement, one masked
    span) towards that label. AdamW, warmup then cosine to 0 over `uda_steps`, peak
    `uda_lr`. Token ids are `(N, seq_len)` arrays (`encode_texts`). Returns the History.
    """
    from ptft_keras.data.tokenizer import CLS_ID, MASK_ID, PAD_ID, RESERVED_TOKENS, SEP_ID
    from ptft_keras.layers.token_augmentation import TokenAugmentation
    from ptft_keras.training.recipes.text import model_inputs

    strong = TokenAugmentation(
        vocabulary_size=model.backbone.vocabulary_size,
        mask_token_id=MASK_ID,
        special_ids=(PAD_ID, CLS_ID, SEP_ID),
        mask_rate=recipe.uda_mask_rate,
        replace_rate=recipe.uda_replace_rate,
        min_replacement_id=len(RESERVED_TOKENS),
        seed=seed,
    )
    with strategy_scope(strategy):
        optimizer = adamw(recipe.uda_lr, recipe.uda_steps)
    return train_consistency(
        model,
        np.asarray(ids, "int32"),
        np.asarray(labels),
        np.asarray(unlabeled_ids, "int32"),
        weak=None,
        strong=strong,
        steps=recipe.uda_steps,
        batch_size=recipe.batch_size,
        mu=recipe.uda_mu,
        threshold=recipe.uda_threshold,
        prepare=model_inputs,
        seed=seed,
        strategy=strategy,
        callbacks=callbacks,
        verbose=verbose,
        optimizer=optimizer,
        jit_compile=xla_option(True if recipe.xla else None),
    )


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
    repeat. The unlabeled pool is read into memory. Returns a list of {"round",
    "pseudo_labels"} dicts.
    """
    images, labels = check_labelled(images, labels)
    unlabeled_images = np.asarray(as_arrays(unlabeled_images), "float32")
    log = []
    for r in range(rounds):
        keep, pseudo = pseudo_label(classifier, unlabeled_images, threshold)
        repeat = max(1, len(keep) // max(1, len(labels)))
        x = np.concatenate([np.repeat(images, repeat, axis=0), unlabeled_images[keep]])
        y = np.concatenate([np.repeat(labels, repeat, axis=0), pseudo])
        set_trainable(classifier, "*")
        with strategy_scope(strategy):
            classifier.compile(optimizer=keras.optimizers.Adam(learning_rate))
        data_fn = lambda n, x=x, y=y, r=r: ShiftedBatches(
            x, y, batch_size, max_shift, seed + r + 1, steps=n
        )
        phase = f"self_train_{r + 1}"
        fit_steps(classifier, data_fn, steps, steps_per_epoch, callbacks, phase, verbose)
        log.append({"round": r + 1, "pseudo_labels": int(len(keep))})
    return log
