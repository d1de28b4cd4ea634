"""export_formats on a tiny saved run: every format's row, figures that must agree."""

import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import export_formats
from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.specs import ImageSpec

pytestmark = pytest.mark.tf_only


def tiny_image_run(root):
    """A finished `ptft finetune` run directory (3 classes, 16x16 grey) and a test folder."""
    spec = ImageSpec(16, 16, 1)
    autoencoder = build_conv_autoencoder(filters=(2, 4), noise=None, image_spec=spec)
    model = Classifier.from_pretrained(autoencoder, 3, head="linear", label_names=list("abc"))
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(
        json.dumps({"kind": "finetune", "modality": "image", "finished": "now"})
    )
    rng = np.random.default_rng(0)
    for name in "abc":
        (root / "test" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (16, 16, 1)).astype("uint8")
            tf.io.write_file(str(root / "test" / name / f"{i}.png"), tf.io.encode_png(pixels))
    return run, root / "test"


def test_every_format_scores_the_test_set(tmp_path):
    run, test = tiny_image_run(tmp_path)
    out = tmp_path / "formats.json"
    argv = [str(run), "--data", str(test), "--calls", "2", "--json", str(out)]
    export_formats.main([*argv, "--out", str(tmp_path / "exports")])
    rows = {(r["format"], r["quantize"]): r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {
        ("savedmodel", "-"),
        ("tflite", "float32"),
        ("tflite", "float16"),
        ("tflite", "int8"),
        ("onnx", "float32"),
    }
    reference = rows["savedmodel", "-"]
    for key in (("tflite", "float32"), ("onnx", "float32")):
        assert rows[key]["max_abs_diff_vs_savedmodel"] < 1e-4
        assert rows[key]["accuracy"] == reference["accuracy"]
    for row in rows.values():
        assert row["bytes"] > 1000
        assert row["ms_per_example_batch1"] > 0 and row["ms_per_example_batch32"] > 0
