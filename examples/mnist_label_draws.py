"""How much does pretraining help, over several label draws? (MNIST, paired comparison)

    python examples/mnist_label_draws.py                        # 100 labels, 5 draws
    python examples/mnist_label_draws.py --budgets 100,1000 --draws 3 --max-shifts 2
    python examples/mnist_label_draws.py --draws 3 --max-shifts 2 --fixmatch   # + FixMatch
    python examples/mnist_label_draws.py --smoke                # seconds (tests)

One pretraining (the demo's default autoencoder), then for each label draw the same
classifier is fine-tuned from the pretrained encoder and from a random one with the
demo's recipe (imprint -> probe -> fine-tune), once per `--max-shifts` entry (0: no
augmentation while fine-tuning). Prints per-draw accuracies and, per setting, the mean
± std of pretrained, scratch and their paired difference: one draw of 100 labels moves
accuracy by a few points, so single runs cannot tell a 2-point gain from luck.
`--fixmatch` continues each fine-tuned classifier with the recipe's FixMatch stage on the
unlabeled pool and reports both.
"""

import argparse
import time

import keras
import numpy as np

from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.training import semi_supervised
from ptft_keras.training.metrics import accuracy
from ptft_keras.training.recipes import image as recipes


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budgets", default="100", help="comma-separated label budgets")
    p.add_argument("--draws", type=int, default=5, help="label draws (seeds 0..draws-1)")
    p.add_argument("--max-shifts", default="2,0", help="fine-tuning shift augmentation(s), px")
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument("--contrastive-weight", type=float, default=1.0, help="0: plain DAE")
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0, help="split and pretraining seed")
    p.add_argument("--fixmatch", action="store_true", help="then FixMatch on the pool")
    p.add_argument("--smoke", action="store_true", help="tiny settings, for tests")
    args = p.parse_args(argv)
    try:
        args.budgets = [int(b) for b in args.budgets.split(",")]
        args.max_shifts = [int(s) for s in args.max_shifts.split(",")]
    except ValueError:
        p.error("--budgets and --max-shifts must be comma-separated integers")
    args.steps = dict(probe_steps=300, finetune_steps=600)
    args.recipe = recipes.ImageRecipe()
    if args.smoke:
        args.test_size, args.pretrain_epochs, args.draws = 200, 1, 2
        args.steps = dict(probe_steps=3, finetune_steps=3)
        args.recipe = args.recipe.smoke()
    return args


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    images, labels = load_mnist("bundled")
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=args.test_size, seed=args.seed)
    pool = split.pool_x.astype("float32")[..., None] / 255.0
    test_x = split.test_x.astype("float32")[..., None] / 255.0
    ae = build_conv_autoencoder(
        latent_dim=64,
        latent_activation=None,
        contrastive_weight=args.contrastive_weight,
        seed=args.seed,
    )
    start = time.perf_counter()
    recipes.pretrain_autoencoder(ae, pool, epochs=args.pretrain_epochs, verbose=2)
    print(f"pretrained for {args.pretrain_epochs} epochs in {time.perf_counter() - start:.0f}s")
    results = {}  # (budget, max_shift, init) -> [accuracy per draw]
    for budget, draw in ((b, d) for b in args.budgets for d in range(args.draws)):
        few_x, few_y = sample_few_labels(pool, split.pool_y, budget, 10, seed=draw)
        for shift in args.max_shifts:
            for init in ("pretrained", "scratch"):
                if init == "pretrained":
                    clf = Classifier.from_pretrained(ae, num_classes=10)
                else:
                    clf = Classifier(keras.Model.from_config(ae.encoder.get_config()), 10)
                recipes.finetune_classifier(
                    clf, few_x, few_y, max_shift=shift, seed=draw, **args.steps
                )
                acc = accuracy(clf, test_x, split.test_y)
                results.setdefault((budget, shift, init), []).append(acc)
                line = f"{budget} labels, draw {draw}, shift {shift}px, {init}: {acc:.4f}"
                if args.fixmatch:
                    semi_supervised.fixmatch(clf, few_x, few_y, pool, args.recipe, seed=draw)
                    fixmatch = accuracy(clf, test_x, split.test_y)
                    results.setdefault((budget, f"{shift}+FM", init), []).append(fixmatch)
                    line += f", + FixMatch {fixmatch:.4f}"
                print(line, flush=True)
    print_summary(results, args)
    return results


def print_summary(results, args):
    print(f"\n{args.draws} label draws: mean ± std test accuracy (%)")
    print(" labels | fine-tuning shift | pretrained     | scratch        | paired difference")
    shifts = [f"{s}px" for s in args.max_shifts]
    if args.fixmatch:
        shifts += [f"{s}px + FixMatch" for s in args.max_shifts]
    for budget, shift in ((b, s) for b in args.budgets for s in shifts):
        key = shift.replace("px + FixMatch", "+FM").replace("px", "")
        key = int(key) if key.isdigit() else key
        pre = 100 * np.array(results[(budget, key, "pretrained")])
        scr = 100 * np.array(results[(budget, key, "scratch")])
        cells = [f"{v.mean():6.2f} ± {v.std():4.2f}" for v in (pre, scr, pre - scr)]
        print(f"{budget:>7d} | {shift:>17s} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
