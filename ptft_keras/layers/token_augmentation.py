"""`TokenAugmentation`: a strongly augmented view of a token sequence, for consistency
training on text (UDA, Xie et al. 2019; FixMatch's strong view for text).

On each real, non-special token, independently: with `mask_rate` it becomes `[MASK]`,
with `replace_rate` a random id from the vocabulary (ids >= `min_replacement_id`, so
reserved tokens are never drawn); then one contiguous span per row of
up to `span_fraction` of its real length becomes `[MASK]` (span masking, SpanBERT-style).
Padding, `[CLS]` and `[SEP]` are never touched, so pooling and the padding mask stay
valid. Only active with `training=True`; `keras.ops` and `keras.random` only (every
backend); a `SeedGenerator` makes it reproducible and resumable.

    augment = TokenAugmentation(vocabulary_size=8000, mask_token_id=2, special_ids=(0, 3, 4))
    strong = augment({"token_ids": ids, "padding_mask": mask}, training=True)
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class TokenAugmentation(keras.layers.Layer):
    """Random token masking, replacement and span masking (module docstring)."""

    def __init__(
        self,
        vocabulary_size,
        mask_token_id,
        special_ids=(),
        mask_rate=0.1,
        replace_rate=0.1,
        span_fraction=0.2,
        min_replacement_id=0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("mask_rate", mask_rate),
            ("replace_rate", replace_rate),
            ("span_fraction", span_fraction),
        ):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
        if mask_rate + replace_rate >= 1.0:
            raise ValueError(
                f"mask_rate + replace_rate must be < 1, got {mask_rate} + {replace_rate}."
            )
        self.vocabulary_size = int(vocabulary_size)
        self.mask_token_id = int(mask_token_id)
        self.special_ids = tuple(int(i) for i in special_ids)
        self.mask_rate, self.replace_rate = float(mask_rate), float(replace_rate)
        self.span_fraction = float(span_fraction)
        if not 0 <= int(min_replacement_id) < self.vocabulary_size:
            raise ValueError(
                f"`min_replacement_id` must be in [0, {self.vocabulary_size}), "
                f"got {min_replacement_id!r}."
            )
        self.min_replacement_id = int(min_replacement_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        ids = ops.cast(inputs["token_ids"], "int32")  # (batch, seq)
        real = ops.cast(inputs["padding_mask"], "bool")
        editable = real
        for special in (self.mask_token_id, *self.special_ids):
            editable = ops.logical_and(editable, ops.not_equal(ids, special))
        shape = ops.shape(ids)
        draw = keras.random.uniform(shape, seed=self.seed_generator)
        random_ids = keras.random.randint(
            shape, self.min_replacement_id, self.vocabulary_size, seed=self.seed_generator
        )
        masked = ops.logical_and(editable, draw < self.mask_rate)
        replaced = ops.logical_and(
            editable,
            ops.logical_and(draw >= self.mask_rate, draw < self.mask_rate + self.replace_rate),
        )
        # One span per row: start uniform over the sequence, length up to span_fraction of
        # the row's real length.
        length = ops.sum(ops.cast(real, "float32"), axis=1, keepdims=True)  # (batch, 1)
        span = ops.floor(
            keras.random.uniform((shape[0], 1), seed=self.seed_generator)
            * self.span_fraction
            * length
        )
        start = ops.floor(keras.random.uniform((shape[0], 1), seed=self.seed_generator) * length)
        position = ops.cast(ops.arange(shape[1])[None, :], "float32")
        in_span = ops.logical_and(position >= start, position < start + span)
        masked = ops.logical_or(masked, ops.logical_and(editable, in_span))
        ids = ops.where(replaced, random_ids, ids)
        ids = ops.where(masked, self.mask_token_id, ids)
        return {**inputs, "token_ids": ids}

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "mask_token_id": self.mask_token_id,
            "special_ids": list(self.special_ids),
            "mask_rate": self.mask_rate,
            "replace_rate": self.replace_rate,
            "span_fraction": self.span_fraction,
            "min_replacement_id": self.min_replacement_id,
            "seed": self.seed,
        }
