"""The PEFT helpers on the real `TransformerBackbone` / `TextClassifier` (tiny preset)."""

import os

import keras
import numpy as np

from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.peft import methods
from ptft_keras.peft.lora import (
    TRANSFORMER_TARGETS,
    apply_lora,
    load_lora_weights,
    merge_lora,
    save_lora_weights,
)
from ptft_keras.transfer.weights import transfer_weights
from ptft_keras.variables import count_parameters
from ptft_keras.variables import variable_map as variable_items

# tiny preset: vocab 64, 2 blocks, hidden 16, intermediate 32; 2 classes, linear head
HIDDEN, INTER = 16, 32
HEAD = HIDDEN * 2 + 2


def _inputs(seed=0):
    ids = np.random.default_rng(seed).integers(1, 64, size=(3, 10)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids)}


def _classifier(**overrides):
    # Not from_preset(..., name=...): its first parameter is also called `name`.
    config = {**TransformerBackbone.preset_config("tiny"), "causal": False, **overrides}
    backbone = TransformerBackbone(**config, name="backbone")
    return TextClassifier(backbone, 2, head_dropout=0.0)


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x))


def test_lora_targets_every_projection_of_every_block():
    clf = _classifier()
    paths = apply_lora(clf, rank=2, train_also=("head/*",))
    assert len(paths) == 8 and all(p.startswith("backbone/block_") for p in paths)
    per_block = 2 * (
        (HIDDEN + 3 * HIDDEN) + (HIDDEN + HIDDEN) + (HIDDEN + INTER) + (INTER + HIDDEN)
    )
    assert count_parameters(clf)[0] == 2 * per_block + HEAD


def test_adapters_start_as_identity_after_transfer():
    pretrained = _classifier()
    adapted = _classifier(adapter_dim=4)
    report = transfer_weights(pretrained, adapted, allow_missing=("*adapter*",))
    assert report.ok
    x = _inputs()
    np.testing.assert_allclose(_predict(adapted, x), _predict(pretrained, x), atol=1e-6)
    methods.adapter_tuning(adapted, head="head/*")
    adapters = 2 * 2 * (HIDDEN * 4 + 4 + 4 * HIDDEN + HIDDEN)
    norms = 2 * 2 * 2 * HIDDEN + 2 * HIDDEN  # 2 LayerNorms per block + final_norm
    assert count_parameters(adapted)[0] == adapters + norms + HEAD


def test_lora_file_round_trip_and_merge_on_text_classifier(tmp_path):
    clf = _classifier()
    apply_lora(clf, rank=2, alpha=4, targets=TRANSFORMER_TARGETS, train_also=("head/*",))
    rng = np.random.default_rng(0)
    for key, v in variable_items(clf).items():
        if "lora_kernel_b" in key:
            v.assign(rng.normal(scale=0.2, size=v.shape).astype("float32"))
    x = _inputs(1)
    path = os.path.join(tmp_path, "sst2_lora.npz")
    save_lora_weights(clf, path, extra=("head/*",))

    other = _classifier()  # fresh head and LoRA-free: gets both from the file
    transfer_weights(clf.backbone, other.backbone, allow_missing=("*lora*",))
    load_lora_weights(other, path)
    np.testing.assert_allclose(_predict(other, x), _predict(clf, x), rtol=1e-5, atol=1e-6)

    merged = merge_lora(clf)
    assert not any("lora" in k for k in variable_items(merged))
    np.testing.assert_allclose(_predict(merged, x), _predict(clf, x), rtol=1e-5, atol=1e-5)
