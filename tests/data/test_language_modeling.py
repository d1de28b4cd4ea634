import math

import numpy as np
import pytest
import tensorflow as tf

from ptft_keras.data.language_modeling import (
    causal_lm_dataset,
    causal_lm_inputs,
    make_mask_generator,
    masked_lm_dataset,
    masked_lm_inputs,
)

pytestmark = pytest.mark.tf_only  # tf.data pipelines

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 1000
MASKING = dict(vocabulary_size=VOCAB, mask_token_id=MASK, special_token_ids=(CLS, SEP))


def _ceil_15_percent(n):
    return -(-15 * n // 100)  # exact integer ceil(0.15 n)


def _np(x):
    return {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)


def _bert_batch(rows=300, seq=64, seed=0):
    """[CLS] words [SEP] PAD..., with real lengths between 20 and seq."""
    rng = np.random.default_rng(seed)
    ids = np.full((rows, seq), PAD, dtype="int32")
    mask = np.zeros((rows, seq), dtype="int32")
    for i in range(rows):
        length = rng.integers(20, seq + 1)
        ids[i, :length] = rng.integers(10, VOCAB, size=length)
        ids[i, 0], ids[i, length - 1] = CLS, SEP
        mask[i, :length] = 1
    return ids, mask


def test_causal_inputs_shift_and_weights():
    ids = np.array([[5, 6, 7, 8, 0], [9, 10, 11, 12, 13]], dtype="int32")
    mask = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]], dtype="int32")  # right / left pad
    x, y, weights = causal_lm_inputs(ids, mask)
    np.testing.assert_array_equal(_np(x)["token_ids"], ids[:, :-1])
    np.testing.assert_array_equal(_np(x)["padding_mask"], mask[:, :-1])
    np.testing.assert_array_equal(_np(y), ids[:, 1:])
    np.testing.assert_array_equal(_np(weights), [[1, 1, 1, 0], [0, 1, 1, 1]])
    with pytest.raises(ValueError, match="batch, seq"):
        causal_lm_inputs(np.arange(5))


def test_masking_statistics():
    ids, mask = _bert_batch()
    x, y, weights = (_np(t) for t in masked_lm_inputs(ids, mask, **MASKING, seed=(3, 4)))
    positions, corrupted = x["mask_positions"], x["token_ids"]
    assert positions.shape == y.shape == weights.shape == (300, _ceil_15_percent(64))
    np.testing.assert_array_equal(x["padding_mask"], mask)

    selectable = (mask == 1) & (ids != CLS) & (ids != SEP)
    selected = np.zeros_like(mask, dtype=bool)
    for i in range(len(ids)):
        real = positions[i][weights[i] == 1]
        assert len(set(real.tolist())) == len(real)  # no position twice
        selected[i, real] = True
        # Exactly ceil(15% of the selectable tokens) per row ...
        assert len(real) == _ceil_15_percent(int(selectable[i].sum()))
        # ... the labels are the original ids there ...
        np.testing.assert_array_equal(y[i][weights[i] == 1], ids[i, real])
    # ... never a special token or padding ...
    assert not (selected & ~selectable).any()
    # ... and about 15% overall (the ceil adds < 1 token per row).
    rate = selected.sum() / selectable.sum()
    assert 0.15 <= rate < 0.15 + len(ids) / selectable.sum(), rate
    # Unselected tokens are untouched.
    np.testing.assert_array_equal(corrupted[~selected], ids[~selected])
    # 80% [MASK], 10% random, 10% kept (a random draw equal to the original is ~0.01%).
    n = selected.sum()
    masked = (corrupted[selected] == MASK).mean()
    kept = (corrupted[selected] == ids[selected]).mean()
    random = 1.0 - masked - kept
    tolerance = 4 * math.sqrt(0.8 * 0.2 / n)  # 4 standard deviations of the 80% share
    assert abs(masked - 0.8) < tolerance, (masked, n)
    assert abs(kept - 0.1) < tolerance and abs(random - 0.1) < tolerance, (kept, random)


def test_padding_is_never_selected_whatever_its_id():
    ids, mask = _bert_batch(rows=50, seed=1)
    ids[mask == 0] = 77  # padding filled with an ordinary word id
    x, _, weights = (_np(t) for t in masked_lm_inputs(ids, mask, **MASKING, seed=(0, 1)))
    for i in range(len(ids)):
        assert mask[i, x["mask_positions"][i][weights[i] == 1]].all()


