"""The text recipe: tokenizer, Transformer LM pretraining, few-label classifier fine-tuning.

    recipe = TextRecipe()                                          # measured defaults
    tokenizer = train_text_tokenizer(corpus_texts, recipe)
    corpus_ids = encode_texts(tokenizer, corpus_texts, recipe.seq_len)
    lm = build_language_model(tokenizer.vocabulary_size(), recipe, seed=0)
    pretrain_language_model(lm, corpus_ids, recipe)               # causal or masked LM
    clf = make_text_classifier(lm, label_names, recipe, pretrained=True)  # or scratch
    finetune_text_classifier(clf, ids, labels, recipe, epochs=20)
    text_accuracy(clf, dev_ids, dev_labels)

Works on any texts and any number of classes (`label_names`); SST-2 is one caller
(`examples/text_sentiment.py`). Defaults and why: docs/text.md. Fine-tuning is
AdamW with linear warmup then cosine decay and clipping; `layer_decay` < 1 gives lower
blocks smaller learning rates (LLRD, `LayerwiseAdamW`). Batches are length-bucketed
(`make_text_dataset`), so they vary in number per epoch: every `fit` repeats the data
and fixes `steps_per_epoch`.
"""

import contextlib
import dataclasses

import keras
import numpy as np

from ptft_keras.data.language_modeling import (
    causal_lm_inputs,
    make_mask_generator,
    masked_lm_inputs,
)
from ptft_keras.data.text import make_text_dataset
from ptft_keras.data.tokenizer import CLS_ID, MASK_ID, SEP_ID, TextEncoder, train_tokenizer
from ptft_keras.models.causal_lm import CausalLM
from ptft_keras.models.masked_lm import MaskedLM
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.training.layerwise_lr import (
    LayerwiseAdamW,
    layerwise_lr_multipliers,
    transformer_lr_groups,
)
from ptft_keras.training.schedules import warmup_then_decay
from ptft_keras.training.strategies import xla_option

OBJECTIVES = ("causal", "masked")
SEMI_SUPERVISED = ("none", "uda")


@dataclasses.dataclass
class TextRecipe:
    """Every setting of the text recipe, with the measured defaults (docs/text.md)."""

    normalizer: str = "sst"  # what the tokenizer applies first (ptft_keras.data.tokenizer)
    vocab_size: int = 4000  # IMDb LM, validation, 1,000 labels: 69.3% vs 68.5% with 8k
    seq_len: int = 64  # SST-2 dev sentences are <= 56 words
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 512
    dropout: float = 0.1
    pooling: str = "auto"  # last real token for a causal backbone, mean otherwise
    objective: str = "causal"  # beat masked at 1,000 SST-2 labels: every token is a target
    mask_rate: float = 0.15  # masked LM selection rate
    pretrain_epochs: int = 20  # over a small in-memory corpus (pretrain_language_model)
    pretrain_batch: int = 64
    pretrain_lr: float = 2e-3
    pretrain_seq_len: int = 128  # packed corpus rows (pretrain_on_corpus)
    pretrain_tokens: int = 14_000_000  # the corpus budget (pretrain_on_corpus)
    steps_per_epoch: int = 200  # corpus pretraining: a log line and checkpoint per this many
    tokenizer_documents: int = 10_000  # corpus documents the tokenizer is trained on
    few_epochs: int = 20  # fine-tuning epochs for a numeric label budget
    all_epochs: int = 3  # ... for all labels
    batch_size: int = 32
    lr: float = 1e-4  # peak LR, pretrained fine-tune (IMDb LM, 1,000 labels, validation
    # split: 69.3% mean of 2 draws vs 68.0% at 3e-4)
    layer_decay: float = 1.0  # LR x this per block down (pretrained); 1 = off
    scratch_lr: float = 1e-3  # peak LR, from scratch
    xla: bool = True  # XLA for the fixed-shape steps: corpus pretraining and UDA, 1.3x
    # the tokens/s on 2 CPU cores (benchmarks/README.md); the bucketed fine-tuning
    # batches would recompile per length (3 min instead of 50 s), so they never use it
    semi_supervised: str = "none"  # or "uda": consistency on unlabeled texts after fine-tuning
    uda_steps: int = 600
    uda_mu: int = 3  # unlabeled texts per labeled one in a step
    uda_threshold: float = 0.9
    uda_lr: float = 1e-4
    uda_mask_rate: float = 0.1  # TokenAugmentation: [MASK] this share of tokens
    uda_replace_rate: float = 0.1  # ... and a random token for this share

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}.")
        if self.semi_supervised not in SEMI_SUPERVISED:
            raise ValueError(
                f"semi_supervised must be one of {SEMI_SUPERVISED}, got {self.semi_supervised!r}."
            )

    def smoke(self):
        """The same recipe shrunk to seconds (tests, `--smoke`)."""
        return dataclasses.replace(
            self,
            vocab_size=300,
            seq_len=32,
            hidden=16,
            layers=1,
            heads=2,
            intermediate=32,
            pretrain_epochs=1,
            few_epochs=2,
            all_epochs=1,
            uda_steps=4,
        )


