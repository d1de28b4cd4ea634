import os

import keras
import numpy as np
import pytest

from ptft_keras.models.causal_lm import CausalLM
from ptft_keras.models.masked_lm import MaskedLM
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import PRESETS, TransformerBackbone
from tests.harness import gradient_wrt_input, run_model_test


def _inputs(batch=2, seq=6, vocab=64, seed=0):
    ids = np.random.default_rng(seed).integers(1, vocab, size=(batch, seq)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids)}


def _from_embeddings(backbone, padding_mask):
    """The backbone's forward pass starting at the token embeddings."""

    def forward(token_embeddings):  # (batch, seq, hidden)
        x = token_embeddings + backbone.position_embedding(token_embeddings)
        for block in backbone.transformer_blocks:
            x = block(x, padding_mask=padding_mask)
        return backbone.final_norm(x)

    return forward


def test_forward_matches_helper_and_shape():
    backbone = TransformerBackbone.from_preset("tiny")
    x = _inputs()
    out = np.asarray(backbone(x))
    assert out.shape == (2, 6, 16)
    emb = backbone.token_embedding(x["token_ids"])
    np.testing.assert_allclose(_from_embeddings(backbone, x["padding_mask"])(emb), out, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_gradient_causality(causal):
    """Output at t depends on inputs <= t only (causal) or on all inputs (bidirectional)."""
    seq = 6
    backbone = TransformerBackbone.from_preset("tiny", causal=causal)
    x = _inputs(batch=1, seq=seq)
    emb = np.asarray(backbone.token_embedding(x["token_ids"]))
    forward = _from_embeddings(backbone, x["padding_mask"])
    # A random read-out: the plain sum of a LayerNorm output is constant (zero gradient).
    readout = np.random.default_rng(1).normal(size=(16,)).astype("float32")
    for t in range(seq):
        grad = gradient_wrt_input(lambda e, t=t: forward(e)[:, t] * readout, emb)  # (1, seq, h)
        per_position = np.abs(grad[0]).sum(axis=-1)  # (seq,)
        assert np.all(per_position[: t + 1] > 0), (t, per_position)
        if causal:
            assert np.all(per_position[t + 1 :] == 0.0), (t, per_position)  # exactly zero
        elif t < seq - 1:
            assert np.all(per_position[t + 1 :] > 0), (t, per_position)


def test_padding_content_does_not_change_real_positions():
    # Right padding for the bidirectional model, left padding for the causal one: the
    # cases where, without the mask, padding would reach the real tokens.
    for causal, mask in [(False, [1, 1, 1, 1, 0, 0]), (True, [0, 0, 1, 1, 1, 1])]:
        backbone = TransformerBackbone.from_preset("tiny", causal=causal)
        x = _inputs(batch=1)
        x["padding_mask"] = np.array([mask], dtype="int32")
        other = dict(x, token_ids=x["token_ids"].copy())
        other["token_ids"][0, np.array(mask) == 0] = 7  # different padding ids
        real = np.array(mask) == 1
        out, out_other = np.asarray(backbone(x)), np.asarray(backbone(other))
        np.testing.assert_allclose(out[0, real], out_other[0, real], atol=1e-5)
        assert np.all(np.isfinite(out))  # fully masked query rows stay finite


def test_harness(tmp_path):
    build = lambda: TransformerBackbone.from_preset(
        "tiny", causal=False, adapter_dim=2, dropout=0.1
    )
    x = _inputs()
    # Each block's two adapters have zero-initialised up-projections, so their 8
    # down-projection weights get no gradient in the first step: 36 of 44 change.
    backbone = run_model_test(
        build, x, tmp_path, y=np.zeros((2, 6, 16), "float32"), min_changed=36 / 44
    )
    restored = keras.saving.load_model(os.path.join(tmp_path, f"{backbone.name}.keras"))
    assert [w.path for w in restored.weights] == [w.path for w in backbone.weights]


def test_variable_paths_and_counts():
    backbone = TransformerBackbone.from_preset("tiny")
    paths = [w.path for w in backbone.weights]
    assert paths[:2] == ["token_embedding/embeddings", "position_embedding/embeddings"]
    assert "block_1/attention/qkv/kernel" in paths and "final_norm/gamma" in paths
    assert len(paths) == 2 + 2 * 12 + 2
    adapted = TransformerBackbone.from_preset("tiny", adapter_dim=4)
    assert len([p for p in [w.path for w in adapted.weights] if "adapter" in p]) == 2 * 2 * 4


def _expected_params(vocabulary_size, num_layers, hidden_dim, intermediate_dim,
                     max_sequence_length, **_):  # fmt: skip
    h, f = hidden_dim, intermediate_dim
    block = (2 * 2 * h) + (h * 3 * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h)
    return vocabulary_size * h + max_sequence_length * h + num_layers * block + 2 * h


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_preset_param_counts(name):
    backbone = TransformerBackbone.from_preset(name)
    assert backbone.count_params() == _expected_params(**PRESETS[name])


def test_gpt2_small_preset_matches_gpt2_size():
    # GPT-2 small has 124,439,808 parameters with its 50,257-token vocabulary; ours pads
    # the vocabulary to 50,304 (+47 x 768 embedding rows).
    assert _expected_params(**dict(PRESETS["gpt2_small"], vocabulary_size=50257)) == 124439808
    assert _expected_params(**PRESETS["gpt2_small"]) == 124439808 + 47 * 768
    assert PRESETS["gpt2_small"]["vocabulary_size"] % 64 == 0


def test_from_preset_overrides_and_errors():
    backbone = TransformerBackbone.from_preset("tiny", causal=False, num_layers=1)
    assert backbone.causal is False and backbone.num_layers == 1
    assert set(TransformerBackbone.presets()) == {"tiny", "small", "gpt2_small"}
    with pytest.raises(ValueError, match="nope"):
        TransformerBackbone.from_preset("nope")


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(hidden_dim=15), "divisible"),
        (dict(num_layers=0), "num_layers"),
        (dict(vocabulary_size=1.5), "vocabulary_size"),
        (dict(dropout=-0.1), "dropout"),
        (dict(adapter_dim=-1), "adapter_dim"),
        (dict(max_sequence_length=None), "max_sequence_length"),
    ],
)
def test_bad_arguments_raise(override, message):
    with pytest.raises(ValueError, match=message):
        TransformerBackbone.from_preset("tiny", **override)


