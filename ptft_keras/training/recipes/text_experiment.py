"""The text recipe's few-label experiment: LMs pretrained on a corpus, then per label draw
the pretrained and the from-scratch classifier (and TF-IDF) on the same labels.

    lms, info = pretrain_corpus_lms(tokenizer, documents, held_out, recipe, backward=True)
    row, model = score_label_draw(lms, train, evaluation, recipe, budget=1000, seed=0)
    print_accuracy_table(rows, "SST-2 dev accuracy", tfidf=True)

`examples/text_sentiment.py` (SST-2) is this module's command line; `docs/text.md` has
the measurements. With a backward LM (`backward=True`: every document read right to
left) each classifier is the forward + backward `TextEnsemble` of ULMFiT
(`finetune_text_classifiers`), and a row keeps each member's accuracy too.
"""

import numpy as np

from ptft_keras.data.splits import sample_few_labels
from ptft_keras.training.baselines import tfidf_logistic_regression
from ptft_keras.training.metrics import accuracy
from ptft_keras.training.recipes import text as recipe_lib
from ptft_keras.training.semi_supervised import uda

INITS = ("pretrained", "scratch")


def _phase(callbacks, name):
    return callbacks(name) if callable(callbacks) else callbacks


def pretrain_corpus_lms(
    tokenizer,
    documents,
    held_out,
    recipe,
    backward=False,
    seconds=None,
    seed=0,
    strategy=None,
    callbacks=None,
    log=print,
):
    """A fresh LM (two with `backward=True`) pretrained on `documents` by
    `recipe_lib.pretrain_on_corpus` for `recipe.pretrain_tokens` (or `seconds`), the
    held-out loss on `held_out`. Returns `((forward, backward or None), info)`, `info`
    the forward LM's `tokens`, `held_out_loss` and `held_out_accuracy` at the end."""
    lms, info = [], None
    budget = f"{seconds / 60:g} minutes" if seconds else f"{recipe.pretrain_tokens:,} tokens"
    for direction in ("forward", "backward") if backward else ("forward",):
        reverse = direction == "backward"
        lm = recipe_lib.build_language_model(tokenizer.vocabulary_size(), recipe, seed, strategy)
        log(
            f"pretraining a {'backward ' if reverse else ''}{recipe.objective} LM "
            f"({lm.backbone.count_params():,} backbone params), packed rows of "
            f"{recipe.pretrain_seq_len}, for {budget}"
        )
        history = recipe_lib.pretrain_on_corpus(
            lm,
            documents,
            tokenizer,
            recipe,
            seconds=seconds,
            seed=seed,
            strategy=strategy,
            callbacks=_phase(callbacks, "pretrain_backward" if reverse else "pretrain"),
            validation_documents=held_out,
            reverse=reverse,
        )
        last = {k: history.history[k][-1] for k in ("tokens", "val_loss", "val_accuracy")}
        log(
            f"pretrained {direction} on {last['tokens']:,.0f} tokens; held-out loss "
            f"{last['val_loss']:.3f} (perplexity {np.exp(last['val_loss']):.0f}), accuracy "
            f"{last['val_accuracy']:.3f}"
        )
        lms.append(lm)
        info = info or dict(
            tokens=last["tokens"],
            held_out_loss=last["val_loss"],
            held_out_accuracy=last["val_accuracy"],
        )
    return (lms[0], lms[1] if backward else None), info


def finetune_text_classifiers(
    lms,
    label_names,
    ids,
    labels,
    recipe,
    epochs,
    pretrained=True,
    seed=0,
    strategy=None,
    callbacks=None,
):
    """One classifier per LM of `lms` = (forward LM, backward LM or None), each from
    `make_text_classifier` (the backward one with `reverse_tokens=True`) and fine-tuned.
    Returns `(model, members)`: the one classifier, or the forward + backward
    `TextEnsemble` of the two (ULMFiT), and the members. `callbacks(direction)` gives
    each member's callbacks ("forward" / "backward")."""
    from ptft_keras.models.text_ensemble import TextEnsemble

    members = []
    for lm, direction in zip(lms, ("forward", "backward"), strict=True):
        if lm is None:
            continue
        reverse = direction == "backward"
        model = recipe_lib.make_text_classifier(
            lm, label_names, recipe, pretrained, seed + 1, strategy, reverse_tokens=reverse
        )
        recipe_lib.finetune_text_classifier(
            model,
            ids,
            labels,
            recipe,
            epochs,
            pretrained,
            seed,
            strategy,
            _phase(callbacks, direction),
        )
        members.append(model)
    if len(members) == 1:
        return members[0], members
    name = "pretrained_pair" if pretrained else "scratch_pair"
    return TextEnsemble(members, name=name), members


