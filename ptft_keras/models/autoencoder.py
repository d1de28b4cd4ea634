"""Autoencoders for unsupervised pretraining on 28x28 images.

An `Autoencoder` is a backbone (the `encoder`, a named functional Keras model whose
weights later move into a `Classifier`) plus a reconstruction task (the `decoder`).
With `noise="gaussian"` or `noise="masking"` it is a *denoising* autoencoder: the
corruption is applied only in training, and the target is always the clean image.

    ae = build_conv_autoencoder(latent_dim=64, latent_activation=None)  # masking noise
    ae.compile(optimizer="adam")                 # loss defaults to reconstruction_loss
    ae.fit(images, epochs=40)                    # no labels: the target is the input
    features = ae.encoder.predict(images)        # (batch, 64)

`latent_dim=64, latent_activation=None` is what the MNIST recipe uses: frozen, that
compact code classifies far better than a random encoder's, while the default 7x7x64
feature map is about as good random as trained (README, section `mnist`).

Images are float in [0, 1], shaped (batch, 28, 28) or (batch, 28, 28, 1); the model
accepts either and reshapes to what its encoder expects.
"""

import keras
from keras import ops

from ptft_keras.models.compile_config import restore_compile
from ptft_keras.models.contrastive import (
    build_projection_head,
    image_augmentation,
    nt_xent_loss,
)

NOISE_KINDS = (None, "gaussian", "masking")
RECONSTRUCTION_LOSSES = ("binary_crossentropy", "mse")


def prepare_images(images, expected_shape):
    """Reshape `(batch, 28, 28)` <-> `(batch, 28, 28, 1)` to `expected_shape`.

    Raises a ValueError naming both shapes when the images cannot match.
    """
    expected = tuple(expected_shape)
    got = tuple(images.shape[1:])
    if got == expected:
        return images
    squeeze = lambda s: tuple(d for d in s if d != 1)  # (28, 28, 1) ~ (28, 28)
    if len(got) in (2, 3) and squeeze(got) == squeeze(expected) and None not in got:
        return ops.reshape(images, (-1,) + expected)
    raise ValueError(
        f"Expected images of shape (batch, {', '.join(map(str, expected))}) "
        f"(a trailing channel of 1 is optional), got shape {tuple(images.shape)}."
    )


