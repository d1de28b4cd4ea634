"""SST-2 sentiment: pretrain a small Transformer LM on unlabeled text, fine-tune with few labels.

    python examples/text_sentiment.py                 # causal LM, see README section `text`
    python examples/text_sentiment.py --smoke         # seconds: what the tests run

Steps (all in `ptft_keras.training.recipes.text`): (1) train a WordPiece tokenizer on the
SST-2 train sentences (labels dropped); (2) pretrain a `TransformerBackbone` on them (by
default on the 6.9k maximal phrases, see `sst2.maximal_phrases`) as a causal or masked
LM; (3) for each label budget, fine-tune `TextClassifier.from_pretrained(lm)` and the same
classifier from scratch; (4) print dev accuracy; (5) export the pretrained classifier of
every budget as a raw-text SavedModel `<export-dir>/sst2_<budget>`.
"""

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from ptft_keras.data.datasets import sst2  # noqa: E402
from ptft_keras.data.splits import sample_few_labels  # noqa: E402
from ptft_keras.data.tokenizer import load_tokenizer, save_tokenizer  # noqa: E402
from ptft_keras.export.text import export_text_classifier  # noqa: E402
from ptft_keras.training.baselines import tfidf_logistic_regression  # noqa: E402
from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.recipes import text as recipe_lib  # noqa: E402
from ptft_keras.training.recipes.arguments import (  # noqa: E402
    add_recipe_arguments,
    recipe_from_args,
)
from ptft_keras.training.strategies import (  # noqa: E402
    STRATEGY_NAMES,
    check_global_batch_size,
    get_strategy,
)

LABEL_NAMES = sst2.LABELS.names  # "0" negative, "1" positive


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=sst2.DEFAULT_SST2_DIR, help="train.tsv + dev.tsv")
    p.add_argument("--budgets", default="1000,all", help="label budgets, e.g. 100,1000,all")
    p.add_argument(
        "--pretrain-corpus",
        choices=("phrases", "sentences"),
        default="sentences",  # an epoch over phrases re-reads the same sentences ~5 times
        help="all 67k train phrases, or the 6.9k maximal ones (no phrase is a span of another)",
    )
    add_recipe_arguments(p, recipe_lib.TextRecipe())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tfidf", action="store_true", help="add a TF-IDF bigram baseline column")
    p.add_argument("--export-dir", default="saved_models", help="writes sst2_<budget> there")
    p.add_argument("--overwrite", action="store_true", help="replace existing exports")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--backup-dir", default=None, help="per-epoch backups, resumed on restart")
    p.add_argument("--save-lm", default=None, help="directory: save the tokenizer + LM there")
    p.add_argument("--load-lm", default=None, help="directory from --save-lm: skip pretraining")
    p.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES)
    p.add_argument("--smoke", action="store_true", help="tiny data and model (tests)")
    args = p.parse_args(argv)
    args.budgets = parse_budgets(args.budgets)
    args.recipe = recipe_from_args(recipe_lib.TextRecipe, args)
    if args.smoke:  # shrink the real configuration, do not fake another one
        args.recipe, args.budgets = args.recipe.smoke(), [20, "all"]
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