def max_length(recipe):
    """The backbone's position table: long enough for pretraining rows and fine-tuning."""
    return max(recipe.seq_len, recipe.pretrain_seq_len)


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def train_text_tokenizer(texts, recipe):
    """A WordPiece tokenizer of `recipe.vocab_size` trained on `texts` (str or tf.data)."""
    return train_tokenizer(texts, vocabulary_size=recipe.vocab_size, normalizer=recipe.normalizer)


def encode_texts(tokenizer, texts, sequence_length):
    """Texts -> token ids `(N, sequence_length)` int32 (`[CLS] ... [SEP]`, padded)."""
    encoder = TextEncoder(tokenizer, sequence_length)
    return encoder(list(map(str, texts)))["token_ids"].numpy()


def model_inputs(ids):
    """Token ids -> the classifier's input dict (padding = id 0)."""
    ids = np.asarray(ids, "int32")
    return {"token_ids": ids, "padding_mask": (ids != 0).astype("int32")}


def adamw(peak, total_steps, model=None, layer_decay=1.0):
    """AdamW + warmup-then-cosine; with `layer_decay` < 1, lower blocks train slower (LLRD)."""
    kwargs = dict(learning_rate=warmup_then_decay(peak, total_steps), weight_decay=0.01)
    if layer_decay == 1.0:
        return keras.optimizers.AdamW(clipnorm=1.0, **kwargs)
    groups = transformer_lr_groups(model.backbone.num_layers)
    multipliers = layerwise_lr_multipliers(model, groups, layer_decay)
    return LayerwiseAdamW(lr_multipliers=multipliers, clipnorm=1.0, **kwargs)


def build_backbone(vocabulary_size, recipe, causal):
    return TransformerBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=recipe.layers,
        num_heads=recipe.heads,
        hidden_dim=recipe.hidden,
        intermediate_dim=recipe.intermediate,
        max_sequence_length=max_length(recipe),
        dropout=recipe.dropout,
        causal=causal,
    )


def build_language_model(vocabulary_size, recipe, seed=0, strategy=None):
    """A fresh `CausalLM` or `MaskedLM` (by `recipe.objective`), built in the scope."""
    with _scope(strategy):
        keras.utils.set_random_seed(seed)
        backbone = build_backbone(vocabulary_size, recipe, recipe.objective == "causal")
        return CausalLM(backbone) if recipe.objective == "causal" else MaskedLM(backbone)


def _causal_batch(x):  # {"token_ids", "padding_mask"} -> (x, y, sample_weight)
    return causal_lm_inputs(x["token_ids"], x["padding_mask"])


def _masked_batches(mask_generator):
    # A closure, not functools.partial: autograph converted a partial of this function as
    # `_causal_batch` (TypeError: unexpected keyword argument 'mask_generator').
    def masked_batch(x):
        return masked_lm_inputs(x["token_ids"], x["padding_mask"], mask_generator=mask_generator)

    return masked_batch


def fit_repeated(model, data, epochs, steps_per_epoch, callbacks=None, verbose=0, initial_epoch=0):
    """`fit` on a repeated variable-batch dataset with a fixed number of steps an epoch."""
    return model.fit(
        data.repeat(),
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
        callbacks=callbacks,
    )


