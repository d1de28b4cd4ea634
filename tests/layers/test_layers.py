"""The small reusable layers through the shared harness, plus what each must do."""

import keras
import numpy as np
import pytest

from ptft_keras.layers import (
    BackgroundDistance,
    BottleneckAdapter,
    CosineLogits,
    GatherPositions,
    MaskingNoise,
    PositionEmbedding,
    ReverseTokens,
    SequencePooling,
    VocabularyBias,
)
from tests.harness import gradient_wrt_input, run_layer_test

RNG = np.random.default_rng(0)
HIDDEN = RNG.normal(size=(4, 6, 8)).astype("float32")  # (batch, seq, hidden)
MASK = np.array([[1] * 6, [1] * 3 + [0] * 3, [1] + [0] * 5, [1] * 5 + [0]], "int32")


def test_cosine_logits(tmp_path):
    layer = run_layer_test(
        CosineLogits, {"num_classes": 3, "scale": 5.0}, HIDDEN[:, 0], (4, 3), tmp_path
    )
    logits = keras.ops.convert_to_numpy(layer(HIDDEN[:, 0]))
    assert np.abs(logits).max() <= 5.0 + 1e-5  # scale * cosine
    # Scale-free in the features.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(3 * HIDDEN[:, 0])), logits, atol=1e-5
    )
    with pytest.raises(ValueError, match="num_classes"):
        CosineLogits(1)


def test_background_distance_keeps_the_shape_and_drops_the_colours(tmp_path):
    # The same "L" stroke in two colour schemes: red on blue and white on black.
    stroke = np.zeros((9, 9, 1), "float32")
    stroke[1:8, 2] = stroke[7, 2:7] = 1.0
    schemes = [((0.9, 0.1, 0.1), (0.1, 0.2, 0.8)), ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))]
    images = np.stack(
        [stroke * np.array(ink) + (1 - stroke) * np.array(back) for ink, back in schemes]
    ).astype("float32")  # (2, 9, 9, 3)
    layer = run_layer_test(BackgroundDistance, {}, images, (2, 9, 9, 1), tmp_path,
                           trainable=False)  # fmt: skip
    maps = keras.ops.convert_to_numpy(layer(images))
    np.testing.assert_allclose(maps[0], stroke, atol=1e-5)  # 1 on the ink, 0 elsewhere
    np.testing.assert_allclose(maps[1], stroke, atol=1e-5)  # whatever the colours
    noisy = np.random.default_rng(0).random((3, 10, 7, 3)).astype("float32")  # even H * W
    background = np.median(noisy.reshape(3, -1, 3), axis=1)[:, None, None, :]
    distance = np.linalg.norm(noisy - background, axis=-1, keepdims=True)
    reference = distance / distance.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(noisy)), reference, atol=1e-5)
    any_size = keras.Model(inputs := keras.Input((None, None, 3)), BackgroundDistance()(inputs))
    np.testing.assert_allclose(any_size.predict(noisy, verbose=0), reference, atol=1e-5)
    flat = np.full((1, 9, 9, 3), 0.4, "float32")  # no ink at all: zeros, not a division by 0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(flat)), 0.0, atol=1e-5)
    grads = gradient_wrt_input(layer, images)
    assert np.isfinite(grads).all()  # finite where a pixel equals its background
    with pytest.raises(ValueError, match="epsilon"):
        BackgroundDistance(epsilon=0)


def test_masking_noise(tmp_path):
    x = np.ones((4, 50, 50), "float32")
    layer = run_layer_test(MaskingNoise, {"rate": 0.3, "seed": 1}, x, (4, 50, 50), tmp_path,
                           trainable=False, output_dtype=None)  # fmt: skip
    noisy = keras.ops.convert_to_numpy(layer(x, training=True))
    assert set(np.unique(noisy)) == {0.0, 1.0} and abs((noisy == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)  # inference: identity
    with pytest.raises(ValueError, match="rate"):
        MaskingNoise(1.0)


@pytest.mark.parametrize("mode", ["first", "mean", "last"])
def test_sequence_pooling(tmp_path, mode):
    layer = run_layer_test(SequencePooling, {"mode": mode}, (HIDDEN, MASK), (4, 8), tmp_path,
                           trainable=False)  # fmt: skip
    pooled = keras.ops.convert_to_numpy(layer(HIDDEN, MASK))
    index = {"first": [0, 0, 0, 0], "last": [5, 2, 0, 4]}
    if mode == "mean":
        expected = np.stack([HIDDEN[i, : MASK[i].sum()].mean(0) for i in range(4)])
    else:
        expected = HIDDEN[np.arange(4), index[mode]]
    np.testing.assert_allclose(pooled, expected, atol=1e-6)


def test_masked_lm_head_pieces(tmp_path):
    positions = np.array([[0, 2], [1, 1], [5, 0], [3, 4]], "int32")
    gather = run_layer_test(GatherPositions, {}, (HIDDEN, positions), (4, 2, 8), tmp_path,
                            trainable=False)  # fmt: skip
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gather(HIDDEN, positions)),
        HIDDEN[np.arange(4)[:, None], positions],
    )
    run_layer_test(VocabularyBias, {}, HIDDEN, (4, 6, 8), tmp_path)


def test_position_embedding(tmp_path):
    layer = run_layer_test(PositionEmbedding, {"sequence_length": 10}, HIDDEN, (4, 6, 8), tmp_path)
    out = keras.ops.convert_to_numpy(layer(HIDDEN))
    np.testing.assert_allclose(out[0], out[1])  # the same positions for every row
    with pytest.raises(Exception):  # noqa: B017  longer than the table: backend-specific error
        layer(np.zeros((1, 11, 8), "float32"))


def test_bottleneck_adapter(tmp_path):
    kwargs = {"bottleneck_dim": 4, "activation": "relu", "dropout": 0.1}
    # Zero-initialised up-projection: the first step moves `up` only (2 of 4 weights).
    layer = run_layer_test(BottleneckAdapter, kwargs, HIDDEN, (4, 6, 8), tmp_path, min_changed=0.5)
    fresh = BottleneckAdapter(4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(HIDDEN)), HIDDEN, atol=1e-6)
    assert layer.get_config()["bottleneck_dim"] == 4


def test_reverse_tokens(tmp_path):
    ids = np.array(
        [[3, 10, 11, 12, 4, 0], [3, 7, 4, 0, 0, 0], [3, 4, 0, 0, 0, 0], [3, 5, 6, 7, 8, 4]]
    )
    mask = (ids != 0).astype("int32")
    layer = run_layer_test(ReverseTokens, {}, (ids.astype("int32"), mask), (4, 6), tmp_path,
                           trainable=False, output_dtype="int32")  # fmt: skip
    reversed_ids = keras.ops.convert_to_numpy(layer(ids, mask))
    expected = [[3, 12, 11, 10, 4, 0], [3, 7, 4, 0, 0, 0], [3, 4, 0, 0, 0, 0], [3, 8, 7, 6, 5, 4]]
    np.testing.assert_array_equal(reversed_ids, expected)  # frame and padding stay put
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(reversed_ids, mask)), ids)
