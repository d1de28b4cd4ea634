"""`ptft pretrain image|text`: pretrain on unlabeled data into a run directory."""

import dataclasses
import os

import keras

from ptft_keras.cli import data as cli_data
from ptft_keras.cli.runs import (
    CliError,
    completed_epochs,
    fingerprint,
    finish,
    phase_callbacks,
    prepare_run,
)
from ptft_keras.data import images as image_data
from ptft_keras.data.tokenizer import save_tokenizer
from ptft_keras.training import plots
from ptft_keras.training.callbacks import Budget
from ptft_keras.training.recipes import image as image_recipe
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.recipes.arguments import add_recipe_arguments, recipe_from_args
from ptft_keras.training.strategies import get_strategy

IMAGE_OBJECTIVES = ("contrastive", "denoising")
IMAGE_PRETRAIN_FIELDS = ("latent_dim", "pretrain_batch_size", "pretrain_learning_rate")
TEXT_PRETRAIN_FIELDS = (
    "normalizer",
    "vocab_size",
    "seq_len",
    "hidden",
    "layers",
    "heads",
    "intermediate",
    "dropout",
    "mask_rate",
    "pretrain_batch",
    "pretrain_lr",
    "xla",
)


def add_parsers(subparsers, common):
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain on unlabeled images or text",
        description="Pretrain on unlabeled data. Writes a run directory for `ptft finetune`.",
    )
    kinds = parser.add_subparsers(dest="modality", required=True, metavar="{image,text}")
    image = kinds.add_parser(
        "image",
        parents=[common],
        help="an autoencoder on a folder of images",
        description="Pretrain the image recipe's conv autoencoder (denoising, plus a "
        "contrastive term by default) on a folder of images, searched recursively.",
    )
    image.add_argument("--data", required=True, help="folder of images (any layout)")
    image.add_argument(
        "--objective",
        choices=IMAGE_OBJECTIVES,
        default="contrastive",
        help="contrastive = denoising + a contrastive term (default: best measured)",
    )
    image.add_argument("--epochs", type=int, default=None, help="default: the recipe's (30)")
    image.add_argument("--image-size", default=None, help="HxW, e.g. 32x32 (default: most common)")
    image.add_argument("--channels", type=int, choices=(1, 3), default=None)
    image.add_argument("--scaling", choices=("unit", "standard"), default="unit")
    image.add_argument("--skip-corrupt", action="store_true", help="leave unreadable files out")
    add_recipe_arguments(image, image_recipe.ImageRecipe(), only=IMAGE_PRETRAIN_FIELDS)
    image.set_defaults(run=pretrain_image)

    text = kinds.add_parser(
        "text",
        parents=[common],
        help="a Transformer language model on unlabeled text",
        description="Train a WordPiece tokenizer and pretrain a Transformer LM on "
        "unlabeled text: one document a line (plain or .gz), a folder of .txt files, or "
        "a table's text column.",
    )
    text.add_argument("--data", required=True, help="corpus file, folder or table")
    text.add_argument("--objective", choices=text_recipe.OBJECTIVES, default="causal")
    text.add_argument("--text-column", default=None, help="for a table")
    budget = text.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, help="stop after N steps")
    budget.add_argument("--minutes", type=float, default=None, help="stop after M minutes")
    budget.add_argument("--epochs", type=int, default=None, help="default: the recipe's (20)")
    text.add_argument("--max-documents", type=int, default=None, help="read at most N")
    add_recipe_arguments(text, text_recipe.TextRecipe(), only=TEXT_PRETRAIN_FIELDS)
    text.set_defaults(run=pretrain_text)


