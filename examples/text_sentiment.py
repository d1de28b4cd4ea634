"""SST-2 sentiment: pretrain a small Transformer LM on unlabeled reviews, fine-tune with few labels.

    python examples/text_sentiment.py                 # IMDb corpus, see docs/text.md
    python examples/text_sentiment.py --smoke         # seconds: what the tests run

Steps (all in `ptft_keras.training.recipes.text`): (1) a WordPiece tokenizer trained on
10,000 corpus documents and the SST-2 train sentences (labels dropped); (2) a
`TransformerBackbone` pretrained as a causal (or masked) LM on the unlabeled corpus,
tokenised and packed into full rows in `tf.data`, for a token (or time) budget: by default
the 48,538 IMDb reviews of `../shared/data/imdb_unsup`, or TFDS `imdb_reviews/unsupervised`
when that folder is absent; (3) for each label budget and seed, fine-tune
`TextClassifier.from_pretrained(lm)`, the same classifier from scratch and (`--tfidf`) the
TF-IDF bigram baseline on the same labels (`--semi-supervised uda`: then UDA consistency
training on the train sentences, labels dropped); (4) print accuracy; (5) export the pretrained
classifier of every budget as a raw-text SavedModel `<export-dir>/sst2_<budget>`.
`--validation` scores on 872 sentences held out of `train.tsv` instead of `dev.tsv`.
`--bidirectional` adds a backward LM, and every classifier becomes the forward + backward
`TextEnsemble` (ULMFiT).
"""

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ptft_keras.data.datasets import imdb, sst2  # noqa: E402
from ptft_keras.data.splits import sample_few_labels  # noqa: E402
from ptft_keras.data.tokenizer import load_tokenizer, save_tokenizer  # noqa: E402
from ptft_keras.export.text import export_text_classifier  # noqa: E402
from ptft_keras.models.text_ensemble import TextEnsemble  # noqa: E402
from ptft_keras.training.baselines import tfidf_logistic_regression  # noqa: E402
from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.recipes import text as recipe_lib  # noqa: E402
from ptft_keras.training.recipes.arguments import (  # noqa: E402
    add_recipe_arguments,
    recipe_from_args,
)
from ptft_keras.training.strategies import STRATEGY_NAMES, get_strategy  # noqa: E402

LABEL_NAMES = sst2.LABELS.names  # "0" negative, "1" positive
HELD_OUT_DOCUMENTS = 500  # corpus documents kept out of pretraining, for the LM's val_loss
BACKWARD_LM_FILE = "lm_backward.keras"  # beside lm.keras in --save-lm / --load-lm


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=sst2.DEFAULT_SST2_DIR, help="train.tsv + dev.tsv")
    p.add_argument(
        "--corpus",
        default=None,
        help="pretraining corpus: a path (one document a line, .gz, or a folder), "
        "'tfds' (imdb_reviews/unsupervised) or 'sst2' (the 6.9k train sentences); "
        f"default {imdb.DEFAULT_IMDB_DIR} if it exists, else 'tfds'",
    )
    p.add_argument(
        "--pretrain-minutes",
        type=float,
        default=None,
        help="a time budget instead of --pretrain-tokens",
    )
    p.add_argument("--budgets", default="1000,all", help="label budgets, e.g. 100,1000,all")
    p.add_argument("--seeds", default="0", help="e.g. 0,1,2: each draws its own labels")
    add_recipe_arguments(p, recipe_lib.TextRecipe())
    p.add_argument("--tfidf", action="store_true", help="add the TF-IDF bigram baseline column")
    p.add_argument(
        "--validation",
        action="store_true",
        help="score on 872 sentences held out of train.tsv, not on dev.tsv",
    )
    p.add_argument("--export-dir", default="saved_models", help="writes sst2_<budget> there")
    p.add_argument("--overwrite", action="store_true", help="replace existing exports")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--backup-dir", default=None, help="per-epoch backups, resumed on restart")
    p.add_argument("--save-lm", default=None, help="directory: save the tokenizer + LM there")
    p.add_argument("--load-lm", default=None, help="directory from --save-lm: skip pretraining")
    p.add_argument(
        "--bidirectional",
        action="store_true",
        help="also pretrain a backward LM; each classifier is then the ensemble of a forward "
        "and a backward one (ULMFiT); twice the pretraining and fine-tuning time",
    )
    p.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES)
    p.add_argument("--smoke", action="store_true", help="tiny data and model (tests)")
    args = p.parse_args(argv)
    args.budgets = parse_budgets(args.budgets)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.recipe = recipe_from_args(recipe_lib.TextRecipe, args)
    if args.bidirectional and args.recipe.objective != "causal":
        p.error(f"--bidirectional pairs two causal LMs; got --objective {args.recipe.objective}")
    if args.bidirectional and args.recipe.semi_supervised != "none":
        p.error("--bidirectional does not combine with --semi-supervised (UDA trains one model)")
    if args.smoke:  # shrink the real configuration, do not fake another one
        args.recipe, args.budgets = args.recipe.smoke(), [20, "all"]
        args.recipe = dataclasses.replace(
            args.recipe, pretrain_tokens=20_000, steps_per_epoch=5, tokenizer_documents=200
        )
    return args


