"""`ptft export --format tflite|onnx [--quantize]` on a small real run, and its refusals."""

import json
import os

import pytest

from tests.cli.test_cli import ptft, ptft_in_process

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def image_run(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    ptft(
        "finetune", "--scratch", "--data", digits / "labeled", "--semi-supervised", "none",
        "--finetune-steps", 20, "--out", root / "ft", cwd=root,
    )  # fmt: skip
    return root / "ft"


def test_tflite_int8_and_onnx_exports(image_run, tmp_path):
    out = ptft("export", image_run, "--out", "lite", "--format", "tflite", "--quantize", "int8",
               cwd=tmp_path).stdout  # fmt: skip
    assert "model.tflite" in out and "in LiteRT interpreter on 16 examples" in out
    with open(tmp_path / "lite" / "export.json") as f:
        report = json.load(f)
    assert report["quantize"] == "int8" and report["inputs"] == {"images": "uint8 (N, 16, 16, 1)"}
    assert open(tmp_path / "lite" / "labels.txt").read().split() == [str(d) for d in range(10)]
    out = ptft("export", image_run, "--out", "onnx", "--format", "onnx", cwd=tmp_path).stdout
    assert "model.onnx" in out and "in onnxruntime" in out
    assert os.path.getsize(tmp_path / "onnx" / "model.onnx") > 1000


def test_refused_combinations_are_named(image_run, tmp_path, monkeypatch, capsys):
    def error(*args):
        status, out, err = ptft_in_process(
            "export", *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
        )
        assert status == 2, (out, err[-2000:])
        return err.strip().splitlines()[-1]

    assert "invalid choice: 'coreml'" in error(image_run, "--out", "x", "--format", "coreml")
    assert error(image_run, "--out", "x", "--format", "onnx", "--quantize", "int8") == (
        "ptft: error: --quantize int8 applies to --format tflite only"
    )
    assert error(image_run, "--out", "x", "--tolerance", "0.001") == (
        "ptft: error: --tolerance applies to --format tflite and onnx only"
    )
    too_strict = ("--format", "tflite", "--quantize", "float16", "--tolerance", "1e-12")
    assert "the tflite (float16) export's probabilities differ from the Keras model's by up to" in (
        error(image_run, "--out", "x", *too_strict)
    )
    hub_run = tmp_path / "hub"  # a keras-hub run's config: refused before anything loads
    hub_run.mkdir()
    with open(image_run / "config.json") as f:
        config = json.load(f)
    with open(hub_run / "config.json", "w") as f:
        json.dump({**config, "backbone": "bert_tiny_en_uncased"}, f)
    assert error(hub_run, "--out", "x", "--format", "tflite") == (
        "ptft: error: --format tflite is not supported for keras-hub runs "
        "(bert_tiny_en_uncased): their tokenizer and preprocessor stay TensorFlow graphs; "
        "use --format savedmodel"
    )
    assert not (tmp_path / "x").exists()
