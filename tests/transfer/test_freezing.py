"""freeze / unfreeze_all / unfreeze_top / unfreeze_matching, recompiling, frozen BatchNorm."""

import re

import keras
import numpy as np
import pytest

from ptft_keras.transfer.freezing import (
    depth_units,
    freeze,
    unfreeze_all,
    unfreeze_matching,
    unfreeze_top,
)
from ptft_keras.transfer.weights import variable_map


def make_classifier():
    """images -> encoder (conv, norm, latent) -> head; encoder is a nested model."""
    images = keras.Input((6, 6, 1), name="images")
    x = keras.layers.Conv2D(2, 3, name="conv")(images)  # (batch, 4, 4, 2)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Flatten(name="flatten")(x)  # (batch, 32)
    encoder = keras.Model(images, keras.layers.Dense(4, name="latent")(x), name="encoder")
    inputs = keras.Input((6, 6, 1))
    logits = keras.layers.Dense(3, name="head")(encoder(inputs))
    return keras.Model(inputs, logits, name="classifier")


def make_blocks(num_blocks=3):
    """embed -> block_0 .. block_k (each a small model of two Dense) -> head."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="embed")(inputs)
    for i in range(num_blocks):
        block_in = keras.Input((4,))
        y = keras.layers.Dense(4, name="up")(block_in)
        y = keras.layers.Dense(4, name="down")(y)
        x = keras.Model(block_in, y, name=f"block_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="stack")


def trainable_keys(model):
    ids = {id(v) for v in model.trainable_weights}
    return [k for k, v in variable_map(model).items() if id(v) in ids]


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 1)).astype("float32"), rng.integers(0, 3, n)


def snapshot(model):
    return {k: keras.ops.convert_to_numpy(v).copy() for k, v in variable_map(model).items()}


def changed_keys(before, model):
    after = snapshot(model)
    return sorted(k for k in after if not np.array_equal(after[k], before[k]))


def compile_and_fit(model, epochs=1):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    model.fit(*data(), batch_size=8, epochs=epochs, verbose=0)


def test_freeze_and_unfreeze_all_return_changed_layers():
    model = make_classifier()
    assert freeze(model.get_layer("encoder")) == ["conv", "norm", "latent"]
    assert trainable_keys(model) == ["head/kernel", "head/bias"]
    assert freeze(model.get_layer("encoder")) == []  # already frozen
    assert unfreeze_all(model) == ["encoder/conv", "encoder/norm", "encoder/latent"]
    assert len(trainable_keys(model)) == 8  # BatchNorm moving stats are never trainable


def test_after_recompile_fit_changes_only_trainable_weights():
    model = make_classifier()
    compile_and_fit(model)
    freeze(model.get_layer("encoder"))
    compile_and_fit(model)  # compiled again after changing `trainable`
    before = snapshot(model)
    compile_and_fit(model)
    assert changed_keys(before, model) == ["head/bias", "head/kernel"]


@pytest.mark.tf_only  # the documented reason to recompile: TF's cached train function
def test_without_recompiling_fit_keeps_training_frozen_layers():
    model = make_classifier()
    compile_and_fit(model)  # builds and caches the train function and the optimizer
    freeze(model.get_layer("encoder"))
    before = snapshot(model)
    model.fit(*data(seed=1), batch_size=8, epochs=1, verbose=0)  # no compile()
    assert "encoder/conv/kernel" in changed_keys(before, model)  # still trained!


def test_frozen_batchnorm_keeps_moving_stats_and_runs_in_inference_mode():
    model = make_classifier()
    stats = ["encoder/norm/moving_mean", "encoder/norm/moving_variance"]
    freeze(model.get_layer("encoder").get_layer("norm"))
    compile_and_fit(model)
    before = snapshot(model)
    compile_and_fit(model, epochs=2)
    moved = changed_keys(before, model)
    assert not set(stats) & set(moved)
    assert "encoder/conv/kernel" in moved  # the rest of the encoder does train
    x = data()[0][:4]
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), rtol=1e-5)
    # Control: unfrozen, the same fit updates the moving statistics.
    unfreeze_all(model)
    compile_and_fit(model)
    assert set(stats) <= set(changed_keys(before, model))


def test_unfreeze_top_on_nested_functional_model():
    model = make_classifier()
    units = [path for path, _ in depth_units(model)]
    assert units == ["encoder/conv", "encoder/norm", "encoder/latent", "head"]
    assert unfreeze_top(model, 1) == ["encoder/conv", "encoder/norm", "encoder/latent"]
    assert trainable_keys(model) == ["head/kernel", "head/bias"]
    assert unfreeze_top(model, 2) == ["encoder/latent"]
    assert trainable_keys(model) == [
        "encoder/latent/kernel",
        "encoder/latent/bias",
        "head/kernel",
        "head/bias",
    ]
    assert unfreeze_top(model, 0) == ["encoder/latent", "head"]
    assert trainable_keys(model) == []
    with pytest.raises(ValueError, match=r"n must be an int in 0..4 .*got 5"):
        unfreeze_top(model, 5)


def test_unfreeze_top_counts_named_blocks_as_units():
    model = make_blocks(3)
    assert [p for p, _ in depth_units(model)] == ["embed", "block_0", "block_1", "block_2", "head"]
    unfreeze_top(model, 2)
    assert trainable_keys(model) == [
        "block_2/up/kernel",
        "block_2/up/bias",
        "block_2/down/kernel",
        "block_2/down/bias",
        "head/kernel",
        "head/bias",
    ]
    before = snapshot(model)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 4)), np.zeros((8, 2)), verbose=0)
    assert {k.split("/")[0] for k in changed_keys(before, model)} == {"block_2", "head"}


def test_unfreeze_matching_glob_regex_and_errors():
    model = make_blocks(3)
    freeze(model)
    assert unfreeze_matching(model, "block_1") == ["block_1/up", "block_1/down"]
    assert unfreeze_matching(model, [re.compile(r"^block_0/d"), "head"]) == [
        "block_0/down",
        "head",
    ]
    # Earlier unfrozen layers stay trainable.
    assert [k.rsplit("/", 1)[0] for k in trainable_keys(model)[::2]] == [
        "block_0/down",
        "block_1/up",
        "block_1/down",
        "head",
    ]
    with pytest.raises(ValueError, match=r"Pattern 'blok_\*' matches no layer of 'stack'"):
        unfreeze_matching(model, "blok_*")
    with pytest.raises(TypeError, match="must be a str"):
        unfreeze_matching(model, [3])
