"""Every public layer through Keras' own layer test (`keras.src.testing.TestCase`).

Beside the project's harness (tests/harness.py): Keras checks serialization, symbolic
calls, a training step and, with `dtype="mixed_float16"`, that each output has the dtype
`compute_output_spec` declares and that float weights stay float32. Keras-hub runs its own
layers through the same test.
"""

import keras
import numpy as np
from keras.src.testing import TestCase

from ptft_keras import layers

RNG = np.random.default_rng(0)
HIDDEN = RNG.normal(size=(2, 6, 8)).astype("float32")  # (batch, seq, hidden)
MASK = np.array([[1] * 6, [1] * 3 + [0] * 3], "int32")
IDS = np.array([[3, 10, 11, 12, 4, 0], [3, 7, 4, 0, 0, 0]], "int32")
IMAGES = RNG.uniform(size=(2, 12, 12, 3)).astype("float32")


class KerasLayerTest(TestCase):
    def assert_declared_dtypes(self, layer_cls, init_kwargs, *inputs, **call_kwargs):
        """Keras' mixed-precision check for a layer called with several arguments: under
        `mixed_float16` each output has the dtype `compute_output_spec` declares."""
        layer = layer_cls(**init_kwargs, dtype="mixed_float16")
        specs = keras.tree.map_structure(
            lambda x: keras.KerasTensor(
                x.shape, layer.compute_dtype if x.dtype.kind == "f" else str(x.dtype)
            ),
            inputs,
        )
        outputs = layer(*inputs, **call_kwargs)
        declared = layer.compute_output_spec(*specs, **call_kwargs)
        flat = zip(keras.tree.flatten(outputs), keras.tree.flatten(declared), strict=True)
        for tensor, spec in flat:
            self.assertEqual(keras.backend.standardize_dtype(tensor.dtype), spec.dtype)

    def test_background_distance(self):
        self.run_layer_test(
            layers.BackgroundDistance,
            {"epsilon": 1e-6},
            input_data=IMAGES,
            expected_output_shape=(2, 12, 12, 1),
            run_training_check=False,  # no weights
        )

    def test_bottleneck_adapter(self):
        self.run_layer_test(
            layers.BottleneckAdapter,
            {"bottleneck_dim": 4, "activation": "relu", "dropout": 0.1},
            input_data=HIDDEN,
            expected_output_shape=(2, 6, 8),
            expected_num_trainable_weights=4,
        )

    def test_cosine_logits(self):
        self.run_layer_test(
            layers.CosineLogits,
            {"num_classes": 3, "scale": 5.0},
            input_data=HIDDEN[:, 0],
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=1,
        )

    def test_position_embedding(self):
        self.run_layer_test(
            layers.PositionEmbedding,
            {"sequence_length": 10},
            input_data=HIDDEN,
            expected_output_shape=(2, 6, 8),
            expected_num_trainable_weights=1,
        )

    def test_strong_augment(self):
        for training in (False, True):
            self.run_layer_test(
                layers.StrongAugment,
                {"seed": 1},
                input_data=IMAGES,
                call_kwargs={"training": training},
                expected_output_shape=(2, 12, 12, 3),
                expected_num_trainable_weights=0,
                run_training_check=False,  # no weights to train
            )

    def test_gather_positions(self):
        positions = np.array([[0, 2], [5, 1]], "int32")
        self.run_layer_test(
            layers.GatherPositions,
            {},
            input_data=HIDDEN,
            call_kwargs={"positions": positions},
            expected_output_shape=(2, 2, 8),
            expected_num_trainable_weights=0,
            run_training_check=False,  # Keras' step would call it without `positions`
            run_mixed_precision_check=False,  # ... and so would its spec check: below
        )
        self.assert_declared_dtypes(layers.GatherPositions, {}, HIDDEN, positions)

    def test_vocabulary_bias(self):
        self.run_layer_test(
            layers.VocabularyBias,
            {},
            input_data=HIDDEN,
            expected_output_shape=(2, 6, 8),
            expected_num_trainable_weights=1,
        )

    def test_masking_noise(self):
        for training in (False, True):
            self.run_layer_test(
                layers.MaskingNoise,
                {"rate": 0.3, "seed": 1},
                input_data=HIDDEN,
                call_kwargs={"training": training},
                expected_output_shape=(2, 6, 8),
                expected_num_seed_generators=1,
                run_training_check=False,
            )

    def test_sequence_pooling(self):
        for mode in ("first", "mean", "last"):
            self.run_layer_test(
                layers.SequencePooling,
                {"mode": mode},
                input_data=HIDDEN,
                call_kwargs={"padding_mask": MASK},
                expected_output_shape=(2, 8),
                expected_num_trainable_weights=0,
                run_training_check=False,  # Keras' step would call it without the mask
                run_mixed_precision_check=False,  # ... and so would its spec check: below
            )
            self.assert_declared_dtypes(layers.SequencePooling, {"mode": mode}, HIDDEN, MASK)

    def test_reverse_tokens(self):
        self.run_layer_test(
            layers.ReverseTokens,
            {},
            input_data=IDS,
            call_kwargs={"padding_mask": MASK},
            expected_output_shape=(2, 6),
            expected_output_dtype="int32",
            expected_num_trainable_weights=0,
            run_training_check=False,  # integer ids: nothing to differentiate
        )
        self.assert_declared_dtypes(layers.ReverseTokens, {}, IDS, MASK)

    def test_token_augmentation(self):
        # One dict argument, which Keras' test would spread into keyword arguments: the
        # serialization and dtype checks here, the behaviour in test_augmentation.py.
        kwargs = {"vocabulary_size": 20, "mask_token_id": 2, "special_ids": (3, 4), "seed": 1}
        inputs = {"token_ids": IDS, "padding_mask": MASK}
        for training in (False, True):
            self.assert_declared_dtypes(layers.TokenAugmentation, kwargs, inputs, training=training)
        self.run_class_serialization_test(layers.TokenAugmentation(**kwargs))

    def test_fused_self_attention(self):
        for causal in (True, False):
            self.run_layer_test(
                layers.FusedSelfAttention,
                {"num_heads": 2, "causal": causal},
                input_data=HIDDEN,
                call_kwargs={"padding_mask": MASK},
                expected_output_shape=(2, 6, 8),
            )

    def test_feed_forward(self):
        self.run_layer_test(
            layers.FeedForward,
            {"intermediate_dim": 16},
            input_data=HIDDEN,
            expected_output_shape=(2, 6, 8),
        )

    def test_transformer_block(self):
        self.run_layer_test(
            layers.TransformerBlock,
            {"num_heads": 2, "intermediate_dim": 16, "dropout": 0.1, "adapter_dim": 4},
            input_data=HIDDEN,
            call_kwargs={"padding_mask": MASK},
            expected_output_shape=(2, 6, 8),
        )
