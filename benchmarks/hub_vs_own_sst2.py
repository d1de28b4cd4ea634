"""SST-2 with few labels: keras-hub BERT-Tiny (random local preset + continued MLM) vs the
toolkit's own text recipe, both pretrained on the same corpus for the same budget (issue 14).

    python -m benchmarks.hub_vs_own_sst2 --smoke                       # about a minute, CPU
    python -m benchmarks.hub_vs_own_sst2 --minutes 12 --json sst2.json # the measurement

Arms. `hub-bert`: a `keras_hub.models.BertBackbone` of BERT-Tiny shape with random weights
and a WordPiece vocabulary from keras-hub's `compute_word_piece_vocabulary` (lowercased) on
the sample the toolkit's recipe trains its tokenizer on (the first `tokenizer_documents`
corpus documents + the SST-2 train sentences), written with `save_to_preset`, loaded back
with `hub_masked_lm(preset_dir)` and trained by keras-hub's MaskedLM task (its preprocessor:
each document truncated to 128 tokens, 15% selected, 80/10/10) with `train_on_batch`, in a
loop that counts the non-padding tokens of every batch fed (`padding_mask` sums, [CLS] and
[SEP] included) and stops at the budget; classifier: `hub_text_classifier` on the
pretrained preset (keras-hub's `BertTextClassifier`: [CLS] pooler, dropout, logits).
`own`: the default `TextRecipe` (causal `TransformerBackbone`) pretrained by
`pretrain_on_corpus` on packed rows (tokens = steps x batch x 128, no padding), or loaded
with `--own-lm RUN` (a `ptft pretrain text` run, or the text example's `--save-lm`).

Same for both: corpus (500 documents held out), batch 64 x 128, AdamW (peak
`pretrain_lr`, weight decay 0.01, clipnorm 1) with the recipe's own schedule for the budget
(`TimeBudgetSchedule` for `--minutes`, `warmup_then_decay` for `--tokens`, driven by
tokens seen for BERT), XLA as the recipe sets it; one class-balanced draw of `--labels` per
seed (`sample_few_labels` on indices, so the same sentences for every arm and TF-IDF);
fine-tuning `few_epochs` epochs of `len // 32` steps at batch 32, AdamW warmup + cosine
(`optimizers.adamw`, peak `--lr`), classifier seed `seed + 1`; accuracy on dev.tsv (or the
872 of `--validation`). Held-out losses are per predicted token (masked tokens for BERT,
every next token for own): different tasks, not comparable with each other.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ptft_keras.cli.runs import load_text_lm  # noqa: E402
from ptft_keras.data.datasets import imdb, sst2  # noqa: E402
from ptft_keras.data.language_modeling import packed_lm_dataset, packed_token_rows  # noqa: E402
from ptft_keras.data.splits import sample_few_labels  # noqa: E402
from ptft_keras.models import hub  # noqa: E402
from ptft_keras.models.hub_presets import random_bert_preset  # noqa: E402
from ptft_keras.training.baselines import tfidf_logistic_regression  # noqa: E402
from ptft_keras.training.batches import fit_repeated  # noqa: E402
from ptft_keras.training.callbacks import TimeBudgetSchedule  # noqa: E402
from ptft_keras.training.metrics import accuracy  # noqa: E402
from ptft_keras.training.optimizers import adamw  # noqa: E402
from ptft_keras.training.pretraining import held_out_loss  # noqa: E402
from ptft_keras.training.recipes import text as recipe_lib  # noqa: E402
from ptft_keras.training.schedules import warmup_then_decay  # noqa: E402
from ptft_keras.training.strategies import xla_option  # noqa: E402

HELD_OUT_DOCUMENTS = 500  # corpus documents kept out of pretraining (as the example does)
LABEL_NAMES = sst2.LABELS.names
NOTES = [
    "held-out losses: masked-token loss (hub-bert) vs next-token loss (own): not comparable",
    "hub-bert sees each document's first 128 tokens (keras-hub's MaskedLMPreprocessor does "
    "not pack), own sees whole documents packed into rows",
    "tokenizers: keras-hub lowercase + BERT punctuation split (hub-bert) vs the toolkit's "
    "'sst' normalizer; compute_word_piece_vocabulary only approximates the size "
    "(see the vocab column)",
    "classifier: [CLS] + keras-hub's pooler (not trained by MLM) vs own last-real-token "
    "pooling; fixed-length padding (hub-bert) vs length-bucketed batches (own)",
    "pretraining seconds include the first step's compilation for both; the tokenizers "
    "and the held-out evaluation are outside the budget",
]


def parse_args(argv=None):
    recipe = recipe_lib.TextRecipe()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=sst2.DEFAULT_SST2_DIR, help="train.tsv + dev.tsv")
    p.add_argument("--corpus", default=None, help=f"default {imdb.DEFAULT_IMDB_DIR}")
    p.add_argument("--minutes", type=float, default=12.0, help="pretraining wall time per arm")
    p.add_argument("--tokens", type=int, default=None, help="a token budget instead")
    p.add_argument("--labels", type=int, default=1000, help="class-balanced label budget")
    p.add_argument("--seeds", default="0,1,2", help="each draws its own labels")
    p.add_argument("--lr", type=float, default=recipe.lr, help="fine-tuning peak LR, both")
    p.add_argument(
        "--hub-pretrain-lr",
        type=float,
        default=None,
        help="BERT's peak pretraining LR (default: the recipe's, as for own)",
    )
    p.add_argument("--vocab-size", type=int, default=recipe.vocab_size, help="both arms")
    p.add_argument("--validation", action="store_true", help="score on 872 held out of train")
    p.add_argument("--own-lm", default=None, help="a pretrain run dir: skip own pretraining")
    p.add_argument("--preset-dir", default=None, help="where the BERT presets go (default tmp)")
    p.add_argument("--json", default=None, help="write the numbers here")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: about a minute")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.recipe = dataclasses.replace(recipe, vocab_size=args.vocab_size, lr=args.lr)
    # BERT-Tiny (hub_presets.BERT_TINY): the keras-hub model closest in size to TextRecipe
    # (2 layers, 128 wide, MLP 512); it has 2 heads, ours 4.
    args.bert = dict(max_sequence_length=recipe_lib.max_length(args.recipe))
    if args.smoke:  # shrink the real configuration, as examples/text_sentiment.py does
        r = dataclasses.replace(args.recipe.smoke(), steps_per_epoch=5, tokenizer_documents=200)
        args.recipe, args.tokens, args.labels = r, args.tokens or 20_000, 20
        args.bert = dict(
            num_layers=r.layers,
            hidden_dim=r.hidden,
            num_heads=r.heads,
            intermediate_dim=r.intermediate,
            max_sequence_length=r.pretrain_seq_len,
        )
    if args.labels <= 0 or args.labels % 2:
        raise ValueError(f"--labels must be a positive even number, got {args.labels}.")
    args.seconds = None if args.tokens else args.minutes * 60
    return args


START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", flush=True)


def pretrain_own(args, documents, held_out, sample):
    recipe, seed = args.recipe, args.seeds[0]
    info = {"arm": "own", "tokens": None, "seconds": None}
    if args.own_lm:
        tokenizer, lm, _ = load_text_lm(args.own_lm)
        if not lm.backbone.causal:
            raise ValueError(f"--own-lm {args.own_lm!r} holds a masked LM; expected causal.")
        info["note"] = f"loaded from {args.own_lm}"
    else:
        tokenizer = recipe_lib.train_text_tokenizer(sample, recipe)
        lm = recipe_lib.build_language_model(tokenizer.vocabulary_size(), recipe, seed)
        log(f"own: pretraining {lm.backbone.count_params():,} backbone params")
        start = time.perf_counter()  # no validation_documents: evaluating would eat the budget
        history = recipe_lib.pretrain_on_corpus(
            lm, documents, tokenizer, recipe, tokens=args.tokens, seconds=args.seconds, seed=seed
        )
        info.update(seconds=time.perf_counter() - start, tokens=history.history["tokens"][-1])
    rows = packed_token_rows(held_out, tokenizer, recipe.pretrain_seq_len + 1, 0, seed)
    info["held_out_loss"] = held_out_loss(lm, packed_lm_dataset(rows, "causal", 64, 0))
    info.update(params=lm.backbone.count_params(), vocab=tokenizer.vocabulary_size())
    return info, lm, tokenizer


def pretrain_hub(args, documents, held_out, sample, preset_dir):
    lr = args.hub_pretrain_lr or args.recipe.pretrain_lr
    recipe, seed = dataclasses.replace(args.recipe, pretrain_lr=lr), args.seeds[0]
    random_dir, pretrained_dir = (os.path.join(preset_dir, n) for n in ("random", "pretrained"))
    _, vocab = random_bert_preset(
        random_dir, sample, args.vocab_size, seed, recipe.dropout, **args.bert
    )
    mlm = hub.hub_masked_lm(random_dir, sequence_length=args.bert["max_sequence_length"])
    mlm.compile(
        optimizer=keras.optimizers.AdamW(recipe.pretrain_lr, weight_decay=0.01, clipnorm=1.0),
        jit_compile=xla_option(True if recipe.xla else None),
    )
    log(f"hub-bert: pretraining {mlm.backbone.count_params():,} backbone params")
    seconds, tokens = masked_lm_loop(mlm, documents, recipe, args.tokens, args.seconds, seed)
    docs = [d.decode("utf-8") for d in held_out.as_numpy_iterator()]
    batches = [mlm.preprocessor(tf.constant(docs[i : i + 64])) for i in range(0, len(docs), 64)]
    loss = held_out_loss(mlm, batches)  # masks drawn once (seeded above), like the batches
    mlm.backbone.save_to_preset(pretrained_dir)
    mlm.preprocessor.tokenizer.save_to_preset(pretrained_dir)
    info = {"arm": "hub-bert", "tokens": tokens, "seconds": seconds, "held_out_loss": loss}
    info.update(params=mlm.backbone.count_params(), vocab=len(vocab), pretrain_lr=lr)
    return info, pretrained_dir


def masked_lm_loop(mlm, documents, recipe, tokens, seconds, seed):
    """keras-hub MaskedLM steps until `tokens` non-padding tokens or `seconds` are spent."""
    preprocess, batch = mlm.preprocessor, recipe.pretrain_batch

    def with_count(texts):  # (batch,) strings -> x, y, sample_weight, real tokens
        x, y, sample_weight = preprocess(texts)
        return x, y, sample_weight, tf.reduce_sum(tf.cast(x["padding_mask"], "int64"))

    data = (
        documents.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)  # as packing does
        .repeat()
        .batch(batch, drop_remainder=True)
        .map(with_count, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    total_steps = max(2, tokens // (batch * recipe.pretrain_seq_len)) if tokens else None
    if seconds:  # the recipe's own time-driven warmup + cosine, driven by hand
        schedule = TimeBudgetSchedule(recipe.pretrain_lr, seconds)
        schedule.set_model(mlm)
    else:  # the recipe's step schedule over the steps the budget buys at full rows
        schedule = warmup_then_decay(recipe.pretrain_lr, total_steps)
    mlm.preprocessor = None  # keras-hub's switch: batches arrive preprocessed (tf.data)
    try:
        return _steps(mlm, data, recipe.steps_per_epoch, tokens, seconds, schedule, total_steps)
    finally:
        mlm.preprocessor = preprocess


def _steps(mlm, data, log_every, tokens, seconds, schedule, total_steps):
    """-> (seconds, tokens seen); `schedule`: a TimeBudgetSchedule or a step schedule."""
    seen, step, start = 0, 0, time.perf_counter()
    if seconds:
        schedule.on_train_begin()
    for x, y, sample_weight, count in data:
        if seconds:
            schedule.on_train_batch_begin(step)
        else:  # progress = tokens seen / budget, in steps of full rows
            rate = schedule(total_steps * min(1.0, seen / tokens))
            mlm.optimizer.learning_rate.assign(rate)
        logs = mlm.train_on_batch(x, y, sample_weight, return_dict=True)
        seen, step = seen + int(count), step + 1
        elapsed = time.perf_counter() - start
        if step % log_every == 0:
            rate, loss = seen / elapsed, logs["loss"]
            log(f"hub-bert: step {step}, {seen:,} tokens, {rate:,.0f}/s, loss {loss:.3f}")
        if (tokens and seen >= tokens) or (seconds and elapsed >= seconds):
            return elapsed, seen


def finetune_hub(preset, texts, labels, eval_x, eval_y, recipe, seed):
    """`hub_text_classifier` on the pretrained preset, the recipe's fine-tuning schedule."""
    keras.utils.set_random_seed(seed + 1)
    clf = hub.hub_text_classifier(
        preset, 2, label_names=LABEL_NAMES, sequence_length=recipe.seq_len
    )
    steps, epochs = max(1, len(texts) // recipe.batch_size), recipe.few_epochs
    clf.compile(optimizer=adamw(recipe.lr, steps * epochs))
    data = tf.data.Dataset.from_tensor_slices((list(texts), np.asarray(labels, "int32")))
    data = data.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    fit_repeated(clf, data.batch(recipe.batch_size), epochs, steps)
    predicted = clf.predict(list(eval_x), batch_size=256, verbose=0).argmax(-1)
    return float(np.mean(predicted == np.asarray(eval_y)))


def finetune_own(lm, ids, labels, eval_ids, eval_y, recipe, seed):
    model = recipe_lib.make_text_classifier(lm, LABEL_NAMES, recipe, True, seed + 1)
    recipe_lib.finetune_text_classifier(model, ids, labels, recipe, recipe.few_epochs, True, seed)
    return accuracy(model, recipe_lib.model_inputs(eval_ids), eval_y)


def main(argv=None):
    args = parse_args(argv)
    recipe = args.recipe
    train_x, train_y, eval_x, eval_y, split = sst2.load_sst2_experiment(
        args.data_dir, args.validation, args.smoke
    )  # --validation chooses the recipe; dev.tsv stays for reporting only
    docs = imdb.imdb_corpus("path", args.corpus) if args.corpus else imdb.imdb_corpus()
    documents, held_out = docs.skip(HELD_OUT_DOCUMENTS), docs.take(HELD_OUT_DOCUMENTS)
    first = documents.take(recipe.tokenizer_documents).as_numpy_iterator()
    sample = [d.decode("utf-8") for d in first]
    sample += list(sst2.maximal_phrases(train_x))  # the recipe's tokenizer sample
    budget = f"{args.tokens:,} tokens" if args.tokens else f"{args.minutes} minutes"
    log(f"budget {budget} per arm; {len(train_x)} train phrases, {len(eval_x)} {split} sentences")

    preset_dir = args.preset_dir or tempfile.mkdtemp(prefix="hub_vs_own_")
    hub_info, preset = pretrain_hub(args, documents, held_out, sample, preset_dir)
    log(f"hub-bert: {hub_info}")
    own_info, lm, tokenizer = pretrain_own(args, documents, held_out, sample)
    log(f"own: {own_info}")

    train_ids = recipe_lib.encode_texts(tokenizer, train_x, recipe.seq_len)
    eval_ids = recipe_lib.encode_texts(tokenizer, eval_x, recipe.seq_len)
    arms = [hub_info, own_info, {"arm": "tf-idf", "tokens": None, "seconds": None}]
    for arm in arms:
        arm["accuracy"] = {}
    for seed in args.seeds:  # one draw per seed, by index: the same sentences for every arm
        index, labels = sample_few_labels(np.arange(len(train_y)), train_y, args.labels, 2, seed)
        acc = [
            finetune_hub(preset, train_x[index], labels, eval_x, eval_y, recipe, seed),
            finetune_own(lm, train_ids[index], labels, eval_ids, eval_y, recipe, seed),
            tfidf_logistic_regression(train_x[index], labels, eval_x, eval_y, epochs=40, seed=seed),
        ]
        for arm, value in zip(arms, acc, strict=True):
            arm["accuracy"][seed] = value
        log(
            f"seed {seed}: "
            + ", ".join(f"{a['arm']} {v:.4f}" for a, v in zip(arms, acc, strict=True))
        )
    print_table(arms, args, len(eval_y), split)
    if args.json:
        result = dict(
            arms=arms,
            split=split,
            n_eval=len(eval_y),
            labels=args.labels,
            seeds=args.seeds,
            budget=budget,
            smoke=args.smoke,
            notes=NOTES,
            recipe=dataclasses.asdict(recipe),
            bert=args.bert,
            preset_dir=preset_dir,
        )
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return arms


def print_table(arms, args, n_eval, split):
    seeds = " | ".join(f"seed {s}" for s in args.seeds)
    print(f"\nSST-2 {split} accuracy ({n_eval} sentences), {args.labels} labels per seed")
    head = "arm | backbone params | vocab | tokens seen | pretrain s | held-out loss"
    print(f"| {head} | {seeds} | mean |")
    print("|---" * (7 + len(args.seeds)) + "|")
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    for a in arms:
        accuracy = [a["accuracy"][s] for s in args.seeds]
        cells = [
            a["arm"],
            fmt(a.get("params"), ","),
            fmt(a.get("vocab"), ","),
            fmt(a["tokens"], ",.0f"),
            fmt(a["seconds"], ".0f"),
            fmt(a.get("held_out_loss"), ".3f"),
            *(f"{v:.4f}" for v in accuracy),
            f"**{np.mean(accuracy):.4f}**",
        ]
        print("| " + " | ".join(cells) + " |")
    for note in NOTES:
        print(f"- {note}")


if __name__ == "__main__":
    main(sys.argv[1:])
