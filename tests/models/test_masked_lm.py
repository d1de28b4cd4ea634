import os

import keras
import numpy as np
import pytest

from ptft_keras.models.masked_lm import MaskedLM
from ptft_keras.models.transformer import TransformerBackbone
from tests.harness import run_model_test

VOCAB = 64
MASK_ID = 3


def _mlm(**overrides):
    return MaskedLM(TransformerBackbone.from_preset("tiny", causal=False, **overrides))


def _batch(batch=4, seq=10, selections=2, seed=0):
    """Masked inputs built by hand (the data pipeline has its own tests)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, VOCAB, size=(batch, seq)).astype("int32")
    positions = np.stack([rng.choice(seq, selections, replace=False) for _ in range(batch)])
    positions = positions.astype("int32")
    targets = np.take_along_axis(ids, positions, axis=1)
    corrupted = ids.copy()
    np.put_along_axis(corrupted, positions, MASK_ID, axis=1)
    x = {"token_ids": corrupted, "padding_mask": np.ones_like(ids), "mask_positions": positions}
    return x, targets, np.ones(positions.shape, "float32")


def test_logits_at_selected_positions_only():
    mlm = _mlm()
    x, _, _ = _batch()
    logits = mlm(x)
    assert tuple(logits.shape) == (4, 2, VOCAB)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    # Logits for selection j equal the head applied to the hidden state at its position.
    hidden = np.asarray(mlm.backbone({k: x[k] for k in ("token_ids", "padding_mask")}))
    b, j = 1, 1
    h = hidden[b : b + 1, x["mask_positions"][b, j]][:, None]  # (1, 1, hidden)
    h = mlm.head_norm(mlm.head_dense(h))
    expected = mlm.head_bias(mlm.backbone.token_embedding(h, reverse=True))
    np.testing.assert_allclose(np.asarray(logits)[b, j], np.asarray(expected)[0, 0], atol=1e-5)


def test_tied_embeddings_and_named_head():
    mlm = _mlm()
    vocab_sized = [w.path for w in mlm.weights if w.shape[0] == VOCAB]
    assert vocab_sized == ["token_embedding/embeddings", "mlm_head_bias/bias"]
    head = sorted(w.path for w in mlm.weights if w.path.startswith("mlm_"))
    assert head == [
        "mlm_head_bias/bias",
        "mlm_head_dense/bias",
        "mlm_head_dense/kernel",
        "mlm_head_norm/beta",
        "mlm_head_norm/gamma",
    ]


def test_rejects_causal_backbone():
    with pytest.raises(ValueError, match="bidirectional"):
        MaskedLM(TransformerBackbone.from_preset("tiny", causal=True))


def test_masked_token_sees_right_context():
    mlm = _mlm()
    x, _, _ = _batch(batch=1)
    x["mask_positions"] = np.array([[0, 1]], "int32")
    changed = dict(x, token_ids=x["token_ids"].copy())
    changed["token_ids"][0, -1] = (changed["token_ids"][0, -1] + 1) % VOCAB  # far right
    assert np.abs(np.asarray(mlm(x)) - np.asarray(mlm(changed))).max() > 0


def test_loss_uses_only_weighted_selections():
    mlm = _mlm()
    mlm.compile()
    x, y, w = _batch()
    loss = mlm.evaluate(x, y, sample_weight=w, verbose=0)[0]
    # Padding the selection list with weight-0 entries pointing anywhere changes nothing.
    x2 = dict(x, mask_positions=np.concatenate([x["mask_positions"], np.zeros((4, 2), "int32")], 1))
    y2 = np.concatenate([y, np.full((4, 2), 9, "int32")], axis=1)
    w2 = np.concatenate([w, np.zeros((4, 2), "float32")], axis=1)
    np.testing.assert_allclose(
        mlm.evaluate(x2, y2, sample_weight=w2, verbose=0)[0], loss, rtol=1e-5
    )


def test_training_reduces_loss():
    mlm = _mlm()
    mlm.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y, w = _batch(batch=8)
    before = mlm.evaluate(x, y, sample_weight=w, verbose=0)[0]
    mlm.fit(x, y, sample_weight=w, epochs=30, batch_size=8, verbose=0)
    after = mlm.evaluate(x, y, sample_weight=w, verbose=0)[0]
    assert after < 0.5 * before, (before, after)


def test_harness(tmp_path):
    x, y, weights = _batch()
    # With adapters, their down-projections get no gradient in the first step.
    mlm = run_model_test(
        lambda: _mlm(adapter_dim=2), x, tmp_path, y=y, sample_weight=weights, loss="task",
        output_dtype="float32", min_changed=0.9,
    )  # fmt: skip
    assert not mlm.backbone.causal
    mlm.compile()
    path = os.path.join(tmp_path, "compiled.keras")
    mlm.save(path)
    assert keras.saving.load_model(path).compiled
