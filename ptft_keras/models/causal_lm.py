"""`CausalLM`: next-token language model = causal `TransformerBackbone` + tied output head.

    logits = final_hidden @ token_embedding.T      # (batch, seq, vocab), float32

Training data is shifted by one with padding masked out; build it with
`ptft_keras.data.language_modeling.causal_lm_inputs` (arrays) or `causal_lm_dataset`
(tf.data). `generate(...)` samples continuations; `perplexity(...)` evaluates.

Context window: a prompt (or prompt + generated text) longer than the backbone's
`max_sequence_length` is **left-truncated**: the model sees only the most recent
`max_sequence_length` tokens (a sliding window, as nanoGPT's `generate` does). The returned
sequences always contain the whole prompt. Pass `truncate=False` to get a `ValueError`
instead.
"""

import keras
import numpy as np
from keras import ops

from ptft_keras.models.task import BackboneTask, lm_compile_defaults
from ptft_keras.models.transformer import TransformerBackbone

SAMPLERS = ("greedy", "top_k", "top_p")


@keras.saving.register_keras_serializable(package="ptft_keras")
class CausalLM(BackboneTask, keras.Model):
    """Causal language model over a causal `TransformerBackbone`, tied embeddings.

    Args:
        backbone: a `TransformerBackbone` built with `causal=True`.

    Inputs/outputs: `{"token_ids", "padding_mask"}` -> float32 logits `(batch, seq, vocab)`.
    Logits are computed in the policy's compute dtype (bf16 under mixed precision, tensor
    cores) and cast to float32 so the softmax cross-entropy is stable.
    """

    def __init__(self, backbone, **kwargs):
        if not isinstance(backbone, TransformerBackbone):
            raise ValueError(
                f"`backbone` must be a TransformerBackbone, received {type(backbone).__name__}."
            )
        if not backbone.causal:
            raise ValueError(
                "CausalLM needs a causal backbone (built with causal=True); received a "
                "bidirectional one, which would see the tokens it has to predict."
            )
        # === Layers ===
        self.backbone = backbone

        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)  # (batch, seq, hidden)
        logits = backbone.token_embedding(hidden, reverse=True)  # (batch, seq, vocab)
        logits = ops.cast(logits, "float32")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def compile(self, optimizer="auto", loss="auto", weighted_metrics="auto", **kwargs):
        """Defaults: AdamW(3e-4, weight decay 0.01), sparse CE on logits, token accuracy
        weighted by the padding sample weights."""
        super().compile(**lm_compile_defaults(optimizer, loss, weighted_metrics), **kwargs)

    def get_config(self):
        return self.task_config()

    # --- evaluation ------------------------------------------------------------------

    def perplexity(self, data, padding_mask=None, batch_size=32):
        """exp(mean next-token NLL) over all real (non-padding) predicted tokens.

        Args:
            data: token ids `(n, seq)` (array-like), a dict `{"token_ids", "padding_mask"}`,
                or an iterable (e.g. a `tf.data.Dataset`) of such batches.
            padding_mask: `(n, seq)` mask when `data` is an array; default all ones.
            batch_size: batch size when `data` is an array or dict.
        """
        # A compiled helper returns only the targets' log-probabilities (batch, seq): the
        # (batch, seq, vocab) logits never leave the device.
        ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        targets = keras.Input(shape=(None,), dtype="int32", name="targets")
        log_probs = ops.log_softmax(self({"token_ids": ids, "padding_mask": mask}), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1)[..., 0]
        scorer = keras.Model({"token_ids": ids, "padding_mask": mask, "targets": targets}, picked)
        total_nll, total_tokens = 0.0, 0.0
        for x, target_ids, weights in _iterate_batches(data, padding_mask, batch_size):
            batch = {"token_ids": x["token_ids"], "padding_mask": x["padding_mask"]}
            target_log_probs = scorer.predict_on_batch({**batch, "targets": target_ids})
            total_nll -= float((np.asarray(target_log_probs, "float64") * weights).sum())
            total_tokens += float(weights.sum())
        if total_tokens == 0:
            raise ValueError("perplexity got no real (non-padding) target tokens.")
        return float(np.exp(total_nll / total_tokens))

    # --- generation ------------------------------------------------------------------

    def generate(
        self,
        prompts,
        max_new_tokens=20,
        sampler="greedy",
        k=10,
        p=0.9,
        temperature=1.0,
        seed=None,
        end_token_id=None,
        pad_token_id=0,
        truncate=True,
    ):
        """Continue each prompt by up to `max_new_tokens` tokens.

        Args:
            prompts: a list of token-id lists (ragged), an int array `(batch, seq)`, or a
                dict `{"token_ids", "padding_mask"}` of right-padded prompts.
            sampler: `"greedy"` (argmax; deterministic), `"top_k"` (sample among the `k`
                most likely) or `"top_p"` (nucleus: the smallest set whose probability
                reaches `p`).
            temperature: logits are divided by it before `top_k` / `top_p` sampling.
            seed: int seed for sampling (same seed -> same samples).
            end_token_id: a row stops after emitting it (the id is kept in the output).
            pad_token_id: fills the returned `token_ids` after each row's end.
            truncate: left-truncate contexts longer than `max_sequence_length` (default);
                False raises a `ValueError` for a prompt that does not fit.

        Returns:
            dict `{"token_ids": int32 (batch, length), "padding_mask": bool (batch,
            length)}`, each row = its full prompt followed by its generated tokens.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; expected one of {SAMPLERS}.")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise ValueError(f"`max_new_tokens` must be an int >= 0, got {max_new_tokens!r}.")
        if max_new_tokens < 0:
            raise ValueError(f"`max_new_tokens` must be an int >= 0, got {max_new_tokens}.")
        if sampler == "top_k" and not (isinstance(k, int) and k >= 1):
            raise ValueError(f"`k` must be an int >= 1 for top_k sampling, got {k!r}.")
        if sampler == "top_p" and not 0.0 < p <= 1.0:
            raise ValueError(f"`p` must be in (0, 1] for top_p sampling, got {p!r}.")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
        rows = _prompt_rows(prompts)
        window = self.backbone.max_sequence_length
        longest = max(len(row) for row in rows)
        if not truncate and longest + max_new_tokens > window:
            raise ValueError(
                f"A prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds "
                f"the context window max_sequence_length={window}; shorten it or pass "
                "truncate=True to keep only the last tokens."
            )
        # One fixed buffer width -> the compiled predict function is traced once.
        width = min(window, longest + max_new_tokens)
        seed_generator = keras.random.SeedGenerator(seed) if sampler != "greedy" else None
        done = np.zeros(len(rows), dtype=bool)
        for _ in range(max_new_tokens):
            if done.all():
                break
            ids = np.full((len(rows), width), pad_token_id, dtype="int32")
            mask = np.zeros((len(rows), width), dtype="int32")
            last = np.zeros(len(rows), dtype="int64")
            for i, row in enumerate(rows):
                context = row[-width:]  # left truncation: the most recent tokens
                ids[i, : len(context)] = context
                mask[i, : len(context)] = 1
                last[i] = len(context) - 1
            # Compiled backbone pass; only the last real position of each row goes through
            # the vocabulary projection (a (batch, width, vocab) array would dominate).
            hidden = self.backbone.predict_on_batch({"token_ids": ids, "padding_mask": mask})
            hidden = np.asarray(hidden)[np.arange(len(rows)), last][:, None]  # (batch, 1, h)
            logits = self.backbone.token_embedding(hidden, reverse=True)[:, 0]  # (batch, vocab)
            next_ids = _sample(logits, sampler, k, p, temperature, seed_generator)
            for i in np.flatnonzero(~done):
                rows[i].append(int(next_ids[i]))
                done[i] = end_token_id is not None and next_ids[i] == end_token_id
        length = max(len(row) for row in rows)
        token_ids = np.full((len(rows), length), pad_token_id, dtype="int32")
        padding_mask = np.zeros((len(rows), length), dtype=bool)
        for i, row in enumerate(rows):
            token_ids[i, : len(row)] = row
            padding_mask[i, : len(row)] = True
        return {"token_ids": token_ids, "padding_mask": padding_mask}


def _sample(logits, sampler, k, p, temperature, seed_generator):
    """Next ids `(batch,)` from float logits `(batch, vocab)`; keras.ops, any backend."""
    logits = ops.convert_to_tensor(logits, dtype="float32")
    if sampler == "greedy":
        return ops.convert_to_numpy(ops.argmax(logits, axis=-1))
    logits = logits / temperature
    vocab = ops.shape(logits)[-1]
    if sampler == "top_k":
        kth_best = ops.top_k(logits, min(k, vocab))[0][:, -1:]  # (batch, 1)
        logits = ops.where(logits < kth_best, -np.inf, logits)
    else:  # top_p: keep the smallest prefix of sorted tokens whose mass reaches p
        sorted_logits = ops.flip(ops.sort(logits, axis=-1), axis=-1)  # descending
        probs = ops.softmax(sorted_logits, axis=-1)
        mass_before = ops.cumsum(probs, axis=-1) - probs  # mass of strictly better tokens
        keep = ops.cast(mass_before < p, "int32")  # always >= 1 kept (the best token)
        cutoff = ops.take_along_axis(
            sorted_logits, ops.sum(keep, axis=-1, keepdims=True) - 1, axis=-1
        )  # (batch, 1): smallest kept logit
        logits = ops.where(logits < cutoff, -np.inf, logits)
    samples = keras.random.categorical(logits, 1, seed=seed_generator)  # (batch, 1)
    return ops.convert_to_numpy(samples)[:, 0]


def _prompt_rows(prompts):
    """A list of python int lists (padding stripped) from any accepted prompt format."""
    if isinstance(prompts, dict):
        ids = np.asarray(prompts["token_ids"])
        mask = np.asarray(prompts.get("padding_mask", np.ones_like(ids))).astype(bool)
        rows = [list(map(int, r[m])) for r, m in zip(ids, mask, strict=True)]
    elif isinstance(prompts, (list, tuple)) and prompts and not np.isscalar(prompts[0]):
        rows = [list(map(int, np.asarray(r).reshape(-1))) for r in prompts]
    else:
        ids = np.asarray(prompts)
        if ids.ndim != 2:
            raise ValueError(
                f"prompts must be a (batch, seq) id array, a list of id lists or a dict; got "
                f"an array of shape {ids.shape}."
            )
        rows = [list(map(int, r)) for r in ids]
    if not rows or any(len(row) == 0 for row in rows):
        raise ValueError("generate needs at least one prompt and every prompt >= 1 token.")
    return rows


def _shifted(ids, mask):
    """(x, targets, weights) for next-token prediction from ids/mask `(batch, seq)`."""
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError(f"perplexity needs (batch, seq >= 2) token ids, got shape {ids.shape}.")
    x = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    return x, ids[:, 1:], (mask[:, 1:] * mask[:, :-1]).astype("float64")


def _iterate_batches(data, padding_mask, batch_size):
    """Yield (x, targets, weights) numpy batches from arrays, a dict, or an iterable of
    batches: raw ids / `{"token_ids", "padding_mask"}` dicts (shifted here) or
    `(x, y, sample_weight)` triples already shifted (`causal_lm_dataset`)."""
    batches = isinstance(data, list) and data and isinstance(data[0], (dict, tuple))
    if isinstance(data, dict) or hasattr(data, "shape") or (isinstance(data, list) and not batches):
        if isinstance(data, dict):
            ids, padding_mask = data["token_ids"], data.get("padding_mask")
        else:
            ids = data
        ids = np.asarray(ids, dtype="int32")
        mask = np.ones_like(ids) if padding_mask is None else np.asarray(padding_mask)
        mask = mask.astype("int32")
        for start in range(0, len(ids), batch_size):
            stop = start + batch_size
            yield _shifted(ids[start:stop], mask[start:stop])
        return
    for batch in data:
        if isinstance(batch, tuple) and len(batch) >= 2:  # already shifted (x, y[, weights])
            x = {key: np.asarray(value, dtype="int32") for key, value in batch[0].items()}
            targets = np.asarray(batch[1], dtype="int32")
            if len(batch) > 2:
                weights = np.asarray(batch[2], dtype="float64")
            else:
                weights = x["padding_mask"].astype("float64")
            yield x, targets, weights
            continue
        if isinstance(batch, dict):
            ids = np.asarray(batch["token_ids"], dtype="int32")
            mask = np.asarray(batch.get("padding_mask", np.ones_like(ids)), dtype="int32")
        else:
            ids = np.asarray(batch, dtype="int32")
            mask = np.ones_like(ids)
        yield _shifted(ids, mask)
