"""Compare fine-tuning methods from one pretrained checkpoint: MNIST (100 labels), SST-2.

    python examples/finetuning_methods.py                  # both tasks, offline
    python examples/finetuning_methods.py --task mnist     # MNIST only (about a minute)
    python examples/finetuning_methods.py --smoke          # seconds, for tests

Each task pretrains once with the library's recipes (MNIST: a denoising dense
autoencoder, `recipes.image.pretrain_autoencoder`; SST-2: the language-model pretraining
of `recipes.text`), then fine-tunes a fresh copy of the pretrained classifier with every
method in `ptft_keras.training.methods.METHODS` for the same number of epochs, and prints
one table: method, trainable parameters, share of total, accuracy, training time. The
LoRA model is then merged (`merge_lora`) and, on TensorFlow, exported as a SavedModel
whose predictions are compared with the unmerged model's
(`ptft_keras.export.lora.check_lora_export`).

MNIST uses the *dense* autoencoder (784-256-64), not the conv one: Keras's `Conv2D` has
no `enable_lora`, `Dense` has.
"""

import argparse
import os
import time

import keras
import numpy as np

from ptft_keras.data.datasets import sst2
from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.data.text import make_text_dataset
from ptft_keras.data.tokenizer import load_tokenizer, save_tokenizer
from ptft_keras.models.autoencoder import build_dense_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.peft import merge_lora
from ptft_keras.training.compare import FinetuneSpec, format_table, run_comparison
from ptft_keras.training.methods import METHODS
from ptft_keras.training.recipes import image as recipes
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.strategies import add_strategy_arguments, get_strategy, xla_option


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="both", choices=["mnist", "sst2", "both"])
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    p.add_argument("--mnist-labels", type=int, default=100)
    p.add_argument("--mnist-pretrain-epochs", type=int, default=10)
    p.add_argument("--mnist-epochs", type=int, default=40, help="epochs of 100 labels")
    p.add_argument("--sst2-labels", type=int, default=1000)
    p.add_argument("--sst2-epochs", type=int, default=8)
    p.add_argument("--sst2-pretrain-epochs", type=int, default=1, help="MLM epochs on SST-2 text")
    p.add_argument("--sst2-objective", default="masked", choices=["masked", "causal"])
    p.add_argument(
        "--sst2-data-dir", default=None, help="train.tsv + dev.tsv (default: ../shared/data/sst2)"
    )
    p.add_argument(
        "--reuse-pretrained",
        action="store_true",
        help="load the LM saved in --output-dir by an earlier run",
    )
    p.add_argument("--output-dir", default="runs/finetuning_methods")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny settings, for tests")
    add_strategy_arguments(p)
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown --methods {unknown}; choose from {list(METHODS)}")
    if args.smoke:  # every step of the real pipeline, shrunk
        args.mnist_pretrain_epochs, args.mnist_epochs, args.sst2_epochs = 1, 4, 4
        args.sst2_labels = 100
    return args


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def mnist_task(args):
    images, labels = load_mnist("bundled")
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=200 if args.smoke else 2000, seed=args.seed)
    pool = split.pool_x.astype("float32") / 255.0  # (N, 28, 28)
    test_x, test_y = split.test_x.astype("float32") / 255.0, split.test_y
    few_x, few_y = sample_few_labels(pool, split.pool_y, args.mnist_labels, 10, args.seed)

    strategy = get_strategy(args.strategy)
    with strategy.scope():
        autoencoder = build_dense_autoencoder(
            hidden_units=(256,), latent_dim=64, noise="masking", noise_rate=0.3, seed=args.seed
        )
    log(f"MNIST: pretraining the dense autoencoder on {len(pool)} unlabeled images")
    recipes.pretrain_autoencoder(
        autoencoder, pool, epochs=args.mnist_pretrain_epochs, strategy=strategy
    )

    def build():
        return Classifier.from_pretrained(autoencoder, 10, head="linear")

    spec = FinetuneSpec(
        fit_kwargs=dict(x=few_x, y=few_y, batch_size=32, verbose=0),
        epochs=args.mnist_epochs,
        learning_rate=1e-3,
        options={"lora_rank": 4},
    )
    return build, spec, test_x, test_y, "test"