def parse_budgets(text):
    """ "1000,all" -> [1000, "all"]; checked before any training starts."""
    budgets = []
    for item in str(text).split(","):
        item = item.strip()
        if item != "all" and not (item.isdigit() and int(item) > 0 and int(item) % 2 == 0):
            raise ValueError(
                f"label budget {item!r} in --budgets {text!r}: expected 'all' or a positive "
                "even number (class-balanced over 2 classes)"
            )
        budgets.append(item if item == "all" else int(item))
    return budgets


class Log:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, message):
        print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", flush=True)


def load_corpus(args, train_x, log):
    """(documents for pretraining, held-out documents, description) as tf.data streams."""
    import tensorflow as tf

    if args.corpus == "sst2":
        sentences = sst2.maximal_phrases(train_x)
        docs = tf.data.Dataset.from_tensor_slices(list(sentences))
        return docs.skip(HELD_OUT_DOCUMENTS), docs.take(HELD_OUT_DOCUMENTS), "SST-2 train sentences"
    source, path = ("tfds", None) if args.corpus == "tfds" else ("path", args.corpus)
    if args.corpus is None:
        source, path = imdb.default_corpus_source()
    docs = imdb.imdb_corpus(source, path)
    where = f"{path}" if source == "path" else "TFDS imdb_reviews/unsupervised"
    log(f"pretraining corpus: {where}")
    return docs.skip(HELD_OUT_DOCUMENTS), docs.take(HELD_OUT_DOCUMENTS), where


