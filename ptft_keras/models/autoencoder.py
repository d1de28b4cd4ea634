"""Autoencoders for unsupervised pretraining on images of any size and channel count.

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
feature map is about as good random as trained (docs/images.md).

Images are float32 scaled as the model's `ImageSpec` says (`ptft_keras.specs`): in [0, 1]
(`"unit"`: sigmoid output, binary cross-entropy) or standardised per channel
(`"standard"`: linear output, mean squared error). Grey images may come as (batch, H, W)
or (batch, H, W, 1). `build_conv_autoencoder` takes any height and width from 8 up
(zero-padded to a multiple of the encoder's stride, and cropped back in the decoder).

An encoder whose first layer after its input is named `representation` (e.g.
`BackgroundDistance`, `build_conv_autoencoder(background_distance=True)`) turns the images
into another representation before its convolutions: the autoencoder corrupts and
reconstructs that representation, while classifiers and exports still take raw images.
"""

import math

import keras
from keras import ops
from keras.src.utils.tracking import DotNotTrackScope

from ptft_keras.layers.background_distance import BackgroundDistance
from ptft_keras.layers.noise import MaskingNoise
from ptft_keras.models.contrastive import (
    build_projection_head,
    image_augmentation,
    nt_xent_loss,
)
from ptft_keras.models.images import prepare_images
from ptft_keras.models.task import restore_compile
from ptft_keras.specs import ImageSpec

