"""SavedModel export of an image classifier, reloaded in a fresh process; export dirs."""

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

# Runs in a fresh Python: only TensorFlow, no Keras model code, no ptft_keras import.
RELOAD = """
import sys
import numpy as np
import tensorflow as tf
path, inputs, outputs = sys.argv[1:]
loaded = tf.saved_model.load(path)
x = np.load(inputs)  # (N, 28, 28) uint8
results = {
    "uint8": loaded.serve(x),
    "uint8_channel": loaded.serve(x[..., None]),
    "float": loaded.serve((x / 255.0).astype("float32")),
    "float_channel": loaded.serve((x / 255.0).astype("float32")[..., None]),
    "serving_default": loaded.signatures["serving_default"](images=tf.constant(x))["probs"],
}
np.savez(outputs, **{k: v.numpy() for k, v in results.items()})
print("ptft_keras" in sys.modules)
"""


def digits(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype("uint8")


def keras_probs(model, x_uint8):
    logits = model(x_uint8.astype("float32") / 255.0, training=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


@pytest.mark.tf_only
@pytest.mark.parametrize("encoder", ["dense", "conv"])  # (28, 28) and (28, 28, 1) models
def test_export_reloads_in_fresh_process_with_same_predictions(tmp_path, encoder):
    if encoder == "dense":
        autoencoder = build_dense_autoencoder(latent_dim=8)
    else:
        autoencoder = build_conv_autoencoder(filters=(2, 4), noise=None)
    model = Classifier(autoencoder.encoder, num_classes=10, head="linear")
    path = export_image_classifier(model, str(tmp_path / "classifier"))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))

    x = digits()
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", RELOAD, path, str(tmp_path / "x.npy"), str(tmp_path / "y.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),  # not the project root: ptft_keras is not importable from here
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "False"  # served without ptft_keras
    expected = keras_probs(model, x)
    assert expected.shape == (5, 10)
    results = np.load(tmp_path / "y.npz")
    assert sorted(results) == [
        "float",
        "float_channel",
        "serving_default",
        "uint8",
        "uint8_channel",
    ]
    for name in results:
        assert results[name].shape == (5, 10), name
        np.testing.assert_allclose(results[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(results["uint8"].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.tf_only
def test_export_refuses_existing_dir_wrong_shape_and_wrong_model(tmp_path):
    import tensorflow as tf

    model = Classifier(build_dense_autoencoder(latent_dim=4).encoder, num_classes=3, head="linear")
    path = export_image_classifier(model, str(tmp_path / "m"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_image_classifier(model, path)
    # Overwrite replaces the export with the new model's.
    other = Classifier(build_dense_autoencoder(latent_dim=4).encoder, num_classes=3, head="linear")
    export_image_classifier(other, path, overwrite=True)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.serve(digits(2)).numpy(), keras_probs(other, digits(2)), 1e-5)
    with pytest.raises(ValueError, match="Could not find matching concrete function"):
        loaded.serve(np.zeros((2, 32, 32), "uint8"))
    images = keras.Input((32, 32))
    wrong = keras.Model(images, keras.layers.Dense(3)(keras.layers.Flatten()(images)))
    with pytest.raises(ValueError, match=r"needs a model of 28x28 images.*\(32, 32\)"):
        export_image_classifier(wrong, str(tmp_path / "wrong"))
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
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        prepare_export_dir(fresh, overwrite=True)
    assert os.path.isfile(os.path.join(fresh, "notes.txt"))
    with pytest.raises(ValueError, match="not a directory"):
        prepare_export_dir(os.path.join(fresh, "notes.txt"), overwrite=True)
    with pytest.raises(ValueError, match="root, home or working dir"):
        prepare_export_dir(os.getcwd(), overwrite=True)
    with pytest.raises(ValueError, match="non-empty"):
        prepare_export_dir("")
