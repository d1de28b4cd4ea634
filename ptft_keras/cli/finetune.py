"""`ptft finetune`: a classifier from a pretrain run (or from scratch) on labeled data."""

import dataclasses
import os

import keras
import numpy as np

from ptft_keras.cli import data as cli_data
from ptft_keras.cli.runs import (
    CliError,
    completed_epochs,
    fingerprint,
    finish,
    load_text_lm,
    phase_callbacks,
    prepare_run,
    read_config,
)
from ptft_keras.data import images as image_data
from ptft_keras.data.splits import sample_few_labels
from ptft_keras.data.text import make_text_dataset
from ptft_keras.data.tokenizer import load_tokenizer, save_tokenizer
from ptft_keras.peft import lora
from ptft_keras.training import methods
from ptft_keras.training.recipes import image as image_recipe
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.recipes.arguments import (
    add_recipe_arguments,
    positive_int,
    recipe_from_args,
)
from ptft_keras.training.semi_supervised import uda
from ptft_keras.training.strategies import get_strategy

SEMI_SUPERVISED = ("auto", "none", "fixmatch", "self-training", "uda")
IMAGE_SEMI = ("fixmatch", "self-training")
TEXT_SEMI = ("uda",)
UNLABELED_TEXTS = 20_000  # --unlabeled texts read for UDA (one pass: ~210 steps of 96)
IMAGE_FIELDS = (
    "probe_steps",
    "finetune_steps",
    "learning_rate",
    "finetune_learning_rate",
    "max_shift",
    "self_train_rounds",
    "self_train_steps",
    "fixmatch_steps",
    "fixmatch_mu",
    "fixmatch_threshold",
    "fixmatch_learning_rate",
    "fixmatch_ema",
    "fixmatch_strength",
    "fixmatch_alignment",
)
TEXT_FIELDS = (
    "lr",
    "scratch_lr",
    "layer_decay",
    "pooling",
    "uda_steps",
    "uda_mu",
    "uda_threshold",
    "uda_lr",
)
METHOD_EPOCHS = 40  # images, --method other than auto, without --epochs


def add_parser(subparsers, common):
    parser = subparsers.add_parser(
        "finetune",
        parents=[common],
        help="fine-tune a classifier on labeled data",
        description="Fine-tune a classifier from a `ptft pretrain` run (or, with --scratch, "
        "the same classifier from a random start) on labeled data: a folder of class "
        "sub-folders (images) or a CSV / TSV / JSON-lines table (text).",
    )
    parser.add_argument("pretrained_run", nargs="?", help="a `ptft pretrain` run directory")
    parser.add_argument(
        "--backbone",
        default=None,
        metavar="PRESET_OR_DIR",
        help="fine-tune a keras-hub model (preset name or local preset directory) without "
        "a pretrain run; every --method (docs/cli.md#keras-hub-backbones)",
    )
    parser.add_argument("--data", required=True, help="labeled folder or table")
    parser.add_argument("--unlabeled", default=None, help="unlabeled pool for semi-supervised")
    parser.add_argument(
        "--method",
        choices=("auto", *methods.METHODS),
        default="auto",
        help="auto: the modality's best measured recipe (full for keras-hub backbones); "
        "the others: ptft_keras.training.methods (docs/finetuning.md)",
    )
    parser.add_argument(
        "--semi-supervised",
        choices=SEMI_SUPERVISED,
        default="auto",
        help="auto: fixmatch for images when --unlabeled is given, none for text; fixmatch "
        "and self-training are for images, uda for text (docs/finetuning.md)",
    )
    parser.add_argument("--scratch", action="store_true", help="random encoder, same model")
    parser.add_argument(
        "--labels-per-class",
        type=positive_int,
        default=None,
        help="use N labeled examples a class, drawn with --seed (few-label experiments)",
    )
    parser.add_argument("--text-column", default=None)
    parser.add_argument("--label-column", default=None)
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="text, and --method other than auto for images (where --method auto runs "
        "the recipe's --probe-steps and --finetune-steps)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--skip-corrupt", action="store_true")
    add_recipe_arguments(parser, image_recipe.ImageRecipe(), only=IMAGE_FIELDS)
    add_recipe_arguments(parser, text_recipe.TextRecipe(), only=TEXT_FIELDS)
    parser.set_defaults(run=finetune)


