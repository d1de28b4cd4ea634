"""Exact trainable sets of each method, and that `fit` leaves frozen weights alone."""

import io

import keras
import numpy as np
import pytest

from ptft_keras.peft import methods
from ptft_keras.peft.lora import apply_lora
from ptft_keras.variables import (
    count_parameters,
    print_trainable_parameters,
    set_trainable,
    snapshot,
    trainable_keys,
)
from ptft_keras.variables import variable_map as variable_items
from tests.peft.toy import build_toy_model, toy_data

# Toy model sizes (dim 8, 2 blocks, 3 classes), written out so the counts can be checked:
EMBEDDING = 8 * 8 + 8
QKV = 8 * 24  # EinsumDense, no bias
ATT_OUT = 8 * 8 + 8
MLP_IN = 8 * 16 + 16
MLP_OUT = 16 * 8 + 8
NORM = 8 + 8
BLOCK = QKV + ATT_OUT + MLP_IN + MLP_OUT + NORM
HEAD = 8 * 3 + 3
TOTAL = EMBEDDING + 2 * BLOCK + HEAD


def test_variable_keys_follow_layer_paths():
    keys = list(variable_items(build_toy_model()))
    assert keys[:3] == ["embedding/kernel", "embedding/bias", "block_0/attention/qkv/kernel"]
    assert "block_1/mlp/intermediate/bias" in keys and keys[-1] == "head/bias"
    assert count_parameters(build_toy_model()) == (TOTAL, TOTAL)


def test_linear_probe_and_full():
    model = build_toy_model()
    assert methods.linear_probe(model, head="head/*") == ["head/bias", "head/kernel"]
    assert count_parameters(model) == (HEAD, TOTAL)
    assert len(methods.full_finetuning(model)) == 22
    assert count_parameters(model) == (TOTAL, TOTAL)


def test_full_after_probe_unfreezes_sublayers_on_every_backend():
    # Guards the TF quirk: `model.trainable = True` on an already-trainable model does
    # not reach frozen sublayers there.
    model = build_toy_model()
    model.get_layer("block_0").trainable = False
    model.trainable = True
    methods.full_finetuning(model)
    assert model.get_layer("block_0").trainable
    assert count_parameters(model) == (TOTAL, TOTAL)


def test_bitfit_counts():
    model = build_toy_model()
    keys = methods.bitfit(model, head="head/*")
    biases = 8 + 2 * (8 + 16 + 8)  # embedding + per block: att out, mlp in, mlp out
    assert count_parameters(model) == (biases + 2 * NORM + HEAD, TOTAL)
    assert "block_0/norm/gamma" in keys and "block_0/attention/qkv/kernel" not in keys


def test_lora_counts_and_only_lora_trains():
    model = build_toy_model()
    paths = apply_lora(model, rank=2, alpha=4, train_also=("head/*",))
    assert paths == [
        f"block_{i}/{p}"
        for i in (0, 1)
        for p in ("attention/output", "attention/qkv", "mlp/intermediate", "mlp/output")
    ]
    lora = 2 * (2 * (8 + 24) + 2 * (8 + 8) + 2 * (8 + 16) + 2 * (16 + 8))  # A + B per target
    trainable, total = count_parameters(model)
    assert (trainable, total) == (lora + HEAD, TOTAL + lora)
    assert all("lora_kernel" in k or k.startswith("head/") for k in trainable_keys(model))
    # Keras's enable_lora leaves the bias trainable; our mask freezes it.
    assert "block_0/attention/output/bias" not in trainable_keys(model)


def test_adapter_tuning_counts():
    model = build_toy_model(adapter_dim=2)
    methods.adapter_tuning(model, head="head/*")
    adapters = 2 * 2 * (8 * 2 + 2 + 2 * 8 + 8)  # 2 blocks x 2 adapters x (down + up)
    assert count_parameters(model) == (adapters + 2 * NORM + HEAD, TOTAL + adapters)
    with pytest.raises(ValueError, match="adapter_dim"):
        methods.adapter_tuning(build_toy_model(), head="head/*")


def test_bad_patterns_raise():
    with pytest.raises(ValueError, match="matches no variable"):
        methods.linear_probe(build_toy_model(), head="classifier/*")
    with pytest.raises(ValueError, match="No layer"):
        apply_lora(build_toy_model(), targets=("*query",))
    with pytest.raises(ValueError, match="expected a Dense or EinsumDense"):
        apply_lora(build_toy_model(), targets=("block_0/norm",))


def test_print_trainable_parameters():
    model = build_toy_model()
    methods.linear_probe(model, head="head/*")
    out = io.StringIO()
    print_trainable_parameters(model, print_fn=lambda s: out.write(s))
    assert out.getvalue() == (
        f"trainable params: {HEAD} || all params: {TOTAL:,} || trainable%: {100 * HEAD / TOTAL:.4f}"
    )


@pytest.mark.parametrize(
    "method",
    ["linear_probe", "bitfit", "lora", "adapters"],
)
def test_fit_changes_only_trainable_weights(method):
    model = build_toy_model(adapter_dim=2 if method == "adapters" else 0)
    if method == "lora":
        apply_lora(model, rank=2, train_also=("head/*",))
    elif method == "adapters":
        methods.adapter_tuning(model, head="head/*")
    else:
        getattr(methods, method)(model, head="head/*")
    trainable = set(trainable_keys(model))
    before = snapshot(model)
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(True))
    x, y = toy_data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = snapshot(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed <= trainable, f"frozen weights changed: {sorted(changed - trainable)}"
    # Every trainable weight moved (LoRA's B starts at zero but gets gradient via A).
    assert changed == trainable


def test_set_trainable_keeps_batchnorm_statistics_frozen():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    set_trainable(model, "*")
    assert "bn/moving_mean" not in trainable_keys(model)
    set_trainable(model, "head/*")
    assert not model.get_layer("bn").trainable  # frozen BN runs in inference mode
