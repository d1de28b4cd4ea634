"""LoRA on a keras-hub classifier: keras-hub's files, the head beside them, merge."""

import json
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.models import hub  # noqa: E402
from ptft_keras.peft import hub as hub_lora  # noqa: E402
from ptft_keras.peft.lora import lora_layers  # noqa: E402
from tests.hub.conftest import SEQ  # noqa: E402

pytestmark = pytest.mark.tf_only
PROBE = ["a great film", "dull , dull , dull .", "not bad at all", ""]


@pytest.fixture(scope="module")
def lora_run(bert_preset, sst2_texts, tmp_path_factory):
    texts, labels, _ = sst2_texts
    clf = hub.hub_text_classifier(bert_preset, 2, label_names=["neg", "pos"], sequence_length=SEQ)
    keys = hub_lora.enable_hub_lora(clf, rank=2, target_layer_names=["query", "value"])
    clf.compile(optimizer=keras.optimizers.Adam(1e-2))
    for start in range(0, 64, 16):  # train_on_batch: no tf.data pipeline to trace
        clf.train_on_batch(texts[start : start + 16], np.array(labels[start : start + 16]))
    directory = str(tmp_path_factory.mktemp("lora") / "run")
    manifest = hub_lora.save_hub_lora(clf, directory)
    return clf, keys, directory, manifest


def test_only_lora_matrices_and_the_head_train(lora_run):
    clf, keys, _, _ = lora_run
    # 2 layers x (query, value) x (A, B) + logits kernel and bias; no bias of query/value.
    assert len(keys) == 2 * 2 * 2 + 2, keys
    assert all(k.endswith(("lora_kernel_a", "lora_kernel_b")) or "logits" in k for k in keys)
    assert len(clf.trainable_weights) == len(keys)
    for layer in lora_layers(clf.backbone).values():  # trained: B left its zero init
        assert np.abs(layer.lora_kernel_b.numpy()).max() > 0


def test_round_trip_into_a_fresh_keras_hub_model_with_keras_hubs_own_api(lora_run, bert_preset):
    clf, _, directory, manifest = lora_run
    assert sorted(os.listdir(directory)) == ["backbone.lora.h5", "head.weights.h5", "lora.json"]
    assert manifest["target_layer_names"] == ["query", "value"] and manifest["rank"] == 2
    expected = clf.predict(PROBE, verbose=0)

    # A plain keras-hub classifier, no ptft_keras involved in building or loading it.
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        bert_preset, sequence_length=SEQ
    )
    fresh = keras_hub.models.BertTextClassifier.from_preset(
        bert_preset, num_classes=2, preprocessor=preprocessor
    )
    assert type(fresh) is keras_hub.models.BertTextClassifier
    x = preprocessor(PROBE)
    # Eager calls until LoRA is on: a `predict` here would trace a LoRA-free function
    # that Keras keeps using after `enable_lora` (until `compile` or a new model).
    random_head = fresh(x, training=False).numpy()
    with open(os.path.join(directory, "lora.json")) as f:
        saved = json.load(f)
    fresh.backbone.enable_lora(saved["rank"], target_layer_names=saved["target_layer_names"])
    fresh.backbone.load_lora_weights(os.path.join(directory, "backbone.lora.h5"))
    lora_only = fresh(x, training=False).numpy()
    fresh.load_task_weights(os.path.join(directory, "head.weights.h5"))
    np.testing.assert_allclose(fresh.predict(PROBE, verbose=0), expected, atol=1e-5)
    # Without the head file the LoRA model would answer with a random head (peft#310).
    assert np.abs(lora_only - expected).max() > 1e-3
    assert np.abs(random_head - expected).max() > 1e-3
    np.testing.assert_array_equal(
        fresh.get_layer("logits").kernel.numpy(), clf.get_layer("logits").kernel.numpy()
    )


def test_toolkit_load_and_merge_give_the_same_predictions(lora_run, bert_preset):
    clf, _, directory, _ = lora_run
    expected = clf.predict(PROBE, verbose=0)
    fresh = hub.hub_text_classifier(bert_preset, 2, sequence_length=SEQ)
    hub_lora.load_hub_lora(fresh, directory)
    np.testing.assert_allclose(fresh.predict(PROBE, verbose=0), expected, atol=1e-5)

    merged = hub_lora.merge_hub_lora(clf)
    assert not lora_layers(merged) and type(merged) is type(clf)
    assert len(merged.weights) == len(clf.weights) - 2 * 2 * 2  # no A/B matrices
    assert merged.label_names == ["neg", "pos"]
    np.testing.assert_allclose(merged.predict(PROBE, verbose=0), expected, atol=1e-5)


def test_mismatches_are_refused(lora_run, bert_preset, tmp_path):
    _, _, directory, _ = lora_run
    three = hub.hub_text_classifier(bert_preset, 3, sequence_length=SEQ)
    with pytest.raises(ValueError, match="saved head has 2 classes"):
        hub_lora.load_hub_lora(three, directory)
    other = hub.hub_text_classifier(bert_preset, 2, sequence_length=SEQ)
    other.backbone.enable_lora(2, target_layer_names=["query"])  # keras-hub alone: the
    # query biases stay trainable
    with pytest.raises(ValueError, match="trainable non-LoRA backbone variables"):
        hub_lora.save_hub_lora(other, str(tmp_path / "x"))
    with pytest.raises(ValueError, match="LoRA is enabled on"):
        hub_lora.load_hub_lora(other, directory)  # saved for query and value