def pretrain_language_model(
    lm, corpus_ids, recipe, seed=0, strategy=None, callbacks=None, initial_epoch=0
):
    """Pretrain `lm` on token ids `(N, seq_len)` for `recipe.pretrain_epochs` epochs
    (from `initial_epoch` when resuming)."""
    causal = isinstance(lm, CausalLM)
    steps = max(1, len(corpus_ids) // recipe.pretrain_batch)
    with _scope(strategy):
        lm.compile(
            optimizer=adamw(recipe.pretrain_lr, steps * recipe.pretrain_epochs),
            jit_compile="auto",  # bucketed lengths: XLA would compile once per length
        )
    data = make_text_dataset(corpus_ids, None, recipe.pretrain_batch, True, seed)
    if causal:
        data = data.map(_causal_batch)
    else:
        masker = make_mask_generator(
            lm.backbone.vocabulary_size,
            MASK_ID,
            lm.backbone.max_sequence_length,
            special_token_ids=(CLS_ID, SEP_ID),
            selection_rate=recipe.mask_rate,
            seed=seed,
        )
        data = data.map(_masked_batches(masker))
    return fit_repeated(
        lm, data, recipe.pretrain_epochs, steps, callbacks, initial_epoch=initial_epoch
    )


def make_text_classifier(
    lm, label_names, recipe, pretrained=True, seed=1, strategy=None, reverse_tokens=False
):
    """`TextClassifier.from_pretrained(lm)` (strict, reported transfer) or, with
    `pretrained=False`, the same architecture with random weights (the baseline);
    `reverse_tokens=True` for a backward LM (`pretrain_on_corpus(reverse=True)`)."""
    with _scope(strategy):
        keras.utils.set_random_seed(seed)
        if pretrained:
            return TextClassifier.from_pretrained(
                lm,
                len(label_names),
                vocabulary_size=lm.backbone.vocabulary_size,
                sequence_length=recipe.seq_len,
                pooling=recipe.pooling,
                label_names=label_names,
                reverse_tokens=reverse_tokens,
            )
        backbone = TransformerBackbone.from_config(lm.backbone.get_config())
        return TextClassifier(
            backbone,
            len(label_names),
            pooling=recipe.pooling,
            label_names=label_names,
            sequence_length=recipe.seq_len,
            reverse_tokens=reverse_tokens,
        )


def finetune_text_classifier(
    model, ids, labels, recipe, epochs, pretrained=True, seed=0, strategy=None, callbacks=None
):
    """Fine-tune `model` on token ids and integer labels; returns the History.

    Peak LR `recipe.lr` with `recipe.layer_decay` for a pretrained model, `scratch_lr`
    without decay for a random one.
    """
    steps = max(1, len(ids) // recipe.batch_size)
    peak, decay = (recipe.lr, recipe.layer_decay) if pretrained else (recipe.scratch_lr, 1.0)
    with _scope(strategy):
        model.compile(
            optimizer=adamw(peak, steps * epochs, model, decay),
            jit_compile="auto",  # bucketed lengths: XLA would compile once per length
        )
    data = make_text_dataset(ids, labels, recipe.batch_size, True, seed)
    return fit_repeated(model, data, epochs, steps, callbacks)


def uda(
    model,
    ids,
    labels,
    unlabeled_ids,
    recipe,
    seed=0,
    strategy=None,
    callbacks=None,
    verbose=0,
):
    """UDA-style consistency training (Xie et al. 2019) of a fine-tuned text classifier.

    Each step: `recipe.batch_size` labeled texts and `uda_mu` times as many unlabeled
    ones; an unlabeled text whose prediction (clean text) reaches `uda_threshold` trains
    its augmented copy (`TokenAugmentation`: masking, random replacement, one masked
    span) towards that label. AdamW, warmup then cosine to 0 over `uda_steps`, peak
    `uda_lr`. Token ids are `(N, seq_len)` arrays (`encode_texts`). Returns the History.
    """
    from ptft_keras.data.tokenizer import CLS_ID, MASK_ID, PAD_ID, RESERVED_TOKENS, SEP_ID
    from ptft_keras.layers.token_augmentation import TokenAugmentation
    from ptft_keras.training.semi_supervised import train_consistency

    strong = TokenAugmentation(
        vocabulary_size=model.backbone.vocabulary_size,
        mask_token_id=MASK_ID,
        special_ids=(PAD_ID, CLS_ID, SEP_ID),
        mask_rate=recipe.uda_mask_rate,
        replace_rate=recipe.uda_replace_rate,
        min_replacement_id=len(RESERVED_TOKENS),
        seed=seed,
    )
    with _scope(strategy):
        optimizer = adamw(recipe.uda_lr, recipe.uda_steps)
    return train_consistency(
        model,
        np.asarray(ids, "int32"),
        np.asarray(labels),
        np.asarray(unlabeled_ids, "int32"),
        weak=None,
        strong=strong,
        steps=recipe.uda_steps,
        batch_size=recipe.batch_size,
        mu=recipe.uda_mu,
        threshold=recipe.uda_threshold,
        prepare=model_inputs,
        seed=seed,
        strategy=strategy,
        callbacks=callbacks,
        verbose=verbose,
        optimizer=optimizer,
        jit_compile=xla_option(True if recipe.xla else None),
    )


def text_accuracy(model, ids, labels, batch_size=256):
    """Accuracy of `model` (logits; compiled or not) on token ids and integer labels."""
    logits = model.predict(model_inputs(ids), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


class TimeBudgetSchedule(keras.callbacks.Callback):
    """Warmup then cosine decay over *wall time*: the learning rate at each step follows
    the fraction of `seconds` already spent, so a run stopped by a time budget (`Budget`)
    ends with its rate decayed, whatever the machine's speed."""

    def __init__(self, peak, seconds, warmup_fraction=0.02):
        super().__init__()
        self.peak, self.seconds, self.warmup = float(peak), float(seconds), warmup_fraction

    def on_train_begin(self, logs=None):
        import time

        self.clock, self.start = time.perf_counter, time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        done = min(1.0, (self.clock() - self.start) / self.seconds)
        if done < self.warmup:
            rate = self.peak * max(done / self.warmup, 1e-3)
        else:
            rate = self.peak * 0.5 * (1 + np.cos(np.pi * (done - self.warmup) / (1 - self.warmup)))
        self.model.optimizer.learning_rate.assign(rate)


def pretrain_on_corpus(
    lm,
    documents,
    tokenizer,
    recipe,
    tokens=None,
    seconds=None,
    seed=0,
    strategy=None,
    callbacks=(),
    validation_documents=None,
    initial_epoch=0,
    reverse=False,
):
    """Pretrain `lm` on a document stream: tokenised and packed in `tf.data`
    (`packed_token_rows`), until `tokens` (default `recipe.pretrain_tokens`) or `seconds`.

    With a token budget the learning rate warms up then decays (cosine) over exactly the
    steps the budget buys; with a time budget it follows the elapsed time
    (`TimeBudgetSchedule`). Every `recipe.steps_per_epoch` steps is an "epoch": a log line
    with loss, accuracy, tokens seen and tokens/s (`Budget`), a checkpoint, and the
    held-out loss on `validation_documents` (a `tf.data.Dataset` of strings) if given.
    `reverse=True` pretrains a backward LM (every document right to left; its classifier
    takes `reverse_tokens=True`). Returns the History.
    """
    from ptft_keras.data.language_modeling import packed_lm_dataset, packed_token_rows
    from ptft_keras.training.callbacks import UNTIL_STOPPED, Budget

    causal = isinstance(lm, CausalLM)
    row_length = recipe.pretrain_seq_len + (1 if causal else 0)  # causal: x, y shift by one

    def batches(docs, shuffle):
        rows = packed_token_rows(
            docs, tokenizer, row_length, 10_000 if shuffle else 0, seed, reverse=reverse
        )
        return packed_lm_dataset(
            rows,
            recipe.objective,
            recipe.pretrain_batch,
            shuffle_rows=1_000 if shuffle else 0,
            seed=seed,
            vocabulary_size=lm.backbone.vocabulary_size,
            selection_rate=recipe.mask_rate,
        )

    tokens_per_step = recipe.pretrain_batch * recipe.pretrain_seq_len
    if seconds is None:
        total_steps = max(1, (tokens or recipe.pretrain_tokens) // tokens_per_step)
        epochs = -(-total_steps // recipe.steps_per_epoch)
        make_optimizer = lambda: adamw(recipe.pretrain_lr, total_steps)
        extra = [Budget(max_steps=total_steps, tokens_per_step=tokens_per_step)]
    else:
        epochs = UNTIL_STOPPED  # the time budget stops it
        make_optimizer = lambda: keras.optimizers.AdamW(
            recipe.pretrain_lr, weight_decay=0.01, clipnorm=1.0
        )
        extra = [
            TimeBudgetSchedule(recipe.pretrain_lr, seconds),
            Budget(max_seconds=seconds, tokens_per_step=tokens_per_step),
        ]
    with _scope(strategy):  # the optimizer's variables belong to the strategy too
        lm.compile(optimizer=make_optimizer(), jit_compile=xla_option(True if recipe.xla else None))
    validation = {}
    if validation_documents is not None:  # a fixed set of rows, counted once
        held_out = batches(validation_documents, False).cache()
        steps = sum(1 for _ in held_out)
        if steps:
            # Keras keeps the validation iterator across epochs when given the steps.
            validation = dict(validation_data=held_out.repeat(), validation_steps=steps)
    return lm.fit(
        batches(documents, True).repeat(),
        epochs=epochs,
        steps_per_epoch=recipe.steps_per_epoch,
        initial_epoch=initial_epoch,
        callbacks=[*extra, *callbacks],  # Budget first: its tokens/s reach the loggers
        verbose=0,
        shuffle=False,  # the pipeline shuffles
        **validation,
    )
