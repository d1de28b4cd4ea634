"""The method registry on the toolkit's own models: parts read off the model, what each
method trains, what one step changes, stages, LLRD rates, and refusals (any backend)."""

import fnmatch

import keras
import numpy as np
import pytest

from ptft_keras.models.autoencoder import build_dense_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.training.methods import METHODS, STAGED, prepare
from ptft_keras.training.parts import parts_of
from ptft_keras.variables import snapshot, variable_map

IDS = np.random.default_rng(0).integers(1, 64, size=(8, 10)).astype("int32")
TEXT_X = {"token_ids": IDS, "padding_mask": np.ones_like(IDS)}
IMAGE_X = np.random.default_rng(1).random((8, 28, 28)).astype("float32")
Y = np.array([0, 1] * 4)


def _text():
    config = {**TransformerBackbone.preset_config("tiny"), "causal": False}
    return TextClassifier(TransformerBackbone(**config, name="backbone"), 2, head_dropout=0.0)


def _image():
    autoencoder = build_dense_autoencoder(hidden_units=(16,), latent_dim=8)
    return Classifier.from_pretrained(autoencoder, 2, head="linear")


def _is(key, *patterns):
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


# method -> keys that must be trainable after `prepare` (staged: in the first stage)
TRAINS = {
    "probe": lambda k: k.startswith("head/"),
    "full": lambda k: True,
    "lp-ft": lambda k: k.startswith("head/"),
    "gradual": lambda k: k.startswith("head/"),
    "llrd": lambda k: True,
    "bitfit": lambda k: k.startswith("head/") or k.endswith(("/bias", "/gamma", "/beta")),
    "adapters": lambda k: (
        k.startswith("head/") or "adapter" in k or _is(k, "*norm*/gamma", "*norm*/beta")
    ),  # fmt: skip
    "lora": lambda k: k.startswith("head/") or "lora_kernel" in k,
}


def test_parts_are_read_off_both_own_models():
    text = parts_of(_text())
    assert text.head == ("head/*",) and text.blocks == ("block_0", "block_1")
    assert list(text.units) == ["embeddings", "block_0", "block_1"]
    image = parts_of(_image())
    assert list(image.units) == ["encoder/dense_1", "encoder/latent"]
    assert image.blocks == tuple(image.units)
    with pytest.raises(ValueError, match="No parts description for Sequential"):
        parts_of(keras.Sequential([keras.layers.Dense(2)]))


@pytest.mark.parametrize("build, x", [(_text, TEXT_X), (_image, IMAGE_X)], ids=["text", "image"])
@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_its_share_and_a_step_moves_only_that(build, x, method):
    keras.utils.set_random_seed(0)
    plan = prepare(build(), method, 1e-3, 2)
    model = plan.model
    keys = list(variable_map(model))
    expected = sorted(k for k in keys if TRAINS[method](k))
    assert plan.trainable == expected
    assert len(expected) == len(keys) if method in ("full", "llrd") else len(expected) < len(keys)
    assert (plan.stages is not None) == (method in STAGED)
    if method == "adapters":
        assert [k for k in keys if "adapter" in k]
    if method == "lora":
        assert [k for k in keys if "lora_kernel" in k]
    # Non-zero LoRA B / adapter up, so every trainable variable gets a gradient.
    for key, v in variable_map(model).items():
        if key.endswith(("/up/kernel", "lora_kernel_b")):
            v.assign(np.full(v.shape, 0.01, "float32"))
    if plan.stages is None:
        model.compile(optimizer=plan.optimizer, run_eagerly=True)
        before = snapshot(model)
        model.train_on_batch(x, Y)
        after = snapshot(model)
        moved = sorted(k for k in before if not np.array_equal(before[k], after[k]))
        assert moved == expected, method
    else:
        history = plan.fit({"run_eagerly": True}, x=x, y=Y, batch_size=8, verbose=0)
        assert history.stages[0][2] == expected
        assert history.stages[-1][2] == sorted(keys)  # ends with everything trainable


def test_stages_and_llrd_rates_follow_the_units():
    plan = prepare(_text(), "gradual", 1e-4, 8)
    assert [s.name for s in plan.stages] == ["head", "+block_1", "+block_0", "all"]
    assert [s.epochs for s in plan.stages] == [2, 2, 2, 2] and plan.epochs == 8
    assert plan.stages[0].learning_rate == pytest.approx(1e-3)  # the head rate: 10x
    lp = prepare(_text(), "lp-ft", 1e-4, 5, probe_share=0.2)
    assert [(s.name, s.epochs, s.learning_rate) for s in lp.stages] == [
        ("linear_probe", 1, pytest.approx(1e-3)),
        ("finetune_all", 4, 1e-4),
    ]
    model = _text()
    rates = prepare(model, "llrd", 1e-4, 1, llrd_decay=0.5).optimizer.lr_multipliers
    paths = {k: v.path for k, v in variable_map(model).items()}
    by_unit = {
        unit: {rates[paths[k]] for k in paths if _is(k, *patterns)}
        for unit, patterns in parts_of(model).units.items()
    }
    assert by_unit == {"embeddings": {0.125}, "block_0": {0.25}, "block_1": {0.5}}
    assert rates[paths["head/logits/kernel"]] == rates[paths["backbone/final_norm/gamma"]] == 1.0


def test_adapters_give_a_new_model_with_the_same_outputs_and_weights():
    model = _text()
    plain = keras.ops.convert_to_numpy(model(TEXT_X))
    adapted = prepare(model, "adapters", 1e-3, 1, adapter_dim=4).model
    assert adapted is not model and type(adapted) is TextClassifier
    assert adapted.backbone.adapter_dim == 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(adapted(TEXT_X)), plain, atol=1e-6)


def test_refusals_name_the_bad_value():
    with pytest.raises(ValueError, match=r"'prefix'.*expected one of \('probe', 'full'"):
        prepare(_text(), "prefix", 1e-3, 1)
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['adapter_dim'\] for 'lora'"):
        prepare(_text(), "lora", 1e-3, 1, adapter_dim=4)
    with pytest.raises(ValueError, match="epochs must be an int >= 1; received 0"):
        prepare(_text(), "full", 1e-3, 0)
    with pytest.raises(ValueError, match="rank"):
        prepare(_text(), "lora", 1e-3, 1, lora_rank=0)
