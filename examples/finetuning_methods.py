"""Every fine-tuning method from one pretrained checkpoint: MNIST (100 labels) and SST-2.

    python examples/finetuning_methods.py            # both tasks, offline (docs/finetuning.md)
    python examples/finetuning_methods.py --smoke    # seconds, for tests

MNIST: a dense denoising autoencoder (`Conv2D` has no LoRA) on the unlabeled pool. SST-2:
the text recipe's causal LM on the IMDb reviews. Each method of `training.methods` then
fine-tunes a fresh copy (`compare.run_comparison`); the LoRA model is merged and exported.
"""

import argparse
import dataclasses
import os
import time

import keras
import numpy as np

from ptft_keras.data.datasets import imdb, sst2
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
from ptft_keras.training.recipes import image as image_recipe
from ptft_keras.training.recipes import text as text_recipe
from ptft_keras.training.strategies import add_strategy_arguments, get_strategy, xla_option


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="both", choices=["mnist", "sst2", "both"])
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    p.add_argument("--mnist-epochs", type=int, default=40, help="of 100 labels")
    p.add_argument("--corpus", default=imdb.DEFAULT_IMDB_DIR, help="one document a line")
    p.add_argument("--pretrain-tokens", type=int, default=4_000_000, help="LM budget")
    p.add_argument("--save-lm", default=None, help="run directory: keep the tokenizer + LM")
    p.add_argument("--load-lm", default=None, help="run directory (--save-lm, ptft pretrain)")
    p.add_argument("--sst2-labels", type=int, default=1000)
    p.add_argument("--sst2-epochs", type=int, default=10)
    p.add_argument("--sst2-lr", type=float, default=3e-4, help="registry rate (head: x10)")
    p.add_argument("--sst2-data-dir", default=sst2.DEFAULT_SST2_DIR, help="train/dev.tsv")
    p.add_argument("--output-dir", default="runs/finetuning_methods")
    p.add_argument("--seed", type=int, default=0, help="label draw and initialisation")
    p.add_argument("--smoke", action="store_true", help="tiny settings, for tests")
    add_strategy_arguments(p)
    args = p.parse_args(argv)
    args.methods = args.methods.split(",")
    if set(args.methods) - set(METHODS):
        p.error(f"--methods {args.methods}: choose from {list(METHODS)}")
    if args.smoke:  # every step of the real pipeline, shrunk
        args.mnist_epochs, args.sst2_epochs, args.sst2_labels = 4, 4, 100
        args.pretrain_tokens = 20_000
    return args


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def mnist_task(args, strategy):
    images, labels = load_mnist("bundled")
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=200 if args.smoke else 2000, seed=args.seed)
    pool = split.pool_x.astype("float32") / 255.0  # (N, 28, 28)
    few_x, few_y = sample_few_labels(pool, split.pool_y, 100, 10, args.seed)
    with strategy.scope():
        autoencoder = build_dense_autoencoder(
            hidden_units=(256,), latent_dim=64, noise="masking", noise_rate=0.3, seed=args.seed
        )
    image_recipe.pretrain_autoencoder(autoencoder, pool, 1 if args.smoke else 10, strategy=strategy)
    fit = dict(x=few_x, y=few_y, batch_size=32, verbose=0)
    spec = FinetuneSpec(fit, args.mnist_epochs, 1e-3, options={"lora_rank": 4})
    build = lambda: Classifier.from_pretrained(autoencoder, 10, head="linear")
    return build, spec, split.test_x.astype("float32") / 255.0, split.test_y, "test"


