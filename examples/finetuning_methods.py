"""Compare fine-tuning methods from one pretrained checkpoint: MNIST (100 labels), SST-2.

    python examples/finetuning_methods.py                  # both tasks, offline
    python examples/finetuning_methods.py --task mnist     # MNIST only (about a minute)
    python examples/finetuning_methods.py --smoke          # seconds, for tests

Each task pretrains once with its teammates' recipe (MNIST: a denoising dense
autoencoder, `recipes.pretrain_autoencoder`; SST-2: the text example's language-model
pretraining), then fine-tunes a fresh copy of the pretrained classifier with every method
in `ptft_keras.peft.compare.METHODS` for the same number of epochs, and prints one table:
method, trainable parameters, share of total, accuracy, training time. The LoRA model is
then merged (`merge_lora`) and, on TensorFlow, exported as a SavedModel whose predictions
are compared with the unmerged model's.

MNIST uses H1's *dense* autoencoder (784-256-64), not the conv one: Keras's `Conv2D` has
no `enable_lora`, `Dense` has.
"""

import argparse
import importlib.util
import os
import time

import keras
import numpy as np

from ptft_keras.data import sst2
from ptft_keras.data.mnist import load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.data.tokenizer import TextEncoder, load_tokenizer, save_tokenizer, train_tokenizer
from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.models.autoencoder import build_dense_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.peft.compare import (
    METHODS,
    FinetuneSpec,
    check_merge,
    format_table,
    run_comparison,
)
from ptft_keras.peft.lora import TRANSFORMER_TARGETS, save_lora_weights
from ptft_keras.training import recipes
from ptft_keras.training.layerwise_lr import transformer_lr_groups
from ptft_keras.training.strategies import add_strategy_arguments, get_strategy, xla_option
from ptft_keras.transfer.weights import transfer_weights


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
    p.add_argument("--sst2-data-dir", default=None, help="train.tsv + dev.tsv (default: H4's)")
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


def with_adapters(encoder, adapter_dim):
    """H1's dense encoder with a `BottleneckAdapter` after each Dense, pretrained weights
    moved in by path (`allow_missing` for the new adapters, which start as identity)."""
    inputs = keras.Input(encoder.input_shape[1:], name=encoder.layers[0].name)
    x = inputs
    for layer in encoder.layers[1:]:
        x = layer.__class__.from_config(layer.get_config())(x)
        if isinstance(layer, keras.layers.Dense):
            x = BottleneckAdapter(adapter_dim, name=f"{layer.name}_adapter")(x)
    adapted = keras.Model(inputs, x, name="encoder")
    transfer_weights(encoder, adapted, allow_missing=("*adapter*",))
    return adapted


def mnist_task(args):
    images, labels = load_mnist("bundled")
    if args.smoke:
        images, labels = images[:1200], labels[:1200]
    split = split_dataset(images, labels, test_size=200 if args.smoke else 2000, seed=args.seed)
    pool = split.pool_images.astype("float32") / 255.0  # (N, 28, 28)
    test_x, test_y = split.test_images.astype("float32") / 255.0, split.test_labels
    few_x, few_y = sample_few_labels(pool, split.pool_labels, args.mnist_labels, 10, args.seed)

    strategy = get_strategy(args.strategy)
    with strategy.scope():
        autoencoder = build_dense_autoencoder(
            hidden_units=(256,), latent_dim=64, noise="masking", noise_rate=0.3, seed=args.seed
        )
    log(f"MNIST: pretraining the dense autoencoder on {len(pool)} unlabeled images")
    recipes.pretrain_autoencoder(
        autoencoder, pool, epochs=args.mnist_pretrain_epochs, strategy=strategy
    )

    def build(adapter=False):
        if not adapter:
            return Classifier.from_pretrained(autoencoder, 10, head="linear")
        return Classifier(with_adapters(autoencoder.encoder, 16), 10, head="linear")

    spec = FinetuneSpec(
        head=("head/*",),
        blocks=["encoder/dense_1*", "encoder/latent*"],
        llrd_groups=["encoder/dense_1*", "encoder/latent*", "*"],
        lora_targets=("encoder/dense_1", "encoder/latent"),
        compile_kwargs={},  # Classifier.compile defaults: its loss and accuracy
        fit_kwargs=dict(x=few_x, y=few_y, batch_size=32, verbose=0),
        epochs=args.mnist_epochs,
        lr_full=1e-3,
        lr_head=1e-2,
        lora_rank=4,
    )
    return build, spec, test_x, test_y, "test"


