"""Image classifier = pretrained encoder (backbone) + classification head (task).

    ae = build_conv_autoencoder(latent_dim=64, latent_activation=None)
    ae.compile(); ae.fit(unlabeled, epochs=40)
    clf = Classifier.from_pretrained(ae, num_classes=10)   # copies the encoder weights
    print(clf.transfer_report)                              # what moved where
    clf.head_layer.imprint(clf.encoder.predict(x_few), y_few)  # class-mean init
    clf.compile(optimizer="adam"); clf.fit(x_few, y_few)

The default head is a *cosine* classifier: L2-normalised features against L2-normalised
class weights, times a fixed scale (inverse temperature). It is scale-free in the
features, so a pretrained encoder's feature magnitude does not matter, and it can be
initialised from class-mean prototypes of the labelled features ("weight imprinting",
Qi et al. 2018), which is a good classifier before any gradient step. See
docs/images.md for the measurements behind these defaults.

The head and loss helpers live in `ptft_keras.models.heads`, shared with the text
classifier.
"""

import keras
from keras import ops

from ptft_keras.layers.cosine_logits import CosineLogits
from ptft_keras.models.heads import (
    LOSSES,
    build_classification_head,
    class_prototypes,
    classification_loss,
)
from ptft_keras.models.images import prepare_images
from ptft_keras.models.task import restore_compile
from ptft_keras.specs import ImageSpec, LabelMap