def sst2_task(args):
    """The text recipe's LM (`ptft_keras.training.recipes.text`), pretrained on SST-2 text."""
    recipe = text_recipe.TextRecipe(
        pretrain_epochs=args.sst2_pretrain_epochs, objective=args.sst2_objective, xla=args.xla
    )
    recipe = recipe.smoke() if args.smoke else recipe
    data_dir = args.sst2_data_dir or sst2.DEFAULT_SST2_DIR
    train_x, train_y = sst2.load_sst2("train", data_dir=data_dir)
    dev_x, dev_y = sst2.load_sst2("dev", data_dir=data_dir)
    if args.smoke:
        train_x, train_y, dev_x, dev_y = train_x[:1500], train_y[:1500], dev_x[:100], dev_y[:100]
    lm_path = os.path.join(args.output_dir, "sst2_lm.keras")
    tok_dir = os.path.join(args.output_dir, "sst2_tokenizer")
    if args.reuse_pretrained and os.path.exists(lm_path):
        log(f"SST-2: reusing the pretrained LM {lm_path}")
        tokenizer, lm = load_tokenizer(tok_dir), keras.saving.load_model(lm_path, compile=False)
    else:
        tokenizer = text_recipe.train_text_tokenizer(train_x, recipe)
        corpus = text_recipe.encode_texts(tokenizer, train_x, recipe.seq_len)
        strategy = get_strategy(args.strategy)
        lm = text_recipe.build_language_model(
            tokenizer.vocabulary_size(), recipe, args.seed, strategy
        )
        log(f"SST-2: pretraining a {recipe.objective} LM on {len(corpus)} phrases")
        text_recipe.pretrain_language_model(lm, corpus, recipe, args.seed, strategy)
        os.makedirs(args.output_dir, exist_ok=True)
        lm.save(lm_path)
        save_tokenizer(tokenizer, tok_dir)
    seq_len = lm.backbone.max_sequence_length
    few_x, few_y = sample_few_labels(train_x, train_y, args.sst2_labels, 2, seed=args.seed)
    few_ids = text_recipe.encode_texts(tokenizer, few_x, seq_len)
    dev_inputs = text_recipe.model_inputs(text_recipe.encode_texts(tokenizer, dev_x, seq_len))

    def build():
        return TextClassifier.from_pretrained(lm, 2)

    spec = FinetuneSpec(
        fit_kwargs=dict(
            # Length-bucketed batches vary in number per epoch: repeat and fix the steps.
            x=make_text_dataset(few_ids, few_y, 32, shuffle=True, seed=args.seed).repeat(),
            steps_per_epoch=-(-len(few_ids) // 32),
            verbose=0,
        ),
        epochs=args.sst2_epochs,
        learning_rate=3e-4,
        # 8 for the default hidden 128 (the registry's default), 1 for the smoke model
        options={"lora_rank": max(1, lm.backbone.hidden_dim // 16)},
    )
    return build, spec, dev_inputs, dev_y, "dev"


def check_lora(task, lora_model, x, output_dir):
    """Merge LoRA and compare; on TensorFlow also export and reload the SavedModel."""
    if keras.backend.backend() == "tensorflow":
        from ptft_keras.export.lora import check_lora_export

        return check_lora_export(lora_model, x, output_dir, task)
    merged = merge_lora(lora_model)
    diff = np.abs(merged.predict(x, verbose=0) - lora_model.predict(x, verbose=0))
    return {"merged_max_abs_diff": float(diff.max())}


def main(argv=None):
    args = parse_args(argv)
    tasks = ["mnist", "sst2"] if args.task == "both" else [args.task]
    tables, results = [], {}
    for task in tasks:
        keras.utils.set_random_seed(args.seed)
        build, spec, eval_x, eval_y, split = (mnist_task if task == "mnist" else sst2_task)(args)
        spec.compile_kwargs = {**spec.compile_kwargs, "jit_compile": xla_option(args.xla or None)}
        rows, lora_model = run_comparison(
            build, spec, eval_x, eval_y, args.methods, log=log, strategy=get_strategy(args.strategy)
        )
        tables.append(format_table(f"{task} ({split} accuracy)", rows))
        results[task] = {"rows": rows}
        if lora_model is not None:
            merge = check_lora(task, lora_model, eval_x, args.output_dir)
            results[task]["merge"] = merge
            tables.append(f"{task} LoRA merge check: {merge}")
    print("\n\n".join(tables))
    return results


if __name__ == "__main__":
    main()