def pretrain_image(args):
    cli_data.check_modality(args.data, "image")
    out, config = prepare_run(args.out, args, "pretrain", "image")
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    folder = image_data.scan_image_folder(
        args.data, labeled=False, skip_corrupt=args.skip_corrupt, log=print
    )
    height, width = _size(args.image_size)
    spec = image_data.infer_image_spec(folder, height, width, args.channels, args.scaling)
    recipe = recipe_from_args(
        image_recipe.ImageRecipe,
        args,
        contrastive_weight=1.0 if args.objective == "contrastive" else 0.0,
        pretrain_epochs=args.epochs or image_recipe.ImageRecipe.pretrain_epochs,
    )
    config.update(data=fingerprint(args.data), image_spec=spec.to_config(), images=len(folder))
    autoencoder = image_recipe.build_autoencoder(spec, recipe, seed=args.seed, strategy=strategy)
    start = completed_epochs(out, "pretrain") if args.resume else 0
    print(
        f"pretraining a {args.objective} autoencoder on {len(folder)} images "
        f"({spec.describe()}, {spec.scaling} scaling) for {recipe.pretrain_epochs} epochs"
        + (f", resuming after epoch {start}" if start else ""),
        flush=True,
    )
    history = image_recipe.pretrain_autoencoder(
        autoencoder,
        folder,
        epochs=recipe.pretrain_epochs,
        batch_size=recipe.pretrain_batch_size,
        learning_rate=recipe.pretrain_learning_rate,
        strategy=strategy,
        callbacks=lambda phase: phase_callbacks(out, phase),
        verbose=0,
        seed=args.seed,
        initial_epoch=start,
    )
    autoencoder.save(os.path.join(out, "autoencoder.keras"))
    sample = image_data.load_images(image_data._subset(folder, 10), spec)[0][:10]
    grid = plots.reconstruction_grid(autoencoder, sample, os.path.join(out, "reconstructions.png"))
    loss = history.history["loss"][-1] if history.history.get("loss") else None
    finish(out, config, final_loss=loss)
    print(f"wrote {out}/autoencoder.keras and {grid}; final loss {loss}", flush=True)
    return 0


def pretrain_text(args):
    cli_data.check_modality(args.data, "text")
    out, config = prepare_run(args.out, args, "pretrain", "text")
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    recipe = recipe_from_args(
        text_recipe.TextRecipe,
        args,
        pretrain_epochs=args.epochs or text_recipe.TextRecipe.pretrain_epochs,
    )
    texts = cli_data.unlabeled_texts(args.data, args.text_column, args.max_documents)
    print(f"{args.data}: {len(texts)} documents", flush=True)
    tokenizer = text_recipe.train_text_tokenizer(texts, recipe)
    save_tokenizer(tokenizer, os.path.join(out, "tokenizer"))
    ids = text_recipe.encode_texts(tokenizer, texts, recipe.seq_len)
    config.update(data=fingerprint(args.data), documents=len(texts))
    lm = text_recipe.build_language_model(tokenizer.vocabulary_size(), recipe, args.seed, strategy)
    budget = Budget(
        max_steps=args.steps,
        max_seconds=args.minutes * 60 if args.minutes else None,
        tokens_per_step=recipe.pretrain_batch * (recipe.seq_len - 1),
    )
    epochs = recipe.pretrain_epochs
    if args.steps or args.minutes:  # the budget stops training; let epochs run on
        epochs = max(epochs, 1000)
    recipe = dataclasses.replace(recipe, pretrain_epochs=epochs)
    print(
        f"pretraining a {recipe.objective} LM ({lm.backbone.count_params():,} backbone "
        f"params) on {len(ids)} sequences of {recipe.seq_len} tokens; budget: "
        + (f"{args.steps} steps" if args.steps else "")
        + (f"{args.minutes} minutes" if args.minutes else "")
        + ("" if args.steps or args.minutes else f"{epochs} epochs"),
        flush=True,
    )
    start = completed_epochs(out, "pretrain") if args.resume else 0
    history = text_recipe.pretrain_language_model(
        lm,
        ids,
        recipe,
        args.seed,
        strategy,
        [*phase_callbacks(out, "pretrain"), budget],
        initial_epoch=start,
    )
    lm.save(os.path.join(out, "lm.keras"))
    loss = history.history["loss"][-1] if history.history.get("loss") else None
    finish(out, config, final_loss=loss, steps=budget.steps, objective=recipe.objective)
    print(f"wrote {out}/lm.keras and {out}/tokenizer; final loss {loss}", flush=True)
    return 0


def _size(text):
    if text is None:
        return None, None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise CliError(f"--image-size must look like 32x32, got {text!r}.") from error
    return height, width
