"""Raw-text SavedModel: reload in a fresh process, strings in, the Keras predictions out."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data.tokenizer import TextEncoder, train_tokenizer  # noqa: E402
from ptft_keras.export.text import export_text_classifier  # noqa: E402
from ptft_keras.models.text_classifier import TextClassifier  # noqa: E402
from ptft_keras.models.transformer import TransformerBackbone  # noqa: E402
from tests.scripts import serve_in_fresh_process  # noqa: E402

pytestmark = pytest.mark.tf_only

CORPUS = [
    "a great movie !",
    "do n't waste your time .",
    "it 's a bad , bad film",
    "the story is good",
    "i love it",
    "i hate it",
] * 3
TEXTS = [
    "Great movie!",
    "I don't like it. It's BAD...",
    "",
    "Caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001f600",
    "good " * 5000,
    "great movie !",
]
SEQ = 12


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tokenizer = train_tokenizer(CORPUS, vocabulary_size=60)
    backbone = TransformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=SEQ,
        causal=False,
    )
    model = TextClassifier(backbone, 3, head_dropout=0.0, label_names=["neg", "neutral", "pos"])
    path = str(tmp_path_factory.mktemp("export") / "sst2")
    returned = export_text_classifier(model, tokenizer, path)  # length: the backbone's
    expected = tf.nn.softmax(model(TextEncoder(tokenizer, SEQ)(TEXTS))).numpy()
    return returned, expected, model, tokenizer


def test_fresh_process_serves_raw_strings(exported):
    path, expected, _, _ = exported
    outputs = serve_in_fresh_process(path, TEXTS)
    assert outputs["imported"] == []  # neither ptft_keras nor keras_hub
    served, signature, column = (
        np.array(outputs[k]) for k in ("serve", "probabilities", "column_probabilities")
    )
    labels, names = outputs["labels"], outputs["label_names"]
    assert served.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(signature, expected, atol=1e-5)
    np.testing.assert_allclose(column, expected, atol=1e-5)  # (N, 1) is accepted too
    assert names == ["neg", "neutral", "pos"]
    assert labels == [names[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)
    # Normalisation happens in the graph: typed text == its SST-2 form.
    np.testing.assert_allclose(served[0], served[5], atol=1e-6)


def test_signature_checks_shape_and_answers_empty_batches(exported):
    path, _, _, _ = exported
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(path).signatures["serving_default"]
    expected = r"expected text \(batch,\) or \(batch, 1\) strings; got shape"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[2 2\]"):
        serve(text=tf.constant([["a", "b"], ["c", "d"]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[\]"):
        serve(text=tf.constant("one string, no batch"))
    empty = serve(text=tf.constant([], dtype=tf.string))
    assert empty["probabilities"].shape == (0, 3) and empty["label"].shape == (0,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        serve(text=tf.constant([1, 2]))


def test_fuzzed_inputs_get_one_row_each_or_a_named_error(exported, tmp_path):
    path, _, _, _ = exported
    script = os.path.join(os.path.dirname(__file__), "fuzz_signature.py")
    report = tmp_path / "fuzz.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    run = subprocess.run(
        [sys.executable, script, path, json.dumps({"kind": "text"}), str(report), "300"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["imported_ptft_keras"] is False
    assert result["bad"] == [], result["bad"][:5]
    assert result["calls"] == 300
    assert result["answered"] >= 30 and result["refused"] >= 100, result


def test_export_bundles_the_tokenizer(exported):
    from ptft_keras.data.tokenizer import load_tokenizer

    path, _, _, tokenizer = exported
    bundled = load_tokenizer(os.path.join(path, "assets", "tokenizer"))
    assert bundled.get_vocabulary() == tokenizer.get_vocabulary()
    assert bundled.normalizer == "sst"


def test_existing_path_is_not_overwritten_silently(exported):
    path, _, model, tokenizer = exported
    with pytest.raises(FileExistsError, match="overwrite"):
        export_text_classifier(model, tokenizer, path, sequence_length=SEQ)
    assert export_text_classifier(model, tokenizer, path, SEQ, overwrite=True) == path
    assert os.path.isfile(os.path.join(path, "assets", "tokenizer", "vocabulary.txt"))


def test_export_rejects_mismatched_tokenizer_or_length(exported, tmp_path):
    _, _, model, tokenizer = exported
    with pytest.raises(ValueError, match="max_sequence_length=12"):
        export_text_classifier(model, tokenizer, str(tmp_path / "a"), sequence_length=64)
    other = train_tokenizer(CORPUS + ["completely new words appear here"], vocabulary_size=90)
    with pytest.raises(ValueError, match="vocabulary_size"):
        export_text_classifier(model, other, str(tmp_path / "b"), sequence_length=SEQ)


def test_forward_backward_ensemble_serves_raw_strings(tmp_path):
    """A `TextEnsemble` of a forward and a backward (`reverse_tokens`) classifier exports
    like one classifier: raw strings in, the mean probability out, label names kept."""
    from ptft_keras.models.text_ensemble import TextEnsemble

    tokenizer = train_tokenizer(CORPUS, vocabulary_size=60)
    members = [
        TextClassifier(
            TransformerBackbone.from_preset(
                "tiny", vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=SEQ
            ),
            2,
            label_names=["neg", "pos"],
            reverse_tokens=reverse,
        )
        for reverse in (False, True)
    ]
    ensemble = TextEnsemble(members)
    path = export_text_classifier(ensemble, tokenizer, str(tmp_path / "pair"))
    served = tf.saved_model.load(path)
    out = served.signatures["serving_default"](text=tf.constant(TEXTS))
    inputs = TextEncoder(tokenizer, SEQ)(TEXTS)
    expected = np.mean([tf.nn.softmax(m(inputs)).numpy() for m in members], axis=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert [x.decode() for x in out["label"].numpy()] == [
        ["neg", "pos"][i] for i in expected.argmax(1)
    ]
    with pytest.raises(ValueError, match="tokenizer has 60 tokens but the model's vocabulary"):
        export_text_classifier(
            TextEnsemble([TextClassifier(TransformerBackbone.from_preset("tiny"), 2)] * 2),
            tokenizer,
            str(tmp_path / "mismatch"),
        )
