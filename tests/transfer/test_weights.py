"""transfer_weights: exact keys, checked shapes, verified copies, clear errors (TF and JAX)."""

import re

import keras
import numpy as np
import pytest

from ptft_keras.transfer.weights import (
    TransferReport,
    WeightTransferError,
    transfer_weights,
    variable_map,
)

ENCODER_KEYS = [
    "conv/kernel",
    "conv/bias",
    "norm/gamma",
    "norm/beta",
    "norm/moving_mean",
    "norm/moving_variance",
    "latent/kernel",
    "latent/bias",
]


def make_encoder(filters=4, latent=8):
    images = keras.Input((8, 8, 1), name="images")
    x = keras.layers.Conv2D(filters, 3, name="conv")(images)  # (batch, 6, 6, filters)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(latent, name="latent")(x)  # (batch, latent)
    return keras.Model(images, x, name="encoder")


class TinyAutoencoder(keras.Model):
    """A subclassed root holding an encoder and a decoder (like an autoencoder)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = make_encoder()
        self.decoder = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(64, name="pixels")], name="decoder"
        )

    def call(self, x):
        return self.decoder(self.encoder(x))


def make_classifier(encoder=None, num_classes=3):
    """A functional root (another class) with the same `encoder` sub-structure."""
    encoder = encoder or make_encoder()
    images = keras.Input((8, 8, 1))
    logits = keras.layers.Dense(num_classes, name="head")(encoder(images))
    return keras.Model(images, logits, name="classifier")


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype(v.dtype))


def values(model):
    return {k: keras.ops.convert_to_numpy(v).copy() for k, v in variable_map(model).items()}


def test_variable_map_keys_are_layer_name_paths():
    assert list(variable_map(make_encoder())) == ENCODER_KEYS
    assert list(variable_map(TinyAutoencoder())) == [f"encoder/{k}" for k in ENCODER_KEYS] + [
        "decoder/pixels/kernel",
        "decoder/pixels/bias",
    ]
    # Nested layers inside a layer: attention/query/kernel, not variable.path.
    tokens = keras.Input((5, 4))
    attention = keras.layers.MultiHeadAttention(2, 3, name="attention")
    block = keras.Model(tokens, attention(tokens, tokens), name="block_0")
    keys = list(variable_map(block))
    assert keys[:2] == ["attention/query/kernel", "attention/query/bias"]
    assert len(keys) == 8 and keys[-1] == "attention/attention_output/bias"


def test_encoder_to_encoder_across_different_roots_copies_every_value():
    source = TinyAutoencoder()
    randomize(source)
    target = make_classifier()
    encoder = target.get_layer("encoder")
    report = transfer_weights(source.encoder, encoder)
    assert isinstance(report, TransferReport) and report.ok
    assert [(m.source_key, m.target_key) for m in report.moved] == [(k, k) for k in ENCODER_KEYS]
    assert report.num_params_moved == 4 * 9 + 4 + 4 * 4 + 144 * 8 + 8
    assert report.untouched == [] and report.unused == []
    expected, got = values(source.encoder), values(encoder)
    for key in ENCODER_KEYS:
        np.testing.assert_array_equal(got[key], expected[key])
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(encoder(x), source.encoder(x), rtol=1e-6)


def test_whole_roots_with_allowed_missing_head_and_unused_decoder():
    source, target = TinyAutoencoder(), make_classifier()
    head_before = values(target)["head/kernel"]
    with pytest.raises(WeightTransferError, match="missing: target layer 'head' variable 'kernel'"):
        transfer_weights(source, target)
    report = transfer_weights(source, target, allow_missing=("head/*",))
    assert [m.target_key for m in report.moved] == [f"encoder/{k}" for k in ENCODER_KEYS]
    assert [k for k, _, _ in report.untouched] == ["head/kernel", "head/bias"]
    assert [k for k, _ in report.unused] == ["decoder/pixels/kernel", "decoder/pixels/bias"]
    np.testing.assert_array_equal(values(target)["head/kernel"], head_before)
    text = str(report)
    assert "8/10 target variables moved" in text
    assert re.search(r"\n +encoder/conv/kernel +-> encoder/conv/kernel +\(3, 3, 1, 4\)\n", text)
    assert "untouched target: head/kernel  (8, 3)  (allowed missing)" in text
    assert "unused source:    decoder/pixels/kernel  (8, 64)" in text


def test_strict_shape_mismatch_names_layer_variable_and_both_shapes_and_copies_nothing():
    source, target = make_encoder(latent=8), make_encoder(latent=16)
    randomize(source)
    before = values(target)
    with pytest.raises(WeightTransferError) as info:
        transfer_weights(source, target)
    message = str(info.value)
    assert "target layer 'latent' variable 'kernel' has shape (144, 16)" in message
    assert "source 'latent/kernel' has shape (144, 8)" in message
    assert "nothing was copied" in message
    for key, value in values(target).items():  # atomic: no partial load
        np.testing.assert_array_equal(value, before[key])


def test_non_strict_returns_problems_and_copies_the_rest():
    source, target = make_encoder(latent=8), make_encoder(latent=16)
    randomize(source)
    report = transfer_weights(source, target, strict=False)
    assert not report.ok and len(report.problems) == 2
    assert [k for k, _, _ in report.untouched] == ["latent/kernel", "latent/bias"]
    assert len(report.moved) == 6
    np.testing.assert_array_equal(values(target)["conv/kernel"], values(source)["conv/kernel"])
    assert "PROBLEM: shape mismatch" in str(report)


def test_mapping_dict_and_callable_rename_target_keys():
    source = make_encoder()
    randomize(source)
    images = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="stem")(images)
    target = keras.Model(images, x)
    report = transfer_weights(
        source, target, mapping={"stem/kernel": "conv/kernel", "stem/bias": "conv/bias"}
    )
    assert [(m.source_key, m.target_key) for m in report.moved] == [
        ("conv/kernel", "stem/kernel"),
        ("conv/bias", "stem/bias"),
    ]
    np.testing.assert_array_equal(values(target)["stem/kernel"], values(source)["conv/kernel"])
    report = transfer_weights(source, target, mapping=lambda k: k.replace("stem/", "conv/"))
    assert len(report.moved) == 2
    with pytest.raises(WeightTransferError, match="mapping names target key 'stme/kernel'"):
        transfer_weights(
            source, target, mapping={"stme/kernel": "conv/kernel"}, allow_missing=("*",)
        )


def test_lora_variables_allowed_missing():
    source = make_encoder()
    target = make_encoder()
    target.get_layer("latent").enable_lora(2)
    with pytest.raises(WeightTransferError, match="variable 'lora_kernel_a'"):
        transfer_weights(source, target)
    report = transfer_weights(source, target, allow_missing=("*lora*",))
    assert len(report.moved) == 8 and len(report.untouched) == 2


def test_dtype_cast_is_reported():
    source = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    target = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d", dtype="float16")])
    report = transfer_weights(source, target)
    assert report.moved[0].transform == "cast float32->float16"
    kernel = keras.ops.convert_to_numpy(source.get_layer("d").kernel).astype("float16")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(target.get_layer("d").kernel), kernel)


def test_keras_file_source(tmp_path):
    source = TinyAutoencoder()
    source(np.zeros((1, 8, 8, 1), "float32"))
    randomize(source)
    encoder_path = str(tmp_path / "encoder.keras")
    source.encoder.save(encoder_path)
    target = make_classifier()
    report = transfer_weights(encoder_path, target.get_layer("encoder"))
    assert report.source == encoder_path and len(report.moved) == 8
    np.testing.assert_array_equal(
        values(target)["encoder/latent/kernel"], values(source)["encoder/latent/kernel"]
    )


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on the bad file
def test_weights_h5_source(tmp_path):
    source = make_encoder()
    randomize(source)
    path = str(tmp_path / "encoder.weights.h5")
    source.save_weights(path)
    target = make_encoder()
    report = transfer_weights(path, target)  # read into a copy of the target's architecture
    assert len(report.moved) == 8
    np.testing.assert_array_equal(values(target)["conv/kernel"], values(source)["conv/kernel"])
    # A file saved by another architecture: clear error, or read it via source_model=.
    wide = make_encoder(latent=16)
    with pytest.raises(WeightTransferError, match="does not fit the architecture"):
        transfer_weights(path, wide)
    report = transfer_weights(path, wide, source_model=make_encoder(), allow_missing=("latent/*",))
    assert len(report.moved) == 6


def test_bad_sources_and_unbuilt_target(tmp_path):
    target = make_encoder()
    with pytest.raises(FileNotFoundError, match="nothere.keras"):
        transfer_weights(str(tmp_path / "nothere.keras"), target)
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"expected a \.keras or \.weights\.h5 path"):
        transfer_weights(str(tmp_path / "weights.npz"), target)
    with pytest.raises(TypeError, match="got dict"):
        transfer_weights({}, target)
    unbuilt = keras.Sequential([keras.layers.Dense(4, name="d")], name="unbuilt")
    with pytest.raises(WeightTransferError, match=r"not built.*\['d'\].*call it once"):
        transfer_weights(make_encoder(), unbuilt)


def test_project_models_autoencoder_file_to_classifier(tmp_path):
    """The MNIST path: a saved ptft_keras Autoencoder (.keras) -> a Classifier."""
    autoencoder_module = pytest.importorskip("ptft_keras.models.autoencoder")
    classifier_module = pytest.importorskip("ptft_keras.models.classifier")
    autoencoder = autoencoder_module.build_dense_autoencoder(latent_dim=4)
    randomize(autoencoder)
    path = str(tmp_path / "autoencoder.keras")
    autoencoder.save(path)
    encoder = keras.Model.from_config(autoencoder.encoder.get_config())
    classifier = classifier_module.Classifier(encoder, num_classes=3, head="linear")
    report = transfer_weights(path, classifier, allow_missing=("head/*",))
    assert [m.target_key for m in report.moved] == ["encoder/latent/kernel", "encoder/latent/bias"]
    assert [k for k, _ in report.unused] == ["decoder/pixels/kernel", "decoder/pixels/bias"]
    np.testing.assert_array_equal(
        values(classifier)["encoder/latent/kernel"], values(autoencoder)["encoder/latent/kernel"]
    )


def test_project_transformer_with_adapters_allowed_missing():
    """block_<i>/attention/... keys of the transformer backbone; adapters stay new."""
    transformer = pytest.importorskip("ptft_keras.models.transformer")
    config = dict(
        vocabulary_size=10,
        num_layers=2,
        num_heads=2,
        hidden_dim=4,
        intermediate_dim=8,
        max_sequence_length=6,
    )
    source = transformer.TransformerBackbone(**config)
    target = transformer.TransformerBackbone(adapter_dim=2, **config)
    with pytest.raises(WeightTransferError, match="block_0/attention_adapter"):
        transfer_weights(source, target)
    report = transfer_weights(source, target, allow_missing=("*adapter*",))
    assert len(report.moved) == len(variable_map(source)) and report.unused == []
    assert "block_1/attention/qkv/kernel" in [m.target_key for m in report.moved]
    assert all("adapter" in key for key, _, _ in report.untouched)
