"""The text recipe: tokenizer, Transformer LM pretraining, few-label classifier fine-tuning.

    recipe = TextRecipe()                                          # measured defaults
    tokenizer = train_text_tokenizer(corpus_texts, recipe)
    lm = build_language_model(tokenizer.vocabulary_size(), recipe, seed=0)
    pretrain_on_corpus(lm, documents, tokenizer, recipe)   # a tf.data corpus, a budget
    clf = make_text_classifier(lm, label_names, recipe, pretrained=True)  # or scratch
    finetune_text_classifier(clf, ids, labels, recipe, epochs=20)
    accuracy(clf, model_inputs(dev_ids), dev_labels)      # ptft_keras.training.metrics

Works on any texts and any number of classes (`label_names`); SST-2 is one caller
(`examples/text_sentiment.py`). Defaults and why: docs/text.md. `pretrain_on_corpus` is
the one corpus pretraining (the CLI's `ptft pretrain text`, with or without a keras-hub
`--backbone`, the example and the benchmark), on `training/pretraining.pretrain_lm`;
`pretrain_language_model` trains on a small in-memory array of token ids. Fine-tuning is
AdamW with linear warmup then cosine decay and clipping (`training/optimizers.adamw`);
`layer_decay` < 1 gives lower blocks smaller learning rates (LLRD, `LayerwiseAdamW`).
Batches are length-bucketed (`make_text_dataset`), so they vary in number per epoch: every
`fit` repeats the data and fixes `steps_per_epoch`. UDA is in `training/semi_supervised`.
"""

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
from ptft_keras.training.batches import fit_repeated
from ptft_keras.training.optimizers import adamw
from ptft_keras.training.pretraining import pretrain_lm
from ptft_keras.training.strategies import strategy_scope, xla_option

OBJECTIVES = ("causal", "masked")
SEMI_SUPERVISED = ("none", "uda")
FEW_LABELS = 5000  # up to this many labels, fine-tuning runs few_epochs (else all_epochs)


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

    def finetune_epochs(self, labels):
        """Fine-tuning epochs for `labels` labeled texts: `few_epochs` up to FEW_LABELS,
        else `all_epochs` (the command line's default when --epochs is not given)."""
        return self.few_epochs if labels <= FEW_LABELS else self.all_epochs

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
    with strategy_scope(strategy):
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


