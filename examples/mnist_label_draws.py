"""How much does pretraining help, stage by stage, over several label draws? (MNIST)

    python examples/mnist_label_draws.py                        # 100 labels, 5 draws
    python examples/mnist_label_draws.py --budgets 10,20,40,100 --draws 3 --fixmatch
    python examples/mnist_label_draws.py --colour --budgets 20,100 --draws 3   # colour digits
    python examples/mnist_label_draws.py --colour --no-background-distance  # RGB encoder
    python examples/mnist_label_draws.py --budgets 100 --max-shifts 2,0   # shift ablation
    python examples/mnist_label_draws.py --smoke                # seconds (tests)

One pretraining (the image recipe's default autoencoder; `--autoencoder PATH` saves it,
or loads it when PATH exists), then for each label draw the same classifier is trained
from the pretrained encoder and from a random one with the recipe's stages (imprint +
frozen-encoder probe, fine-tune, and with `--fixmatch` FixMatch on the unlabeled pool),
once per `--max-shifts` entry (the fine-tuning shift augmentation; 0: none). Prints each
stage's accuracy per draw and, per setting, the mean ± std of pretrained, scratch and
their paired difference: one draw of few labels moves accuracy by several points, so
single runs cannot tell a 2-point gain from luck.

`--colour` turns the digits into colour images (`colour_digits`: a random background and
ink colour per image, 32x32, a random offset), the hard case for pretraining. After
pretraining, a nearest-neighbour check on the frozen features tells what they separate:
the digit, or the background colour (`digit_vs_colour`). Colour digits get the
colour-invariant input (`ptft_keras.layers.BackgroundDistance`), decided from the data as
`ptft pretrain image` does (`ImageRecipe.for_data`); `--no-background-distance` keeps RGB.
"""

import argparse
import dataclasses
import os
import time

import keras
import numpy as np

from ptft_keras.data.datasets.mnist import colour_digits, load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.specs import ImageSpec
from ptft_keras.training.metrics import accuracy
from ptft_keras.training.recipes import image as recipes