@keras.saving.register_keras_serializable(package="ptft_keras")
class Classifier(keras.Model):
    """encoder (images -> features) + head (features -> logits), on integer labels.

    Args:
        encoder: a Keras model named "encoder" (e.g. `Autoencoder.encoder`).
        num_classes: number of classes.
        head: "cosine" / "linear" (built by `build_classification_head` with
            `head_kwargs`) or a ready Keras model features -> (batch, num_classes).
        loss: "crossentropy" or "hinge"; the default loss of `compile()`.
        head_kwargs: extra arguments of `build_classification_head` (pooling, scale,
            hidden_units, dropout). They shape the head, which `get_config` stores whole.
        image_spec: the `ImageSpec` of the inputs (size, channels, scaling); default: the
            encoder's input shape with `"unit"` scaling. Stored with the model and used by
            `ptft_keras.export.export_image_classifier`.
        label_names: the class names in id order (default `"0"`, `"1"`, ...).
    Outputs are logits, (batch, num_classes).
    """

    def __init__(
        self,
        encoder,
        num_classes,
        head="cosine",
        loss="crossentropy",
        head_kwargs=None,
        image_spec=None,
        label_names=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}.")
        head_kwargs = dict(head_kwargs or {})
        # === Layers ===
        self.encoder = encoder
        if isinstance(head, str):
            feature_shape = tuple(encoder.output_shape[1:])
            head = build_classification_head(feature_shape, num_classes, kind=head, **head_kwargs)
        elif head_kwargs:
            raise ValueError("`head_kwargs` only applies when `head` is 'cosine' or 'linear'.")
        if tuple(head.output_shape[1:]) != (num_classes,):
            raise ValueError(
                f"The head must output (batch, {num_classes}), it outputs {head.output_shape}."
            )
        self.head = head
        # === Config ===
        self.num_classes = num_classes
        self.loss_name = loss
        self.head_kwargs = head_kwargs
        self.image_shape = tuple(encoder.input_shape[1:])
        self.image_spec = ImageSpec.from_config(image_spec) or default_image_spec(self.image_shape)
        if self.image_spec and self.image_spec.shape != _with_channel(self.image_shape):
            raise ValueError(
                f"image_spec {self.image_spec.describe()} does not match the encoder's input "
                f"shape {self.image_shape}."
            )
        self.label_names = LabelMap.for_classes(label_names, num_classes).names
        self.built = True  # encoder and head/decoder are built functional models
        self.transfer_report = None

    @property
    def head_layer(self):
        """The logits layer of the head (a `CosineLogits` or `Dense`)."""
        return self.head.get_layer("logits")

    def call(self, images, training=False):
        images = prepare_images(images, self.image_shape)  # (batch, *image_shape)
        features = self.encoder(images, training=training)  # (batch, *feature_shape)
        return self.head(features, training=training)  # (batch, num_classes)

    def imprint(self, images, labels, batch_size=256):
        """Set cosine-head weights to the class-mean prototypes of `images`' features.

        The prototypes are taken from what the logits layer sees (after pooling and any
        hidden layers), so imprinting works for every cosine head.
        """
        if not isinstance(self.head_layer, CosineLogits):
            raise ValueError(
                f"imprint() needs a cosine head; this head's logits layer is a "
                f"{type(self.head_layer).__name__}."
            )
        pre_logits = keras.Model(self.head.input, self.head_layer.input)
        images = prepare_images(ops.convert_to_tensor(images, "float32"), self.image_shape)
        features = self.encoder.predict(images, batch_size=batch_size, verbose=0)
        features = pre_logits.predict(features, batch_size=batch_size, verbose=0)  # (N, dim)
        self.head_layer.kernel.assign(class_prototypes(features, labels, self.num_classes))

    def compile(self, optimizer="adam", loss=None, metrics=("accuracy",), **kwargs):
        """Like `Model.compile`, defaulting to this classifier's loss and accuracy."""
        loss = loss or classification_loss(self.loss_name)
        super().compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []), **kwargs)

    def compile_from_config(self, config):
        restore_compile(self, config)  # `compile` above only adds defaults

    @classmethod
    def from_pretrained(cls, source, num_classes, head="cosine", loss="crossentropy", **kwargs):
        """A classifier whose encoder gets the weights of a pretrained encoder.

        `source`: an `Autoencoder`, a `Classifier`, an encoder model, or a path to a
        `.keras` file holding one of them. The encoder is re-built from the source's
        config (fresh weights), then every variable is copied with
        `ptft_keras.transfer.weights.transfer_weights` in strict mode; the report of
        what moved is kept in `classifier.transfer_report`.
        """
        from ptft_keras.transfer.weights import transfer_weights

        if isinstance(source, str):
            if not source.endswith(".keras"):
                raise ValueError(f"`source` path must be a `.keras` file, got {source!r}.")
            source = keras.saving.load_model(source, compile=False)
        source_encoder = getattr(source, "encoder", source)
        if not isinstance(source_encoder, keras.Model) or source_encoder.name != "encoder":
            raise ValueError(
                "`source` must be an Autoencoder/Classifier or a Keras model named 'encoder', "
                f"got {type(source).__name__} named {getattr(source, 'name', None)!r}."
            )
        encoder = keras.Model.from_config(source_encoder.get_config())
        spec = getattr(source, "image_spec", None)
        if spec is not None and "image_spec" not in kwargs:
            kwargs["image_spec"] = spec  # from an Autoencoder / Classifier
        classifier = cls(encoder, num_classes, head=head, loss=loss, **kwargs)
        classifier.transfer_report = transfer_weights(source_encoder, classifier.encoder)
        return classifier

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "head": keras.saving.serialize_keras_object(self.head),
            "loss": self.loss_name,
            "image_spec": self.image_spec.to_config() if self.image_spec else None,
            "label_names": list(self.label_names),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _with_channel(shape):
    return tuple(shape) if len(shape) == 3 else tuple(shape) + (1,)


def default_image_spec(image_shape):
    """`ImageSpec` of an encoder input shape `(H, W)` / `(H, W, C)`, values in [0, 1];
    None when the input is not an image (e.g. a feature vector)."""
    if len(image_shape) not in (2, 3):
        return None
    height, width, channels = _with_channel(image_shape)
    try:
        return ImageSpec(int(height), int(width), int(channels))
    except (TypeError, ValueError):
        return None
