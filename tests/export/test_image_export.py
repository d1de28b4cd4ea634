"""SavedModel export of image classifiers: reloaded in a fresh process, checked inputs,
label names, any size and channel count, fuzzed; export directories."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ptft_keras.export.common import prepare_export_dir
from ptft_keras.export.image import export_image_classifier
from ptft_keras.models.autoencoder import build_conv_autoencoder, build_dense_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.specs import ImageSpec
from tests.scripts import serve_in_fresh_process

pytestmark = pytest.mark.tf_only
FUZZ_SCRIPT = os.path.join(os.path.dirname(__file__), "fuzz_signature.py")


def pixels(shape, n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype("uint8")


def keras_probs(model, x_uint8):
    logits = model(model.image_spec.scale(x_uint8), training=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


def run_fresh(script, *args, cwd):
    """Run a script file or source text in a fresh Python outside the project root, so
    that `ptft_keras` cannot be imported by accident."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    command = [script] if os.path.isfile(script) else ["-c", script]
    return subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(cwd),
        env=env,
    )


def grey_mnist_classifier():
    autoencoder = build_conv_autoencoder(filters=(2, 4), noise=None)
    return Classifier(autoencoder.encoder, num_classes=10, head="linear")


def rgb_standardised_classifier():
    """30x30 RGB (not a multiple of the stride: padded) with standardised pixels."""
    spec = ImageSpec(30, 30, 3, "standard", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    autoencoder = build_conv_autoencoder(filters=(2, 4), noise=None, image_spec=spec)
    names = ["cat", "dog", "emu"]
    return Classifier.from_pretrained(autoencoder, 3, head="linear", label_names=names)


@pytest.mark.parametrize("build", [grey_mnist_classifier, rgb_standardised_classifier])
def test_export_reloads_in_fresh_process_with_same_predictions(tmp_path, build):
    model = build()
    path = export_image_classifier(model, str(tmp_path / "classifier"))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    x = pixels(model.image_spec.shape)
    results = serve_in_fresh_process(path, x)
    assert results["imported"] == []  # served without ptft_keras
    expected = keras_probs(model, x)
    for name in ("serve", "serve_float", "probabilities", "serve_no_channel"):
        if name in results:
            np.testing.assert_allclose(results[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert ("serve_no_channel" in results) == (model.image_spec.channels == 1)
    np.testing.assert_allclose(np.sum(results["serve"], axis=1), 1.0, rtol=1e-5)
    names = results["label_names"]
    assert names == model.label_names
    assert results["labels"] == [names[i] for i in expected.argmax(1)]


def test_signature_checks_the_cases_clients_get_wrong(tmp_path):
    """The table of issue 16: RGB by mistake, empty batch, wrong size."""
    import tensorflow as tf

    model = grey_mnist_classifier()
    served = tf.saved_model.load(export_image_classifier(model, str(tmp_path / "m")))
    serve = served.signatures["serving_default"]
    assert serve(images=tf.constant(pixels((28, 28), 2)))["probabilities"].shape == (2, 10)
    expected = r"expected images \(batch, 28, 28\) or \(batch, 28, 28, 1\) uint8; got shape"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[2 28 28 3\]"):
        serve(images=tf.constant(pixels((28, 28, 3), 2)))  # was: 6 rows for 2 images
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[2 32 32\]"):
        serve(images=tf.constant(pixels((32, 32), 2)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r"\] \[28 28\]"):
        serve(images=tf.constant(pixels((28,), 28)[0:28]))  # one image without a batch
    empty = serve(images=tf.constant(np.zeros((0, 28, 28), "uint8")))
    assert empty["probabilities"].shape == (0, 10) and empty["label"].shape == (0,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor"):
        serve(images=tf.constant(np.zeros((2, 28, 28), "float32")))


@pytest.mark.parametrize("build", [grey_mnist_classifier, rgb_standardised_classifier])
def test_fuzzed_inputs_get_one_row_each_or_a_named_error(tmp_path, build):
    """A few hundred seeded random inputs in a fresh process without ptft_keras: each call
    returns one row per input row (rows sum to 1) or an error naming the expected input."""
    model = build()
    path = export_image_classifier(model, str(tmp_path / "m"))
    report = tmp_path / "fuzz.json"
    spec = json.dumps({"kind": "image", "shape": list(model.image_spec.shape)})
    run = run_fresh(FUZZ_SCRIPT, path, spec, report, "300", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["imported_ptft_keras"] is False
    assert result["bad"] == [], result["bad"][:5]  # wrong row counts or unnamed errors
    assert result["calls"] == 300
    # Both outcomes occur, and most valid-shaped inputs are answered.
    assert result["answered"] >= 30 and result["refused"] >= 100, result


def test_export_refuses_existing_dir_wrong_model_and_label_count(tmp_path):
    import tensorflow as tf

    model = Classifier(build_dense_autoencoder(latent_dim=4).encoder, num_classes=3, head="linear")
    path = export_image_classifier(model, str(tmp_path / "m"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_image_classifier(model, path)
    # Overwrite replaces the export with the new model's.
    other = Classifier(build_dense_autoencoder(latent_dim=4).encoder, num_classes=3, head="linear")
    export_image_classifier(other, path, overwrite=True)
    loaded = tf.saved_model.load(path)
    x = pixels((28, 28), 2)
    np.testing.assert_allclose(loaded.serve(x).numpy(), keras_probs(other, x), 1e-5)
    with pytest.raises(ValueError, match="2 label names for a model with 3 outputs"):
        export_image_classifier(other, str(tmp_path / "wrong"), label_names=["a", "b"])
    images = keras.Input((4,))
    flat = keras.Model(images, keras.layers.Dense(3)(images))
    with pytest.raises(ValueError, match="Cannot tell what images"):
        export_image_classifier(flat, str(tmp_path / "wrong"))
    images = keras.Input((28, 28))
    no_classes = keras.Model(images, keras.layers.Dense(3)(images))  # (batch, 28, 3)
    with pytest.raises(ValueError, match=r"needs \(batch, num_classes\) outputs"):
        export_image_classifier(no_classes, str(tmp_path / "wrong"))
    assert not os.path.exists(tmp_path / "wrong")


def test_prepare_export_dir(tmp_path):
    fresh = prepare_export_dir(tmp_path / "a" / "b")
    assert fresh == str(tmp_path / "a" / "b") and os.path.isdir(tmp_path / "a")
    os.makedirs(fresh)
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        prepare_export_dir(fresh)
    assert prepare_export_dir(fresh, overwrite=True) == fresh  # empty dir: removed
    assert not os.path.exists(fresh)
    os.makedirs(fresh)
    open(os.path.join(fresh, "saved_model.pb"), "w").close()
    prepare_export_dir(fresh, overwrite=True)  # a previous SavedModel: removed
    assert not os.path.exists(fresh)
    # Anything else is refused and left alone.
    os.makedirs(fresh)
    open(os.path.join(fresh, "notes.txt"), "w").close()
    with pytest.raises(ValueError, match="not an export directory"):
        prepare_export_dir(fresh, overwrite=True)
    assert os.path.isfile(os.path.join(fresh, "notes.txt"))
    with pytest.raises(ValueError, match="not a directory"):
        prepare_export_dir(os.path.join(fresh, "notes.txt"), overwrite=True)
    with pytest.raises(ValueError, match="root, home or working dir"):
        prepare_export_dir(os.getcwd(), overwrite=True)
    with pytest.raises(ValueError, match="non-empty"):
        prepare_export_dir("")
