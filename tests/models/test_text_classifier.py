"""TextClassifier: shapes, pooling, .keras round trip, from_pretrained, mismatch errors."""

import keras
import numpy as np
import pytest

from ptft_keras.layers.pooling import SequencePooling
from ptft_keras.models.causal_lm import CausalLM
from ptft_keras.models.masked_lm import MaskedLM
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.transfer.weights import variable_map
from tests.harness import run_model_test


def _inputs(batch=3, seq=10, vocab=64, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, size=(batch, seq)).astype("int32")
    lengths = np.array([seq, 4, 1][:batch] + [seq] * max(0, batch - 3))
    mask = np.arange(seq)[None, :] < lengths[:, None]
    ids = np.where(mask, ids, 0).astype("int32")
    return {"token_ids": ids, "padding_mask": mask.astype("int32")}


def _backbone(causal=False, **overrides):
    return TransformerBackbone.from_preset("tiny", causal=causal, **overrides)


@pytest.mark.parametrize("causal, expected", [(True, "last"), (False, "mean")])
def test_auto_pooling_and_output_shape(causal, expected):
    model = TextClassifier(_backbone(causal), num_classes=3)
    assert model.pooling_mode == expected
    logits = model(_inputs())
    assert tuple(logits.shape) == (3, 3)
    assert np.isfinite(keras.ops.convert_to_numpy(logits)).all()


def test_pooling_modes_use_only_real_tokens():
    hidden = np.arange(2 * 4 * 2, dtype="float32").reshape(2, 4, 2)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]])
    mean = keras.ops.convert_to_numpy(SequencePooling("mean")(hidden, mask))
    np.testing.assert_allclose(mean, [hidden[0, :3].mean(0), hidden[1, 0]])
    last = keras.ops.convert_to_numpy(SequencePooling("last")(hidden, mask))
    np.testing.assert_allclose(last, [hidden[0, 2], hidden[1, 0]])
    first = keras.ops.convert_to_numpy(SequencePooling("first")(hidden, mask))
    np.testing.assert_allclose(first, hidden[:, 0])


def test_padding_does_not_change_predictions():
    model = TextClassifier(_backbone(causal=False), num_classes=2)
    x = _inputs(batch=3, seq=10)
    short = {k: v[:, :4] for k, v in x.items()}  # rows 1 and 2 have <= 4 real tokens
    full = keras.ops.convert_to_numpy(model(x))
    cut = keras.ops.convert_to_numpy(model(short))
    np.testing.assert_allclose(full[1:], cut[1:], atol=1e-5)


def test_train_step_and_hinge_loss():
    model = TextClassifier(_backbone(), num_classes=2, loss="hinge", head_dropout=0.0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-2))
    x, y = _inputs(batch=8, seq=6), np.array([0, 1] * 4)
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_harness(tmp_path):
    build = lambda: TextClassifier(
        _backbone(causal=True), 3, pooling="first", head="cosine", label_names=["a", "b", "c"]
    )
    x, y = _inputs(), np.array([0, 1, 2])
    model = run_model_test(build, x, tmp_path, y=y, loss="task",
                           output_dtype="float32")  # fmt: skip
    assert model.pooling_mode == "first" and model.get_config()["head"] == "cosine"
    assert model.get_config()["label_names"] == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["masked", "causal", "backbone", "path"])
def test_from_pretrained_copies_every_backbone_variable(kind, tmp_path):
    backbone = _backbone(causal=(kind == "causal"))
    source = {"masked": MaskedLM, "causal": CausalLM}.get(kind, lambda b: b)(backbone)
    if kind == "path":
        source = CausalLM(_backbone(causal=True))
        backbone = source.backbone
        source.save(str(tmp_path / "lm.keras"))
        source = str(tmp_path / "lm.keras")
    model = TextClassifier.from_pretrained(
        source, num_classes=2, vocabulary_size=64, sequence_length=32, dropout=0.0
    )
    assert model.backbone is not backbone
    expected = variable_map(backbone)
    got = variable_map(model.backbone)
    assert sorted(got) == sorted(expected) and len(model.transfer_report.moved) == len(got)
    for key, variable in got.items():
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(expected[key])
        )
    assert model.pooling_mode == ("last" if kind in ("causal", "path") else "mean")


def test_checkpoint_mismatch_errors_name_both_values():
    lm = MaskedLM(_backbone())
    with pytest.raises(ValueError, match="vocabulary_size is 64 .*vocabulary_size is 100"):
        TextClassifier.from_pretrained(lm, 2, vocabulary_size=100)
    with pytest.raises(ValueError, match="max_sequence_length is 32 .*sequence_length is 64"):
        TextClassifier.from_pretrained(lm, 2, sequence_length=64)
    assert TextClassifier.from_pretrained(lm, 2, sequence_length=16).sequence_length == 16
    with pytest.raises(ValueError, match="TransformerBackbone"):
        TextClassifier.from_pretrained(keras.Sequential([keras.layers.Dense(2)]), 2)
    with pytest.raises(ValueError, match=".keras"):
        TextClassifier.from_pretrained("weights.h5", 2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="pooling"):
        TextClassifier(_backbone(), 2, pooling="max")
    with pytest.raises(ValueError, match="num_classes"):
        TextClassifier(_backbone(), 1)
    with pytest.raises(ValueError, match="loss"):
        TextClassifier(_backbone(), 2, loss="mse")
    with pytest.raises(ValueError, match="TransformerBackbone"):
        TextClassifier(keras.layers.Dense(3), 2)


def test_variable_keys_are_the_same_for_every_backbone_built_in_a_session():
    # Path-keyed files (transfer, LoRA adapters) must not depend on Keras' auto-numbered
    # names such as `transformer_backbone_3`.
    first = TextClassifier(TransformerBackbone.from_preset("tiny"), num_classes=2)
    second = TextClassifier(TransformerBackbone.from_preset("tiny"), num_classes=2)
    first_keys, second_keys = list(variable_map(first)), list(variable_map(second))
    assert first_keys == second_keys
    assert "backbone/block_0/attention/qkv/kernel" in first_keys


@pytest.mark.parametrize("length", [1, 33, 8.0])
def test_sequence_length_is_checked_and_saved(length, tmp_path):
    with pytest.raises(ValueError, match=r"`sequence_length` must be an int in \[2, 32\]"):
        TextClassifier(_backbone(causal=False), 2, sequence_length=length)
    model = TextClassifier(_backbone(causal=False), 2, sequence_length=16)
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").sequence_length == 16


def test_reverse_tokens_reads_the_text_backwards(tmp_path):
    """`reverse_tokens=True` = the same network on each text's tokens right to left,
    inside the model (so the export still takes the text as written)."""
    from ptft_keras.layers.reverse_tokens import ReverseTokens
    from tests.harness import run_model_saving_test

    forward = TextClassifier(_backbone(causal=True), num_classes=2)
    backward = TextClassifier.from_config({**forward.get_config(), "reverse_tokens": True})
    backward.set_weights(forward.get_weights())
    x = _inputs(batch=3, seq=10)
    reversed_ids = ReverseTokens()(x["token_ids"], x["padding_mask"])
    flipped = {**x, "token_ids": keras.ops.convert_to_numpy(reversed_ids)}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(backward(x)),
        keras.ops.convert_to_numpy(forward(flipped)),
        atol=1e-5,
    )
    assert not np.allclose(
        keras.ops.convert_to_numpy(backward(x)), keras.ops.convert_to_numpy(forward(x)), atol=1e-4
    )
    assert run_model_saving_test(backward, x, tmp_path).reverse_tokens