def finetune(args):
    if args.backbone is not None or _is_hub_run(args.pretrained_run):
        from ptft_keras.cli import hub  # imports keras-hub (seconds): only for these runs

        return hub.finetune_hub(args, _sample)
    if args.pretrained_run is None and not args.scratch:
        raise CliError("finetune needs a PRETRAINED_RUN (from `ptft pretrain`), or --scratch.")
    if args.pretrained_run is not None:
        pretrained = read_config(args.pretrained_run, kind="pretrain")
        modality = pretrained["modality"]
    else:  # --scratch without a run: the recipe's default model for this data
        pretrained, modality = None, "text" if cli_data.is_table(args.data) else "image"
    cli_data.check_modality(args.data, modality)
    if args.unlabeled is not None:
        cli_data.check_modality(args.unlabeled, modality)
    semi = args.semi_supervised
    if semi == "auto":
        fixmatch = args.method == "auto" and args.unlabeled and modality == "image"
        semi = "fixmatch" if fixmatch else "none"
    if semi != "none" and args.method != "auto":
        raise CliError(
            f"--semi-supervised {semi} is part of --method auto (the recipe); with --method "
            f"{args.method} use --semi-supervised none."
        )
    allowed = IMAGE_SEMI if modality == "image" else TEXT_SEMI
    if semi != "none" and semi not in allowed:
        raise CliError(
            f"--semi-supervised {semi} is not for {modality} data; use one of "
            f"{', '.join(allowed)} or none."
        )
    if semi != "none" and args.unlabeled is None:
        raise CliError(f"--semi-supervised {semi} needs --unlabeled (the unlabeled pool).")
    _check_flags_apply(args, modality)
    out, config = prepare_run(args.out, args, "finetune", modality)
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    config.update(data=fingerprint(args.data), semi_supervised=semi)
    if pretrained is not None:
        config["pretrained"] = os.path.abspath(args.pretrained_run)
    run = _finetune_images if modality == "image" else _finetune_text
    model, inputs, tokenizer = run(args, out, config, pretrained, semi, strategy)
    cli_data.warn_if_one_class(model, inputs, tokenizer)
    model.save(os.path.join(out, "model.keras"))
    if args.method == "lora":
        path = os.path.join(out, "lora.npz")
        lora.save_lora_weights(model, path, extra=("head/*",))  # the head travels with it
    finish(out, config, label_names=model.label_names, method=args.method)
    print(f"wrote {out}/model.keras ({len(model.label_names)} classes)", flush=True)
    return 0


def _finetune_images(args, out, config, pretrained, semi, strategy):
    recipe = recipe_from_args(
        image_recipe.ImageRecipe, args, semi_supervised=semi, batch_size=args.batch_size
    )
    if pretrained is not None:
        ae_path = os.path.join(args.pretrained_run, "autoencoder.keras")
        autoencoder = keras.saving.load_model(ae_path, compile=False)
        spec = autoencoder.image_spec
    else:
        folder = image_data.scan_image_folder(args.data, labeled=True)
        spec = image_data.infer_image_spec(folder)
        autoencoder = image_recipe.build_autoencoder(spec, recipe, seed=args.seed)
    x, y, label_map = cli_data.labeled_images(args.data, spec, args.skip_corrupt)
    x, y = _sample(x, y, label_map, args)
    print(f"fine-tuning on {len(x)} labeled images, {len(label_map)} classes", flush=True)
    model = image_recipe.make_classifier(
        autoencoder, label_map.names, pretrained=not args.scratch, strategy=strategy
    )
    if args.method != "auto":
        fit_kwargs = dict(x=x, y=y, batch_size=args.batch_size, verbose=0)
        config["epochs"] = args.epochs or METHOD_EPOCHS
        model = _fit_method(model, args, fit_kwargs, config["epochs"], 1e-3, out, strategy)
        return model, x, None
    unlabeled = None
    if semi != "none":
        pool = image_data.scan_image_folder(args.unlabeled, labeled=False, log=print)
        unlabeled = image_data.load_images(pool, spec)[0]
    image_recipe.fit_few_labels(
        model,
        x,
        y,
        unlabeled,
        recipe,
        seed=args.seed,
        strategy=strategy,
        callbacks=lambda phase: phase_callbacks(out, phase),
        on_stage=lambda name, m: print(f"stage done: {name}", flush=True),
    )
    return model, x, None


