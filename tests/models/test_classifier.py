import keras
import numpy as np
import pytest

from ptft_keras.layers.cosine_logits import CosineLogits
from ptft_keras.models.autoencoder import build_conv_autoencoder, build_dense_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.heads import (
    SparseCategoricalHinge,
    build_classification_head,
    classification_loss,
)
from ptft_keras.specs import ImageSpec
from tests.harness import run_model_test


def _images(n=20, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
@pytest.mark.parametrize(
    "pooling, feature_shape",
    [("flatten", (7, 7, 4)), ("avg", (7, 7, 4)), ("none", (6,)), ("avg", (5, 6))],
)
def test_head_shapes_and_names(kind, pooling, feature_shape):
    head = build_classification_head(
        feature_shape, 3, kind=kind, pooling=pooling, hidden_units=(5,), dropout=0.1
    )
    assert head.name == "head"
    assert head.output_shape == (None, 3)
    assert "logits" in [layer.name for layer in head.layers]
    assert "hidden_1" in [layer.name for layer in head.layers]


def test_bad_head_and_loss_arguments():
    with pytest.raises(ValueError, match="kind"):
        build_classification_head((4,), 3, kind="svm")
    with pytest.raises(ValueError, match="pooling"):
        build_classification_head((4,), 3, pooling="max")
    with pytest.raises(ValueError, match="Unknown classification loss 'mae'"):
        classification_loss("mae")
    encoder = build_dense_autoencoder(latent_dim=4).encoder
    with pytest.raises(ValueError, match="loss"):
        Classifier(encoder, 3, loss="mae")
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch, 28, 28\)"):
        Classifier(encoder, 3)(np.zeros((2, 28, 27), "float32"))


def test_cosine_logits_are_scaled_cosines():
    layer = CosineLogits(2, scale=5.0)
    layer.build((None, 2))
    layer.kernel.assign(np.array([[2.0, 0.0], [0.0, 3.0]], "float32"))
    logits = _np(layer(np.array([[4.0, 0.0], [1.0, 1.0]], "float32")))
    np.testing.assert_allclose(logits, [[5.0, 0.0], [5 / np.sqrt(2), 5 / np.sqrt(2)]], atol=1e-5)


def test_hinge_is_crammer_singer_on_integer_labels():
    scores = np.array([[2.0, 0.5, 1.8], [0.0, 3.0, -1.0]], "float32")
    labels = np.array([0, 2])
    # max(0, 1 + best wrong score - true score): [1 + 1.8 - 2, 1 + 3 - (-1)]
    expected = np.mean([0.8, 5.0])
    np.testing.assert_allclose(
        float(_np(SparseCategoricalHinge()(labels, scores))), expected, rtol=1e-5
    )
    assert isinstance(classification_loss("hinge"), SparseCategoricalHinge)
    ce = classification_loss("crossentropy")
    manual = -np.log(np.exp(2.0) / np.exp(scores[0]).sum())
    np.testing.assert_allclose(float(_np(ce(labels[:1], scores[:1]))), manual, rtol=1e-5)


def test_imprint_gives_nearest_class_mean_classifier():
    ae = build_dense_autoencoder(latent_dim=8)
    clf = Classifier(ae.encoder, 2)
    rng = np.random.default_rng(0)
    x = np.zeros((20, 28, 28), "float32")
    x[:10, :14] = rng.random((10, 14, 28))  # class 0: top half lit
    x[10:, 14:] = rng.random((10, 14, 28))  # class 1: bottom half lit
    y = np.repeat([0, 1], 10)
    clf.imprint(x, y)
    assert (np.argmax(_np(clf(x)), axis=1) == y).mean() >= 0.9
    with pytest.raises(ValueError, match="missing"):
        clf.imprint(x[:10], y[:10])
    with pytest.raises(ValueError, match="cosine head"):
        Classifier(ae.encoder, 2, head="linear").imprint(x, y)


def test_imprint_uses_the_pooled_features_the_logits_see():
    encoder = build_conv_autoencoder(filters=(4, 8)).encoder  # (batch, 7, 7, 8) maps
    clf = Classifier(encoder, 3, head_kwargs={"pooling": "avg", "hidden_units": (5,)})
    x, y = _images(6), np.arange(6) % 3
    clf.imprint(x, y)
    assert clf.head_layer.kernel.shape == (5, 3)
    hidden = keras.Model(clf.head.input, clf.head.get_layer("hidden_1").output)
    features = _np(hidden(clf.encoder(x)))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(
        _np(clf.head_layer.kernel)[:, 1], features[y == 1].mean(0), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("head, loss", [("cosine", "crossentropy"), ("linear", "hinge")])
def test_harness(tmp_path, head, loss):
    def build():
        ae = build_conv_autoencoder(filters=(4, 8))
        clf = Classifier(ae.encoder, 10, head=head, loss=loss, head_kwargs={"pooling": "flatten"})
        clf.compile(optimizer=keras.optimizers.Adam(1e-2))
        return clf

    x, y = _images(20), np.arange(20) % 10
    clf = run_model_test(build, x, tmp_path, y=y)
    assert clf.loss_name == loss and clf.label_names == [str(i) for i in range(10)]


def test_image_spec_and_label_names_travel_with_the_model(tmp_path):
    spec = ImageSpec(12, 12, 3, "standard", mean=(0.5,) * 3, std=(0.2,) * 3)
    ae = build_conv_autoencoder(filters=(4, 8), latent_dim=4, image_spec=spec)
    clf = Classifier.from_pretrained(ae, 3, label_names=["cat", "dog", "emu"])
    assert clf.image_spec == spec  # from the autoencoder
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    restored = keras.saving.load_model(path)
    assert restored.image_spec == spec and restored.label_names == ["cat", "dog", "emu"]
    with pytest.raises(ValueError, match="2 label_names for num_classes=3"):
        Classifier(ae.encoder, 3, label_names=["a", "b"])
    with pytest.raises(ValueError, match="does not match the encoder's input shape"):
        Classifier(ae.encoder, 3, image_spec=ImageSpec(28, 28, 1))


def test_from_pretrained_copies_every_encoder_weight(tmp_path):
    ae = build_conv_autoencoder(filters=(4, 8))
    for w in ae.encoder.weights:  # make the source weights recognisable
        w.assign(np.random.default_rng(len(w.path)).normal(size=w.shape).astype("float32"))
    clf = Classifier.from_pretrained(ae, num_classes=10)
    assert clf.encoder is not ae.encoder
    assert len(clf.transfer_report.moved) == len(ae.encoder.weights) == 8
    for src, dst in zip(ae.encoder.weights, clf.encoder.weights, strict=True):
        np.testing.assert_array_equal(_np(src), _np(dst))
    # from a saved .keras file, and from the bare encoder
    path = str(tmp_path / "ae.keras")
    ae.save(path)
    for source in (path, ae.encoder):
        other = Classifier.from_pretrained(source, num_classes=3, head="linear", loss="hinge")
        np.testing.assert_array_equal(_np(other.encoder.weights[0]), _np(ae.encoder.weights[0]))
    # a randomly initialised encoder of the same config differs
    fresh = Classifier(keras.Model.from_config(ae.encoder.get_config()), 10)
    assert not np.allclose(_np(fresh.encoder.weights[0]), _np(ae.encoder.weights[0]))


def test_from_pretrained_rejects_bad_sources():
    with pytest.raises(ValueError, match=r"\.keras"):
        Classifier.from_pretrained("weights.h5", num_classes=10)
    with pytest.raises(ValueError, match="named 'encoder'"):
        Classifier.from_pretrained(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), 10)
