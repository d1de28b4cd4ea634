import os

import keras
import numpy as np
import pytest
from keras import ops

from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.contrastive import image_augmentation, nt_xent_loss
from tests.harness import run_model_test


def _images(n=16, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype("float32")


def test_nt_xent_matches_a_numpy_reference():
    z = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")  # 3 pairs
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = zn @ zn.T / 0.5
    np.fill_diagonal(logits, -np.inf)
    partners = np.array([3, 4, 5, 0, 1, 2])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(6), partners].mean()
    got = float(ops.convert_to_numpy(nt_xent_loss(z, temperature=0.5)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_nt_xent_is_low_when_views_agree_and_high_when_they_do_not():
    anchors = np.eye(8, dtype="float32")  # 8 orthogonal images
    loss = lambda z: float(ops.convert_to_numpy(nt_xent_loss(z, temperature=0.05)))
    agree = loss(np.concatenate([anchors, anchors]))  # log(1 + 14 e^-20)
    disagree = loss(np.concatenate([anchors, np.roll(anchors, 1, axis=0)]))  # ~20
    assert agree < 1e-6 and disagree > 15.0


def test_nt_xent_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(np.ones((4, 3), "float32"), temperature=0.0)


def test_image_augmentation_is_random_per_image_and_off_at_inference():
    x = np.repeat(_images(1), 4, axis=0)  # the same image four times
    augment = image_augmentation(seed=0)
    out = ops.convert_to_numpy(augment(x, training=True))
    assert out.shape == x.shape
    assert not np.allclose(out[0], out[1])  # per image, not one transform per batch
    np.testing.assert_array_equal(ops.convert_to_numpy(augment(x, training=False)), x)


def test_contrastive_autoencoder_adds_its_loss_only_in_training():
    ae = build_conv_autoencoder(filters=(4, 8), latent_dim=6, contrastive_weight=0.5, seed=0)
    ae(_images(4), training=False)
    assert not ae.losses
    ae(_images(4), training=True)
    assert len(ae.losses) == 1 and float(ops.convert_to_numpy(ae.losses[0])) > 0


def test_contrastive_autoencoder_needs_a_flat_code():
    with pytest.raises(ValueError, match="flat"):
        build_conv_autoencoder(filters=(4, 8), contrastive_weight=1.0)
    with pytest.raises(ValueError, match="contrastive_weight"):
        build_conv_autoencoder(filters=(4, 8), latent_dim=6, contrastive_weight=-1.0)


def test_contrastive_fit_trains_the_projector_and_draws_new_views_each_step():
    keras.utils.set_random_seed(0)
    ae = build_conv_autoencoder(filters=(4, 8), latent_dim=6, contrastive_weight=1.0, seed=0)
    projector_before = [ops.convert_to_numpy(w).copy() for w in ae.projector.weights]
    seeds_before = [ops.convert_to_numpy(v).copy() for v in ae.augmentation.non_trainable_variables]
    ae.compile(optimizer="adam")
    history = ae.fit(_images(32), epochs=3, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert any(
        not np.allclose(a, ops.convert_to_numpy(b))
        for a, b in zip(projector_before, ae.projector.weights, strict=True)
    )
    # The augmentation's seed state must advance inside fit (on JAX too), or every step
    # would see the same two views.
    assert seeds_before and any(
        not np.array_equal(a, ops.convert_to_numpy(b))
        for a, b in zip(seeds_before, ae.augmentation.non_trainable_variables, strict=True)
    )


def test_harness(tmp_path):
    build = lambda: build_conv_autoencoder(
        filters=(4, 8), latent_dim=6, contrastive_weight=0.7, seed=3
    )
    ae = run_model_test(build, _images(4), tmp_path, loss="binary_crossentropy")
    loaded = keras.models.load_model(os.path.join(tmp_path, f"{ae.name}.keras"))
    assert loaded.contrastive_weight == 0.7 and loaded.temperature == ae.temperature
    for a, b in zip(loaded.projector.weights, ae.projector.weights, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


def test_colour_augmentation_changes_colour_per_view_and_stays_in_range():
    rng = np.random.default_rng(0)
    x = np.repeat(rng.random((1, 16, 16, 3)).astype("float32"), 8, axis=0)
    out = ops.convert_to_numpy(
        image_augmentation(0.0, 0.0, 0.0, colour=1.0, seed=0)(x, training=True)
    )
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    means = out.mean(axis=(1, 2))  # (8, 3): each view's average colour
    assert np.ptp(means, axis=0).max() > 0.2  # the views differ in colour
    still = ops.convert_to_numpy(image_augmentation(0.0, 0.0, 0.0, seed=0)(x, training=True))
    np.testing.assert_allclose(still, x, atol=1e-6)  # colour=0: no colour change
    with pytest.raises(ValueError, match=r"`colour` must be in \[0, 1\], got 1.5"):
        image_augmentation(colour=1.5)


def test_rgb_autoencoder_with_colour_views_and_input_normalization_round_trips(tmp_path):
    build = lambda: build_conv_autoencoder(
        input_shape=(16, 16, 3),
        filters=(4, 8),
        latent_dim=6,
        contrastive_weight=1.0,
        colour_augmentation=0.5,
        input_normalization=True,
        seed=3,
    )
    x = np.random.default_rng(1).random((4, 16, 16, 3)).astype("float32")
    ae = run_model_test(build, x, tmp_path, loss="binary_crossentropy")
    assert ae.encoder.layers[1].name == "input_norm"
    loaded = keras.models.load_model(os.path.join(tmp_path, f"{ae.name}.keras"))
    names = [layer.name for layer in loaded.augmentation.layers]
    assert "random_color_jitter" in names[3] and len(names) == 6
    # the encoder sees each image standardised: its overall colour does not reach it
    shifted = np.clip(0.5 * x + 0.25, 0, 1)  # the same pattern, another colour and contrast
    normalized = lambda images: ops.convert_to_numpy(ae.encoder.get_layer("input_norm")(images))
    np.testing.assert_allclose(normalized(shifted), normalized(x), atol=0.05)  # eps 1e-3
    assert np.abs(normalized(x)).max() > 1.0  # standardised, not [0, 1]


def test_colour_augmentation_needs_rgb_in_unit_range():
    with pytest.raises(
        ValueError, match=r"colour_augmentation=1.0 needs RGB images .* \(28, 28, 1\)"
    ):
        build_conv_autoencoder(latent_dim=4, contrastive_weight=1.0, colour_augmentation=1.0)
