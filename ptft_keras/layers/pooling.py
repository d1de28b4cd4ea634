"""`SequencePooling`: `(batch, seq, hidden)` + padding mask -> `(batch, hidden)`."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class SequencePooling(keras.layers.Layer):
    """`(batch, seq, hidden)` + padding mask `(batch, seq)` -> `(batch, hidden)`.

    Args:
        mode: `"first"`, `"mean"` (masked average of real tokens) or `"last"` (the last
            real token; assumes right padding, as `TextEncoder` produces).
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("first", "mean", "last"):
            raise ValueError(f"`mode` must be 'first', 'mean' or 'last', received {mode!r}.")
        self.mode = mode

    def call(self, hidden, padding_mask):
        mask = ops.cast(padding_mask, hidden.dtype)  # (batch, seq)
        if self.mode == "first":
            return hidden[:, 0]
        if self.mode == "mean":
            total = ops.sum(hidden * mask[:, :, None], axis=1)  # (batch, hidden)
            return total / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        last = ops.maximum(ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)  # (batch,)
        return ops.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]

    def compute_output_shape(self, hidden_shape, padding_mask_shape=None):
        return (hidden_shape[0], hidden_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