@keras.saving.register_keras_serializable(package="ptft_keras")
class MaskingNoise(keras.layers.Layer):
    """Zeroes each input value with probability `rate`, only in training.

    Unlike `keras.layers.Dropout` it does not rescale the kept values by 1/(1-rate):
    a denoising autoencoder must see corrupted *pixels*, not rescaled ones.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), got {rate}.")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) >= self.rate
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="ptft_keras")
class Autoencoder(keras.Model):
    """Encoder + decoder trained to reconstruct clean images from (noisy) inputs.

    Args:
        encoder: a Keras model named "encoder", image -> features.
        decoder: a Keras model, features -> image with the encoder's input shape.
        noise: None, "gaussian" (add N(0, noise_rate^2)) or "masking" (zero each pixel
            with probability noise_rate). Applied in training only.
        noise_rate: stddev (gaussian) or drop probability (masking).
        reconstruction_loss: "binary_crossentropy" (for [0, 1] pixels) or "mse"; the
            default loss of `compile()`.
        contrastive_weight: > 0 adds `contrastive_weight * NT-Xent` over two random
            augmentations of each training image (`ptft_keras.models.contrastive`):
            an augmentation-aware autoencoder. Needs a flat (batch, dim) encoder output.
        temperature, projection_dim: of the contrastive term and its projection head.
        augmentation: a Keras layer making the views; default `image_augmentation(seed)`.
    """

    def __init__(
        self,
        encoder,
        decoder,
        noise=None,
        noise_rate=0.0,
        reconstruction_loss="binary_crossentropy",
        seed=None,
        contrastive_weight=0.0,
        temperature=0.2,
        projection_dim=64,
        augmentation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if noise not in NOISE_KINDS:
            raise ValueError(f"`noise` must be one of {NOISE_KINDS}, got {noise!r}.")
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"`reconstruction_loss` must be one of {RECONSTRUCTION_LOSSES}, "
                f"got {reconstruction_loss!r}."
            )
        if noise is not None and noise_rate <= 0:
            raise ValueError(f"noise={noise!r} needs noise_rate > 0, got {noise_rate}.")
        if tuple(decoder.output_shape[1:]) != tuple(encoder.input_shape[1:]):
            raise ValueError(
                f"The decoder must output the encoder's input shape "
                f"{encoder.input_shape[1:]}, but it outputs {decoder.output_shape[1:]}."
            )
        if contrastive_weight < 0:
            raise ValueError(f"`contrastive_weight` must be >= 0, got {contrastive_weight}.")
        if contrastive_weight and len(encoder.output_shape) != 2:
            raise ValueError(
                "contrastive_weight > 0 needs an encoder with a flat (batch, dim) output, "
                f"got output shape {encoder.output_shape} (set `latent_dim`)."
            )
        # === Layers ===
        self.encoder = encoder
        self.decoder = decoder
        if noise == "gaussian":
            self.noise_layer = keras.layers.GaussianNoise(noise_rate, seed=seed, name="noise")
        elif noise == "masking":
            self.noise_layer = MaskingNoise(noise_rate, seed=seed, name="noise")
        else:
            self.noise_layer = None
        self.augmentation = self.projector = None
        if contrastive_weight:
            self.augmentation = augmentation or image_augmentation(seed=seed)
            self.projector = build_projection_head(encoder.output_shape[-1], projection_dim)
        # === Config ===
        self.noise = noise
        self.noise_rate = noise_rate
        self.reconstruction_loss = reconstruction_loss
        self.seed = seed
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.image_shape = tuple(encoder.input_shape[1:])
        self.built = True  # encoder and head/decoder are built functional models

    def call(self, images, training=False):
        images = prepare_images(images, self.image_shape)  # (batch, *image_shape)
        if training and self.contrastive_weight:
            self.add_loss(self.contrastive_weight * self.contrastive_loss(images))
        if self.noise_layer is not None:
            images = self.noise_layer(images, training=training)
        features = self.encoder(images, training=training)  # (batch, *feature_shape)
        return self.decoder(features, training=training)  # (batch, *image_shape)

    def contrastive_loss(self, images):
        """NT-Xent between two random augmentations of each image (clean, not noised)."""
        views = ops.concatenate([images, images], axis=0)  # (2 * batch, *image_shape)
        views = self.augmentation(views, training=True)
        features = self.encoder(views, training=True)  # (2 * batch, dim)
        return nt_xent_loss(self.projector(features, training=True), self.temperature)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Like `Model.compile`, with `loss` defaulting to `reconstruction_loss`."""
        super().compile(optimizer=optimizer, loss=loss or self.reconstruction_loss, **kwargs)

    def compile_from_config(self, config):
        restore_compile(self, config)  # `compile` above only adds defaults

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Unsupervised: with no target given, reconstruct the clean input.
        if y is None:
            y = prepare_images(x, self.image_shape)
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "noise": self.noise,
            "noise_rate": self.noise_rate,
            "reconstruction_loss": self.reconstruction_loss,
            "seed": self.seed,
            "contrastive_weight": self.contrastive_weight,
            "temperature": self.temperature,
            "projection_dim": self.projection_dim,
            "augmentation": (
                keras.saving.serialize_keras_object(self.augmentation)
                if self.augmentation is not None
                else None
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "augmentation"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_dense_autoencoder(
    input_shape=(28, 28),
    hidden_units=(),
    latent_dim=32,
    activation="relu",
    noise=None,
    noise_rate=0.0,
    reconstruction_loss="binary_crossentropy",
    seed=None,
):
    """Dense autoencoder; defaults give the classic 784 -> 32 (relu) -> 784 (sigmoid).

    `hidden_units` adds symmetric hidden layers, e.g. (256,) gives 784-256-32-256-784.
    """
    input_shape = tuple(input_shape)
    num_pixels = int(ops.prod(input_shape))
    # Encoder: image -> (batch, latent_dim)
    images = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Flatten(name="flatten")(images)  # (batch, 784)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i + 1}")(x)
    x = keras.layers.Dense(latent_dim, activation=activation, name="latent")(x)
    encoder = keras.Model(images, x, name="encoder")
    # Decoder: (batch, latent_dim) -> image
    features = keras.Input(shape=(latent_dim,), name="features")
    y = features
    for i, units in enumerate(reversed(hidden_units)):
        y = keras.layers.Dense(units, activation=activation, name=f"dense_{i + 1}")(y)
    y = keras.layers.Dense(num_pixels, activation="sigmoid", name="pixels")(y)  # (batch, 784)
    y = keras.layers.Reshape(input_shape, name="reshape")(y)
    decoder = keras.Model(features, y, name="decoder")
    return Autoencoder(
        encoder, decoder, noise, noise_rate, reconstruction_loss, seed, name="dense_autoencoder"
    )


def build_conv_autoencoder(
    input_shape=(28, 28, 1),
    filters=(32, 64),
    latent_dim=None,
    latent_activation="relu",
    noise="masking",
    noise_rate=0.3,
    reconstruction_loss="binary_crossentropy",
    seed=None,
    contrastive_weight=0.0,
):
    """Convolutional (denoising) autoencoder for 28x28x1 images.

    Encoder: one stride-2 3x3 conv per entry of `filters` (28 -> 14 -> 7), each
    followed by a stride-1 3x3 conv. Its output is the (batch, 7, 7, filters[-1])
    feature map, or a (batch, latent_dim) vector when `latent_dim` is set.
    The default masking noise (30% of pixels zeroed) makes it a denoising AE, which
    learns stroke-level features rather than an identity map. A linear `latent`
    (`latent_activation=None`) cannot have dead ReLU units. `contrastive_weight` > 0
    (needs `latent_dim`) adds the augmentation-aware term of `Autoencoder`.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[0] % 2 ** len(filters) != 0:
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with height divisible by "
            f"2**len(filters)={2 ** len(filters)}, got {input_shape}."
        )
    # Encoder: (batch, 28, 28, 1) -> (batch, 7, 7, filters[-1]) [or (batch, latent_dim)]
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, 2, "same", activation="relu", name=f"conv_{i + 1}a")(x)
        x = keras.layers.Conv2D(f, 3, 1, "same", activation="relu", name=f"conv_{i + 1}b")(x)
    map_shape = tuple(x.shape[1:])  # (7, 7, filters[-1])
    if latent_dim:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(latent_dim, activation=latent_activation, name="latent")(x)
    encoder = keras.Model(images, x, name="encoder")
    # Decoder: features -> (batch, 28, 28, channels)
    features = keras.Input(shape=tuple(x.shape[1:]), name="features")
    y = features
    if latent_dim:
        size = int(ops.prod(map_shape))
        y = keras.layers.Dense(size, activation="relu", name="expand")(y)
        y = keras.layers.Reshape(map_shape, name="reshape")(y)
    for i, f in reversed(list(enumerate(filters))):
        y = keras.layers.Conv2DTranspose(
            f, 3, 2, "same", activation="relu", name=f"deconv_{i + 1}"
        )(y)
    y = keras.layers.Conv2D(input_shape[-1], 3, 1, "same", activation="sigmoid", name="pixels")(y)
    decoder = keras.Model(features, y, name="decoder")
    return Autoencoder(
        encoder,
        decoder,
        noise,
        noise_rate,
        reconstruction_loss,
        seed,
        contrastive_weight=contrastive_weight,
        name="conv_autoencoder",
    )
