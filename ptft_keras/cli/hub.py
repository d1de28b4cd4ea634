"""keras-hub backbones on the command line: `--backbone PRESET_OR_DIR` (docs/cli.md).

    ptft pretrain text --data CORPUS --backbone PRESET_OR_DIR --out RUN [--objective masked|causal]
    ptft finetune [HUB_PRETRAIN_RUN | --backbone PRESET_OR_DIR] --data TABLE --out RUN
                  [--method auto|probe|full|lp-ft|gradual|llrd|bitfit|adapters|lora]
    ptft evaluate | export | predict RUN        # serve.py reads hub runs with `load_hub_run`

A preset is a keras-hub preset name (`from_preset` downloads it) or a local directory
written by keras-hub's `save_to_preset`. What the run directories hold, besides config.json
(whose `backbone` is the preset: a name, or an absolute directory):

    pretrain:            preset/   the adapted backbone + tokenizer, a keras-hub preset
    finetune (most):     model.keras                         (the whole classifier)
    finetune lora:       backbone.lora.h5, head.weights.h5, lora.json (`save_hub_lora`); the
                         base preset is referenced in config.json, not copied
    finetune adapters:   model.weights.h5 (adapters sit in keras-hub's blocks, not in its
                         config: reloading rebuilds from the preset, adds them, loads weights)

Only this module imports keras-hub (seconds), and only when a command uses a hub backbone.
"""

import os
import warnings

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras_hub.src.utils.preset_utils import check_config_class, list_subclasses, load_json

from ptft_keras.cli import data as cli_data
from ptft_keras.cli.runs import CliError, fingerprint, finish, phase_callbacks, prepare_run
from ptft_keras.hub.parts import add_hub_adapters
from ptft_keras.models.hub import hub_backbone, hub_causal_lm, hub_masked_lm, hub_text_classifier
from ptft_keras.peft.hub import load_hub_lora, merge_hub_lora, save_hub_lora
from ptft_keras.training import methods
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.recipes.arguments import recipe_from_args
from ptft_keras.training.strategies import get_strategy

PRESET = "preset"  # RUN/preset/: what `pretrain text --backbone` writes
TASKS = {"masked": keras_hub.models.MaskedLM, "causal": keras_hub.models.CausalLM}
HUB_PRETRAIN_LR = 5e-5  # keras-hub's MaskedLM default: continue a trained model gently
SEQUENCE_LENGTH = 128  # fine-tuning: SST-2-like sentences fit in 128 word pieces; capped
# at the backbone's max_sequence_length (keras-hub would pack to 512)
WEIGHTS = "model.weights.h5"  # --method adapters: see the module doc


def resolve_preset(value):
    """A local preset directory (made absolute) or a preset name, checked as far as
    possible offline; a clear error names the bad value."""
    if os.path.exists(value) or os.sep in value or value.startswith("."):
        path = os.path.abspath(value)
        if not os.path.isdir(path):
            raise CliError(f"--backbone {value!r}: no such preset directory.")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise CliError(
                f"--backbone {value!r} is not a keras-hub preset directory (no config.json; "
                "write one with keras-hub's save_to_preset)."
            )
        return path
    return value  # a name: keras-hub's from_preset resolves (and downloads) it


def backbone_class(preset):
    """The keras-hub Backbone class of a preset, read from its config (no weights)."""
    try:
        return check_config_class(load_json(preset))
    except Exception as error:  # keras-hub's (or the download's) own error, reworded
        raise CliError(f"--backbone {preset!r}: not a usable keras-hub preset ({error})") from None


def supported_objectives(cls):
    """The pretraining objectives keras-hub has a task for, for backbone class `cls`."""
    return [
        name
        for name, task in TASKS.items()
        if any(getattr(sub, "backbone_cls", None) is cls for sub in list_subclasses(task))
    ]


def pretraining_preset(args):
    """`pretrain text --backbone`: the preset and its Backbone class, checked before the
    run starts; sets `args.objective` (what keras-hub has a task for) and the gentler
    keras-hub learning rate when not given."""
    preset = resolve_preset(args.backbone)
    cls = backbone_class(preset)
    objectives = supported_objectives(cls)
    args.objective = args.objective or (objectives[0] if objectives else "masked")
    if args.objective not in objectives:
        raise CliError(
            f"--objective {args.objective} needs a keras-hub {TASKS[args.objective].__name__} "
            f"for {cls.__name__} (--backbone {args.backbone}); keras-hub has none. This "
            f"backbone can do: {', '.join(objectives) or 'neither'}."
        )
    args.pretrain_lr = args.pretrain_lr or HUB_PRETRAIN_LR
    return preset, cls


def pretraining_lm(preset, objective, recipe, strategy):
    """keras-hub's MaskedLM / CausalLM task on the preset, built in the strategy's scope,
    with rows of `recipe.pretrain_seq_len` tokens (at most the backbone's limit)."""
    limit = load_json(preset)["config"].get("max_sequence_length") or recipe.pretrain_seq_len
    length = min(recipe.pretrain_seq_len, limit)  # keras-hub would pack to 512
    with strategy.scope():
        if objective == "masked":
            return hub_masked_lm(preset, length, mask_selection_rate=recipe.mask_rate)
        return hub_causal_lm(preset, length)