def main(argv=None):
    args = parse_args(argv)
    recipe, log = args.recipe, Log()
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    check_global_batch_size(recipe.batch_size, strategy)
    check_global_batch_size(recipe.pretrain_batch, strategy)
    exports = {b: os.path.join(args.export_dir, f"sst2_{b}") for b in args.budgets}
    taken = [p for p in exports.values() if os.path.exists(p)]
    if not args.no_export and taken and not args.overwrite:  # fail now, not after training
        raise FileExistsError(f"export path {taken[0]!r} exists; pass --overwrite")
    train_x, train_y = sst2.load_sst2("train", data_dir=args.data_dir)
    dev_x, dev_y = sst2.load_sst2("dev", data_dir=args.data_dir)
    if args.smoke:
        train_x, train_y, dev_x, dev_y = train_x[:1500], train_y[:1500], dev_x[:100], dev_y[:100]
    log(f"SST-2: {len(train_x)} train phrases (unlabeled corpus + label pool), {len(dev_x)} dev")
    callbacks = lambda name: training_callbacks(
        os.path.join(args.backup_dir, name) if args.backup_dir else None, verbose=True
    )

    if args.load_lm:  # tokenizer and pretrained LM from an earlier --save-lm run
        tokenizer = load_tokenizer(args.load_lm)
        lm = keras.saving.load_model(os.path.join(args.load_lm, "lm.keras"), compile=False)
        objective = "causal" if lm.backbone.causal else "masked"
        recipe = dataclasses.replace(
            recipe, objective=objective, seq_len=lm.backbone.max_sequence_length
        )
        log(f"loaded the tokenizer and the {type(lm).__name__} from {args.load_lm}")
    else:
        tokenizer = recipe_lib.train_text_tokenizer(train_x, recipe)
    seq_len = recipe.seq_len
    train_ids = recipe_lib.encode_texts(tokenizer, train_x, seq_len)
    dev_ids = recipe_lib.encode_texts(tokenizer, dev_x, seq_len)
    log(f"tokenizer: {tokenizer.vocabulary_size()} WordPieces")
    if not args.load_lm:
        corpus = train_ids
        if args.pretrain_corpus == "sentences":
            corpus = recipe_lib.encode_texts(tokenizer, sst2.maximal_phrases(train_x), seq_len)
        vocabulary_size = tokenizer.vocabulary_size()
        lm = recipe_lib.build_language_model(vocabulary_size, recipe, args.seed, strategy)
        log(
            f"pretraining a {recipe.objective} LM: {lm.backbone.count_params():,} backbone "
            f"params, {recipe.pretrain_epochs} epochs over {len(corpus)} {args.pretrain_corpus}"
        )
        recipe_lib.pretrain_language_model(
            lm, corpus, recipe, args.seed, strategy, callbacks("pretrain")
        )
    if args.save_lm:
        save_tokenizer(tokenizer, args.save_lm)
        lm.save(os.path.join(args.save_lm, "lm.keras"))

    rows = []
    for budget in args.budgets:
        few = None if budget == "all" else budget
        ids, labels = sample_few_labels(train_ids, train_y, few, num_classes=2, seed=args.seed)
        epochs = recipe.all_epochs if budget == "all" else recipe.few_epochs
        row = {"budget": budget}
        for init in ("pretrained", "scratch"):
            pretrained = init == "pretrained"
            model = recipe_lib.make_text_classifier(
                lm, LABEL_NAMES, recipe, pretrained, args.seed + 1, strategy
            )
            log(f"fine-tune budget={budget} init={init}: {len(ids)} labels, {epochs} epochs")
            recipe_lib.finetune_text_classifier(
                model, ids, labels, recipe, epochs, pretrained, args.seed, strategy,
                callbacks(f"finetune_{budget}_{init}"),
            )  # fmt: skip
            row[init] = recipe_lib.text_accuracy(model, dev_ids, dev_y)
            log(f"  dev accuracy {row[init]:.4f}")
            if pretrained and not args.no_export:
                path = export_text_classifier(model, tokenizer, exports[budget], overwrite=True)
                log(f"  exported the raw-text SavedModel to {path}")
        if args.tfidf:
            x, y = sample_few_labels(train_x, train_y, few, num_classes=2, seed=args.seed)
            row["tfidf"] = tfidf_logistic_regression(
                x, y, dev_x, dev_y, epochs=10 if budget == "all" else 40, seed=args.seed
            )
        rows.append(row)
    print_table(rows, len(dev_y), recipe.objective, time.perf_counter() - log.start, args.tfidf)
    return rows


def print_table(rows, n_dev, objective, seconds, tfidf):
    print(
        f"\nSST-2 dev accuracy ({n_dev} sentences), {objective} pretraining, total {seconds:.0f}s"
    )
    header = f"{'labels':>8} | {'pretrained':>10} | {'scratch':>8} | {'gain':>6}"
    print(header + (" | tf-idf" if tfidf else "") + "\n" + "-" * (len(header) + 9))
    for r in rows:
        line = (
            f"{r['budget']!s:>8} | {r['pretrained']:10.4f} | {r['scratch']:8.4f} | "
            f"{r['pretrained'] - r['scratch']:+6.3f}"
        )
        print(line + (f" | {r['tfidf']:.4f}" if tfidf else ""), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
