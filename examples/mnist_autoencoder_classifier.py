"""Pretrain an autoencoder on unlabeled MNIST, then classify with few labels.

    python examples/mnist_autoencoder_classifier.py                  # offline, ~minutes
    python examples/mnist_autoencoder_classifier.py --budgets 100,1000,all
    python examples/mnist_autoencoder_classifier.py --smoke          # seconds (tests)

Steps: split the data (2,000 test images held out, the rest is the unlabeled pool);
pretrain a conv denoising autoencoder on the pool without labels, with a contrastive
term over random augmentations (`--contrastive-weight`, 0 for the plain denoising AE:
README section `mnist` says why it is on by default); for each label
budget, fine-tune a classifier from the pretrained encoder and, as the fair baseline,
the same classifier with a randomly initialised encoder, with the same recipe
(`ptft_keras.training.recipes.finetune_classifier`); then the semi-supervised rows add
self-training on the pool (`self_train`). Prints the accuracy table, writes
`results.png` and `reconstructions.png` to `--output-dir` and exports the best
classifier as a SavedModel.
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

from ptft_keras.data.mnist import load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.training import recipes
from ptft_keras.training.callbacks import training_callbacks
from ptft_keras.training.strategies import STRATEGY_NAMES, get_strategy


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-source", default="bundled", choices=["bundled", "tfds", "keras", "idx"])
    p.add_argument("--data-dir", default=None, help="for idx (required), tfds and keras")
    p.add_argument("--budgets", default="100", help="comma-separated label budgets or 'all'")
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument(
        "--contrastive-weight",
        type=float,
        default=1.0,
        help="augmentation-aware term of the autoencoder (0: plain denoising AE)",
    )
    p.add_argument("--latent-dim", type=int, default=64, help="0: keep the 7x7x64 feature map")
    p.add_argument("--probe-steps", type=int, default=300)
    p.add_argument("--finetune-steps", type=int, default=600)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="probe phase")
    p.add_argument("--finetune-learning-rate", type=float, default=1e-3)
    p.add_argument("--max-shift", type=int, default=2, help="random shift augmentation (px)")
    p.add_argument("--self-train-rounds", type=int, default=3)
    p.add_argument("--self-train-steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32, help="global fine-tuning batch size")
    p.add_argument("--output-dir", default="runs/mnist")
    p.add_argument("--export-dir", default="saved_models/mnist_classifier")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.add_argument(
        "--strategy", default="auto", choices=STRATEGY_NAMES, help="README 'distribution'"
    )
    p.add_argument("--backup-dir", default=None, help="per-epoch backups to resume from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny settings, for tests")
    args = p.parse_args(argv)
    if args.smoke:  # the real pipeline, shrunk: every step runs, in seconds
        args.test_size, args.pretrain_epochs = 200, 1
        args.probe_steps = args.finetune_steps = args.self_train_steps = 5
        args.self_train_rounds = 1
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
    keras.utils.set_random_seed(args.seed)
    images, labels = load_mnist(args.data_source, data_dir=args.data_dir)
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=args.test_size, seed=args.seed)
    pool = split.pool_images.astype("float32")[..., None] / 255.0  # (N, 28, 28, 1)
    test_x = split.test_images.astype("float32")[..., None] / 255.0
    test_y = split.test_labels
    log(f"data: {len(pool)} unlabeled pool images, {len(test_x)} test images")

    strategy = get_strategy(args.strategy)

    def callbacks(phase):  # one backup directory per model and phase
        if args.backup_dir is None:
            return training_callbacks(None, verbose=False)
        return training_callbacks(os.path.join(args.backup_dir, phase), verbose=True)

    # 1. Pretrain on the pool, no labels.
    with strategy.scope():
        # A compact linear 64-d code: frozen, it classifies far better than a random
        # encoder's (README `mnist`); the 3136-d feature map is as good random as trained.
        autoencoder = build_conv_autoencoder(
            latent_dim=args.latent_dim or None,
            latent_activation=None,
            contrastive_weight=args.contrastive_weight,
            seed=args.seed,
        )
    kind = "contrastive + denoising" if args.contrastive_weight else "denoising"
    log(f"pretraining the {kind} autoencoder for {args.pretrain_epochs} epochs")
    history = recipes.pretrain_autoencoder(
        autoencoder,
        pool,
        epochs=args.pretrain_epochs,
        strategy=strategy,
        callbacks=callbacks,
        verbose=2 if args.pretrain_epochs > 1 else 0,
    )
    terms = "reconstruction + contrastive" if args.contrastive_weight else "reconstruction"
    log(f"final pretraining loss ({terms}) {history.history['loss'][-1]:.4f}")

    # 2. Per budget: pretrained vs scratch encoder, same classifier and same recipe:
    #    imprint + linear probe (encoder frozen) -> fine-tune all -> self-training.
    rows, final = [], {}  # final: (budget, init) -> (its last row, the classifier now)

    def record(budget, init, method, clf):
        acc = evaluate(clf, test_x, test_y)
        rows.append((budget, init, method, acc))
        final[(budget, init)] = (rows[-1], clf)
        log(f"budget {budget}: {init:10s} {method:<16s} test accuracy {acc:.4f}")

    for budget in args.budgets:
        few_x, few_y = sample_few_labels(pool, split.pool_labels, budget, 10, seed=args.seed)
        for init in ("pretrained", "scratch"):
            with strategy.scope():
                if init == "pretrained":
                    clf = Classifier.from_pretrained(autoencoder, num_classes=10)
                else:
                    encoder = keras.Model.from_config(autoencoder.encoder.get_config())
                    clf = Classifier(encoder, num_classes=10)
            common = dict(
                seed=args.seed,
                strategy=strategy,
                callbacks=lambda phase, tag=f"{budget}_{init}": callbacks(f"{tag}_{phase}"),
            )
            steps = dict(batch_size=args.batch_size, max_shift=args.max_shift, **common)
            recipes.finetune_classifier(
                clf,
                few_x,
                few_y,
                probe_steps=args.probe_steps,
                finetune_steps=0,
                learning_rate=args.learning_rate,
                **steps,
            )
            record(budget, init, "frozen encoder", clf)
            recipes.finetune_classifier(
                clf,
                few_x,
                few_y,
                imprint=False,
                probe_steps=0,
                finetune_steps=args.finetune_steps,
                finetune_learning_rate=args.finetune_learning_rate,
                **steps,
            )
            record(budget, init, "fine-tune", clf)
            if args.self_train_rounds and budget != "all":
                recipes.self_train(
                    clf,
                    few_x,
                    few_y,
                    pool,
                    rounds=args.self_train_rounds,
                    steps=args.self_train_steps,
                    **common,
                )
                record(budget, init, "+ self-training", clf)

    print_table(rows)
    os.makedirs(args.output_dir, exist_ok=True)
    plot_results(rows, os.path.join(args.output_dir, "results.png"), kind)
    plot_reconstructions(
        autoencoder, test_x[:10], os.path.join(args.output_dir, "reconstructions.png")
    )
    best_row, best_classifier = max(final.values(), key=lambda row_clf: row_clf[0][3])
    export_best(best_classifier, best_row, args)
    return rows


def evaluate(classifier, x, y):
    logits = classifier.predict(x, batch_size=500, verbose=0)
    return float((np.argmax(logits, axis=1) == y).mean())


def print_table(rows):
    print("\nTest accuracy (MNIST 8k sample, held-out test images)")
    print(f"{'labels':>7} | {'encoder init':<12} | {'method':<16} | accuracy")
    print(f"{'-' * 7}-+-{'-' * 12}-+-{'-' * 16}-+---------")
    for budget, init, method, acc in rows:
        print(f"{budget!s:>7} | {init:<12} | {method:<16} | {acc:.4f}")
    sys.stdout.flush()


def plot_results(rows, path, pretraining):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(dict.fromkeys(r[0] for r in rows))
    series = list(dict.fromkeys((r[1], r[2]) for r in rows))
    acc = {r[:3]: r[3] for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    for i, (init, method) in enumerate(series):
        xs = [j + i * width for j, b in enumerate(budgets) if (b, init, method) in acc]
        ys = [acc[(b, init, method)] for b in budgets if (b, init, method) in acc]
        bars = ax.bar(xs, ys, width, label=f"{init}, {method}")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(budgets))], [str(b) for b in budgets])
    ax.set(xlabel="labelled examples", ylabel="test accuracy", ylim=(0, 1.3))
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(f"Pretrained ({pretraining} AE) vs scratch encoder, same recipe", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2)  # above the bars (ylim 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log(f"wrote {path}")


def plot_reconstructions(autoencoder, images, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noisy = keras.ops.convert_to_numpy(autoencoder.noise_layer(images, training=True))
    clean_recon = autoencoder.predict(images, verbose=0)
    noisy_recon = autoencoder.predict(noisy, verbose=0)
    grid = [("input", images), ("masked input", noisy)]
    grid += [("reconstruction of input", clean_recon), ("reconstruction of masked", noisy_recon)]
    fig, axes = plt.subplots(len(grid), len(images), figsize=(len(images), len(grid) + 0.5))
    for row, (title, batch) in enumerate(grid):
        for col in range(len(images)):
            axes[row, col].imshow(batch[col].squeeze(), cmap="gray", vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[row, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    log(f"wrote {path}")


def export_best(classifier, row, args):
    from ptft_keras.export.image import export_image_classifier

    path = export_image_classifier(classifier, args.export_dir, overwrite=args.overwrite)
    budget, init, method, acc = row
    log(f"exported the best classifier ({budget} labels, {init}, {method}: {acc:.4f}) to {path}")


if __name__ == "__main__":
    main()