def main(argv=None):
    args = parse_args(argv)
    recipe, log = args.recipe, Log()
    keras.utils.set_random_seed(args.seeds[0])
    strategy = get_strategy(args.strategy)
    exports = {b: os.path.join(args.export_dir, f"sst2_{b}") for b in args.budgets}
    taken = [p for p in exports.values() if os.path.exists(p)]
    if not args.no_export and taken and not args.overwrite:  # fail now, not after training
        raise FileExistsError(f"export path {taken[0]!r} exists; pass --overwrite")
    train_x, train_y, eval_x, eval_y, split = sst2.load_sst2_experiment(
        args.data_dir, args.validation, args.smoke
    )  # --validation chooses the recipe; dev.tsv stays for reporting only
    log(f"SST-2: {len(train_x)} train phrases (label pool), {len(eval_x)} {split} sentences")
    callbacks = lambda name: training_callbacks(
        os.path.join(args.backup_dir, name) if args.backup_dir else None, verbose=True
    )

    lm_backward = None
    if args.load_lm:  # tokenizer and pretrained LM from an earlier --save-lm run
        tokenizer = load_tokenizer(args.load_lm)
        lm = keras.saving.load_model(os.path.join(args.load_lm, "lm.keras"), compile=False)
        objective = "causal" if lm.backbone.causal else "masked"
        recipe = dataclasses.replace(recipe, objective=objective)
        log(f"loaded the tokenizer and the {type(lm).__name__} from {args.load_lm}")
        if args.bidirectional:
            path = os.path.join(args.load_lm, BACKWARD_LM_FILE)
            if not os.path.exists(path):
                raise FileNotFoundError(f"--bidirectional: no backward LM at {path!r}")
            lm_backward = keras.saving.load_model(path, compile=False)
    else:
        documents, held_out, where = load_corpus(args, train_x, log)
        sample = read_corpus_sample(documents, recipe.tokenizer_documents)
        tokenizer = recipe_lib.train_text_tokenizer(
            sample + list(sst2.maximal_phrases(train_x)), recipe
        )
        log(f"tokenizer: {tokenizer.vocabulary_size()} WordPieces from {len(sample)} documents")
        lm = pretrain(args, recipe, tokenizer, documents, held_out, where,
                                   strategy, callbacks, log)  # fmt: skip
        if args.bidirectional:
            lm_backward = pretrain(args, recipe, tokenizer, documents, held_out, where,
                                      strategy, callbacks, log, reverse=True)  # fmt: skip
    if args.save_lm:
        save_tokenizer(tokenizer, args.save_lm)
        lm.save(os.path.join(args.save_lm, "lm.keras"))
        if lm_backward is not None:
            lm_backward.save(os.path.join(args.save_lm, BACKWARD_LM_FILE))
    train_ids = recipe_lib.encode_texts(tokenizer, train_x, recipe.seq_len)
    eval_ids = recipe_lib.encode_texts(tokenizer, eval_x, recipe.seq_len)

    rows = []
    for budget in args.budgets:
        for seed in args.seeds:
            rows.append(
                run_budget(
                    args,
                    recipe,
                    (lm, lm_backward),
                    tokenizer,
                    budget,
                    seed,
                    strategy,
                    log,
                    (train_x, train_y, train_ids),
                    (eval_x, eval_y, eval_ids),
                    exports,
                    callbacks,
                )
            )
    print_table(
        rows, len(eval_y), split, recipe.objective, time.perf_counter() - log.start, args.tfidf
    )
    if recipe.semi_supervised == "uda":
        for r in rows:
            print(
                f"UDA {r['budget']!s:>6} seed {r['seed']}: pretrained "
                f"{r['pretrained_supervised']:.4f} -> {r['pretrained']:.4f}, scratch "
                f"{r['scratch_supervised']:.4f} -> {r['scratch']:.4f}",
                flush=True,
            )
    return rows


def pretrain(args, recipe, tokenizer, documents, held_out, where, strategy, callbacks, log,
             reverse=False):  # fmt: skip
    """A fresh LM pretrained on the corpus (`reverse=True`: a backward LM)."""
    direction = "backward " if reverse else ""
    lm = recipe_lib.build_language_model(
        tokenizer.vocabulary_size(), recipe, args.seeds[0], strategy
    )
    budget = (
        f"{args.pretrain_minutes} minutes"
        if args.pretrain_minutes
        else f"{recipe.pretrain_tokens:,} tokens"
    )
    log(
        f"pretraining a {direction}{recipe.objective} LM ({lm.backbone.count_params():,} backbone "
        f"params) on {where}, packed rows of {recipe.pretrain_seq_len}, for {budget}"
    )
    history = recipe_lib.pretrain_on_corpus(
        lm,
        documents,
        tokenizer,
        recipe,
        seconds=args.pretrain_minutes * 60 if args.pretrain_minutes else None,
        seed=args.seeds[0],
        strategy=strategy,
        callbacks=callbacks("pretrain_backward" if reverse else "pretrain"),
        validation_documents=held_out,
        reverse=reverse,
    )
    info = {k: history.history[k][-1] for k in ("tokens", "val_loss", "val_accuracy")}
    log(
        f"pretrained {direction or 'forward '}on {info['tokens']:,.0f} tokens; held-out "
        f"next-token loss {info['val_loss']:.3f} (perplexity {np.exp(info['val_loss']):.0f}), "
        f"accuracy {info['val_accuracy']:.3f}"
    )
    return lm


def read_corpus_sample(documents, n):
    return [d.numpy().decode("utf-8") for d in documents.take(n)]


