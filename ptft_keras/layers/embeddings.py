"""Learned absolute position embedding (GPT-2 / BERT style).

Why not `keras_hub.layers.PositionEmbedding`: it does the same thing, but importing
keras_hub imports TensorFlow and tensorflow-text (checked: `import keras_hub` puts
`tensorflow` in `sys.modules` even with `KERAS_BACKEND=jax`), and our layer and model
modules must not pull TensorFlow in (a JAX GPU run would also pay TF's start-up and
device probing). The token embedding needs no copy: core Keras ships
`keras.layers.ReversibleEmbedding` (tied input/output embedding), which we use directly.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class PositionEmbedding(keras.layers.Layer):
    """Adds nothing itself: returns the learned embeddings of positions `0..seq-1`.

    Args:
        sequence_length: the largest sequence length the layer supports.
        initializer: initializer of the `(sequence_length, hidden)` table.

    Call arguments:
        inputs: `(batch, seq, hidden)`; only its shape is used.

    Returns:
        `(batch, seq, hidden)` position embeddings, to be added to the token embeddings.
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
            raise ValueError(
                f"`sequence_length` must be a positive int, received {sequence_length!r}."
            )
        if sequence_length <= 0:
            raise ValueError(
                f"`sequence_length` must be a positive int, received {sequence_length}."
            )
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
        )
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)  # (batch, seq, hidden)
        table = ops.convert_to_tensor(self.embeddings)
        positions = ops.slice(table, (0, 0), (shape[-2], shape[-1]))  # (seq, hidden)
        return ops.broadcast_to(ops.cast(positions, inputs.dtype), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
