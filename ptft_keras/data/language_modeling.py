"""Pretraining inputs for `CausalLM` and `MaskedLM`: (x, y, sample_weight) from token ids.

Causal (next-token) pretraining, `causal_lm_inputs`:

    ids   = [BOS a b c PAD]          mask = [1 1 1 1 0]
    x     = [BOS a b c]              y    = [a b c PAD]      weight = [1 1 1 0]

A target counts only if it and the token predicting it are real, so padding never enters
the loss. Masked (BERT) pretraining, `masked_lm_inputs`, follows BERT's recipe: in every
row `ceil(selection_rate x #selectable)` tokens are chosen among the non-special,
non-padding ones; of those 80% become `[MASK]`, 10% a random id (drawn from the whole
vocabulary, as in BERT), 10% stay. The model sees the corrupted ids; the loss covers only
the chosen positions:

    x = {"token_ids": corrupted, "padding_mask": mask, "mask_positions": (batch, M)}
    y = original ids at those positions (batch, M); sample_weight = 1 for real selections,
    0 for the empty slots of the fixed-length selection list.

Why not keras-hub's `MaskedLMMaskGenerator` (tensorflow-text underneath), which we tried
first: its random ops are stateful, so under a global seed (`keras.utils.set_random_seed`)
every new iterator over a `tf.data` pipeline (`fit` starts one per epoch) replayed exactly
the same masks (seen in our test: two passes, identical masks), which defeats dynamic
masking; it cannot be seeded per call either. Here
the masking uses stateless random ops (`tf.random.stateless_*`) with a fresh seed per batch
from `tf.data.Dataset.random(..., rerandomize_each_iteration=True)`: new masks each epoch
(dynamic masking, RoBERTa), yet reproducible from one seed, and no tensorflow-text needed.
This is a data module: it uses TensorFlow.
"""

import math

import numpy as np
import tensorflow as tf


def causal_lm_inputs(token_ids, padding_mask=None):
    """(x, y, sample_weight) for next-token prediction from ids `(batch, seq)` (numpy or tf;
    works eagerly and inside `tf.data` maps). `padding_mask`: 1 = real token; default all
    real. Sequences shrink by one: x, y and the weights have length `seq - 1`."""
    token_ids = tf.convert_to_tensor(token_ids)
    if token_ids.shape.rank != 2:
        raise ValueError(f"token_ids must be (batch, seq), got shape {token_ids.shape}.")
    if token_ids.shape[1] is not None and token_ids.shape[1] < 2:
        raise ValueError(f"token_ids need >= 2 positions to shift, got shape {token_ids.shape}.")
    token_ids = tf.cast(token_ids, "int32")
    if padding_mask is None:
        padding_mask = tf.ones_like(token_ids)
    padding_mask = tf.cast(padding_mask, "int32")
    x = {"token_ids": token_ids[:, :-1], "padding_mask": padding_mask[:, :-1]}
    y = token_ids[:, 1:]
    sample_weight = tf.cast(padding_mask[:, 1:] * padding_mask[:, :-1], "float32")
    return x, y, sample_weight


def _check_masking(vocabulary_size, mask_token_id, rates):
    selection_rate, mask_token_rate, random_token_rate = rates
    if not 0.0 < selection_rate < 1.0:
        raise ValueError(f"`selection_rate` must be in (0, 1), got {selection_rate!r}.")
    if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
        raise ValueError(
            "`mask_token_rate` and `random_token_rate` must be >= 0 and sum to <= 1, got "
            f"{mask_token_rate!r} and {random_token_rate!r}."
        )
    if not 0 <= mask_token_id < vocabulary_size:
        raise ValueError(
            f"`mask_token_id` must be in [0, {vocabulary_size}), got {mask_token_id!r}."
        )