NOISE_KINDS = (None, "gaussian", "masking")
REPRESENTATION = "representation"  # the encoder layer whose output is reconstructed
RECONSTRUCTION_LOSSES = ("binary_crossentropy", "mse")


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
        image_spec: the `ImageSpec` (or its config dict) of the images; it travels to the
            classifiers built from this encoder and into their exports.
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
        image_spec=None,
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
        representation = _representation_layer(encoder)
        target_shape = tuple(
            (representation.output if representation else encoder.inputs[0]).shape[1:]
        )
        if tuple(decoder.output_shape[1:]) != target_shape:
            what = "representation" if representation else "input"
            raise ValueError(
                f"The decoder must output the encoder's {what} shape {target_shape}, "
                f"but it outputs {decoder.output_shape[1:]}."
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
        self.image_spec = ImageSpec.from_config(image_spec)
        self.representation = representation
        # The encoder from its representation on: the same layers and weights, so it is
        # not tracked a second time (saved weights stay under `encoder/`).
        with DotNotTrackScope():
            self.encoder_body = (
                keras.Model(representation.output, encoder.output, name="encoder_body")
                if representation
                else encoder
            )
        self.built = True  # encoder and head/decoder are built functional models

    def call(self, images, training=False):
        images = prepare_images(images, self.image_shape)  # (batch, *image_shape)
        if training and self.contrastive_weight:
            self.add_loss(self.contrastive_weight * self.contrastive_loss(images))
        inputs = self.represent(images)  # (batch, *target_shape)
        if self.noise_layer is not None:
            inputs = self.noise_layer(inputs, training=training)
        return self.reconstruct(inputs, training=training)  # (batch, *target_shape)

    def represent(self, images):
        """What the autoencoder corrupts and reconstructs: the images, or the encoder's
        `representation` of them."""
        return self.representation(images) if self.representation else images

    def reconstruct(self, inputs, training=False):
        """The reconstruction of `represent`'s output (clean or noised): encode, decode."""
        features = self.encoder_body(inputs, training=training)  # (batch, *feature_shape)
        return self.decoder(features, training=training)

    def contrastive_loss(self, images):
        """NT-Xent between two random augmentations of each image (clean, not noised),
        made from the `representation` when the encoder has one (so that the augmentation's
        zero-filled borders are background there, not black pixels of a colour image)."""
        inputs = self.represent(images)
        views = ops.concatenate([inputs, inputs], axis=0)  # (2 * batch, *target_shape)
        views = self.augmentation(views, training=True)
        features = self.encoder_body(views, training=True)  # (2 * batch, dim)
        return nt_xent_loss(self.projector(features, training=True), self.temperature)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Like `Model.compile`, with `loss` defaulting to `reconstruction_loss`."""
        super().compile(optimizer=optimizer, loss=loss or self.reconstruction_loss, **kwargs)

    def compile_from_config(self, config):
        restore_compile(self, config)  # `compile` above only adds defaults

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Unsupervised: with no target given, reconstruct the clean input.
        if y is None:
            y = self.represent(prepare_images(x, self.image_shape))
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
            "image_spec": self.image_spec.to_config() if self.image_spec else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "augmentation"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _representation_layer(encoder):
    """The encoder's `representation` layer, or None."""
    names = [layer.name for layer in encoder.layers]
    if REPRESENTATION not in names:
        return None
    if names.index(REPRESENTATION) != 1:
        raise ValueError(
            f"An encoder's `{REPRESENTATION}` layer must come right after its input; "
            f"its layers are {names}."
        )
    return encoder.get_layer(REPRESENTATION)


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


def default_filters(height, width):
    """Stride-2 stages until the smaller side is about 8 pixels or less, at least two
    (28 -> 7 and 32 -> 8 in 2 stages, 64 -> 8 in 3, 224 -> 7 in 5), widths 32, 64, 128,
    then 256 at most."""
    stages = max(2, math.ceil(math.log2(min(height, width) / 8)))
    return tuple(min(32 * 2**i, 256) for i in range(stages))


def build_conv_autoencoder(
    input_shape=(28, 28, 1),
    filters=None,
    latent_dim=None,
    latent_activation="relu",
    noise="masking",
    noise_rate=0.3,
    reconstruction_loss=None,
    seed=None,
    contrastive_weight=0.0,
    colour_augmentation=0.0,
    input_normalization=False,
    background_distance=False,
    image_spec=None,
):
    """Convolutional (denoising) autoencoder for images of any size and channel count.

    Args:
        input_shape: `(height, width, channels)`; ignored when `image_spec` is given.
        filters: one stride-2 3x3 conv per entry, each followed by a stride-1 3x3 conv;
            default `default_filters(height, width)`, `(32, 64)` for MNIST (28 -> 14 -> 7).
        latent_dim: None keeps the feature map as the encoder output; an int adds a
            `latent` Dense layer (a flat code).
        latent_activation: a linear `latent` (`None`) cannot have dead ReLU units.
        noise, noise_rate: the default masking noise (30% of pixels zeroed) makes it a
            denoising AE, which learns stroke-level features rather than an identity map.
        reconstruction_loss: default from the scaling: `"binary_crossentropy"` for
            `"unit"` images (sigmoid output), `"mse"` for `"standard"` (linear output).
        contrastive_weight: > 0 (needs `latent_dim`) adds the augmentation-aware term.
        colour_augmentation: 0..1, the colour distortion of the contrastive views
            (`image_augmentation(colour=...)`; RGB images in [0, 1] only).
        input_normalization: start the encoder with per-image, per-channel
            standardisation (`GroupNormalization(groups=-1)`, i.e. instance norm, no
            learned scale): what is left is where each channel is lighter or darker than
            its image's mean, not the image's overall colour and brightness.
        background_distance: start the encoder with `BackgroundDistance` (layer
            `representation`): each pixel's colour distance from the image's median
            colour, one channel, which the autoencoder then reconstructs. For shapes on
            plain backgrounds whose colours do not matter (colour digits: frozen probe 64%
            -> 84% at 10 labels a class); replaces `input_normalization`.
        image_spec: an `ImageSpec`: the input shape and scaling, stored with the model.

    A height or width not divisible by the total stride `2**len(filters)` is zero-padded
    at the bottom/right (`pad` layer) and the reconstruction cropped back (`crop`).
    """
    spec = ImageSpec.from_config(image_spec)
    input_shape = spec.shape if spec else tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < 8 or input_shape[2] < 1:
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with height and width >= 8, "
            f"got {input_shape}."
        )
    scaling = spec.scaling if spec else "unit"
    filters = tuple(filters) if filters else default_filters(*input_shape[:2])
    in_unit_range = scaling == "unit" or background_distance  # what is reconstructed
    if reconstruction_loss is None:
        reconstruction_loss = "binary_crossentropy" if in_unit_range else "mse"
    stride = 2 ** len(filters)
    pad = tuple((-side) % stride for side in input_shape[:2])  # (pad_h, pad_w)
    # Encoder: (batch, H, W, C) -> (batch, H/stride, W/stride, filters[-1]) [or (batch, latent)]
    if background_distance and input_normalization:
        raise ValueError("Choose one of background_distance and input_normalization.")
    images = keras.Input(shape=input_shape, name="images")
    x = images
    if background_distance:
        x = BackgroundDistance(name=REPRESENTATION)(x)  # (batch, H, W, 1)
    target_channels = x.shape[-1]
    if input_normalization:
        x = keras.layers.GroupNormalization(
            groups=-1, center=False, scale=False, name="input_norm"
        )(x)
    if any(pad):
        x = keras.layers.ZeroPadding2D(((0, pad[0]), (0, pad[1])), name="pad")(x)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, 2, "same", activation="relu", name=f"conv_{i + 1}a")(x)
        x = keras.layers.Conv2D(f, 3, 1, "same", activation="relu", name=f"conv_{i + 1}b")(x)
    map_shape = tuple(x.shape[1:])  # (H / stride, W / stride, filters[-1])
    if latent_dim:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(latent_dim, activation=latent_activation, name="latent")(x)
    encoder = keras.Model(images, x, name="encoder")
    # Decoder: features -> (batch, H, W, C)
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
    output_activation = "sigmoid" if in_unit_range else None
    y = keras.layers.Conv2D(
        target_channels, 3, 1, "same", activation=output_activation, name="pixels"
    )(y)
    if any(pad):
        y = keras.layers.Cropping2D(((0, pad[0]), (0, pad[1])), name="crop")(y)
    decoder = keras.Model(features, y, name="decoder")
    augmentation = None
    if colour_augmentation:
        if input_shape[-1] != 3 or scaling != "unit":
            raise ValueError(
                f"colour_augmentation={colour_augmentation} needs RGB images scaled to [0, 1] "
                f"(channels 3, scaling 'unit'); got shape {input_shape}, scaling {scaling!r}."
            )
        augmentation = image_augmentation(colour=colour_augmentation, seed=seed)
    return Autoencoder(
        encoder,
        decoder,
        noise,
        noise_rate,
        reconstruction_loss,
        seed,
        contrastive_weight=contrastive_weight,
        augmentation=augmentation,
        image_spec=spec,
        name="conv_autoencoder",
    )