def test_mixed_bfloat16_backbone():
    backbone = TransformerBackbone.from_preset("tiny", dtype="mixed_bfloat16")
    out = backbone(_inputs())
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert all(w.dtype == "float32" for w in backbone.weights)


@pytest.mark.parametrize("task", ["backbone", "causal_lm", "masked_lm", "text_classifier"])
def test_the_dtype_policy_round_trips_through_config_and_keras_files(task, tmp_path):
    """Every layer keeps its policy through `from_config` and `.keras`, and the reloaded
    model gives the same outputs (a float32 reload differed by ~0.01)."""
    backbone = TransformerBackbone.from_preset(
        "tiny", causal=task != "masked_lm", dtype="mixed_bfloat16"
    )
    x = _inputs()
    model = {
        "backbone": lambda: backbone,
        "causal_lm": lambda: CausalLM(backbone),
        "masked_lm": lambda: MaskedLM(backbone),
        "text_classifier": lambda: TextClassifier(backbone, num_classes=3),
    }[task]()
    if task == "masked_lm":
        x["mask_positions"] = np.array([[1, 2]] * len(x["token_ids"]), "int32")
    policies = lambda m: sorted((la.name, la.dtype_policy.name) for la in m._flatten_layers())
    assert ("backbone", "mixed_bfloat16") in policies(model)
    assert ("block_0", "mixed_bfloat16") in policies(model)
    model.save(tmp_path / "model.keras")
    for reloaded in (
        type(model).from_config(model.get_config()),
        keras.saving.load_model(tmp_path / "model.keras"),
    ):
        assert policies(reloaded) == policies(model)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(reloaded(x), "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(model(x), "float32")),
    )


def test_attention_without_padding_mask_is_exact_for_right_padding():
    masked = TransformerBackbone.from_preset("tiny")
    fast = TransformerBackbone.from_preset("tiny", attention_padding_mask=False)
    fast.set_weights(masked.get_weights())
    x = _inputs(batch=2)
    x["padding_mask"][0, 4:] = 0  # right padding
    np.testing.assert_allclose(fast(x)[0, :4], masked(x)[0, :4], atol=1e-6)
    np.testing.assert_allclose(fast(x)[1], masked(x)[1], atol=1e-6)
    # Left padding is what the option cannot handle (documented): outputs differ.
    x["padding_mask"] = np.array([[0, 0, 1, 1, 1, 1]] * 2, dtype="int32")
    assert np.abs(np.asarray(fast(x))[:, 2:] - np.asarray(masked(x))[:, 2:]).max() > 1e-4
    with pytest.raises(ValueError, match="causal=True"):
        TransformerBackbone.from_preset("tiny", causal=False, attention_padding_mask=False)
