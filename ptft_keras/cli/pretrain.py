"""`ptft pretrain image|text`: pretrain on unlabeled data into a run directory."""

import os

import keras

from ptft_keras.cli import data as cli_data
from ptft_keras.cli.runs import (
    LM_FILE,
    TOKENIZER,
    CliError,
    completed_epochs,
    fingerprint,
    finish,
    phase_callbacks,
    prepare_run,
    save_text_lm,
)
from ptft_keras.data import images as image_data
from ptft_keras.training import plots
from ptft_keras.training.recipes import image as image_recipe
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.recipes.arguments import (
    add_recipe_arguments,
    positive_float,
    positive_int,
    recipe_from_args,
)
from ptft_keras.training.strategies import get_strategy

IMAGE_OBJECTIVES = ("contrastive", "denoising")
IMAGE_PRETRAIN_FIELDS = (
    "latent_dim",
    "pretrain_batch_size",
    "pretrain_learning_rate",
    "colour_augmentation",
    "input_normalization",
    "background_distance",
)
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
    "pretrain_seq_len",
    "tokenizer_documents",
    "xla",
)
HELD_OUT_DOCUMENTS = 500  # at most; held out of pretraining for the held-out LM loss


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
    image.add_argument(
        "--epochs", type=positive_int, default=None, help="default: the recipe's (30)"
    )
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
        "a table's text column. Documents are streamed, tokenised and packed into full "
        "rows in tf.data; training stops on a token, step or time budget.",
    )
    text.add_argument("--data", required=True, help="corpus file, folder or table")
    text.add_argument(
        "--backbone",
        default=None,
        metavar="PRESET_OR_DIR",
        help="continue pretraining a keras-hub model (a preset name, or a local directory "
        "from save_to_preset) instead of the toolkit's own from scratch; the model-size "
        "and tokenizer flags then do not apply (docs/cli.md#keras-hub-backbones)",
    )
    text.add_argument(
        "--objective",
        choices=text_recipe.OBJECTIVES,
        default=None,
        help="default: causal; with --backbone, masked for BERT-like and causal for "
        "GPT-2-like backbones",
    )
    text.add_argument("--text-column", default=None, help="for a table")
    budget = text.add_mutually_exclusive_group()
    budget.add_argument(
        "--tokens",
        type=positive_int,
        default=None,
        help=f"stop after N training tokens (default {text_recipe.TextRecipe.pretrain_tokens:,})",
    )
    budget.add_argument("--steps", type=positive_int, default=None, help="stop after N steps")
    budget.add_argument("--minutes", type=positive_float, default=None, help="stop after M minutes")
    text.add_argument("--max-documents", type=positive_int, default=None, help="read at most N")
    add_recipe_arguments(text, text_recipe.TextRecipe(), only=TEXT_PRETRAIN_FIELDS)
    for action in text._actions:  # a trained keras-hub model continues at a gentler rate
        if action.dest == "pretrain_lr":
            action.default = None
            action.help = f"default {text_recipe.TextRecipe.pretrain_lr}; with --backbone 5e-05"
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
    recipe, reason = recipe.for_data(folder, spec)
    print(reason, flush=True)
    config.update(
        data=fingerprint(args.data),
        image_spec=spec.to_config(),
        images=len(folder),
        epochs=recipe.pretrain_epochs,  # what runs (--epochs, or the recipe's default)
    )
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
    """The toolkit's own LM from scratch (a WordPiece tokenizer first), or with --backbone
    a keras-hub task continued: both by the text recipe's `pretrain_on_corpus`."""
    cli_data.check_modality(args.data, "text")
    hub = None
    if args.backbone is not None:  # keras-hub is imported only for these runs (seconds)
        from ptft_keras.cli import hub

        preset, cls = hub.pretraining_preset(args)  # sets the objective and LR defaults
    args.objective = args.objective or text_recipe.TextRecipe.objective
    args.pretrain_lr = args.pretrain_lr or text_recipe.TextRecipe.pretrain_lr
    out, config = prepare_run(args.out, args, "pretrain", "text")
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    recipe = recipe_from_args(text_recipe.TextRecipe, args)
    documents = cli_data.corpus_documents(args.data, args.text_column)
    if args.max_documents:
        documents = documents.take(args.max_documents)
    count = int(documents.reduce(0, lambda n, _: n + 1))
    if count == 0:
        raise CliError(f"{args.data!r} holds no text.")
    held = min(HELD_OUT_DOCUMENTS, count // 20)
    print(f"{args.data}: {count:,} documents ({held} held out for the LM's loss)", flush=True)
    config.update(data=fingerprint(args.data), documents=count)
    if hub is not None:
        tokenizer, lm = None, hub.pretraining_lm(preset, args.objective, recipe, strategy)
        length = lm.preprocessor.sequence_length  # one document a row, padded
        config.update(backbone=preset, sequence_length=length)
        what = (
            f"continued pretraining of {cls.__name__} ({lm.backbone.count_params():,} params) "
            f"with keras-hub's {type(lm).__name__} ({args.objective}), rows of {length} "
            f"tokens (one document each, padded), lr {args.pretrain_lr}"
        )
    else:
        sample = [d.numpy().decode("utf-8") for d in documents.take(recipe.tokenizer_documents)]
        tokenizer = text_recipe.train_text_tokenizer(sample, recipe)
        lm = text_recipe.build_language_model(
            tokenizer.vocabulary_size(), recipe, args.seed, strategy
        )
        length = recipe.pretrain_seq_len
        what = (
            f"pretraining a {recipe.objective} LM ({lm.backbone.count_params():,} backbone "
            f"params) on rows of {length} packed tokens"
        )
    tokens = args.steps * recipe.pretrain_batch * length if args.steps else args.tokens
    tokens = None if args.minutes else (tokens or recipe.pretrain_tokens)
    budget = f"{args.minutes} minutes" if args.minutes else f"{tokens:,} tokens"
    print(f"{what}; budget: {budget}", flush=True)
    start = completed_epochs(out, "pretrain") if args.resume else 0
    history = text_recipe.pretrain_on_corpus(
        lm,
        documents.skip(held),
        tokenizer,
        recipe,
        tokens=tokens,
        seconds=args.minutes * 60 if args.minutes else None,
        seed=args.seed,
        strategy=strategy,
        callbacks=phase_callbacks(out, "pretrain"),
        validation_documents=documents.take(held) if held else None,
        initial_epoch=start,
    )
    last = {k: v[-1] for k, v in history.history.items() if v}
    summary = dict(final_loss=last.get("loss"), held_out_loss=last.get("val_loss"))
    if hub is not None:
        lm.backbone.save_to_preset(os.path.join(out, hub.PRESET))
        lm.preprocessor.tokenizer.save_to_preset(os.path.join(out, hub.PRESET))
        summary["held_out_loss_before"] = history.held_out_loss_before
        saved = f"{out}/{hub.PRESET} (a keras-hub preset)"
    else:
        save_text_lm(out, lm, tokenizer)
        saved = f"{out}/{LM_FILE} and {out}/{TOKENIZER}"
    finish(out, config, **summary, tokens=last.get("tokens"), objective=args.objective)
    before = summary.get("held_out_loss_before")
    change = f"{before:.4f} -> " if before is not None else ""
    held_out = f"{change}{last.get('val_loss')}"
    if last.get("val_loss") is None:  # e.g. a few short held-out documents
        held_out = f"not measured ({held} held-out documents fill no row of {length} tokens)"
    print(f"wrote {saved}; final loss {last.get('loss')}, held-out loss {held_out}", flush=True)
    return 0


def _size(text):
    if text is None:
        return None, None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise CliError(f"--image-size must look like 32x32, got {text!r}.") from error
    return height, width