def score_label_draw(
    lms,
    train,
    evaluation,
    recipe,
    budget,
    seed,
    label_names=("0", "1"),
    strategy=None,
    callbacks=None,
    log=print,
    tfidf=False,
):
    """One label draw of `budget` (a number, class-balanced, or "all") from `train` =
    `(texts, labels, ids)`: the pretrained and the scratch classifier fine-tuned on it
    (`recipe.semi_supervised == "uda"`: then UDA on all of train's ids, labels dropped)
    and, with `tfidf`, the TF-IDF bigram baseline; each scored on `evaluation` = `(texts,
    labels, ids)`. Returns `(row, pretrained classifier)`, `row` = {"budget", "seed",
    "pretrained", "scratch"[, "tfidf"], ...}."""
    (train_x, train_y, train_ids), (eval_x, eval_y, eval_ids) = train, evaluation
    few = None if budget == "all" else budget
    classes = len(label_names)
    ids, labels = sample_few_labels(train_ids, train_y, few, num_classes=classes, seed=seed)
    epochs = recipe.all_epochs if budget == "all" else recipe.few_epochs
    inputs, row, models = recipe_lib.model_inputs(eval_ids), {"budget": budget, "seed": seed}, {}
    for init in INITS:
        log(
            f"fine-tune budget={budget} seed={seed} init={init}: {len(ids)} labels, {epochs} epochs"
        )
        phase = f"finetune_{budget}_{init}"
        model, members = finetune_text_classifiers(
            lms,
            list(label_names),
            ids,
            labels,
            recipe,
            epochs,
            init == "pretrained",
            seed,
            strategy,
            lambda d, p=phase: _phase(callbacks, p if d == "forward" else f"{p}_backward"),
        )
        if len(members) > 1:  # each member's own accuracy beside the pair's
            for key, member in zip((f"{init}_forward", f"{init}_backward"), members, strict=True):
                row[key] = accuracy(member, inputs, eval_y)
        row[init] = accuracy(model, inputs, eval_y)
        log(f"  accuracy {row[init]:.4f}" + (" (forward + backward)" if len(members) > 1 else ""))
        if recipe.semi_supervised == "uda":
            row[f"{init}_supervised"] = row[init]
            uda(
                model,
                ids,
                labels,
                train_ids,
                recipe,
                seed,
                strategy,
                _phase(callbacks, f"uda_{budget}_{init}"),
            )
            row[init] = accuracy(model, inputs, eval_y)
            log(f"  + UDA on {len(train_ids)} unlabeled texts: accuracy {row[init]:.4f}")
        models[init] = model
    if tfidf:
        x, y = sample_few_labels(train_x, train_y, few, num_classes=classes, seed=seed)
        row["tfidf"] = tfidf_logistic_regression(
            x, y, eval_x, eval_y, epochs=10 if budget == "all" else 40, seed=seed
        )
        log(f"TF-IDF bigram LR budget={budget} seed={seed}: accuracy {row['tfidf']:.4f}")
    return row, models["pretrained"]


def print_accuracy_table(rows, title, tfidf=False):
    """One line per label draw and a mean line per budget; with a backward LM the
    pretrained pair's members get their own columns; UDA rows get a before/after line."""
    print(f"\n{title}")
    columns = [("pretrained", 10), ("scratch", 8), ("gain", 6)]
    columns += [("tfidf", 6)] if tfidf else []
    if "pretrained_backward" in rows[0]:
        columns += [("pretrained_forward", 7), ("pretrained_backward", 7)]
    titles = {"tfidf": "tf-idf", "pretrained_forward": "pre fwd", "pretrained_backward": "pre bwd"}
    header = " | ".join(
        [f"{'labels':>8}", f"{'seed':>4}"] + [f"{titles.get(k, k):>{w}}" for k, w in columns]
    )
    print(header + "\n" + "-" * len(header))

    def line(budget, seed, same):  # `same`: the rows to average (one for a draw's line)
        cells = []
        for key, width in columns:
            if key == "gain":
                value = np.mean([r["pretrained"] - r["scratch"] for r in same])
                cells.append(f"{value:+{width}.3f}")
            else:
                cells.append(f"{np.mean([r[key] for r in same]):{width}.4f}")
        print(" | ".join([f"{budget!s:>8}", f"{seed:>4}", *cells]), flush=True)

    for r in rows:
        line(r["budget"], r["seed"], [r])
    for budget in dict.fromkeys(r["budget"] for r in rows):
        same = [r for r in rows if r["budget"] == budget]
        if len(same) > 1:
            line(budget, "mean", same)
    for r in rows:
        if "pretrained_supervised" in r:
            print(
                f"UDA {r['budget']!s:>6} seed {r['seed']}: pretrained "
                f"{r['pretrained_supervised']:.4f} -> {r['pretrained']:.4f}, scratch "
                f"{r['scratch_supervised']:.4f} -> {r['scratch']:.4f}",
                flush=True,
            )