def _finetune_text(args, out, config, pretrained, semi, strategy):
    recipe = recipe_from_args(
        text_recipe.TextRecipe, args, batch_size=args.batch_size, semi_supervised=semi
    )
    if pretrained is not None:
        tokenizer, lm, _ = load_text_lm(args.pretrained_run)
        recipe = dataclasses.replace(recipe, seq_len=lm.backbone.max_sequence_length)
    texts, y, label_map, table = cli_data.labeled_texts(
        args.data, args.text_column, args.label_column
    )
    config.update(text_column=table.text_column, label_column=table.label_column)
    texts, y = _sample(texts, y, label_map, args)
    if pretrained is None:  # --scratch alone: tokenizer from the labeled texts
        saved = os.path.join(out, "tokenizer")
        if args.resume and os.path.isdir(saved):  # the trainer's ties differ run to run
            tokenizer = load_tokenizer(saved)
        else:
            tokenizer = text_recipe.train_text_tokenizer(texts, recipe)
        lm = text_recipe.build_language_model(tokenizer.vocabulary_size(), recipe, args.seed)
    save_tokenizer(tokenizer, os.path.join(out, "tokenizer"))
    ids = text_recipe.encode_texts(tokenizer, texts, recipe.seq_len)
    epochs = args.epochs or recipe.finetune_epochs(len(ids))
    config["epochs"] = epochs  # what runs (--epochs, or the recipe's default for the data)
    print(
        f"fine-tuning on {len(ids)} labeled texts, {len(label_map)} classes, {epochs} epochs",
        flush=True,
    )
    pretrained_weights = not args.scratch
    model = text_recipe.make_text_classifier(
        lm, label_map.names, recipe, pretrained_weights, args.seed + 1, strategy
    )
    if args.method != "auto":
        data = make_text_dataset(
            ids, y, recipe.batch_size, shuffle=True, seed=args.seed, repeat=True
        )
        steps = max(1, -(-len(ids) // recipe.batch_size))  # bucketed: fix the steps
        fit_kwargs = dict(x=data, steps_per_epoch=steps, verbose=0)  # endless stream
        model = _fit_method(model, args, fit_kwargs, epochs, recipe.lr, out, strategy)
        return model, texts, tokenizer
    callbacks = phase_callbacks(out, "finetune")
    start = completed_epochs(out, "finetune") if args.resume else 0
    text_recipe.finetune_text_classifier(
        model, ids, y, recipe, epochs, pretrained_weights, args.seed, strategy, callbacks, start
    )
    if semi == "uda":
        texts = cli_data.unlabeled_texts(args.unlabeled, args.text_column, UNLABELED_TEXTS)
        print(f"UDA consistency training on {len(texts)} unlabeled texts", flush=True)
        unlabeled = text_recipe.encode_texts(tokenizer, texts, recipe.seq_len)
        callbacks = phase_callbacks(out, "uda")
        uda(model, ids, y, unlabeled, recipe, args.seed, strategy, callbacks)
    return model, texts, tokenizer


def _fit_method(model, args, fit_kwargs, epochs, learning_rate, out, strategy):
    """`--method M` other than auto: the registry's method (`training.methods`); with
    `steps_per_epoch` in `fit_kwargs` (text), warmup + cosine decay, as the text recipe."""
    steps = fit_kwargs.get("steps_per_epoch")
    print(f"fine-tuning with --method {args.method} for {epochs} epochs", flush=True)
    with strategy.scope():
        try:
            plan = methods.prepare(model, args.method, learning_rate, epochs, steps)
        except ValueError as error:  # e.g. LoRA on an encoder without Dense layers
            raise CliError(f"--method {args.method}: {error}") from None
        plan.fit(callbacks=phase_callbacks(out, "finetune"), **fit_kwargs)
    return plan.model


def _check_flags_apply(args, modality):
    """Refuse flags that this modality and method would ignore (a silent misreading)."""
    image = modality == "image"
    if image and args.method == "auto" and args.epochs is not None:
        raise CliError(
            "--epochs applies to --method other than auto for images; --method auto runs the "
            "recipe's stages: set --probe-steps, --finetune-steps or --fixmatch-steps instead."
        )
    ignored = TEXT_FIELDS if image else IMAGE_FIELDS
    if image and args.method != "auto":  # --epochs and a fixed rate (_finetune_images)
        ignored = ignored + IMAGE_FIELDS
    defaults = {**vars(image_recipe.ImageRecipe()), **vars(text_recipe.TextRecipe())}
    given = [f"--{f.replace('_', '-')}" for f in ignored if getattr(args, f) != defaults[f]]
    if given:
        raise CliError(
            f"{', '.join(given)}: not used by {'an image' if image else 'a text'} run with "
            f"--method {args.method}"
            + (" (the image recipe's stages run with --method auto only)" if image else "")
            + f"; leave {'them' if len(given) > 1 else 'it'} out."
        )


def _is_hub_run(run):
    return run is not None and read_config(run, kind="pretrain").get("backbone") is not None


def _sample(x, y, label_map, args):
    if args.labels_per_class is None:
        return x, y
    counts = np.bincount(y, minlength=len(label_map))
    short = [
        (label_map.names[c], int(n)) for c, n in enumerate(counts) if n < args.labels_per_class
    ]
    if short:
        listed = ", ".join(f"{name!r} has {n}" for name, n in short)
        raise CliError(
            f"--labels-per-class {args.labels_per_class} is more than some classes hold "
            f"({listed}); use at most {int(counts.min())}."
        )
    budget = args.labels_per_class * len(label_map)
    return sample_few_labels(x, y, budget, num_classes=len(label_map), seed=args.seed)
