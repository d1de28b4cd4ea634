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
Qi et al. 2018), which is a good classifier before any gradient step. See the README
section `mnist` for the measurements behind these defaults.

The head and loss helpers (`build_classification_head`, `classification_loss`) are
shared with the text classifier.
"""

import keras
from keras import ops

from ptft_keras.models.autoencoder import prepare_images
from ptft_keras.models.compile_config import restore_compile

HEAD_KINDS = ("cosine", "linear")
POOLINGS = ("flatten", "avg", "none")
LOSSES = ("crossentropy", "hinge")


@keras.saving.register_keras_serializable(package="ptft_keras")
class CosineLogits(keras.layers.Layer):
    """logits = scale * cos(features, class_weight), shape (batch, num_classes)."""

    def __init__(self, num_classes, scale=10.0, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2, got {num_classes}.")
        if scale <= 0:
            raise ValueError(f"`scale` must be > 0, got {scale}.")
        self.num_classes = num_classes
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.num_classes), initializer="glorot_uniform", name="kernel"
        )

    def call(self, features):  # (batch, dim)
        cosine = ops.matmul(ops.normalize(features, axis=-1), ops.normalize(self.kernel, axis=0))
        return self.scale * cosine  # (batch, num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale}


def class_prototypes(features, labels, num_classes):
    """Mean of the L2-normalised features of each class, as a (dim, num_classes) array."""
    features = ops.convert_to_numpy(features).reshape(len(labels), -1)
    labels = ops.convert_to_numpy(labels).reshape(-1).astype("int64")
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"Imprinting needs >= 1 example of every class; missing: {missing}.")
    normed = ops.convert_to_numpy(ops.normalize(features, axis=-1))
    return ops.convert_to_numpy(
        ops.stack([normed[labels == c].mean(axis=0) for c in range(num_classes)], axis=1)
    )


def build_classification_head(
    feature_shape,
    num_classes,
    kind="cosine",
    pooling="flatten",
    hidden_units=(),
    dropout=0.0,
    scale=10.0,
    name="head",
):
    """Functional head: features -> logits (batch, num_classes).

    Args:
        feature_shape: encoder output shape without batch, e.g. (7, 7, 64) or (32,).
        kind: "cosine" (normalised features and weights, times `scale`) or "linear"
            (a Dense layer with bias).
        pooling: for feature maps / sequences: "flatten" (keeps spatial layout, what
            digits need), "avg" (global average over all but the last axis) or "none".
        hidden_units: optional Dense(relu) layers before the logits.
        dropout: dropout rate before the logits layer.
    Sublayer names are stable: "pool", "hidden_{i}", "dropout", "logits".
    """
    if kind not in HEAD_KINDS:
        raise ValueError(f"`kind` must be one of {HEAD_KINDS}, got {kind!r}.")
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
    features = keras.Input(shape=tuple(feature_shape), name="features")
    x = features
    if len(feature_shape) > 1 and pooling == "flatten":
        x = keras.layers.Flatten(name="pool")(x)  # (batch, prod(feature_shape))
    elif len(feature_shape) > 1 and pooling == "avg":
        pool = {2: keras.layers.GlobalAveragePooling1D, 3: keras.layers.GlobalAveragePooling2D}
        if len(feature_shape) not in pool:
            raise ValueError(f"pooling='avg' needs rank-2 or -3 features, got {feature_shape}.")
        x = pool[len(feature_shape)](name="pool")(x)  # (batch, channels)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i + 1}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    if kind == "cosine":
        logits = CosineLogits(num_classes, scale=scale, name="logits")(x)
    else:
        logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(features, logits, name=name)  # (batch, num_classes)


@keras.saving.register_keras_serializable(package="ptft_keras")
class SparseCategoricalHinge(keras.losses.Loss):
    """Multi-class (Crammer-Singer) hinge on integer labels and raw scores.

    Keras' `CategoricalHinge` computes exactly max(0, 1 + max_wrong - correct) but wants
    one-hot targets; this wrapper one-hots integer labels so the classifier can take the
    same `(images, int_labels)` data with either loss.
    """

    def __init__(self, name="sparse_categorical_hinge", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        y_true = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), num_classes)
        return keras.losses.categorical_hinge(y_true, y_pred)


def classification_loss(name):
    """`"crossentropy"` or `"hinge"` -> a Keras loss on integer labels and logits."""
    if name == "crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "hinge":
        return SparseCategoricalHinge()
    raise ValueError(f"Unknown classification loss {name!r}; expected one of {LOSSES}.")


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
    Outputs are logits, (batch, num_classes).
    """

    def __init__(
        self, encoder, num_classes, head="cosine", loss="crossentropy", head_kwargs=None, **kwargs
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
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
