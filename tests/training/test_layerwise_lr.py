import keras
import numpy as np
import pytest

from ptft_keras.training.layerwise_lr import LayerwiseAdamW, layerwise_lr_multipliers
from ptft_keras.variables import variable_map as variable_items
from tests.peft.toy import build_toy_model, toy_data


def _one_step(optimizer, value, grad):
    variable = keras.Variable(value, name="w")
    optimizer.apply([keras.ops.convert_to_tensor(grad)], [variable])
    return keras.ops.convert_to_numpy(variable)


def test_multiplier_equals_adamw_with_scaled_learning_rate():
    rng = np.random.default_rng(0)
    value = rng.normal(size=(3, 2)).astype("float32")
    grad = rng.normal(size=(3, 2)).astype("float32")
    # keras.Variable(name="w") outside any layer has path "w".
    ours = _one_step(LayerwiseAdamW({"w": 0.1}, learning_rate=0.01, weight_decay=0.05), value, grad)
    plain = _one_step(keras.optimizers.AdamW(learning_rate=0.001, weight_decay=0.05), value, grad)
    np.testing.assert_allclose(ours, plain, rtol=1e-6)
    untouched = _one_step(LayerwiseAdamW({"other": 0.1}, learning_rate=0.01), value, grad)
    base = _one_step(keras.optimizers.AdamW(learning_rate=0.01), value, grad)
    np.testing.assert_allclose(untouched, base, rtol=1e-6)


def test_scaling_gradients_instead_does_nothing_for_adam():
    # Why the learning rate is scaled: Adam normalises the gradient away.
    value = np.ones((4,), "float32")
    grad = np.linspace(-1, 1, 4).astype("float32")
    full = _one_step(keras.optimizers.AdamW(0.01, weight_decay=0.0), value, grad) - value
    scaled = _one_step(keras.optimizers.AdamW(0.01, weight_decay=0.0), value, 0.1 * grad) - value
    np.testing.assert_allclose(scaled, full, rtol=1e-4)  # not 0.1 * full


def test_layerwise_multipliers_decay_with_depth():
    model = build_toy_model()
    groups = ["embedding/*", "block_0/*", "block_1/*", "*"]
    multipliers = layerwise_lr_multipliers(model, groups, decay=0.5)
    items = variable_items(model)
    by_key = {k: multipliers[v.path] for k, v in items.items()}
    assert by_key["embedding/kernel"] == 0.125
    assert by_key["block_0/attention/qkv/kernel"] == 0.25
    assert by_key["block_1/norm/gamma"] == 0.5
    assert by_key["head/kernel"] == 1.0
    with pytest.raises(ValueError, match="matches no group"):
        layerwise_lr_multipliers(model, ["block_0/*", "block_1/*"], decay=0.5)
    with pytest.raises(ValueError, match="decay"):
        layerwise_lr_multipliers(model, groups, decay=1.5)


def test_fit_moves_lower_layers_less_and_config_round_trips():
    x, y = toy_data()
    steps = {}
    for decay in (1.0, 0.01):
        keras.utils.set_random_seed(7)
        model = build_toy_model()
        groups = ["embedding/*", "block_0/*", "block_1/*", "*"]
        optimizer = LayerwiseAdamW(
            layerwise_lr_multipliers(model, groups, decay), learning_rate=0.01
        )
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = keras.ops.convert_to_numpy(variable_items(model)["embedding/kernel"])
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        after = keras.ops.convert_to_numpy(variable_items(model)["embedding/kernel"])
        steps[decay] = np.abs(after - before).max()
    # embedding multiplier 0.01**3: its update shrinks by orders of magnitude
    assert steps[0.01] < 1e-3 * steps[1.0]
    restored = LayerwiseAdamW.from_config(optimizer.get_config())
    assert restored.lr_multipliers == optimizer.lr_multipliers


def test_rejects_negative_multiplier():
    with pytest.raises(ValueError, match="lr_multipliers"):
        LayerwiseAdamW({"w": -1.0})
