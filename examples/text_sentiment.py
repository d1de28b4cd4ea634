"""SST-2 sentiment: pretrain a small Transformer LM on unlabeled reviews, fine-tune with few labels.

    python examples/text_sentiment.py                 # IMDb corpus, see docs/text.md
    python examples/text_sentiment.py --smoke         # seconds: what the tests run

The text recipe: a WordPiece tokenizer on 10,000 corpus documents + the SST-2 train
sentences; a causal (or masked) LM pretrained on the corpus (default the IMDb reviews of
`../shared/data/imdb_unsup`, else TFDS) for a token or time budget; then for each label
budget and seed the pretrained and the scratch classifier (`--tfidf`: and TF-IDF) on the
same labels (`--semi-supervised uda`: then UDA on the train sentences); an accuracy table;
raw-text SavedModels `<export-dir>/sst2_<budget>`. `--bidirectional` adds a backward LM:
every classifier is then the forward + backward ensemble (ULMFiT). `--save-lm DIR` writes
the run directory `ptft pretrain text` writes (`ptft finetune DIR` reads it), `--load-lm
DIR` reads one. `--validation` scores on 872 sentences held out of train.tsv, not dev.tsv.
The steps are library calls (`ptft_keras.training.recipes.text_experiment`).
"""

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from ptft_keras.cli.runs import finish, load_text_lm, prepare_run, save_text_lm  # noqa: E402
from ptft_keras.data.datasets import imdb, sst2  # noqa: E402
from ptft_keras.export.text import export_text_classifier  # noqa: E402
from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.recipes import arguments, text_experiment  # noqa: E402
from ptft_keras.training.recipes import text as recipe_lib  # noqa: E402
from ptft_keras.training.strategies import STRATEGY_NAMES, get_strategy  # noqa: E402

HELD_OUT_DOCUMENTS = 500  # corpus documents kept out of pretraining, for the LM's val_loss


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=sst2.DEFAULT_SST2_DIR, help="train.tsv + dev.tsv")
    p.add_argument("--corpus", default=None, help="a path, 'tfds' or 'sst2' (its sentences)")
    p.add_argument("--pretrain-minutes", type=float, default=None, help="instead of tokens")
    p.add_argument("--budgets", default="1000,all", help="label budgets, e.g. 100,1000,all")
    p.add_argument("--seeds", default="0", help="e.g. 0,1,2: each draws its own labels")
    arguments.add_recipe_arguments(p, recipe_lib.TextRecipe())
    p.add_argument("--tfidf", action="store_true", help="add the TF-IDF bigram baseline")
    p.add_argument("--validation", action="store_true", help="score on 872 held out of train")
    p.add_argument("--export-dir", default="saved_models", help="writes sst2_<budget> there")
    p.add_argument("--overwrite", action="store_true", help="replace exports and --save-lm")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--backup-dir", default=None, help="per-epoch backups, resumed on restart")
    p.add_argument("--save-lm", default=None, help="write a pretrain run directory there")
    p.add_argument("--load-lm", default=None, help="a pretrain run directory: no pretraining")
    p.add_argument("--bidirectional", action="store_true", help="+ a backward LM (ULMFiT)")
    p.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES)
    p.add_argument("--smoke", action="store_true", help="tiny data and model (tests)")
    args = p.parse_args(argv)
    args.budgets = arguments.parse_label_budgets(args.budgets, num_classes=2)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.recipe = arguments.recipe_from_args(recipe_lib.TextRecipe, args)
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


def main(argv=None):
    args = parse_args(argv)
    recipe, start = args.recipe, time.perf_counter()
    log = lambda message: print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)
    keras.utils.set_random_seed(args.seeds[0])
    strategy = get_strategy(args.strategy)
    exports = {b: os.path.join(args.export_dir, f"sst2_{b}") for b in args.budgets}
    taken = [] if args.no_export else [p for p in exports.values() if os.path.exists(p)]
    taken += [args.save_lm] if args.save_lm and os.path.exists(args.save_lm) else []
    if taken and not args.overwrite:  # fail now, not after training
        raise FileExistsError(f"{taken[0]!r} exists; pass --overwrite")
    train_x, train_y, eval_x, eval_y, split = sst2.load_sst2_experiment(
        args.data_dir, args.validation, args.smoke
    )  # --validation chooses the recipe; dev.tsv stays for reporting only
    log(f"SST-2: {len(train_x)} train phrases (label pool), {len(eval_x)} {split} sentences")
    backups = lambda name: os.path.join(args.backup_dir, name) if args.backup_dir else None
    callbacks = lambda name: training_callbacks(backups(name), verbose=True)
    sentences, info = list(sst2.maximal_phrases(train_x)), {}
    common = dict(strategy=strategy, callbacks=callbacks, log=log)
    if args.load_lm:  # tokenizer and LM(s) of a `ptft pretrain text` or --save-lm run
        tokenizer, *lms = load_text_lm(args.load_lm, backward=args.bidirectional)
        objective = "causal" if lms[0].backbone.causal else "masked"
        recipe = dataclasses.replace(recipe, objective=objective)
        log(f"loaded the tokenizer and the {type(lms[0]).__name__} from {args.load_lm}")
    else:
        if args.corpus == "sst2":
            docs, where = tf.data.Dataset.from_tensor_slices(sentences), "SST-2 train sentences"
        else:
            docs, where = imdb.pretraining_corpus(args.corpus)
        documents, held_out = docs.skip(HELD_OUT_DOCUMENTS), docs.take(HELD_OUT_DOCUMENTS)
        sample = documents.take(recipe.tokenizer_documents).as_numpy_iterator()
        sample = [d.decode("utf-8") for d in sample]
        tokenizer = recipe_lib.train_text_tokenizer(sample + sentences, recipe)
        log(f"tokenizer: {tokenizer.vocabulary_size()} WordPieces; corpus: {where}")
        seconds = args.pretrain_minutes * 60 if args.pretrain_minutes else None
        lms, info = text_experiment.pretrain_corpus_lms(
            tokenizer, documents, held_out, recipe, args.bidirectional, seconds, args.seeds[0],
            **common,
        )  # fmt: skip
    if args.save_lm:  # the run directory `ptft pretrain text` writes
        run_args = argparse.Namespace(**{**vars(args), "overwrite": True})
        run, config = prepare_run(args.save_lm, run_args, "pretrain", "text")
        save_text_lm(run, lms[0], tokenizer, lms[1])
        finish(run, config, objective=recipe.objective, **info)
    encode = lambda texts: recipe_lib.encode_texts(tokenizer, texts, recipe.seq_len)
    train, evaluation = (train_x, train_y, encode(train_x)), (eval_x, eval_y, encode(eval_x))
    rows = []
    for budget in args.budgets:
        for seed in args.seeds:
            row, model = text_experiment.score_label_draw(
                lms, train, evaluation, recipe, budget, seed, sst2.LABELS.names,
                tfidf=args.tfidf, **common,
            )  # fmt: skip
            rows.append(row)
            if not args.no_export and seed == args.seeds[0]:  # the pretrained classifier
                path = export_text_classifier(model, tokenizer, exports[budget], overwrite=True)
                log(f"  exported the raw-text SavedModel to {path}")
    seconds = time.perf_counter() - start
    title = f"SST-2 {split} accuracy ({len(eval_y)} sentences), {recipe.objective} pretraining"
    text_experiment.print_accuracy_table(rows, f"{title}, total {seconds:.0f}s", args.tfidf)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