def masked_lm_inputs(token_ids, padding_mask=None, *, mask_generator=None, seed=None, **masking):
    """(x, y, sample_weight) for masked-token prediction; see the module docstring.

    Either `mask_generator=make_mask_generator(...)` (draws a new seed per call: use it in
    a `Dataset.map`), or the masking arguments of `bert_masking` with an explicit `seed`.
    """
    if mask_generator is not None:
        if masking:
            raise ValueError(f"Pass a mask_generator or masking arguments, not both: {masking}")
        return mask_generator(token_ids, padding_mask, seed=seed)
    if seed is None:
        raise ValueError(
            "masked_lm_inputs needs a `seed` (2 ints; equal seeds give equal masks) or a "
            "`mask_generator` from make_mask_generator(...)."
        )
    return bert_masking(token_ids, padding_mask, seed=seed, **masking)


class MaskGenerator:
    """BERT masking with its own seeded `tf.random.Generator`: every call (e.g. every batch
    of a `Dataset.map`, every epoch) gets fresh masks; the run is reproducible from `seed`."""

    def __init__(self, seed=0, **masking):
        bert_masking(np.zeros((1, 2), "int32"), seed=(0, 0), **masking)  # validate now
        self.masking = masking
        self._rng = tf.random.Generator.from_seed(seed)

    def __call__(self, token_ids, padding_mask=None, seed=None):
        if seed is None:
            seed = self._rng.make_seeds(1)[:, 0]
        return bert_masking(token_ids, padding_mask, seed=seed, **self.masking)


def make_mask_generator(
    vocabulary_size,
    mask_token_id,
    sequence_length=None,
    special_token_ids=(),
    selection_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    seed=0,
):
    """A `MaskGenerator` for `masked_lm_inputs(..., mask_generator=...)`. `sequence_length`
    (the longest row) sizes the selection list when a batch's length is not static, as in
    pipelines of padded ragged text; padding is found from the padding mask, whatever its id."""
    return MaskGenerator(
        seed=seed,
        sequence_length=sequence_length,
        vocabulary_size=vocabulary_size,
        mask_token_id=mask_token_id,
        special_token_ids=tuple(special_token_ids),
        selection_rate=selection_rate,
        mask_token_rate=mask_token_rate,
        random_token_rate=random_token_rate,
    )


def bert_masking(
    token_ids,
    padding_mask=None,
    *,
    seed,
    vocabulary_size,
    mask_token_id,
    special_token_ids=(),
    selection_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    sequence_length=None,
):
    """The masking itself, deterministic given `seed`.

    Args:
        token_ids: `(batch, seq)` ids (numpy or tf), static `seq`.
        padding_mask: 1 = real token; default all real. Padded positions, `mask_token_id`
            and `special_token_ids` ([CLS], [SEP], ...) are never selected.
        seed: shape-(2,) int seed of the stateless random ops (same seed, same masks).
        vocabulary_size: random replacements are drawn from `[0, vocabulary_size)`.
        selection_rate / mask_token_rate / random_token_rate: BERT's 15% / 80% / 10%.
        sequence_length: the longest `seq` to expect; needed only when `seq` is not static.

    `mask_positions` has the fixed length `M = ceil(selection_rate * seq)` (`seq` = the
    static length, else `sequence_length`), which fits every row's `ceil(selection_rate *
    #selectable)` selections: nothing is dropped.
    """
    _check_masking(
        vocabulary_size, mask_token_id, (selection_rate, mask_token_rate, random_token_rate)
    )
    token_ids = tf.cast(tf.convert_to_tensor(token_ids), "int32")
    if token_ids.shape.rank != 2:
        raise ValueError(f"token_ids must be (batch, seq), got shape {token_ids.shape}.")
    longest = token_ids.shape[1] if token_ids.shape[1] is not None else sequence_length
    if longest is None:
        raise ValueError("token_ids have no static length: pass `sequence_length`.")
    num_slots = max(1, math.ceil(selection_rate * longest - 1e-9))  # M
    seq = tf.shape(token_ids)[1]
    if padding_mask is None:
        padding_mask = tf.ones_like(token_ids)
    padding_mask = tf.cast(padding_mask, "int32")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, "int64"), 3)

    # Which tokens may be chosen, and how many per row: ceil(rate * #selectable).
    unselectable = tf.constant([mask_token_id, *special_token_ids], "int32")
    is_special = tf.reduce_any(token_ids[:, :, None] == unselectable, axis=-1)
    selectable = (padding_mask > 0) & ~is_special  # (batch, seq)
    num_selectable = tf.reduce_sum(tf.cast(selectable, "float64"), axis=1)
    num_selected = tf.cast(tf.math.ceil(num_selectable * selection_rate - 1e-9), "int32")
    num_selected = tf.minimum(num_selected, num_slots)  # only if rows exceed sequence_length

    # A random order of the selectable positions; the first `num_selected` are chosen.
    scores = tf.random.stateless_uniform(tf.shape(token_ids), seeds[0])
    scores = tf.where(selectable, scores, 2.0)  # unselectable positions sort last
    order = tf.argsort(scores, axis=1, stable=True)  # (batch, seq) positions
    rank = tf.argsort(order, axis=1, stable=True)  # position -> its place in the order
    selected = rank < num_selected[:, None]  # (batch, seq)

    # 80% [MASK], 10% a random id, 10% unchanged.
    draw = tf.random.stateless_uniform(tf.shape(token_ids), seeds[1])
    random_ids = tf.random.stateless_uniform(
        tf.shape(token_ids), seeds[2], minval=0, maxval=vocabulary_size, dtype="int32"
    )
    corrupted = tf.where(
        selected & (draw < mask_token_rate + random_token_rate), random_ids, token_ids
    )
    corrupted = tf.where(selected & (draw < mask_token_rate), mask_token_id, corrupted)

    # Fixed-length, ascending list of the chosen positions; empty slots -> position 0, weight 0.
    slot_is_used = tf.range(num_slots)[None, :] < num_selected[:, None]  # (batch, M)
    order = tf.concat([order, tf.fill(tf.shape(order[:, :1]) * [1, num_slots], seq)], axis=1)
    positions = tf.where(slot_is_used, order[:, :num_slots], seq)
    positions = tf.sort(positions, axis=1)
    weights = tf.cast(positions < seq, "float32")
    positions = tf.where(positions < seq, positions, 0)
    x = {"token_ids": corrupted, "padding_mask": padding_mask, "mask_positions": positions}
    y = tf.gather(token_ids, positions, batch_dims=1)  # (batch, M) original ids
    return x, y, weights


