"""`ReverseTokens`: each text's tokens right to left, the frame kept: the input of a
classifier over a *backward* language model (ULMFiT's second direction).

    [CLS] t1 t2 ... tn [SEP] pad pad   ->   [CLS] tn ... t2 t1 [SEP] pad pad

A backward LM is pretrained on documents whose tokens were reversed before the same
`[CLS] ... [SEP]` framing (`packed_token_rows(reverse=True)`); this layer gives its
classifier the same view of a text inside the model, so the tokenizer, the training
data and the raw-string export stay those of a forward model.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class ReverseTokens(keras.layers.Layer):
    """`(batch, seq)` token ids + padding mask -> the ids with each row's tokens between
    its first and last real position reversed.

    Assumes right padding and one framing token at each end (`TextEncoder`'s
    `[CLS] ... [SEP]`); padding and the two frame tokens stay where they are.
    """

    def call(self, token_ids, padding_mask):
        length = ops.sum(ops.cast(padding_mask, "int32"), axis=1, keepdims=True)  # (batch, 1)
        position = ops.arange(ops.shape(token_ids)[1], dtype="int32")[None, :]  # (1, seq)
        inner = ops.logical_and(position >= 1, position <= length - 2)  # (batch, seq)
        source = ops.where(inner, length - 1 - position, position)  # (batch, seq)
        return ops.take_along_axis(token_ids, source, axis=1)

    def compute_output_spec(self, token_ids, padding_mask=None):
        return keras.KerasTensor(token_ids.shape, dtype=token_ids.dtype)  # ids stay ids
