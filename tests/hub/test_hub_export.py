"""Raw-string SavedModel of a keras-hub classifier, served in a process without Keras's
model code: only tensorflow and tensorflow_text are imported there."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.export.hub import export_hub_classifier  # noqa: E402
from ptft_keras.models import hub  # noqa: E402
from ptft_keras.peft import hub as hub_lora  # noqa: E402
from tests.hub.conftest import SEQ  # noqa: E402
from tests.scripts import serve_in_fresh_process  # noqa: E402

pytestmark = pytest.mark.tf_only
TEXTS = [
    "Great movie!",
    "I don't like it. It's BAD...",
    "",
    "Caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001f600",
    "good " * 2000,
    "a gripping , funny film",
]


@pytest.fixture(scope="module")
def exported(bert_preset, sst2_texts, tmp_path_factory):
    texts, labels, _ = sst2_texts
    clf = hub.hub_text_classifier(
        bert_preset, 3, label_names=["neg", "mid", "pos"], sequence_length=SEQ
    )
    hub_lora.enable_hub_lora(clf, rank=2)
    clf.compile(optimizer=keras.optimizers.Adam(1e-2))
    for start in (0, 16):  # train_on_batch: no tf.data pipeline to trace
        clf.train_on_batch(texts[start : start + 16], np.array(labels[start : start + 16]))
    merged = hub_lora.merge_hub_lora(clf)  # export the LoRA-free copy
    path = export_hub_classifier(merged, str(tmp_path_factory.mktemp("export") / "bert"))
    expected = tf.nn.softmax(clf.predict(TEXTS, verbose=0)).numpy()
    return path, expected


def test_fresh_process_serves_raw_strings_as_keras_predicts(exported):
    path, expected = exported
    outputs = serve_in_fresh_process(path, TEXTS, timeout=120)
    assert outputs["imported"] == []  # neither ptft_keras nor keras_hub in the serving process
    served, signature, column = (
        np.array(outputs[k]) for k in ("serve", "probabilities", "column_probabilities")
    )
    labels, names = outputs["labels"], outputs["label_names"]
    assert served.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(signature, expected, atol=1e-5)
    np.testing.assert_allclose(column, expected, atol=1e-5)
    assert names == ["neg", "mid", "pos"]
    assert labels == [names[i] for i in expected.argmax(axis=1)]


def test_signature_checks_shape_and_answers_empty_batches(exported):
    path, _ = exported
    serve = tf.saved_model.load(path).signatures["serving_default"]
    expected = r"expected text \(batch,\) or \(batch, 1\) strings; got shape"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[2 2\]"):
        serve(text=tf.constant([["a", "b"], ["c", "d"]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[\]"):
        serve(text=tf.constant("one string, no batch"))
    empty = serve(text=tf.constant([], dtype=tf.string))
    assert empty["probabilities"].shape == (0, 3) and empty["label"].shape == (0,)


def test_export_refuses_a_model_without_preprocessor_or_an_existing_path(exported, bert_preset):
    path, _ = exported
    clf = hub.hub_text_classifier(bert_preset, 2, sequence_length=SEQ)
    with pytest.raises(FileExistsError, match="already exists"):
        export_hub_classifier(clf, path)
    clf.preprocessor = None
    with pytest.raises(ValueError, match="has no preprocessor"):
        export_hub_classifier(clf, path + "_other")


def test_fuzzed_inputs_get_one_row_each_or_a_named_error(exported, tmp_path):
    """The text exports' seeded fuzzer (random ranks, dtypes, invalid UTF-8, 100k-character
    strings, emoji) against the keras-hub tokenizer, in a process without ptft_keras."""
    path, _ = exported
    script = os.path.join(os.path.dirname(__file__), "..", "export", "fuzz_signature.py")
    report = tmp_path / "fuzz.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    run = subprocess.run(
        [sys.executable, script, path, json.dumps({"kind": "text"}), str(report), "40"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["imported_ptft_keras"] is False
    assert result["bad"] == [], result["bad"][:5]
    assert result["calls"] == 40
    assert result["answered"] >= 5 and result["refused"] >= 10, result