def _text_example():
    """H4's `examples/text_sentiment.py` as a module: its data loading and pretraining."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text_sentiment.py")
    spec = importlib.util.spec_from_file_location("text_sentiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sst2_task(args):
    text = _text_example()
    text_args = text.parse_args(
        (["--smoke"] if args.smoke else [])
        + (["--data-dir", args.sst2_data_dir] if args.sst2_data_dir else [])
        + ["--pretrain-epochs", str(1 if args.smoke else args.sst2_pretrain_epochs)]
        + ["--objective", args.sst2_objective, "--strategy", args.strategy]
        + (["--xla"] if args.xla else [])
    )
    train_x, train_y, dev_x, dev_y = text.load_data(text_args, log)
    lm_path = os.path.join(args.output_dir, "sst2_lm.keras")
    tok_dir = os.path.join(args.output_dir, "sst2_tokenizer")
    if args.reuse_pretrained and os.path.exists(lm_path):
        log(f"SST-2: reusing the pretrained LM {lm_path}")
        tokenizer, lm = load_tokenizer(tok_dir), keras.saving.load_model(lm_path, compile=False)
        encode = TextEncoder(tokenizer, lm.backbone.max_sequence_length)
    else:
        tokenizer = train_tokenizer(train_x, vocabulary_size=text_args.vocab_size)
        encode = TextEncoder(tokenizer, text_args.seq_len)
        corpus = encode(list(train_x))["token_ids"].numpy()
        lm = text.pretrain(text_args, get_strategy(args.strategy), tokenizer, corpus, log)
        os.makedirs(args.output_dir, exist_ok=True)
        lm.save(lm_path)
        save_tokenizer(tokenizer, tok_dir)
    few_x, few_y = sst2.sample_label_budget(train_x, train_y, args.sst2_labels, seed=args.seed)
    few_ids = encode(list(few_x))["token_ids"].numpy()
    dev_ids = encode(list(dev_x))["token_ids"].numpy()
    dev_inputs = {"token_ids": dev_ids, "padding_mask": (dev_ids != 0).astype("int32")}
    config = lm.backbone.get_config()

    def build(adapter=False):
        if not adapter:
            return TextClassifier.from_pretrained(lm, 2)
        backbone = TransformerBackbone.from_config({**config, "adapter_dim": 16})
        transfer_weights(lm.backbone, backbone, allow_missing=("*adapter*",))
        return TextClassifier(backbone, 2)

    blocks = [f"*block_{i}/*" for i in range(config["num_layers"])]
    spec = FinetuneSpec(
        head=("head/*",),
        blocks=blocks,
        llrd_groups=transformer_lr_groups(config["num_layers"]),
        lora_targets=TRANSFORMER_TARGETS,
        compile_kwargs={},  # TextClassifier.compile defaults: its loss and accuracy
        fit_kwargs=dict(
            # Length-bucketed batches vary in number per epoch: repeat and fix the steps.
            x=sst2.make_text_dataset(few_ids, few_y, 32, shuffle=True, seed=args.seed).repeat(),
            steps_per_epoch=-(-len(few_ids) // 32),
            verbose=0,
        ),
        epochs=args.sst2_epochs,
        lr_full=3e-4,
        lr_head=2e-3,
        lora_rank=max(1, config["hidden_dim"] // 16),  # 8 for the default hidden 128
    )
    return build, spec, dev_inputs, dev_y, "dev"


def export_and_compare(task, lora_model, x, output_dir):
    """Merge LoRA, check predictions; on TensorFlow also export and reload the SavedModel."""
    diff, merged = check_merge(lora_model, x)
    result = {"merged_max_abs_diff": diff}
    os.makedirs(output_dir, exist_ok=True)
    adapter_file = os.path.join(output_dir, f"{task}_lora.npz")
    save_lora_weights(lora_model, adapter_file, extra=("head/*",))
    result["adapter_file_bytes"] = os.path.getsize(adapter_file)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        path = os.path.join(output_dir, f"{task}_lora_merged")
        if isinstance(x, dict):
            merged.export(path, verbose=False)
            reloaded = tf.saved_model.load(path)
            served = reloaded.serve({k: tf.constant(v) for k, v in x.items()})
        else:
            spec = [keras.InputSpec(shape=(None,) + x.shape[1:], dtype="float32")]
            merged.export(path, input_signature=spec, verbose=False)
            reloaded = tf.saved_model.load(path)
            served = reloaded.serve(tf.constant(x))
        result["savedmodel_lora_variables"] = sum("lora" in v.name for v in reloaded.variables)
        logits = lora_model.predict(x, batch_size=256, verbose=0)
        result["savedmodel_max_abs_diff"] = float(np.max(np.abs(np.asarray(served) - logits)))
    return result


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
            merge = export_and_compare(task, lora_model, eval_x, args.output_dir)
            results[task]["merge"] = merge
            tables.append(f"{task} LoRA merge check: {merge}")
    print("\n\n".join(tables))
    return results


if __name__ == "__main__":
    main()
