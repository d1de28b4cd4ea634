"""SST-2 sentiment: pretrain a small Transformer LM on unlabeled text, fine-tune with few labels.

    python examples/text_sentiment.py                 # causal LM, see README section `text`
    python examples/text_sentiment.py --smoke         # seconds: what the tests run

Steps: (1) train a WordPiece tokenizer on the SST-2 train sentences (labels dropped);
(2) pretrain a `TransformerBackbone` on them (by default on the 6.9k maximal phrases, see
`sst2.maximal_phrases`) as a causal (default) or masked LM; (3) for
each label budget, fine-tune `TextClassifier.from_pretrained(lm)` with AdamW + warmup-then-
decay, and train the same classifier from scratch beside it; (4) print dev accuracy; (5)
export the pretrained classifier of the last budget as a raw-text SavedModel.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from ptft_keras.data import sst2  # noqa: E402
from ptft_keras.data.language_modeling import (  # noqa: E402
    causal_lm_inputs,
    make_mask_generator,
    masked_lm_inputs,
)
from ptft_keras.data.tokenizer import (  # noqa: E402
    CLS_ID,
    MASK_ID,
    SEP_ID,
    TextEncoder,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from ptft_keras.export.text import export_text_classifier  # noqa: E402
from ptft_keras.models.causal_lm import CausalLM  # noqa: E402
from ptft_keras.models.masked_lm import MaskedLM  # noqa: E402
from ptft_keras.models.text_classifier import TextClassifier  # noqa: E402
from ptft_keras.models.transformer import TransformerBackbone  # noqa: E402
from ptft_keras.training.baselines import tfidf_logistic_regression  # noqa: E402
from ptft_keras.training.callbacks import training_callbacks  # noqa: E402
from ptft_keras.training.layerwise_lr import (  # noqa: E402
    LayerwiseAdamW,
    layerwise_lr_multipliers,
    transformer_lr_groups,
)
from ptft_keras.training.schedules import warmup_then_decay  # noqa: E402
from ptft_keras.training.strategies import (  # noqa: E402
    add_strategy_arguments,
    check_global_batch_size,
    get_strategy,
    xla_option,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=sst2.DEFAULT_SST2_DIR, help="train.tsv + dev.tsv")
    # Causal beat masked at 1,000 labels here (README `text`): every token is a target.
    p.add_argument("--objective", choices=("masked", "causal"), default="causal")
    p.add_argument("--budgets", default="1000,all", help="label budgets, e.g. 100,1000,all")
    # Sizes: SST-2 dev sentences are <= 56 words, so 64 WordPieces cover nearly all of them.
    p.add_argument("--vocab-size", type=int, default=4000)  # cheaper softmax, same accuracy
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.1)
    # auto = last real token for a causal backbone (the one position that saw the text).
    p.add_argument("--pooling", default="auto", choices=("auto", "first", "mean", "last"))
    p.add_argument(
        "--pretrain-corpus",
        choices=("phrases", "sentences"),
        default="sentences",  # an epoch over phrases re-reads the same sentences ~5 times
        help="all 67k train phrases, or the 6.9k maximal ones (no phrase is a span of another)",
    )
    p.add_argument("--mask-rate", type=float, default=0.15, help="masked LM selection rate")
    # 20 x 107 steps: dev next-token NLL 5.02 (2 phrase epochs of 128 at 1e-3: 5.20).
    p.add_argument("--pretrain-epochs", type=int, default=20)
    p.add_argument("--pretrain-batch", type=int, default=64)
    p.add_argument("--pretrain-lr", type=float, default=2e-3)
    p.add_argument("--few-epochs", type=int, default=20, help="epochs for numeric budgets")
    p.add_argument("--all-epochs", type=int, default=3, help="epochs for budget 'all'")
    p.add_argument("--batch-size", type=int, default=32, help="global fine-tuning batch")
    p.add_argument("--lr", type=float, default=3e-4, help="peak LR, pretrained fine-tune")
    p.add_argument(
        "--layer-decay", type=float, default=1.0, help="LR x this per block down (pretrained)"
    )
    p.add_argument("--scratch-lr", type=float, default=1e-3, help="peak LR, from scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tfidf", action="store_true", help="add a TF-IDF bigram baseline row")
    p.add_argument("--export-dir", default=os.path.join("saved_models", "text_sentiment"))
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--backup-dir", default=None, help="per-epoch backups, resumed on restart")
    p.add_argument("--save-lm", default=None, help="directory: save the tokenizer + LM there")
    p.add_argument("--load-lm", default=None, help="directory from --save-lm: skip pretraining")
    p.add_argument("--smoke", action="store_true", help="tiny data and model (tests)")
    add_strategy_arguments(p)
    args = p.parse_args(argv)
    args.budgets = parse_budgets(args.budgets)
    if args.smoke:  # shrink the real configuration, do not fake another one
        args.vocab_size, args.seq_len, args.hidden, args.layers = 300, 32, 16, 1
        args.heads, args.intermediate, args.pretrain_epochs = 2, 32, 1
        args.few_epochs, args.all_epochs, args.budgets = 2, 1, [20, "all"]
    return args


def parse_budgets(text):
    """ "1000,all" -> [1000, "all"]; checked before any training starts."""
    budgets = []
    for item in str(text).split(","):
        item = item.strip()
        if item != "all" and not (item.isdigit() and int(item) > 0 and int(item) % 2 == 0):
            raise ValueError(
                f"label budget {item!r} in --budgets {text!r}: expected 'all' or a positive "
                "even number (class-balanced over 2 classes)"
            )
        budgets.append(item if item == "all" else int(item))
    return budgets


class Log:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, message):
        print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", flush=True)


def load_data(args, log):
    train_x, train_y = sst2.load_sst2("train", data_dir=args.data_dir)
    dev_x, dev_y = sst2.load_sst2("dev", data_dir=args.data_dir)
    if args.smoke:
        train_x, train_y, dev_x, dev_y = train_x[:1500], train_y[:1500], dev_x[:100], dev_y[:100]
    log(f"SST-2: {len(train_x)} train phrases (unlabeled corpus + label pool), {len(dev_x)} dev")
    return train_x, train_y, dev_x, dev_y


def fit(model, data, epochs, steps_per_epoch, args, name):
    backup = os.path.join(args.backup_dir, name) if args.backup_dir else None
    model.fit(
        data.repeat(),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        verbose=0,
        shuffle=False,  # the tf.data pipeline shuffles
        callbacks=training_callbacks(backup_dir=backup, verbose=True),
    )


def adamw(peak, total_steps, model=None, layer_decay=1.0):
    """AdamW + warmup-then-cosine; with `layer_decay` < 1, lower blocks train slower (LLRD)."""
    kwargs = dict(learning_rate=warmup_then_decay(peak, total_steps), weight_decay=0.01)
    if layer_decay == 1.0:
        return keras.optimizers.AdamW(clipnorm=1.0, **kwargs)
    groups = transformer_lr_groups(model.backbone.num_layers)
    multipliers = layerwise_lr_multipliers(model, groups, layer_decay)
    return LayerwiseAdamW(lr_multipliers=multipliers, clipnorm=1.0, **kwargs)


def _causal_batch(x):  # {"token_ids", "padding_mask"} -> (x, y, sample_weight)
    return causal_lm_inputs(x["token_ids"], x["padding_mask"])


def _masked_batches(mask_generator):
    # A closure, not functools.partial: autograph converted a partial of this function as
    # `_causal_batch` (TypeError: unexpected keyword argument 'mask_generator').
    def masked_batch(x):
        return masked_lm_inputs(x["token_ids"], x["padding_mask"], mask_generator=mask_generator)

    return masked_batch


def pretrain(args, strategy, tokenizer, corpus_ids, log):
    causal = args.objective == "causal"
    steps = max(1, len(corpus_ids) // args.pretrain_batch)
    with strategy.scope():
        keras.utils.set_random_seed(args.seed)
        backbone = TransformerBackbone(
            vocabulary_size=tokenizer.vocabulary_size(),
            num_layers=args.layers,
            num_heads=args.heads,
            hidden_dim=args.hidden,
            intermediate_dim=args.intermediate,
            max_sequence_length=args.seq_len,
            dropout=args.dropout,
            causal=causal,
        )
        lm = CausalLM(backbone) if causal else MaskedLM(backbone)
        lm.compile(
            optimizer=adamw(args.pretrain_lr, steps * args.pretrain_epochs),
            jit_compile=xla_option(True if args.xla else None),
        )
    data = sst2.make_text_dataset(corpus_ids, None, args.pretrain_batch, True, args.seed)
    if causal:
        data = data.map(_causal_batch)
    else:
        masker = make_mask_generator(
            tokenizer.vocabulary_size(),
            MASK_ID,
            args.seq_len,
            special_token_ids=(CLS_ID, SEP_ID),
            selection_rate=args.mask_rate,
            seed=args.seed,
        )
        data = data.map(_masked_batches(masker))
    log(
        f"pretraining a {args.objective} LM: {backbone.count_params():,} backbone params, "
        f"{args.pretrain_epochs} x {steps} steps of {args.pretrain_batch} "
        f"({len(corpus_ids)} {args.pretrain_corpus})"
    )
    fit(lm, data, args.pretrain_epochs, steps, args, "pretrain")
    return lm


def finetune(args, strategy, lm, tokenizer, ids, labels, dev, budget, init, log):
    epochs = args.all_epochs if budget == "all" else args.few_epochs
    steps = max(1, len(ids) // args.batch_size)
    with strategy.scope():
        keras.utils.set_random_seed(args.seed + 1)
        if init == "pretrained":
            model = TextClassifier.from_pretrained(
                lm,
                2,
                vocabulary_size=tokenizer.vocabulary_size(),
                sequence_length=args.seq_len,
                pooling=args.pooling,
            )
            peak, decay = args.lr, args.layer_decay
        else:  # the same architecture, random weights
            backbone = TransformerBackbone.from_config(lm.backbone.get_config())
            model = TextClassifier(backbone, 2, pooling=args.pooling)
            peak, decay = args.scratch_lr, 1.0
        model.compile(
            optimizer=adamw(peak, steps * epochs, model, decay),
            jit_compile=xla_option(True if args.xla else None),
        )
    data = sst2.make_text_dataset(ids, labels, args.batch_size, True, args.seed)
    log(f"fine-tune budget={budget} init={init}: {len(ids)} labels, {epochs} x {steps} steps")
    fit(model, data, epochs, steps, args, f"finetune_{budget}_{init}")
    accuracy = model.evaluate(dev[0], dev[1], batch_size=256, verbose=0)[1]
    log(f"  dev accuracy {accuracy:.4f}")
    return model, accuracy


def tfidf_baseline(train_x, train_y, dev_x, dev_y, budget, seed):
    """The TF-IDF bigram logistic regression on the same label budget."""
    x, y = sst2.sample_label_budget(train_x, train_y, None if budget == "all" else budget, seed)
    epochs = 10 if budget == "all" else 40
    return tfidf_logistic_regression(x, y, dev_x, dev_y, epochs=epochs, seed=seed)


def main(argv=None):
    args = parse_args(argv)
    log = Log()
    keras.utils.set_random_seed(args.seed)
    strategy = get_strategy(args.strategy)
    check_global_batch_size(args.batch_size, strategy)
    check_global_batch_size(args.pretrain_batch, strategy)
    if not args.no_export and os.path.exists(args.export_dir) and not args.overwrite:
        raise FileExistsError(  # fail now, not after the training
            f"export path {args.export_dir!r} exists; pass --overwrite or another --export-dir"
        )
    train_x, train_y, dev_x, dev_y = load_data(args, log)

    if args.load_lm:  # tokenizer and pretrained LM from an earlier --save-lm run
        tokenizer = load_tokenizer(args.load_lm)
        lm = keras.saving.load_model(os.path.join(args.load_lm, "lm.keras"), compile=False)
        args.seq_len = lm.backbone.max_sequence_length
        args.objective = "causal" if lm.backbone.causal else "masked"
        log(f"loaded the tokenizer and the {type(lm).__name__} from {args.load_lm}")
    else:
        tokenizer = train_tokenizer(train_x, vocabulary_size=args.vocab_size)
    encode = TextEncoder(tokenizer, args.seq_len)
    to_ids = lambda texts: encode(list(texts))["token_ids"].numpy()
    train_ids = to_ids(train_x)
    dev_ids = to_ids(dev_x)
    dev = ({"token_ids": dev_ids, "padding_mask": dev_ids != 0}, dev_y)
    log(f"tokenizer: {tokenizer.vocabulary_size()} WordPieces")

    if not args.load_lm:
        corpus = train_ids
        if args.pretrain_corpus == "sentences":
            corpus = to_ids(sst2.maximal_phrases(train_x))
        lm = pretrain(args, strategy, tokenizer, corpus, log)
    if args.save_lm:
        save_tokenizer(tokenizer, args.save_lm)
        lm.save(os.path.join(args.save_lm, "lm.keras"))
    rows, model = [], None
    for budget in args.budgets:
        ids, labels = sst2.sample_label_budget(train_ids, train_y, budget, seed=args.seed)
        row = {"budget": budget}
        for init in ("pretrained", "scratch"):
            clf, row[init] = finetune(
                args, strategy, lm, tokenizer, ids, labels, dev, budget, init, log
            )
            model = clf if init == "pretrained" else model
        if args.tfidf:
            row["tfidf"] = tfidf_baseline(train_x, train_y, dev_x, dev_y, budget, args.seed)
        rows.append(row)

    print(
        f"\nSST-2 dev accuracy ({len(dev_y)} sentences), {args.objective} pretraining, "
        f"total {time.perf_counter() - log.start:.0f}s"
    )
    header = f"{'labels':>8} | {'pretrained':>10} | {'scratch':>8} | {'gain':>6}"
    print(header + (" | tf-idf" if args.tfidf else "") + "\n" + "-" * (len(header) + 9))
    for r in rows:
        line = (
            f"{r['budget']!s:>8} | {r['pretrained']:10.4f} | {r['scratch']:8.4f} | "
            f"{r['pretrained'] - r['scratch']:+6.3f}"
        )
        print(line + (f" | {r['tfidf']:.4f}" if args.tfidf else ""))

    if not args.no_export:
        path = export_text_classifier(
            model, tokenizer, args.export_dir, args.seq_len, overwrite=args.overwrite
        )
        save_tokenizer(tokenizer, os.path.join(path, "assets", "tokenizer"))
        log(f"exported raw-text SavedModel (pretrained, budget {rows[-1]['budget']}) to {path}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
