"""Masked-LM head pieces: gather the selected positions, add a per-token output bias.

`MaskedLM` runs only the M selected positions through the vocabulary projection (M ~ 15%
of the sequence), as BERT and keras-hub's `MaskedLMHead` do.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class VocabularyBias(keras.layers.Layer):
    """Adds a learned per-token bias to logits `(..., vocab)` (BERT's output bias)."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")
        self.built = True

    def call(self, logits):
        return logits + ops.cast(self.bias, logits.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="ptft_keras")
class GatherPositions(keras.layers.Layer):
    """`(batch, seq, hidden)`, int `(batch, M)` -> `(batch, M, hidden)`."""

    def call(self, hidden, positions):
        positions = ops.cast(positions, "int32")[:, :, None]  # (batch, M, 1)
        positions = ops.broadcast_to(
            positions, (ops.shape(positions)[0], ops.shape(positions)[1], ops.shape(hidden)[-1])
        )
        return ops.take_along_axis(hidden, positions, axis=1)

    def compute_output_shape(self, hidden_shape, positions_shape):
        return (hidden_shape[0], positions_shape[1], hidden_shape[-1])
