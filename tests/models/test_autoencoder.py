import keras
import numpy as np
import pytest

from ptft_keras.layers.noise import MaskingNoise
from ptft_keras.models.autoencoder import (
    Autoencoder,
    build_conv_autoencoder,
    build_dense_autoencoder,
    default_filters,
)
from ptft_keras.models.images import prepare_images
from ptft_keras.specs import ImageSpec
from tests.harness import run_model_test


def _images(n=16, channel=False, seed=0):
    x = np.random.default_rng(seed).random((n, 28, 28)).astype("float32")
    return x[..., None] if channel else x


def test_classic_dense_autoencoder_is_784_32_784():
    ae = build_dense_autoencoder()
    assert ae.encoder.name == "encoder"
    assert [layer.name for layer in ae.encoder.layers] == ["images", "flatten", "latent"]
    assert ae.encoder.get_layer("latent").kernel.shape == (784, 32)
    assert ae.decoder.get_layer("pixels").kernel.shape == (32, 784)
    assert ae.count_params() == 784 * 32 + 32 + 32 * 784 + 784
    assert ae(_images(3)).shape == (3, 28, 28)


def test_conv_autoencoder_shapes_and_names():
    ae = build_conv_autoencoder(filters=(4, 8))
    assert ae.encoder.output_shape == (None, 7, 7, 8)
    names = [layer.name for layer in ae.encoder.layers]
    assert names == ["images", "conv_1a", "conv_1b", "conv_2a", "conv_2b"]
    assert ae(_images(2, channel=True)).shape == (2, 28, 28, 1)
    # (batch, 28, 28) is accepted too and reshaped to the encoder's (28, 28, 1).
    assert ae(_images(2)).shape == (2, 28, 28, 1)
    vector = build_conv_autoencoder(filters=(4, 8), latent_dim=6)
    assert vector.encoder.output_shape == (None, 6)


