"""Classification heads and losses shared by the image and text classifiers.

- `build_classification_head(feature_shape, num_classes, kind="cosine"|"linear", ...)`:
  a functional head, features -> logits, with stable sublayer names.
- `classification_loss("crossentropy"|"hinge")` and `SparseCategoricalHinge`.
- `class_prototypes`: class-mean features, for imprinting a cosine head.
"""

import keras
from keras import ops

from ptft_keras.layers.cosine_logits import CosineLogits

HEAD_KINDS = ("cosine", "linear")
POOLINGS = ("flatten", "avg", "none")
LOSSES = ("crossentropy", "hinge")


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
