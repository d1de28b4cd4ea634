"""`ptft demo-data`: write the offline demo data as the folders and tables users have.

    ptft demo-data mnist --out data/mnist    # unlabeled/, labeled/ (10 a class), test/
    ptft demo-data mnist --colour --out data/colour   # the same digits in colour, 32x32
    ptft demo-data sst2 --out data/sst2      # train.csv (string labels), test.csv
    ptft demo-data bert-preset --out models/bert_tiny_random   # a local keras-hub preset

From the MNIST sample bundled with the package and SST-2 in `../shared/data/sst2` (or
`$PTFT_SST2_DIR`), so the README walkthroughs run without a network. `bert-preset` writes
what `--backbone` takes offline in place of a downloaded `bert_tiny_en_uncased`: the same
shape with random weights and a WordPiece vocabulary learned from the SST-2 train
sentences and, when `../shared/data/imdb_unsup` (or `$PTFT_IMDB_DIR`) is there, 10,000 IMDb
reviews (`ptft_keras.models.hub_presets`).
"""

import csv
import os

import numpy as np

from ptft_keras.cli.runs import CliError
from ptft_keras.training.recipes.arguments import positive_int


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo-data",
        help="write the offline demo data as image folders / text tables",
        description="Write the bundled MNIST sample as PNG folders (unlabeled pool, a few "
        "labeled images per class, a held-out test set), or SST-2 as CSV tables with "
        "string labels.",
    )
    parser.add_argument("dataset", choices=("mnist", "sst2", "bert-preset"))
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--labels-per-class", type=positive_int, default=10, help="mnist: labeled/")
    parser.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="mnist: side in pixels (default 28, colour 32)",
    )
    parser.add_argument(
        "--channels", type=int, choices=(1, 3), default=1, help="mnist: grey (1) or RGB (3)"
    )
    parser.add_argument(
        "--colour",
        action="store_true",
        help="mnist: colour digits (a random background and ink colour per image, at a "
        "random offset; 32x32 unless --size)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vocab-size",
        type=positive_int,
        default=4000,
        help="bert-preset: WordPiece vocabulary (about)",
    )
    parser.set_defaults(run=write_demo_data)


def write_demo_data(args):
    if os.path.exists(args.out) and os.listdir(args.out):
        raise CliError(f"{args.out} exists and is not empty; choose another --out.")
    if args.dataset == "mnist":
        return _mnist(args)
    if args.dataset == "bert-preset":
        return _bert_preset(args)
    return _sst2(args)


def _mnist(args):
    from ptft_keras.data.datasets.mnist import colour_digits, load_mnist
    from ptft_keras.data.images import write_image_folder
    from ptft_keras.data.splits import sample_few_labels, split_dataset

    images, labels = load_mnist("bundled")
    side = args.size if args.size is not None else (32 if args.colour else 28)
    if side < 8 or (args.colour and side < 28):
        least = 28 if args.colour else 8
        raise CliError(f"--size must be >= {least}{' with --colour' * args.colour}, got {side}.")
    if args.colour:  # drawn at their own size on a larger canvas: no resizing below
        images = colour_digits(images, size=side, seed=args.seed)
    split = split_dataset(images, labels, test_size=2000, seed=args.seed)
    names = [str(d) for d in range(10)]
    few_x, few_y = sample_few_labels(
        split.pool_x, split.pool_y, 10 * args.labels_per_class, seed=args.seed
    )
    size = None if side == images.shape[1] else (side, side)
    for name, x, y in (
        ("unlabeled", split.pool_x, None),
        ("labeled", few_x, few_y),
        ("test", split.test_x, split.test_y),
    ):
        path = os.path.join(args.out, name)
        write_image_folder(x, y, path, names, size=size, channels=args.channels)
        print(f"wrote {len(x)} images to {path}")
    return 0


def _sst2(args):
    from ptft_keras.data.datasets.sst2 import load_sst2

    names = {0: "negative", 1: "positive"}
    os.makedirs(args.out, exist_ok=True)
    for split, file in (("train", "train.csv"), ("dev", "test.csv")):
        texts, labels = load_sst2(split)
        path = os.path.join(args.out, file)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, (names[int(y)] for y in np.asarray(labels)), strict=True))
        print(f"wrote {len(texts)} rows to {path}")
    return 0


def _bert_preset(args):
    from ptft_keras.data.datasets import imdb
    from ptft_keras.data.datasets.sst2 import load_sst2
    from ptft_keras.models.hub_presets import random_bert_preset

    texts = list(load_sst2("train")[0])
    source, path = imdb.default_corpus_source()
    if source == "path":  # the offline corpus; never downloads here
        reviews = imdb.imdb_corpus(source, path).take(10_000).as_numpy_iterator()
        texts += [r.decode("utf-8") for r in reviews]
    _, vocabulary = random_bert_preset(args.out, texts, args.vocab_size, seed=args.seed)
    print(
        f"wrote a random BERT-Tiny-shaped keras-hub preset ({len(vocabulary):,} WordPieces "
        f"from {len(texts):,} texts) to {args.out}"
    )
    return 0
