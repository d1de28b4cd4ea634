import os

import keras
import numpy as np
import pytest

from ptft_keras.models.causal_lm import CausalLM
from ptft_keras.models.transformer import TransformerBackbone
from tests.harness import run_model_test

VOCAB = 64  # the tiny preset's vocabulary


def _lm(**overrides):
    return CausalLM(TransformerBackbone.from_preset("tiny", **overrides))


def _shifted(ids, mask=None):
    """Test-local shift (the data module's version is tested in tests/data)."""
    mask = np.ones_like(ids) if mask is None else mask
    x = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    return x, ids[:, 1:], (mask[:, 1:] * mask[:, :-1]).astype("float32")


def _ids(batch=4, seq=10, seed=0):
    return np.random.default_rng(seed).integers(1, VOCAB, size=(batch, seq)).astype("int32")


def test_logits_shape_dtype_and_tied_embedding():
    lm = _lm()
    x, _, _ = _shifted(_ids())
    logits = lm(x)
    assert tuple(logits.shape) == (4, 9, VOCAB)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    # Tied: the only vocabulary-sized variable is the input embedding.
    assert [w.path for w in lm.weights if VOCAB in w.shape] == ["token_embedding/embeddings"]
    assert lm.count_params() == lm.backbone.count_params()


def test_float32_logits_under_mixed_precision():
    lm = _lm(dtype="mixed_bfloat16")
    logits = lm(_shifted(_ids())[0])
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    out = lm.generate([[1, 2]], max_new_tokens=2, sampler="top_k", seed=0)
    assert out["token_ids"].shape == (1, 4)


def test_rejects_bidirectional_backbone():
    with pytest.raises(ValueError, match="causal"):
        CausalLM(TransformerBackbone.from_preset("tiny", causal=False))


def test_future_tokens_do_not_change_past_logits():
    lm = _lm()
    ids = _ids(batch=1)
    changed = ids.copy()
    changed[0, 6:] = (changed[0, 6:] + 5) % VOCAB
    out = np.asarray(lm(_shifted(ids)[0]))
    out_changed = np.asarray(lm(_shifted(changed)[0]))
    np.testing.assert_array_equal(out[0, :6], out_changed[0, :6])
    assert np.abs(out[0, 6:] - out_changed[0, 6:]).max() > 0


def test_training_reduces_loss():
    lm = _lm()
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    ids = np.tile(np.arange(1, 11, dtype="int32"), (8, 1))  # a learnable pattern
    x, y, weights = _shifted(ids)
    before = lm.evaluate(x, y, sample_weight=weights, verbose=0)[0]
    lm.fit(x, y, sample_weight=weights, epochs=15, batch_size=8, verbose=0)
    after = lm.evaluate(x, y, sample_weight=weights, verbose=0)[0]
    assert after < 0.5 * before, (before, after)


def test_loss_ignores_padding_and_matches_perplexity():
    lm = _lm()
    lm.compile()
    ids = _ids()
    mask = np.ones_like(ids)
    mask[0, 6:] = 0
    mask[2, 3:] = 0
    x, y, weights = _shifted(ids, mask)
    loss = lm.evaluate(x, y, sample_weight=weights, verbose=0)[0]
    other = ids.copy()
    other[mask == 0] = 5  # different ids under the padding
    x2, y2, weights2 = _shifted(other, mask)
    np.testing.assert_allclose(lm.evaluate(x2, y2, sample_weight=weights2, verbose=0)[0], loss)
    # The loss is the mean over real target tokens, so exp(loss) is the perplexity.
    np.testing.assert_allclose(np.exp(loss), lm.perplexity(ids, padding_mask=mask), rtol=1e-4)


def test_perplexity_of_uniform_model_is_vocabulary_size():
    lm = _lm()
    # Zero final LayerNorm -> zero hidden states -> all-zero logits -> uniform prediction.
    for w in lm.backbone.final_norm.weights:
        w.assign(np.zeros(w.shape))
    ids = _ids()
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    np.testing.assert_allclose(lm.perplexity(ids, padding_mask=mask), VOCAB, rtol=1e-5)
    # The same through an iterable of dict batches.
    batches = [{"token_ids": ids[:2], "padding_mask": mask[:2]}, {"token_ids": ids[2:]}]
    np.testing.assert_allclose(lm.perplexity(batches), VOCAB, rtol=1e-5)
    # ... and through already-shifted (x, y, sample_weight) triples.
    np.testing.assert_allclose(lm.perplexity([_shifted(ids, mask)]), VOCAB, rtol=1e-5)


