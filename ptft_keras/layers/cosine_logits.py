"""`CosineLogits`: a cosine classifier layer (normalised features against normalised weights).

Scale-free in the features, so a pretrained encoder's feature magnitude does not matter,
and its weights can be initialised from class-mean prototypes ("weight imprinting", Qi et
al. 2018; `ptft_keras.models.heads.class_prototypes`).
"""

import keras
from keras import ops


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
        # Normalised in float32 (squares of float16 features overflow), returned in the
        # compute dtype, as `compute_output_shape` declares.
        features = ops.normalize(ops.cast(features, "float32"), axis=-1)
        kernel = ops.normalize(ops.cast(self.kernel, "float32"), axis=0)
        return ops.cast(self.scale * ops.matmul(features, kernel), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale}