def sst2_task(args, strategy):
    recipe = text_recipe.TextRecipe(pretrain_tokens=args.pretrain_tokens)
    if args.smoke:  # the text example's smoke settings
        recipe = dataclasses.replace(recipe.smoke(), steps_per_epoch=5, tokenizer_documents=200)
    data_dir, smoke = args.sst2_data_dir, args.smoke
    train_x, train_y, dev_x, dev_y, _ = sst2.load_sst2_experiment(data_dir, False, smoke)
    tokenizer, lm = pretrained_lm(args, recipe, train_x, strategy)
    few_x, few_y = sample_few_labels(train_x, train_y, args.sst2_labels, 2, seed=args.seed)
    few_ids = text_recipe.encode_texts(tokenizer, few_x, recipe.seq_len)
    dev_ids = text_recipe.encode_texts(tokenizer, dev_x, recipe.seq_len)
    data = make_text_dataset(few_ids, few_y, 32, shuffle=True, seed=args.seed).repeat()
    fit = dict(x=data, steps_per_epoch=-(-len(few_ids) // 32), verbose=0)  # fixed steps:
    rank = max(1, lm.backbone.hidden_dim // 16)  # bucketed batches vary; LoRA 8 at width 128
    spec = FinetuneSpec(fit, args.sst2_epochs, args.sst2_lr, options={"lora_rank": rank})
    build = lambda: TextClassifier.from_pretrained(lm, 2, sequence_length=recipe.seq_len)
    return build, spec, text_recipe.model_inputs(dev_ids), dev_y, "dev"


def pretrained_lm(args, recipe, train_x, strategy):
    """(tokenizer, LM) from the run directory `--load-lm`, or trained here (`--save-lm`)."""
    if args.load_lm:
        lm = keras.saving.load_model(os.path.join(args.load_lm, "lm.keras"), compile=False)
        return load_tokenizer(os.path.join(args.load_lm, "tokenizer")), lm
    documents = imdb.imdb_corpus("path", args.corpus)
    sample = [d.numpy().decode("utf-8") for d in documents.take(recipe.tokenizer_documents)]
    sample += list(sst2.maximal_phrases(train_x))  # the text example's tokenizer corpus
    tokenizer = text_recipe.train_text_tokenizer(sample, recipe)
    lm = text_recipe.build_language_model(tokenizer.vocabulary_size(), recipe, args.seed, strategy)
    log(f"SST-2: pretraining a causal LM on {args.corpus} for {recipe.pretrain_tokens:,} tokens")
    text_recipe.pretrain_on_corpus(lm, documents, tokenizer, recipe, seed=args.seed,
                                   strategy=strategy)  # fmt: skip
    if args.save_lm:  # a run directory, as `ptft pretrain text` writes
        save_tokenizer(tokenizer, os.path.join(args.save_lm, "tokenizer"))
        lm.save(os.path.join(args.save_lm, "lm.keras"))
    return tokenizer, lm


def check_lora(task, lora_model, x, output_dir):
    """Merge LoRA and compare; on TensorFlow also export and reload the SavedModel."""
    if keras.backend.backend() != "tensorflow":
        diff = merge_lora(lora_model).predict(x, verbose=0) - lora_model.predict(x, verbose=0)
        return {"merged_max_abs_diff": float(np.abs(diff).max())}
    from ptft_keras.export.lora import check_lora_export

    return check_lora_export(lora_model, x, output_dir, task)


def main(argv=None):
    args = parse_args(argv)
    strategy, start, tables, results = get_strategy(args.strategy), time.perf_counter(), [], {}
    for task in ["mnist", "sst2"] if args.task == "both" else [args.task]:
        keras.utils.set_random_seed(args.seed)
        make_task = mnist_task if task == "mnist" else sst2_task
        build, spec, eval_x, eval_y, split = make_task(args, strategy)
        spec.compile_kwargs = {"jit_compile": xla_option(args.xla or None)}
        rows, lora = run_comparison(build, spec, eval_x, eval_y, args.methods, log, strategy)
        tables.append(format_table(f"{task} ({split} accuracy)", rows))
        results[task] = {"rows": rows}
        if lora is not None:
            results[task]["merge"] = check_lora(task, lora, eval_x, args.output_dir)
            tables.append(f"{task} LoRA merge check: {results[task]['merge']}")
    print("\n\n".join(tables) + f"\n\ntotal {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main()