def test_same_seed_same_masks_other_seed_other_masks():
    ids, mask = _bert_batch(rows=20, seq=32)
    first = _np(masked_lm_inputs(ids, mask, **MASKING, seed=(1, 2))[0])
    again = _np(masked_lm_inputs(ids, mask, **MASKING, seed=(1, 2))[0])
    other = _np(masked_lm_inputs(ids, mask, **MASKING, seed=(1, 3))[0])
    np.testing.assert_array_equal(first["token_ids"], again["token_ids"])
    assert not np.array_equal(first["mask_positions"], other["mask_positions"])


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(selection_rate=1.5), "selection_rate"),
        (dict(mask_token_id=VOCAB), "mask_token_id"),
        (dict(mask_token_rate=0.9, random_token_rate=0.2), "sum to <= 1"),
    ],
)
def test_masking_arguments_are_checked(override, message):
    ids, mask = _bert_batch(rows=2, seq=24)
    with pytest.raises(ValueError, match=message):
        masked_lm_inputs(ids, mask, **dict(MASKING, **override), seed=(0, 0))
    with pytest.raises(ValueError, match=message):
        make_mask_generator(**dict(MASKING, **override))
    with pytest.raises(ValueError, match=message):
        masked_lm_dataset(ids, mask, **dict(MASKING, **override))


def test_masked_dataset_remasks_every_epoch_reproducibly():
    ids, mask = _bert_batch(rows=8, seq=32)
    ds = masked_lm_dataset(ids, mask, **MASKING, batch_size=8, shuffle=False, seed=5)
    first = _np(next(iter(ds))[0])["mask_positions"]
    second = _np(next(iter(ds))[0])["mask_positions"]
    assert first.shape == (8, _ceil_15_percent(32))
    assert not np.array_equal(first, second)  # a new epoch, new masks
    rebuilt = masked_lm_dataset(ids, mask, **MASKING, batch_size=8, shuffle=False, seed=5)
    np.testing.assert_array_equal(_np(next(iter(rebuilt))[0])["mask_positions"], first)


def test_mask_generator_in_a_map_gives_fresh_reproducible_masks():
    ids, mask = _bert_batch(rows=8, seq=32)

    def two_epochs(seed):
        generator = make_mask_generator(VOCAB, MASK, 32, special_token_ids=(CLS, SEP), seed=seed)
        ds = tf.data.Dataset.from_tensor_slices((ids, mask)).batch(4)
        ds = ds.map(lambda i, m: masked_lm_inputs(i, m, mask_generator=generator))
        return [_np(x)["mask_positions"] for _ in range(2) for x, _, _ in ds]

    first = two_epochs(seed=1)
    assert not np.array_equal(first[0], first[2])  # same rows, next epoch: new masks
    assert not np.array_equal(first[0][0], first[0][1])
    for a, b in zip(first, two_epochs(seed=1), strict=True):
        np.testing.assert_array_equal(a, b)  # reproducible from the seed


def test_dynamic_length_batches_use_sequence_length():
    ids, mask = _bert_batch(rows=6, seq=40)
    ids, mask = ids[:, :30], mask[:, :30]  # rows shorter than the declared 40
    generator = make_mask_generator(VOCAB, MASK, 40, special_token_ids=(CLS, SEP), seed=2)
    ds = tf.data.Dataset.from_tensor_slices((ids, mask)).batch(3)
    ds = ds.map(
        lambda i, m: (tf.compat.v1.placeholder_with_default(i, [None, None]), m)
    )  # forget seq
    ds = ds.map(lambda i, m: masked_lm_inputs(i, m, mask_generator=generator))
    for k, (x, y, weights) in enumerate(ds):
        x, y, weights = _np(x), _np(y), _np(weights)
        rows = slice(3 * k, 3 * k + 3)
        assert x["mask_positions"].shape == (3, _ceil_15_percent(40))  # slots for 40 tokens
        selected = np.zeros((3, 30), bool)
        for i in range(3):
            real = x["mask_positions"][i][weights[i] == 1]
            assert len(real) == _ceil_15_percent(
                int(((mask[rows][i] == 1) & (ids[rows][i] > SEP)).sum())
            )
            selected[i, real] = True
        np.testing.assert_array_equal(x["token_ids"][~selected], ids[rows][~selected])
        np.testing.assert_array_equal(y[weights == 1], ids[rows][selected])
    unknown = tf.data.Dataset.from_tensor_slices(ids).batch(2)
    with pytest.raises(ValueError, match="sequence_length"):
        unknown.map(
            lambda i: masked_lm_inputs(
                tf.compat.v1.placeholder_with_default(i, [None, None]), seed=(0, 0), **MASKING
            )
        )


def test_masked_lm_inputs_needs_a_seed_or_a_generator():
    ids, mask = _bert_batch(rows=2, seq=24)
    with pytest.raises(ValueError, match="seed"):
        masked_lm_inputs(ids, mask, **MASKING)
    generator = make_mask_generator(VOCAB, MASK, 24)
    with pytest.raises(ValueError, match="not both"):
        masked_lm_inputs(ids, mask, mask_generator=generator, vocabulary_size=VOCAB)