def finetune_hub(args, sample):
    """`ptft finetune` on a hub pretrain run or on `--backbone`, with any method of
    `ptft_keras.training.methods` (`auto` = `full`); `sample(x, y, label_map, args)` draws
    --labels-per-class."""
    if args.pretrained_run is not None and args.backbone is not None:
        raise CliError("finetune takes a hub PRETRAINED_RUN or --backbone, not both.")
    if args.scratch or args.unlabeled or args.semi_supervised not in ("auto", "none"):
        raise CliError(
            "--scratch, --unlabeled and --semi-supervised are not supported for keras-hub "
            "backbones; fine-tune the preset as it is."
        )
    if args.pretrained_run is not None:
        preset = os.path.join(os.path.abspath(args.pretrained_run), PRESET)
    else:
        preset = resolve_preset(args.backbone)
        backbone_class(preset)  # a clear error for a bad name or directory
    cli_data.check_modality(args.data, "text")
    texts, y, label_map, table = cli_data.labeled_texts(
        args.data, args.text_column, args.label_column
    )
    texts, y = sample(texts, y, label_map, args)
    out, config = prepare_run(args.out, args, "finetune", "text")
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    recipe = recipe_from_args(
        text_recipe.TextRecipe, args, batch_size=args.batch_size, semi_supervised="none"
    )
    method = "full" if args.method == "auto" else args.method
    epochs = args.epochs or recipe.finetune_epochs(len(y))
    with strategy.scope():
        backbone = hub_backbone(preset)
        length = min(SEQUENCE_LENGTH, backbone.max_sequence_length)
        model = hub_text_classifier(
            backbone, len(label_map), label_names=label_map.names, preset=preset,
            sequence_length=length,
        )  # fmt: skip
        try:
            steps = -(-len(y) // recipe.batch_size)
            plan = methods.prepare(model, method, recipe.lr, epochs, steps_per_epoch=steps)
        except ValueError as error:  # e.g. adapters on a block class that was not checked
            raise CliError(f"--method {args.method}: {error}") from None
        print(
            f"fine-tuning {type(model).__name__} (--method {args.method}, lr {recipe.lr}, "
            f"{sum(int(np.prod(v.shape)) for v in model.trainable_weights):,} trainable "
            f"params) on {len(y)} labeled texts, {len(label_map)} classes, "
            f"{plan.epochs} epochs",
            flush=True,
        )
        data = tf.data.Dataset.from_tensor_slices((np.asarray(texts, dtype=str), np.asarray(y)))
        plan.fit(
            x=data.shuffle(len(y), seed=args.seed).batch(recipe.batch_size),  # raw strings
            callbacks=phase_callbacks(out, "finetune"),
            verbose=0,
            shuffle=False,  # the pipeline shuffles
        )
    cli_data.warn_if_one_class(model, np.asarray(texts, dtype=str))
    if method == "lora":
        save_hub_lora(model, out)  # backbone.lora.h5, head.weights.h5, lora.json
        saved = "backbone.lora.h5, head.weights.h5, lora.json"
    elif method == "adapters":
        model.save_weights(os.path.join(out, WEIGHTS))
        config["adapter_dim"], saved = methods.DEFAULTS["adapter_dim"], WEIGHTS
    else:
        model.save(os.path.join(out, "model.keras"))
        saved = "model.keras"
    config.update(
        data=fingerprint(args.data),
        backbone=preset,
        sequence_length=length,
        epochs=epochs,
        text_column=table.text_column,
        label_column=table.label_column,
    )
    if args.pretrained_run is not None:
        config["pretrained"] = os.path.abspath(args.pretrained_run)
    finish(out, config, label_names=model.label_names, method=method)
    print(f"wrote {out}: {saved} ({len(label_map)} classes)", flush=True)
    return 0


def load_hub_run(run, config):
    """The classifier of a hub fine-tune run, ready to predict on raw strings."""
    method = config.get("method")
    if method not in ("lora", "adapters"):
        return keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    preset = config["backbone"]
    if os.path.isabs(preset) and not os.path.isdir(preset):
        raise CliError(f"{run} holds {method} weights for the preset {preset}, which is gone.")
    names = config["label_names"]
    model = hub_text_classifier(
        preset, len(names), label_names=names, sequence_length=config["sequence_length"]
    )
    if method == "adapters":
        add_hub_adapters(model, config["adapter_dim"])
        model.load_weights(os.path.join(run, WEIGHTS))
        return model
    with warnings.catch_warnings():  # keras-hub's head file holds no optimizer to restore
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        load_hub_lora(model, run)
    return model


def export_hub_run(model, config, path, overwrite=False):
    """The raw-string SavedModel of `export_hub_classifier` (LoRA merged first)."""
    from ptft_keras.export.hub import export_hub_classifier

    if config.get("method") == "lora":
        model = merge_hub_lora(model)
    return export_hub_classifier(model, path, overwrite=overwrite)