NAMES = [str(d) for d in range(10)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budgets", default="100", help="comma-separated label budgets")
    p.add_argument("--draws", type=int, default=5, help="label draws (seeds 0..draws-1)")
    p.add_argument("--max-shifts", default="2", help="fine-tuning shift augmentation(s), px")
    p.add_argument("--colour", action="store_true", help="colour digits (32x32 RGB)")
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument("--contrastive-weight", type=float, default=1.0, help="0: plain DAE")
    p.add_argument("--colour-augmentation", type=float, default=None, help="0..1 (RGB)")
    p.add_argument(
        "--input-normalization", action=argparse.BooleanOptionalAction, default=None,
        help="per-image standardisation in the encoder (default: on for RGB)",
    )  # fmt: skip
    p.add_argument(
        "--background-distance", action=argparse.BooleanOptionalAction, default=None,
        help="the encoder sees each pixel's distance from the background colour "
        "(default: decided from the data, ImageRecipe.for_data)",
    )  # fmt: skip
    p.add_argument("--autoencoder", default=None, help=".keras path: load, or save after")
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
    recipe = recipes.ImageRecipe(
        pretrain_epochs=args.pretrain_epochs,
        contrastive_weight=args.contrastive_weight,
        colour_augmentation=args.colour_augmentation,
        input_normalization=args.input_normalization,
        background_distance=args.background_distance,
        semi_supervised="fixmatch" if args.fixmatch else "none",
    )
    if args.smoke:
        args.test_size, args.draws = 200, 2
        recipe = recipe.smoke()
    args.recipe = recipe
    return args


def load_digits(args):
    images, labels = load_mnist("bundled")
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    if args.colour:
        images = colour_digits(images, size=32, seed=args.seed)
    spec = ImageSpec(*images.shape[1:3], channels=3 if args.colour else 1)
    images = images.reshape((-1, *spec.shape)).astype("float32") / 255.0
    return split_dataset(images, labels, test_size=args.test_size, seed=args.seed), spec


def pretrained_autoencoder(args, spec, pool):
    if args.autoencoder and os.path.exists(args.autoencoder):
        print(f"loaded the pretrained autoencoder from {args.autoencoder}")
        return keras.saving.load_model(args.autoencoder)
    args.recipe, reason = args.recipe.for_data(pool, spec)
    print(reason)
    ae = recipes.build_autoencoder(spec, args.recipe, seed=args.seed)
    start = time.perf_counter()
    recipes.pretrain_autoencoder(ae, pool, epochs=args.recipe.pretrain_epochs, verbose=2)
    print(
        f"pretrained for {args.recipe.pretrain_epochs} epochs in {time.perf_counter() - start:.0f}s"
    )
    if args.autoencoder:
        ae.save(args.autoencoder)
    return ae


def digit_vs_colour(encoder, images, labels, size=1000):
    """1-NN accuracy (cosine, half the images against the other half) of the frozen
    features on the digit and on the background colour (6 hue bins, from a corner
    pixel): which of the two the features keep. Chance is about 0.10 and 0.17."""
    size = min(size, len(images) // 2)
    x, digits = images[: 2 * size], labels[: 2 * size]
    corner = x[:, 0, 0, :]  # background: digits never reach the corner
    if corner.shape[-1] == 3:
        hue = np.arctan2(np.sqrt(3) * (corner[:, 1] - corner[:, 2]),
                         2 * corner[:, 0] - corner[:, 1] - corner[:, 2])  # fmt: skip
        colours = np.floor((hue + np.pi) / (2 * np.pi) * 6).astype(int) % 6
    else:
        colours = np.zeros(len(x), int)
    f = keras.ops.convert_to_numpy(encoder.predict(x, batch_size=256, verbose=0))
    f = f.reshape(len(f), -1)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-8
    nearest = np.argmax(f[size:] @ f[:size].T, axis=1)
    return {
        "digit": float(np.mean(digits[:size][nearest] == digits[size:])),
        "colour": float(np.mean(colours[:size][nearest] == colours[size:])),
    }


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    split, spec = load_digits(args)
    ae = pretrained_autoencoder(args, spec, split.pool_x)
    for init, encoder in (
        ("pretrained", ae.encoder),
        ("random", keras.Model.from_config(ae.encoder.get_config())),
    ):
        nn = digit_vs_colour(encoder, split.test_x, split.test_y)
        print(f"1-NN on {init} features: digit {nn['digit']:.3f}, colour {nn['colour']:.3f}")
    results = {}  # (budget, max_shift, stage, init) -> [accuracy per draw]
    for budget, draw in ((b, d) for b in args.budgets for d in range(args.draws)):
        few_x, few_y = sample_few_labels(split.pool_x, split.pool_y, budget, 10, seed=draw)
        for shift in args.max_shifts:
            recipe = dataclasses.replace(args.recipe, max_shift=shift)
            for init in ("pretrained", "scratch"):
                clf = recipes.make_classifier(ae, NAMES, pretrained=init == "pretrained")
                line = [f"{budget} labels, draw {draw}, shift {shift}px, {init}:"]

                def report(stage, model, key=(budget, shift), line=line, init=init):
                    acc = accuracy(model, split.test_x, split.test_y)
                    results.setdefault((*key, stage, init), []).append(acc)
                    line.append(f"{stage} {acc:.4f}")

                recipes.fit_few_labels(
                    clf, few_x, few_y, split.pool_x, recipe, seed=draw, on_stage=report
                )
                print(" ".join(line), flush=True)
    print_summary(results, args)
    return results


def print_summary(results, args):
    print(f"\n{args.draws} label draws: mean ± std test accuracy (%)")
    print(" labels | shift | stage          | pretrained     | scratch        | paired difference")
    for budget, shift, stage in dict.fromkeys(k[:3] for k in results):  # in run order
        pre = 100 * np.array(results[(budget, shift, stage, "pretrained")])
        scr = 100 * np.array(results[(budget, shift, stage, "scratch")])
        cells = [f"{v.mean():6.2f} ± {v.std():4.2f}" for v in (pre, scr, pre - scr)]
        print(f"{budget:>7d} | {shift:>3d}px | {stage:<14s} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