def run_budget(
    args, recipe, lms, tokenizer, budget, seed, strategy, log, train, evaluation, exports, callbacks
):
    """Pretrained and scratch classifiers (and TF-IDF) on one label draw of `budget`; with
    a backward LM in `lms` each is the ensemble of a forward and a backward classifier."""
    directions = [(lm, rev) for lm, rev in zip(lms, (False, True), strict=True) if lm is not None]
    (train_x, train_y, train_ids), (eval_x, eval_y, eval_ids) = train, evaluation
    few = None if budget == "all" else budget
    ids, labels = sample_few_labels(train_ids, train_y, few, num_classes=2, seed=seed)
    epochs = recipe.all_epochs if budget == "all" else recipe.few_epochs
    row = {"budget": budget, "seed": seed}
    for init in ("pretrained", "scratch"):
        pretrained = init == "pretrained"
        members = []
        for lm, reverse in directions:  # forward; backward too with --bidirectional
            name = f"{init}_backward" if reverse else init
            model = recipe_lib.make_text_classifier(
                lm, LABEL_NAMES, recipe, pretrained, seed + 1, strategy, reverse_tokens=reverse
            )
            log(
                f"fine-tune budget={budget} seed={seed} init={name}: {len(ids)} labels, "
                f"{epochs} epochs"
            )
            recipe_lib.finetune_text_classifier(
                model,
                ids,
                labels,
                recipe,
                epochs,
                pretrained,
                seed,
                strategy,
                callbacks(f"finetune_{budget}_{name}"),
            )
            members.append(model)
            if len(directions) > 1:  # each member's own accuracy, then the pair's below
                key = name if reverse else f"{init}_forward"
                row[key] = recipe_lib.text_accuracy(model, eval_ids, eval_y)
                log(f"  accuracy {row[key]:.4f}")
        model = members[0] if len(members) == 1 else TextEnsemble(members, name=f"{init}_pair")
        row[init] = recipe_lib.text_accuracy(model, eval_ids, eval_y)
        pair = " (forward + backward)" if len(members) > 1 else ""
        log(f"  accuracy {row[init]:.4f}{pair}")
        if recipe.semi_supervised == "uda":  # the train sentences, labels dropped
            row[f"{init}_supervised"] = row[init]
            recipe_lib.uda(model, ids, labels, train_ids, recipe, seed, strategy,
                           callbacks(f"uda_{budget}_{init}"))  # fmt: skip
            row[init] = recipe_lib.text_accuracy(model, eval_ids, eval_y)
            log(f"  + UDA on {len(train_ids)} unlabeled sentences: accuracy {row[init]:.4f}")
        if pretrained and not args.no_export and seed == args.seeds[0]:
            path = export_text_classifier(model, tokenizer, exports[budget], overwrite=True)
            log(f"  exported the raw-text SavedModel to {path}")
    if args.tfidf:
        x, y = sample_few_labels(train_x, train_y, few, num_classes=2, seed=seed)
        row["tfidf"] = tfidf_logistic_regression(
            x, y, eval_x, eval_y, epochs=10 if budget == "all" else 40, seed=seed
        )
        log(f"TF-IDF bigram LR budget={budget} seed={seed}: accuracy {row['tfidf']:.4f}")
    return row


def print_table(rows, n_eval, split, objective, seconds, tfidf):
    """One line per label draw and a mean line per budget; with --bidirectional the
    pretrained pair's members get their own columns."""
    print(
        f"\nSST-2 {split} accuracy ({n_eval} sentences), {objective} pretraining, "
        f"total {seconds:.0f}s"
    )
    columns = [("pretrained", 10), ("scratch", 8), ("gain", 6)]
    columns += [("tfidf", 6)] if tfidf else []
    if "pretrained_backward" in rows[0]:
        columns += [("pretrained_forward", 7), ("pretrained_backward", 7)]
    titles = {"tfidf": "tf-idf", "pretrained_forward": "pre fwd", "pretrained_backward": "pre bwd"}
    header = " | ".join(
        [f"{'labels':>8}", f"{'seed':>4}"] + [f"{titles.get(k, k):>{w}}" for k, w in columns]
    )
    print(header + "\n" + "-" * len(header))

    def line(budget, seed, same):  # `same`: the rows to average (one for a draw's line)
        cells = []
        for key, width in columns:
            if key == "gain":
                value = np.mean([r["pretrained"] - r["scratch"] for r in same])
                cells.append(f"{value:+{width}.3f}")
            else:
                cells.append(f"{np.mean([r[key] for r in same]):{width}.4f}")
        print(" | ".join([f"{budget!s:>8}", f"{seed:>4}", *cells]), flush=True)

    for r in rows:
        line(r["budget"], r["seed"], [r])
    for budget in dict.fromkeys(r["budget"] for r in rows):
        same = [r for r in rows if r["budget"] == budget]
        if len(same) > 1:
            line(budget, "mean", same)


if __name__ == "__main__":
    main(sys.argv[1:])
