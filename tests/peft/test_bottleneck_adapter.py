import keras
import numpy as np
import pytest

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter


def test_starts_as_identity_and_keeps_shape():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    adapter = BottleneckAdapter(3, name="attention_adapter")
    y = keras.ops.convert_to_numpy(adapter(x))
    assert y.shape == (2, 5, 8)
    np.testing.assert_array_equal(y, x)  # zero-initialised up-projection
    # down (8*3 + 3) + up (3*8 + 8) parameters, keyed under the layer name
    assert sum(int(np.prod(w.shape)) for w in adapter.weights) == 8 * 3 + 3 + 3 * 8 + 8
    assert sorted(w.path for w in adapter.weights) == [
        "attention_adapter/down/bias",
        "attention_adapter/down/kernel",
        "attention_adapter/up/bias",
        "attention_adapter/up/kernel",
    ]


def test_branch_is_added_residually():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    adapter = BottleneckAdapter(2, activation="relu")
    adapter.build(x.shape)
    adapter.up.kernel.assign(np.ones((2, 6), "float32"))
    down = keras.ops.convert_to_numpy(adapter.down(x))
    expected = x + np.maximum(down, 0.0) @ np.ones((2, 6)) + 0.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(adapter(x)), expected, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_rejects_bad_bottleneck(bad):
    with pytest.raises(ValueError, match="bottleneck_dim"):
        BottleneckAdapter(bad)