def test_greedy_generation_is_deterministic_and_argmax():
    lm = _lm()
    prompts = [[1, 2, 3], [4, 5]]
    first = lm.generate(prompts, max_new_tokens=4)
    second = lm.generate(prompts, max_new_tokens=4)
    np.testing.assert_array_equal(first["token_ids"], second["token_ids"])
    assert first["token_ids"].shape == (2, 7)
    np.testing.assert_array_equal(first["padding_mask"].sum(axis=1), [7, 6])
    np.testing.assert_array_equal(first["token_ids"][0, :3], [1, 2, 3])
    # Each generated token is the argmax of the model's logits for its prefix.
    row = first["token_ids"][0]
    for t in range(3, 7):
        logits = np.asarray(lm({"token_ids": row[None, :t], "padding_mask": np.ones((1, t))}))
        assert row[t] == np.argmax(logits[0, -1])


def _peaked_lm():
    """A model whose next-token distribution is the same known one at every position."""
    lm = _lm()
    norm = lm.backbone.final_norm
    norm.gamma.assign(np.zeros(norm.gamma.shape))
    norm.beta.assign(np.ones(norm.beta.shape))  # hidden = all ones at every position
    rng = np.random.default_rng(0)
    table = rng.normal(size=(VOCAB, 16)).astype("float32") * 0.05
    table[:, 0] = np.linspace(0, 10, VOCAB)  # logit of id v ~ 10 v / 63: a clear ranking
    lm.backbone.token_embedding.embeddings.assign(table)
    logits = table.sum(axis=1)
    return lm, np.argsort(-logits)


def test_top_k_samples_only_the_k_best():
    lm, ranking = _peaked_lm()
    out = lm.generate([[1]] * 8, max_new_tokens=6, sampler="top_k", k=3, seed=0)
    generated = set(out["token_ids"][:, 1:].ravel().tolist())
    assert generated <= set(ranking[:3].tolist())
    assert len(generated) > 1  # it samples, not argmax
    again = lm.generate([[1]] * 8, max_new_tokens=6, sampler="top_k", k=3, seed=0)
    np.testing.assert_array_equal(out["token_ids"], again["token_ids"])  # seeded


def test_top_p_samples_only_the_nucleus():
    lm, ranking = _peaked_lm()
    logits = lm.backbone.token_embedding.embeddings.numpy().sum(axis=1)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    sorted_probs = probs[ranking]
    nucleus = int(np.searchsorted(np.cumsum(sorted_probs), 0.5) + 1)  # smallest set >= 0.5
    out = lm.generate([[1]] * 8, max_new_tokens=6, sampler="top_p", p=0.5, seed=3)
    generated = set(out["token_ids"][:, 1:].ravel().tolist())
    assert generated <= set(ranking[:nucleus].tolist())
    assert len(generated) > 1


def test_end_token_stops_a_row():
    lm, ranking = _peaked_lm()
    best = int(ranking[0])
    out = lm.generate([[1, 2], [3]], max_new_tokens=5, end_token_id=best, pad_token_id=0)
    np.testing.assert_array_equal(out["token_ids"], [[1, 2, best], [3, best, 0]])
    np.testing.assert_array_equal(out["padding_mask"].sum(axis=1), [3, 2])


def test_long_prompt_is_left_truncated_or_rejected():
    lm = _lm()  # max_sequence_length = 32
    window = lm.backbone.max_sequence_length
    long_prompt = (np.arange(40) % (VOCAB - 1) + 1).astype("int32")
    out = lm.generate([long_prompt], max_new_tokens=3)
    assert out["token_ids"].shape == (1, 43)
    np.testing.assert_array_equal(out["token_ids"][0, :40], long_prompt)
    # The first new token is predicted from the last `window` prompt tokens only.
    tail = long_prompt[None, -window:]
    expected = np.argmax(
        np.asarray(lm({"token_ids": tail, "padding_mask": np.ones_like(tail)}))[0, -1]
    )
    assert out["token_ids"][0, 40] == expected
    with pytest.raises(ValueError, match="max_sequence_length=32"):
        lm.generate([long_prompt], max_new_tokens=3, truncate=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sampler="beam"), "sampler"),
        (dict(sampler="top_k", k=0), "`k`"),
        (dict(sampler="top_p", p=1.5), "`p`"),
        (dict(temperature=0.0), "temperature"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
    ],
)
def test_generate_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _lm().generate([[1, 2]], **kwargs)


def test_harness(tmp_path):
    x, y, weights = _shifted(_ids())
    lm = run_model_test(
        _lm, x, tmp_path, y=y, sample_weight=weights, loss="task", output_dtype="float32"
    )
    assert isinstance(lm.backbone, TransformerBackbone)


def test_compile_defaults_survive_the_keras_round_trip(tmp_path):
    lm = _lm()
    lm.compile()
    path = os.path.join(tmp_path, "lm.keras")
    lm.save(path)
    restored = keras.saving.load_model(path)
    # Our compile() is custom; loading must still restore it (compile_from_config).
    assert restored.compiled and isinstance(restored.optimizer, keras.optimizers.AdamW)
    assert restored.loss.reduction == "mean_with_sample_weight"