def _pipeline(token_ids, padding_mask, batch_size, shuffle, seed):
    """Batched (ids, mask) pairs, optionally reshuffled every epoch."""
    token_ids = np.asarray(token_ids, dtype="int32")
    if token_ids.ndim != 2:
        raise ValueError(f"token_ids must be (num_examples, seq), got shape {token_ids.shape}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if padding_mask is None:
        padding_mask = np.ones_like(token_ids)
    padding_mask = np.asarray(padding_mask, dtype="int32")
    if padding_mask.shape != token_ids.shape:
        raise ValueError(
            f"padding_mask shape {padding_mask.shape} != token_ids shape {token_ids.shape}."
        )
    ds = tf.data.Dataset.from_tensor_slices((token_ids, padding_mask))
    if shuffle:
        ds = ds.shuffle(len(token_ids), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def causal_lm_dataset(token_ids, padding_mask=None, batch_size=32, shuffle=True, seed=0):
    """`tf.data.Dataset` of `causal_lm_inputs` batches, for `CausalLM.fit`. `batch_size` is
    global (split across replicas under a distribution strategy)."""
    ds = _pipeline(token_ids, padding_mask, batch_size, shuffle, seed)
    return ds.map(causal_lm_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def masked_lm_dataset(
    token_ids,
    padding_mask=None,
    *,
    vocabulary_size,
    mask_token_id,
    special_token_ids=(),
    batch_size=32,
    shuffle=True,
    seed=0,
    **rates,
):
    """`tf.data.Dataset` of `masked_lm_inputs` batches for `MaskedLM.fit` (`rates`:
    `selection_rate`, `mask_token_rate`, `random_token_rate`). Every batch gets its own
    stateless seed from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, so
    each epoch draws fresh masks and the whole run is still reproducible from `seed`.
    `batch_size` is global."""
    masking = dict(
        vocabulary_size=vocabulary_size,
        mask_token_id=mask_token_id,
        special_token_ids=tuple(special_token_ids),
        **rates,
    )
    bert_masking(np.zeros((1, 2), "int32"), seed=(0, 0), **masking)  # validate now
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = _pipeline(token_ids, padding_mask, batch_size, shuffle, seed)
    ds = tf.data.Dataset.zip(ds, seeds).map(
        lambda batch, pair: bert_masking(*batch, seed=pair, **masking),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def packed_token_rows(
    documents,
    tokenizer,
    row_length,
    shuffle_documents=10_000,
    seed=0,
    max_chars=50_000,
    documents_per_batch=256,
    reverse=False,
):
    """Documents (a `tf.data.Dataset` of strings) -> rows of `row_length` token ids.

    Each document is normalised and tokenised in the pipeline (the tokenizer's own
    normalizer, `ptft_keras.data.tokenizer`), framed `[CLS] tokens [SEP]` as `TextEncoder`
    frames a text, and the documents are concatenated and cut into rows: no padding at all
    (only the last, incomplete row of a pass is dropped). Documents are shuffled with a
    buffer of `shuffle_documents`, anew on every pass. Nothing loops over tokens in
    Python: 11M words stream through `tf.data`. `reverse=True` reverses each document's
    tokens before framing (`[CLS] tn ... t1 [SEP]`): rows for a backward LM, whose
    classifier reads texts the same way (`TextClassifier(reverse_tokens=True)`).
    """
    from ptft_keras.data.tokenizer import CLS_ID, SEP_ID, normalize_text, tokenizer_normalizer

    if row_length < 2:
        raise ValueError(f"row_length must be >= 2, got {row_length!r}.")
    normalizer = tokenizer_normalizer(tokenizer)

    def tokenize(docs):  # (b,) strings -> their framed ids, end to end, (tokens,)
        ids = tokenizer(normalize_text(docs, max_chars=max_chars, normalizer=normalizer))
        ids = tf.cast(ids, tf.int32)  # (b, None) ragged
        ids = tf.reverse(ids, axis=[1]) if reverse else ids
        ends = tf.ones_like(docs, dtype=tf.int32)[:, None]
        return tf.concat([ends * CLS_ID, ids, ends * SEP_ID], axis=1).flat_values

    ds = documents
    if shuffle_documents:
        ds = ds.shuffle(shuffle_documents, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(documents_per_batch).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch()  # a stream of token ids, documents end to end
    return ds.batch(row_length, drop_remainder=True)


def packed_lm_dataset(
    rows,
    objective="causal",
    batch_size=32,
    shuffle_rows=1_000,
    seed=0,
    vocabulary_size=None,
    selection_rate=0.15,
    drop_remainder=True,
):
    """Packed rows -> `fit` batches for `CausalLM` (rows of seq + 1 tokens: x, y shifted,
    every position a target) or `MaskedLM` (rows of seq tokens, BERT masking with a fresh
    stateless seed per batch; `[CLS]`, `[SEP]` and `[MASK]` are never selected).
    `drop_remainder=False` keeps a last, smaller batch (held-out rows: a small held-out
    set is still measured)."""
    from ptft_keras.data.tokenizer import CLS_ID, MASK_ID, SEP_ID

    if shuffle_rows:
        rows = rows.shuffle(shuffle_rows, seed=seed, reshuffle_each_iteration=True)
    batches = rows.batch(batch_size, drop_remainder=drop_remainder)
    if objective == "causal":
        return batches.map(
            lambda ids: causal_lm_inputs(ids), num_parallel_calls=tf.data.AUTOTUNE
        ).prefetch(tf.data.AUTOTUNE)
    if objective != "masked":
        raise ValueError(f"objective must be 'causal' or 'masked', got {objective!r}.")
    if vocabulary_size is None:
        raise ValueError("objective='masked' needs vocabulary_size.")
    masking = dict(
        vocabulary_size=vocabulary_size,
        mask_token_id=MASK_ID,
        special_token_ids=(CLS_ID, SEP_ID),
        selection_rate=selection_rate,
    )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    batches = tf.data.Dataset.zip(batches, seeds).map(
        lambda ids, pair: bert_masking(ids, seed=pair, **masking),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return batches.prefetch(tf.data.AUTOTUNE)
