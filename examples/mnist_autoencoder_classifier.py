"""Pretrain an autoencoder on unlabeled MNIST, then classify with few labels.

    python examples/mnist_autoencoder_classifier.py                  # offline, ~minutes
    python examples/mnist_autoencoder_classifier.py --budgets 100,1000,all
    python examples/mnist_autoencoder_classifier.py --smoke          # seconds (tests)

Steps (all in `ptft_keras.training.recipes.image`): split the data (2,000 test images
held out, the rest is the unlabeled pool); pretrain the recipe's conv denoising +
contrastive autoencoder on the pool without labels; for each label budget, fine-tune a
classifier from the pretrained encoder and, as the fair baseline, the same classifier
with a randomly initialised encoder, with the same recipe (imprint + probe, fine-tune,
semi-supervised). Prints the accuracy table, writes `results.png` and
`reconstructions.png` to `--output-dir` and exports the best classifier as a SavedModel.
"""

import argparse
import os
import time

import keras

from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.images import images_from_arrays
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.export.image import export_image_classifier
from ptft_keras.specs import ImageSpec
from ptft_keras.training import metrics, plots
from ptft_keras.training.callbacks import training_callbacks
from ptft_keras.training.recipes import image as recipe_lib
from ptft_keras.training.recipes.arguments import add_recipe_arguments, recipe_from_args
from ptft_keras.training.strategies import STRATEGY_NAMES, get_strategy

LABEL_NAMES = [str(d) for d in range(10)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-source", default="bundled", choices=["bundled", "tfds", "keras", "idx"])
    p.add_argument("--data-dir", default=None, help="for idx (required), tfds and keras")
    p.add_argument("--budgets", default="100", help="comma-separated label budgets or 'all'")
    p.add_argument("--test-size", type=int, default=2000)
    add_recipe_arguments(p, recipe_lib.ImageRecipe())  # every recipe setting is a flag
    p.add_argument("--output-dir", default="runs/mnist")
    p.add_argument("--export-dir", default="saved_models/mnist_classifier")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES, help="docs/distribution")
    p.add_argument("--backup-dir", default=None, help="per-epoch backups to resume from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny settings, for tests")
    args = p.parse_args(argv)
    args.recipe = recipe_from_args(recipe_lib.ImageRecipe, args)
    if args.smoke:  # the real pipeline, shrunk: every step runs, in seconds
        args.test_size, args.recipe = 200, args.recipe.smoke()
    try:
        args.budgets = [b if b == "all" else int(b) for b in args.budgets.split(",")]
    except ValueError:
        p.error(f"--budgets must be comma-separated integers or 'all', got {args.budgets!r}")
    if os.path.exists(args.export_dir) and not args.overwrite:  # fail before training
        p.error(f"{args.export_dir} exists; pass --overwrite or another --export-dir")
    return args


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    recipe = args.recipe
    keras.utils.set_random_seed(args.seed)
    images, labels = load_mnist(args.data_source, data_dir=args.data_dir)
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=args.test_size, seed=args.seed)
    spec = ImageSpec(28, 28, 1)  # pixels / 255
    pool, test_x = images_from_arrays(split.pool_x, spec), images_from_arrays(split.test_x, spec)
    log(f"data: {len(pool)} unlabeled pool images, {len(test_x)} test images")
    strategy = get_strategy(args.strategy)

    def callbacks(phase):  # one backup directory per model and phase
        if args.backup_dir is None:
            return training_callbacks(None, verbose=False)
        return training_callbacks(os.path.join(args.backup_dir, phase), verbose=True)

    # 1. Pretrain on the pool, no labels.
    autoencoder = recipe_lib.build_autoencoder(spec, recipe, seed=args.seed, strategy=strategy)
    kind = "contrastive + denoising" if recipe.contrastive_weight else "denoising"
    log(f"pretraining the {kind} autoencoder for {recipe.pretrain_epochs} epochs")
    history = recipe_lib.pretrain_autoencoder(
        autoencoder,
        pool,
        epochs=recipe.pretrain_epochs,
        batch_size=recipe.pretrain_batch_size,
        learning_rate=recipe.pretrain_learning_rate,
        strategy=strategy,
        callbacks=callbacks,
        verbose=2 if recipe.pretrain_epochs > 1 else 0,
    )
    log(f"final pretraining loss {history.history['loss'][-1]:.4f}")

    # 2. Per budget: pretrained vs scratch encoder, same classifier and same recipe.
    rows, final = [], {}  # final: (budget, init) -> (its last row, the classifier now)
    for budget in args.budgets:
        few_x, few_y = sample_few_labels(pool, split.pool_y, budget, 10, seed=args.seed)
        for init in ("pretrained", "scratch"):
            clf = recipe_lib.make_classifier(
                autoencoder, LABEL_NAMES, pretrained=init == "pretrained", strategy=strategy
            )

            def record(method, model, budget=budget, init=init):
                acc = metrics.accuracy(model, test_x, split.test_y)
                rows.append((budget, init, method, acc))
                final[(budget, init)] = (rows[-1], model)
                log(f"budget {budget}: {init:10s} {method:<16s} test accuracy {acc:.4f}")

            unlabeled = pool if budget != "all" else None
            recipe_lib.fit_few_labels(
                clf,
                few_x,
                few_y,
                unlabeled,
                recipe,
                seed=args.seed,
                strategy=strategy,
                callbacks=lambda phase, tag=f"{budget}_{init}": callbacks(f"{tag}_{phase}"),
                on_stage=record,
            )

    print_table(rows)
    os.makedirs(args.output_dir, exist_ok=True)
    title = f"Pretrained ({kind} AE) vs scratch encoder, same recipe"
    log("wrote " + plots.accuracy_bars(rows, os.path.join(args.output_dir, "results.png"), title))
    grid = os.path.join(args.output_dir, "reconstructions.png")
    log("wrote " + plots.reconstruction_grid(autoencoder, test_x[:10], grid))
    (budget, init, method, acc), best = max(final.values(), key=lambda row_clf: row_clf[0][3])
    path = export_image_classifier(best, args.export_dir, overwrite=args.overwrite)
    log(f"exported the best classifier ({budget} labels, {init}, {method}: {acc:.4f}) to {path}")
    return rows


def print_table(rows):
    print("\nTest accuracy (MNIST 8k sample, held-out test images)")
    print(f"{'labels':>7} | {'encoder init':<12} | {'method':<16} | accuracy")
    print(f"{'-' * 7}-+-{'-' * 12}-+-{'-' * 16}-+---------")
    for budget, init, method, acc in rows:
        print(f"{budget!s:>7} | {init:<12} | {method:<16} | {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
