"""LoRA on keras-hub classifiers with keras-hub's own API, and the pieces it leaves out.

    enable_hub_lora(clf, rank=4)                # backbone.enable_lora + freezing, see below
    clf.compile(...); clf.fit(texts, labels)    # only LoRA A/B and the head train
    save_hub_lora(clf, "runs/lora")             # backbone.lora.h5 + head.weights.h5 + lora.json
    load_hub_lora(fresh_clf, "runs/lora")       # enable_lora(same rank, targets) + both loads
    plain = merge_hub_lora(clf)                 # W + A @ B in plain kernels, for export

What keras-hub 0.32 does (`keras_hub/src/models/backbone.py`): `enable_lora(rank,
target_layer_names)` freezes every backbone layer, then sets the target layers (default
`query`/`value` and `query_dense`/`value_dense`) trainable and calls Keras's
`EinsumDense.enable_lora(rank)` on them (alpha = rank: scale 1). `save_lora_weights(path)`
(name must end in `.lora.h5`) stores the rank and the A/B matrices keyed by the *index* of
each layer among the backbone's layers that have weights; `load_lora_weights` calls
`enable_lora(rank)` with the *default* targets if LoRA is not enabled yet.

The pitfalls, and what this module does about them:

* The `.lora.h5` file holds no classification head (the head is new, so a reloaded LoRA
  classifier would come back with a random head: huggingface/peft#310). `save_hub_lora`
  writes the head with keras-hub's `save_task_weights` (every weight not in the backbone)
  beside it, `load_hub_lora` reads it back with `load_task_weights`.
* The file holds neither the target layer names nor biases. The targets go into
  `lora.json`, and `load_hub_lora` calls `enable_lora` with the same rank and targets
  before `load_lora_weights` (left to itself, keras-hub would use the default targets).
* keras-hub leaves the target layers' biases trainable (Keras's `enable_lora` freezes only
  the kernel), so "only LoRA + head train" would be false and the trained biases would be
  lost on save. `enable_hub_lora` freezes them (`ptft_keras.variables.set_trainable`), and
  `save_hub_lora` refuses to save while any non-LoRA backbone variable is trainable.
* Keras keeps the `predict`/`fit` functions it traced before `enable_lora`, so a model
  that predicted before LoRA was enabled goes on predicting without LoRA until it is
  compiled again. `enable_hub_lora` and `load_hub_lora` drop the traced functions.
* For export, `merge_hub_lora` returns a LoRA-free copy (`ptft_keras.peft.lora.merge_lora`:
  Keras's `save_weights` stores the merged kernels `W + alpha/rank * A @ B`).
"""

import json
import os

from ptft_keras.peft.lora import lora_layers, merge_lora
from ptft_keras.variables import set_trainable

LORA_FILE = "backbone.lora.h5"
HEAD_FILE = "head.weights.h5"
MANIFEST = "lora.json"


def lora_target_names(backbone):
    """Sorted names of the backbone layers that have LoRA enabled."""
    return sorted({layer.name for layer in lora_layers(backbone).values()})


def enable_hub_lora(classifier, rank=4, target_layer_names=None):
    """keras-hub's `backbone.enable_lora(rank, target_layer_names)`, then train only the
    LoRA matrices and the head (the targets' biases frozen). Compile afterwards.

    Returns the sorted trainable variable keys."""
    backbone = classifier.backbone
    backbone.enable_lora(rank, target_layer_names=target_layer_names)
    if not lora_layers(backbone):
        raise ValueError(
            f"enable_lora(target_layer_names={target_layer_names!r}) matched no layer of "
            f"{backbone.name!r}; keras-hub's default targets are "
            f"{backbone.default_lora_layer_names()}."
        )
    _forget_traced_functions(classifier)
    backbone_ids = {id(v) for v in backbone.weights}
    lora_ids = {id(layer.lora_kernel_a) for layer in lora_layers(backbone).values()}
    lora_ids |= {id(layer.lora_kernel_b) for layer in lora_layers(backbone).values()}
    return set_trainable(classifier, lambda key, v: id(v) in lora_ids or id(v) not in backbone_ids)


def save_hub_lora(classifier, directory):
    """Write `backbone.lora.h5` (keras-hub's file), `head.weights.h5` (keras-hub's
    `save_task_weights`) and `lora.json` (rank, targets, classes and the preprocessor's
    sequence length, which a plain keras-hub classifier must be built with) into
    `directory`."""
    backbone = classifier.backbone
    layers = lora_layers(backbone)
    if not layers:
        raise ValueError(f"{backbone.name!r} has no LoRA layer; call enable_hub_lora first.")
    lora_ids = {
        id(w) for layer in layers.values() for w in (layer.lora_kernel_a, layer.lora_kernel_b)
    }
    stray = [w.path for w in backbone.trainable_weights if id(w) not in lora_ids]
    if stray:
        raise ValueError(
            f"{len(stray)} trainable non-LoRA backbone variables (e.g. {stray[:3]}) would be "
            "lost: the .lora.h5 file holds only LoRA matrices. Freeze them "
            "(enable_hub_lora does) or save the whole model with model.save()."
        )
    os.makedirs(directory, exist_ok=True)
    backbone.save_lora_weights(os.path.join(directory, LORA_FILE))
    classifier.save_task_weights(os.path.join(directory, HEAD_FILE))
    manifest = {
        "rank": int(backbone._lora_rank),  # keras-hub's own record of the rank
        "target_layer_names": lora_target_names(backbone),
        "num_classes": int(classifier.num_classes),
        "label_names": list(getattr(classifier, "label_names", []) or []),
        "classifier_class": type(classifier).__name__,
        "sequence_length": getattr(classifier.preprocessor, "sequence_length", None),
    }
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def load_hub_lora(classifier, directory):
    """Load `save_hub_lora` files into a classifier of the same architecture (e.g.
    `hub_text_classifier(preset, num_classes)`): `enable_lora` with the saved rank and
    targets, keras-hub's `load_lora_weights`, then the head. Returns the manifest."""
    with open(os.path.join(directory, MANIFEST)) as f:
        manifest = json.load(f)
    if classifier.num_classes != manifest["num_classes"]:
        raise ValueError(
            f"The saved head has {manifest['num_classes']} classes; the classifier has "
            f"{classifier.num_classes}."
        )
    backbone = classifier.backbone
    if not lora_layers(backbone):
        enable_hub_lora(classifier, manifest["rank"], manifest["target_layer_names"])
    elif lora_target_names(backbone) != manifest["target_layer_names"]:
        raise ValueError(
            f"LoRA is enabled on {lora_target_names(backbone)}, the files were saved for "
            f"{manifest['target_layer_names']}."
        )
    backbone.load_lora_weights(os.path.join(directory, LORA_FILE))  # checks the rank
    classifier.load_task_weights(os.path.join(directory, HEAD_FILE))
    _forget_traced_functions(classifier)
    return manifest


def _forget_traced_functions(model):
    """Make Keras trace `fit`/`evaluate`/`predict` again (the graph changed)."""
    model.train_function = model.test_function = model.predict_function = None


def merge_hub_lora(classifier):
    """A LoRA-free copy of `classifier` (same class, config and preprocessor) whose
    kernels are the merged `W + A @ B`: what to export or ship.

    The copy is rebuilt from the config, where a keras-hub tokenizer has no vocabulary (it
    travels as an asset of `.keras` files and presets), so the copy takes over the
    original's preprocessor object (it has no weights)."""
    merged = merge_lora(classifier)
    merged.preprocessor = classifier.preprocessor
    return merged
