"""LiteRT and ONNX exports (`ptft_keras.export.portable`): image and text round trips in the
formats' own runtimes, in a fresh process without TensorFlow or ptft_keras; quantisation;
the export-time check; refused combinations."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ptft_keras.data.tokenizer import TextEncoder, train_tokenizer
from ptft_keras.export.portable import ExportCheckError, export_portable
from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.transformer import TransformerBackbone
from ptft_keras.specs import ImageSpec

pytestmark = pytest.mark.tf_only
SEQ = 12
TEXTS = [
    "Great movie!",
    "I don't like it. It's BAD...",
    "",
    "Caf\u00e9 \u65e5\u672c",
    "good " * 500,
]

# A fresh Python with only the runtimes (no TensorFlow, no ptft_keras): what a phone app
# or a non-TF server has. Prints the probabilities of each file for the saved inputs.
RUNTIMES = """
import json, sys
import numpy as np
import onnxruntime
from ai_edge_litert.interpreter import Interpreter
path, inputs = sys.argv[1:]
x = dict(np.load(inputs))
if "texts" in x:  # text export: the bundled reference encoder makes the inputs
    sys.path.insert(0, path + "/tokenizer")
    import encode
    x = encode.Encoder()(x.pop("texts").tolist())
if path.endswith("onnx"):
    out = onnxruntime.InferenceSession(path + "/model.onnx").run(None, x)[0]
else:
    out = Interpreter(model_path=path + "/model.tflite").get_signature_runner()(**x)["output_0"]
labels = open(path + "/labels.txt", encoding="utf-8").read().splitlines()
print(json.dumps({"probabilities": out.tolist(), "labels": labels,
                  "loaded": [m for m in ("tensorflow", "ptft_keras") if m in sys.modules]}))
"""


def run_runtimes(path, tmp_path, **arrays):
    np.savez(tmp_path / "inputs.npz", **arrays)
    result = subprocess.run(
        [sys.executable, "-c", RUNTIMES, path, str(tmp_path / "inputs.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    return np.array(out["probabilities"]), out["labels"]


def rgb_classifier():
    spec = ImageSpec(30, 30, 3, "standard", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    autoencoder = build_conv_autoencoder(filters=(2, 4), noise=None, image_spec=spec)
    return Classifier.from_pretrained(
        autoencoder, 3, head="linear", label_names=["cat", "dog", "emu"]
    )


def test_a_background_distance_input_runs_in_litert(tmp_path):
    # Its per-image median is a sort with static picks: `ops.median` computes indices in
    # float64, which LiteRT refuses (tf.Ceil/Sub/Mul on f64 are not builtin ops).
    spec = ImageSpec(12, 10, 3)
    autoencoder = build_conv_autoencoder(
        filters=(2, 4), noise=None, image_spec=spec, background_distance=True
    )
    model = Classifier.from_pretrained(autoencoder, 2, head="linear", label_names=["a", "b"])
    report = export_portable(model, str(tmp_path / "tflite"), "tflite")
    assert report["max_abs_difference"] <= 1e-4
    assert report["inputs"] == {"images": "uint8 (N, 12, 10, 3)"}


@pytest.fixture(scope="module")
def text_model():
    tokenizer = train_tokenizer(["a great movie !", "do n't waste time .", "i hate it"] * 3, 60)
    backbone = TransformerBackbone.from_preset(
        "tiny", vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=SEQ
    )
    return TextClassifier(backbone, 2, head_dropout=0.0, label_names=["neg", "pos"]), tokenizer


@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_image_round_trip_in_the_runtime(format, tmp_path):
    model = rgb_classifier()
    report = export_portable(model, str(tmp_path / format), format)
    assert report["max_abs_difference"] <= 1e-4 and report["modality"] == "image"
    assert report["inputs"] == {"images": "uint8 (N, 30, 30, 3)"}
    x = np.random.default_rng(1).integers(0, 256, (5, 30, 30, 3)).astype("uint8")
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(model.image_spec.scale(x))))
    got, labels = run_runtimes(report["path"], tmp_path, images=x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert labels == ["cat", "dog", "emu"]
    got_one, _ = run_runtimes(report["path"], tmp_path, images=x[:1])  # batch is dynamic
    np.testing.assert_allclose(got_one, expected[:1], atol=1e-5)


@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_text_round_trip_with_the_reference_encoder(format, text_model, tmp_path):
    model, tokenizer = text_model
    report = export_portable(model, str(tmp_path / format), format, tokenizer=tokenizer)
    assert report["inputs"] == {"token_ids": "int32 (N, 12)", "padding_mask": "int32 (N, 12)"}
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(model(TextEncoder(tokenizer, SEQ)(TEXTS)))
    )
    got, labels = run_runtimes(report["path"], tmp_path, texts=np.array(TEXTS))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert labels == ["neg", "pos"]
    assert os.path.isfile(os.path.join(report["path"], "tokenizer", "vocabulary.txt"))


@pytest.mark.parametrize("quantize", ["float16", "int8"])
def test_quantised_litert_is_checked_against_its_tolerance(quantize, tmp_path):
    model = rgb_classifier()
    report = export_portable(model, str(tmp_path / quantize), "tflite", quantize=quantize)
    with open(os.path.join(report["path"], "export.json")) as f:
        written = json.load(f)
    assert written["quantize"] == quantize and written["runtime"] == "LiteRT interpreter"
    assert written["max_abs_difference"] <= written["tolerance"]


def test_a_difference_above_tolerance_is_an_error_and_leaves_nothing(tmp_path):
    path = str(tmp_path / "f16")
    with pytest.raises(ExportCheckError, match=r"differ from the Keras model's by up to"):
        export_portable(rgb_classifier(), path, "tflite", quantize="float16", tolerance=1e-12)
    assert not os.path.exists(path)


def test_refused_combinations(text_model, tmp_path):
    model = rgb_classifier()
    with pytest.raises(
        ValueError, match=r"format must be one of \('tflite', 'onnx'\); got 'coreml'"
    ):
        export_portable(model, str(tmp_path / "a"), "coreml")
    with pytest.raises(ValueError, match="quantize='int8' is not offered for onnx"):
        export_portable(model, str(tmp_path / "b"), "onnx", quantize="int8")
    with pytest.raises(ValueError, match="quantize='int4' is not offered for tflite"):
        export_portable(model, str(tmp_path / "c"), "tflite", quantize="int4")
    text, tokenizer = text_model
    with pytest.raises(ValueError, match="longer than the model's max_sequence_length"):
        export_portable(text, str(tmp_path / "d"), "onnx", tokenizer=tokenizer, sequence_length=99)
    os.makedirs(tmp_path / "taken")
    with pytest.raises(FileExistsError):
        export_portable(model, str(tmp_path / "taken"), "onnx")