def test_wrong_image_shape_raises_clear_value_error():
    ae = build_conv_autoencoder(filters=(4, 8))
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch, 28, 28, 1\).*got"):
        ae(np.zeros((2, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="got shape"):
        prepare_images(np.zeros((2, 28, 28, 3), "float32"), (28, 28, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise": "salt"}, "noise"),
        ({"noise": "masking", "noise_rate": 0.0}, "noise_rate"),
        ({"reconstruction_loss": "l1"}, "reconstruction_loss"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    ae = build_dense_autoencoder(latent_dim=4)
    with pytest.raises(ValueError, match=match):
        Autoencoder(ae.encoder, ae.decoder, **kwargs)


def test_masking_noise_only_in_training():
    layer = MaskingNoise(0.5, seed=1)
    x = np.ones((4, 28, 28), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    noisy = keras.ops.convert_to_numpy(layer(x, training=True))
    assert set(np.unique(noisy)) == {0.0, 1.0}  # zeroed, not rescaled like Dropout
    assert 0.4 < (noisy == 0).mean() < 0.6

    ae = build_conv_autoencoder(filters=(4, 8), noise="masking", noise_rate=0.5, seed=0)
    x = _images(4, channel=True)
    clean = keras.ops.convert_to_numpy(ae.decoder(ae.encoder(x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ae(x)), clean, atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(ae(x, training=True)), clean, atol=1e-4)


def test_fit_without_labels_reconstructs_the_input():
    keras.utils.set_random_seed(0)
    ae = build_dense_autoencoder(latent_dim=8, noise="gaussian", noise_rate=0.1)
    ae.compile(optimizer=keras.optimizers.Adam(1e-2))  # default loss: binary_crossentropy
    x = np.tile((_images(4) > 0.5).astype("float32"), (16, 1, 1))  # 4 binary images
    history = ae.fit(x, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    # The target is the clean input: evaluate() equals BCE(x, ae(x)) (noise is off).
    expected = keras.losses.binary_crossentropy(x, ae.predict(x, verbose=0))
    expected = float(np.mean(keras.ops.convert_to_numpy(expected)))
    np.testing.assert_allclose(ae.evaluate(x, verbose=0), expected, rtol=1e-3)
    mse_ae = build_dense_autoencoder(latent_dim=4, reconstruction_loss="mse")
    mse_ae.compile()
    expected = float(np.mean((mse_ae.predict(x, verbose=0) - x) ** 2))
    np.testing.assert_allclose(mse_ae.evaluate(x, verbose=0), expected, rtol=1e-3)


def test_background_distance_autoencoder_corrupts_and_reconstructs_the_map(tmp_path):
    build = lambda: build_conv_autoencoder(
        input_shape=(16, 16, 3), filters=(4, 8), latent_dim=6, contrastive_weight=1.0,
        background_distance=True, seed=1,
    )  # fmt: skip
    x = np.random.default_rng(2).random((4, 16, 16, 3)).astype("float32")
    ae = run_model_test(build, x, tmp_path, loss="binary_crossentropy")
    assert len(ae.weights) == len(build().weights)  # the encoder's body is not tracked twice
    distance = keras.ops.convert_to_numpy(ae.encoder.get_layer("representation")(x))
    assert distance.shape == (4, 16, 16, 1)
    # The target is the map of the clean images: evaluate() equals BCE(map, ae(x)).
    expected = keras.losses.binary_crossentropy(distance, ae.predict(x, verbose=0))
    expected = float(np.mean(keras.ops.convert_to_numpy(expected)))
    ae.compile()
    np.testing.assert_allclose(ae.evaluate(x, verbose=0), expected, rtol=1e-3)
    # The colours do not reach the encoder: inverted colours give the same features.
    features = lambda images: keras.ops.convert_to_numpy(ae.encoder(images))
    np.testing.assert_allclose(features(1.0 - x), features(x), atol=1e-5)
    with pytest.raises(ValueError, match="one of background_distance and input_normalization"):
        build_conv_autoencoder(background_distance=True, input_normalization=True)


@pytest.mark.parametrize("builder", ["dense", "conv", "conv_rgb_standard"])
def test_harness(tmp_path, builder):
    if builder == "dense":
        build = lambda: build_dense_autoencoder(
            hidden_units=(16,), latent_dim=4, noise="gaussian", noise_rate=0.2
        )
        x = _images(3)
    elif builder == "conv":
        build = lambda: build_conv_autoencoder(
            filters=(4, 8), latent_dim=6, noise="masking", noise_rate=0.3
        )
        x = _images(3, channel=True)
    else:
        spec = ImageSpec(13, 10, 3, "standard", mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0))
        build = lambda: build_conv_autoencoder(filters=(4, 8), latent_dim=6, image_spec=spec)
        x = np.random.default_rng(0).normal(size=(3, 13, 10, 3)).astype("float32")
    ae = run_model_test(build, x, tmp_path, loss="mse")
    assert ae.encoder.name == "encoder"


def test_conv_autoencoder_any_size_and_channels():
    """Sizes not divisible by the stride are padded and cropped back; the scaling picks the
    decoder's output and the default loss."""
    spec = ImageSpec(30, 27, 3, "standard", mean=(0.5,) * 3, std=(0.25,) * 3)
    ae = build_conv_autoencoder(filters=(4, 8), image_spec=spec)
    assert [layer.name for layer in ae.encoder.layers][:2] == ["images", "pad"]
    assert ae.encoder.get_layer("pad").padding == ((0, 2), (0, 1))  # 30 -> 32, 27 -> 28
    assert ae.encoder.output_shape == (None, 8, 7, 8)
    assert ae.decoder.get_layer("crop").output.shape[1:] == (30, 27, 3)
    assert ae.decoder.get_layer("pixels").activation.__name__ == "linear"
    assert ae.reconstruction_loss == "mse" and ae.image_spec == spec
    x = np.random.default_rng(0).normal(size=(2, 30, 27, 3)).astype("float32")
    assert ae(x).shape == (2, 30, 27, 3)
    unit = build_conv_autoencoder(input_shape=(28, 28, 1), filters=(4, 8))
    assert "pad" not in [layer.name for layer in unit.encoder.layers]  # 28 divides by 4
    assert unit.decoder.get_layer("pixels").activation.__name__ == "sigmoid"
    assert unit.reconstruction_loss == "binary_crossentropy"
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch, 30, 27, 3\), got"):
        ae(np.zeros((2, 30, 27, 1), "float32"))  # a grey image for an RGB model
    with pytest.raises(ValueError, match="height and width >= 8"):
        build_conv_autoencoder(input_shape=(6, 6, 1))


@pytest.mark.parametrize(
    "side, filters",
    [(28, (32, 64)), (32, (32, 64)), (64, (32, 64, 128)), (224, (32, 64, 128, 256, 256))],
)
def test_default_filters_end_near_eight_pixels(side, filters):
    assert default_filters(side, side) == filters