def pretrain_language_model(
    lm, corpus_ids, recipe, seed=0, strategy=None, callbacks=None, initial_epoch=0
):
    """Pretrain `lm` on token ids `(N, seq_len)` for `recipe.pretrain_epochs` epochs
    (from `initial_epoch` when resuming)."""
    causal = isinstance(lm, CausalLM)
    steps = max(1, len(corpus_ids) // recipe.pretrain_batch)
    with strategy_scope(strategy):
        lm.compile(
            optimizer=adamw(recipe.pretrain_lr, steps * recipe.pretrain_epochs),
            jit_compile="auto",  # bucketed lengths: XLA would compile once per length
        )
    data = make_text_dataset(corpus_ids, None, recipe.pretrain_batch, True, seed, repeat=True)
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
    with strategy_scope(strategy):
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
    model, ids, labels, recipe, epochs, pretrained=True, seed=0, strategy=None, callbacks=None,
    initial_epoch=0,
):  # fmt: skip
    """Fine-tune `model` on token ids and integer labels; returns the History.

    Peak LR `recipe.lr` with `recipe.layer_decay` for a pretrained model, `scratch_lr`
    without decay for a random one. `initial_epoch`: the epochs a resumed run had done
    (its checkpoint callback restores the weights, optimizer and random states; the
    data stream skips their batches).
    """
    steps = max(1, len(ids) // recipe.batch_size)
    peak, decay = (recipe.lr, recipe.layer_decay) if pretrained else (recipe.scratch_lr, 1.0)
    with strategy_scope(strategy):
        model.compile(
            optimizer=adamw(peak, steps * epochs, model, decay),
            jit_compile="auto",  # bucketed lengths: XLA would compile once per length
        )
    data = make_text_dataset(ids, labels, recipe.batch_size, True, seed, repeat=True)
    return fit_repeated(model, data, epochs, steps, callbacks, initial_epoch=initial_epoch)


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
    steps=None,
):
    """Pretrain `lm` on a document stream (a `tf.data.Dataset` of strings) until `tokens`
    (default `recipe.pretrain_tokens`), `steps` or `seconds`, by `pretrain_lm` (its
    docstring: schedules, logs, checkpoints). Returns the History.

    The toolkit's own LM (`tokenizer` given): documents are tokenised and packed into full
    rows of `recipe.pretrain_seq_len` in `tf.data` (`packed_token_rows`), the held-out
    loss is Keras' validation on `validation_documents` packed the same way (`val_loss`,
    `val_accuracy`), and `reverse=True` pretrains a backward LM (every document right to
    left; its classifier takes `reverse_tokens=True`). A keras-hub `MaskedLM` / `CausalLM`
    task (`tokenizer=None`): batches of raw documents that its preprocessor masks or
    shifts (one document a row, padded), and `val_loss` is the loss per target token on
    `validation_documents` preprocessed once (`held_out_loss`, the same masks every time).
    """
    if tokens is None and steps is None and seconds is None:
        tokens = recipe.pretrain_tokens
    if tokenizer is None:  # keras-hub: the task's preprocessor tokenises raw strings
        length = lm.preprocessor.sequence_length  # one document a row, padded
        held = validation_documents if validation_documents is not None else documents.take(0)
        # Raw strings: keras-hub's preprocessor masks / shifts them in tf.data.
        train = documents.shuffle(10_000, seed=seed).batch(recipe.pretrain_batch)
        held_out = [lm.preprocessor(batch) for batch in held.batch(recipe.pretrain_batch)]
        family = dict(held_out=held_out)  # XLA left to Keras ("auto")
    else:
        length = recipe.pretrain_seq_len  # packed rows
        train, held_out = _packed_batches(
            lm, documents, validation_documents, tokenizer, recipe, seed, reverse
        )
        family = dict(
            validation_data=held_out, jit_compile=xla_option(True if recipe.xla else None)
        )
    return pretrain_lm(
        lm,
        train,
        peak_lr=recipe.pretrain_lr,
        tokens_per_step=recipe.pretrain_batch * length,
        steps_per_epoch=recipe.steps_per_epoch,
        tokens=tokens,
        steps=steps,
        seconds=seconds,
        strategy=strategy,
        callbacks=callbacks,
        initial_epoch=initial_epoch,
        **family,
    )


def _packed_batches(lm, documents, validation_documents, tokenizer, recipe, seed, reverse):
    """Training batches of packed token rows and the held-out ones (or None, cached)."""
    from ptft_keras.data.language_modeling import packed_lm_dataset, packed_token_rows

    causal = isinstance(lm, CausalLM)
    row_length = recipe.pretrain_seq_len + (1 if causal else 0)  # causal: x, y shift by one

    def batches(docs, shuffle):
        rows = packed_token_rows(
            docs, tokenizer, row_length, 10_000 if shuffle else 0, seed, reverse=reverse
        )
        if shuffle:  # training: at least one full batch (the first rows, unshuffled: cheap)
            first = packed_token_rows(docs, tokenizer, row_length, 0).take(recipe.pretrain_batch)
            first = int(first.reduce(0, lambda n, _: n + 1))
            if first < recipe.pretrain_batch:
                raise ValueError(
                    f"The corpus packs into {first} rows of {row_length} tokens, fewer than "
                    f"one batch of {recipe.pretrain_batch} (pretrain_batch, --pretrain-batch): "
                    f"pretrain on more text, or with a smaller batch or shorter rows "
                    f"(pretrain_seq_len, --pretrain-seq-len)."
                )
        return packed_lm_dataset(
            rows,
            recipe.objective,
            recipe.pretrain_batch,
            shuffle_rows=1_000 if shuffle else 0,
            seed=seed,
            vocabulary_size=lm.backbone.vocabulary_size,
            selection_rate=recipe.mask_rate,
            drop_remainder=shuffle,  # held out: every row counts
        )

    held_out = None  # a fixed set of rows, counted once
    if validation_documents is not None:
        held_out = batches(validation_documents, False).cache()
    return batches(documents, True), held_out
