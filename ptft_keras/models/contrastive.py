"""Augmentation-aware pretraining pieces: image augmentation, projection head, NT-Xent.

A plain (denoising) autoencoder learns to redraw pixels, so its code keeps *where* the
strokes are as much as *which digit* it is; with few labels, a classifier fine-tuned
with shift augmentation learns that invariance itself, and the pretraining stops
paying off (docs/images.md). A contrastive term (SimCLR, Chen et al. 2020)
makes the pretraining itself augmentation-aware: two random augmentations of the same
image must map close together and away from the other images of the batch.

    augmentation = image_augmentation(seed=0)           # rotate, zoom, shift; per image
    views = augmentation(ops.concatenate([x, x]), training=True)
    z = build_projection_head(64)(encoder(views))       # (2 * batch, 64)
    loss = nt_xent_loss(z, temperature=0.2)

`Autoencoder(..., contrastive_weight=1.0)` adds this term to the reconstruction loss.
The augmentation uses Keras' own random image layers (per-image transforms, every
backend); only the loss is written here, because Keras has no contrastive loss.
"""

import keras
from keras import ops


def image_augmentation(rotation=0.04, zoom=0.15, translation=0.12, colour=0.0, seed=None):
    """Random rotation (fraction of a full turn), zoom and shift (fraction of the side),
    then, with `colour > 0` (RGB images in [0, 1]), random colour changes.

    The defaults (about +-14 degrees, +-15% zoom, +-3 px shifts on 28x28) keep every
    MNIST digit recognisable. Active only with `training=True`; the borders fill with 0.

    `colour` (0..1) scales SimCLR's colour distortion (Chen et al. 2020, the strongest
    single augmentation in their ablation): brightness, contrast and saturation jitter
    up to `0.8 * colour`, a hue rotation of up to `+-colour / 2` of the colour wheel,
    greyscale with probability `0.2 * colour`, and inverted values with probability
    `0.5 * colour`. Two views of one image then differ in colour, so the contrastive
    term cannot match them by colour and has to match them by shape.
    """
    if not 0.0 <= colour <= 1.0:
        raise ValueError(f"`colour` must be in [0, 1], got {colour!r}.")
    seed = 0 if seed is None else seed
    layers = [
        keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed + 2),
        keras.layers.RandomTranslation(
            translation, translation, fill_mode="constant", seed=seed + 3
        ),
    ]
    if colour:
        jitter = 0.8 * colour
        layers += [
            keras.layers.RandomColorJitter(
                (0.0, 1.0),
                brightness_factor=jitter / 2,  # a shift of up to +-0.4 of the value range
                contrast_factor=jitter,
                saturation_factor=(max(0.0, 0.5 - jitter / 2), 0.5 + jitter / 2),
                hue_factor=colour,  # a hue rotation of up to +-colour/2 of the wheel
                seed=seed + 4,
            ),
            keras.layers.RandomGrayscale(0.2 * colour, seed=seed + 5),
            # a fixed probability: RandomInvert draws it per image from `factor`'s range
            keras.layers.RandomInvert((0.5 * colour, 0.5 * colour), (0.0, 1.0), seed=seed + 6),
        ]
    return keras.Sequential(layers, name="augmentation")


def build_projection_head(feature_dim, projection_dim=64, hidden_dim=256, name="projector"):
    """features (batch, feature_dim) -> (batch, projection_dim): the SimCLR MLP.

    The contrastive loss is applied to its output, not to the encoder's features, so
    the encoder keeps information that the loss itself would throw away.
    """
    features = keras.Input(shape=(feature_dim,), name="features")
    x = keras.layers.Dense(hidden_dim, activation="relu", name="hidden")(features)
    x = keras.layers.Dense(projection_dim, name="projection")(x)
    return keras.Model(features, x, name=name)


def nt_xent_loss(projections, temperature=0.2):
    """Normalised-temperature cross-entropy over 2 * n projections of n images.

    `projections[i]` and `projections[i + n]` are two views of image i: each must pick
    its partner out of the other 2n - 2 projections. Returns a scalar.
    """
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}.")
    z = ops.normalize(projections, axis=-1)  # (2n, dim)
    two_n = ops.shape(z)[0]
    n = two_n // 2
    logits = ops.matmul(z, ops.transpose(z)) / temperature  # (2n, 2n) cosine / T
    logits = logits - 1e9 * ops.eye(two_n, dtype=logits.dtype)  # never pick yourself
    partners = ops.concatenate([ops.arange(n, two_n), ops.arange(0, n)])  # (2n,)
    return ops.mean(
        keras.losses.sparse_categorical_crossentropy(partners, logits, from_logits=True)
    )