def test_pipelines_train_the_models():
    from ptft_keras.models.causal_lm import CausalLM
    from ptft_keras.models.masked_lm import MaskedLM
    from ptft_keras.models.transformer import TransformerBackbone

    ids, mask = _bert_batch(rows=16, seq=24)
    ids = ids % 64  # the tiny preset's vocabulary
    lm = CausalLM(TransformerBackbone.from_preset("tiny"))
    lm.compile()
    ds = causal_lm_dataset(ids, mask, batch_size=8, seed=0)
    x, y, weights = next(iter(ds))
    assert tuple(x["token_ids"].shape) == (8, 23) and tuple(weights.shape) == (8, 23)
    history = lm.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Perplexity over the shifted triples equals the one over the raw ids.
    unshuffled = causal_lm_dataset(ids, mask, batch_size=8, shuffle=False)
    np.testing.assert_allclose(lm.perplexity(unshuffled), lm.perplexity(ids, mask), rtol=1e-5)

    mlm = MaskedLM(TransformerBackbone.from_preset("tiny", causal=False))
    mlm.compile()
    masking = dict(MASKING, vocabulary_size=64)
    history = mlm.fit(masked_lm_dataset(ids, mask, **masking, batch_size=8), verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_packed_rows_have_no_padding_and_keep_every_token():
    from ptft_keras.data.language_modeling import packed_lm_dataset, packed_token_rows
    from ptft_keras.data.tokenizer import CLS_ID, PAD_ID, SEP_ID, TextEncoder, train_tokenizer

    docs = [f"review {i} : " + " ".join(["good film"] * (i % 7 + 1)) for i in range(40)]
    tokenizer = train_tokenizer(docs, vocabulary_size=40)
    rows = packed_token_rows(
        tf.data.Dataset.from_tensor_slices(docs), tokenizer, 16, shuffle_documents=0
    )
    packed = np.concatenate([r.numpy() for r in rows])
    encoded = TextEncoder(tokenizer, 128)(docs)["token_ids"].numpy()  # no truncation
    expected = np.concatenate([row[row != PAD_ID] for row in encoded])  # [CLS] ... [SEP]
    assert len(packed) == (len(expected) // 16) * 16  # only the last partial row dropped
    np.testing.assert_array_equal(packed, expected[: len(packed)])
    assert PAD_ID not in packed and (packed == CLS_ID).sum() >= 30 and SEP_ID in packed
    x, y, weights = next(iter(packed_lm_dataset(rows, "causal", 4, shuffle_rows=0)))
    assert x["token_ids"].shape == (4, 15) and float(tf.reduce_min(weights)) == 1.0
    np.testing.assert_array_equal(x["token_ids"][0, 1:], y[0, :-1])  # shifted by one
    masked = packed_lm_dataset(rows, "masked", 4, vocabulary_size=40)
    x, y, weights = next(iter(masked))
    assert x["mask_positions"].shape == (4, 3)  # ceil(15% of 16)


def test_reversed_rows_are_what_the_backward_classifier_reads():
    """A backward LM's rows (`reverse=True`) hold each document as `ReverseTokens` shows
    the same text to its classifier: the two halves of the backward recipe agree."""
    from ptft_keras.data.language_modeling import packed_token_rows
    from ptft_keras.data.tokenizer import PAD_ID, TextEncoder, train_tokenizer
    from ptft_keras.layers.reverse_tokens import ReverseTokens

    docs = [f"review {i} : " + " ".join(["good film", "bad plot"][: i % 2 + 1]) for i in range(30)]
    tokenizer = train_tokenizer(docs, vocabulary_size=40)
    rows = packed_token_rows(
        tf.data.Dataset.from_tensor_slices(docs), tokenizer, 8, shuffle_documents=0, reverse=True
    )
    packed = np.concatenate([r.numpy() for r in rows])
    encoded = TextEncoder(tokenizer, 64)(docs)
    viewed = ReverseTokens()(encoded["token_ids"], encoded["padding_mask"]).numpy()
    expected = np.concatenate([row[row != PAD_ID] for row in viewed])
    assert len(packed) == (len(expected) // 8) * 8 and len(packed) > 100
    np.testing.assert_array_equal(packed, expected[: len(packed)])
    forward = packed_token_rows(
        tf.data.Dataset.from_tensor_slices(docs), tokenizer, 8, shuffle_documents=0
    )
    assert not np.array_equal(packed, np.concatenate([r.numpy() for r in forward]))
