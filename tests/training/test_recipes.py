import dataclasses

import keras
import numpy as np
import pytest

from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.training import batches, semi_supervised
from ptft_keras.training.metrics import accuracy
from ptft_keras.training.recipes import image as recipes


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _toy(n_per_class=4, seed=0):
    """Three 'digit' classes: a bright square in different corners, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((3 * n_per_class, 28, 28, 1)).astype("float32") * 0.1
    y = np.repeat(np.arange(3), n_per_class)
    for i, c in enumerate(y):
        r, col = [(4, 4), (4, 16), (16, 10)][c]
        x[i, r : r + 8, col : col + 8] = 1.0
    return x, y


class PhaseRecorder(keras.callbacks.Callback):
    def __init__(self, phases, phase):
        super().__init__()
        self.phases, self.phase = phases, phase

    def on_train_begin(self, logs=None):
        self.phases.append(self.phase)


def test_shifted_batches_shift_whole_images():
    x = np.zeros((5, 28, 28, 1), "float32")
    x[:, 10:18, 10:18] = 1.0  # centred square: a 2-pixel shift keeps it whole
    data = batches.ShiftedBatches(x, np.arange(5), batch_size=4, max_shift=2, steps=7)
    assert len(data) == 7
    shifted = set()
    for i in range(7):
        images, labels = data[i]
        assert images.shape == (4, 28, 28, 1) and labels.shape == (4,)
        np.testing.assert_allclose(images.sum(axis=(1, 2, 3)), 64.0)
        rows = np.flatnonzero(images[0, :, :, 0].sum(axis=1))
        shifted.add(int(rows[0]))
    assert shifted <= set(range(8, 13)) and len(shifted) > 1
    # The uncovered border repeats the edge: a colour background stays that colour.
    plain = np.broadcast_to(np.array([0.2, 0.6, 0.9], "float32"), (3, 16, 16, 3)).copy()
    images, _ = batches.ShiftedBatches(plain, np.arange(3), 3, max_shift=3, steps=1)[0]
    np.testing.assert_allclose(images, np.broadcast_to(plain[0], images.shape))


def test_pretrain_autoencoder_lowers_reconstruction_loss():
    keras.utils.set_random_seed(0)
    x, _ = _toy(8)
    ae = build_conv_autoencoder(filters=(4, 8), latent_dim=8)
    history = recipes.pretrain_autoencoder(ae, x, epochs=6, batch_size=8, learning_rate=3e-3)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_finetune_probe_keeps_encoder_then_finetune_changes_it():
    keras.utils.set_random_seed(0)
    x, y = _toy()
    clf = Classifier(build_conv_autoencoder(filters=(4, 8), latent_dim=8).encoder, 3)
    encoder_before = [_np(w).copy() for w in clf.encoder.weights]
    phases = []
    histories = recipes.finetune_classifier(
        clf,
        x,
        y,
        probe_steps=6,
        finetune_steps=0,
        batch_size=4,
        steps_per_epoch=3,
        callbacks=lambda phase: [PhaseRecorder(phases, phase)],
    )
    assert list(histories) == ["probe"] and phases == ["probe"]
    assert len(histories["probe"].history["loss"]) == 2  # 6 steps = 2 "epochs" of 3
    for before, w in zip(encoder_before, clf.encoder.weights, strict=True):
        np.testing.assert_array_equal(before, _np(w))  # frozen while probing
    assert clf.encoder.trainable  # restored
    recipes.finetune_classifier(clf, x, y, imprint=False, probe_steps=0, finetune_steps=3)
    assert any(
        not np.allclose(b, _np(w)) for b, w in zip(encoder_before, clf.encoder.weights, strict=True)
    )


def test_imprinted_classifier_separates_toy_classes():
    keras.utils.set_random_seed(0)
    x, y = _toy()
    clf = Classifier(build_conv_autoencoder(filters=(4, 8)).encoder, 3)
    recipes.finetune_classifier(clf, x, y, probe_steps=0, finetune_steps=0)
    assert (np.argmax(_np(clf(x)), axis=1) == y).mean() == 1.0


def test_pseudo_label_threshold_and_per_class_cap():
    features = keras.Input((3,))
    model = keras.Model(features, features)  # logits = the inputs themselves
    logits = np.array([[9, 0, 0], [5, 0, 0], [0, 9, 0], [1, 1, 1], [0, 0, 2]], "float32")
    keep, labels = semi_supervised.pseudo_label(model, logits, threshold=0.9)
    np.testing.assert_array_equal(keep, [0, 1, 2])  # softmax([2,0,0]) ~ 0.79 < 0.9
    np.testing.assert_array_equal(labels, [0, 0, 1])
    keep, labels = semi_supervised.pseudo_label(model, logits, threshold=0.5, per_class=1)
    np.testing.assert_array_equal(keep, [0, 2, 4])  # most confident of each class
    np.testing.assert_array_equal(labels, [0, 1, 2])


def test_self_train_uses_confident_unlabeled_images():
    keras.utils.set_random_seed(0)
    x, y = _toy()
    unlabeled, _ = _toy(6, seed=1)
    clf = Classifier(build_conv_autoencoder(filters=(4, 8)).encoder, 3)
    recipes.finetune_classifier(clf, x, y, probe_steps=10, finetune_steps=0, batch_size=4)
    phases = []
    log = semi_supervised.self_train(
        clf,
        x,
        y,
        unlabeled,
        rounds=2,
        threshold=0.5,
        steps=2,
        batch_size=4,
        callbacks=lambda phase: [PhaseRecorder(phases, phase)],
    )
    assert [entry["round"] for entry in log] == [1, 2] and phases == [
        "self_train_1",
        "self_train_2",
    ]
    assert all(0 < entry["pseudo_labels"] <= len(unlabeled) for entry in log)


def test_self_train_needs_matching_labels():
    x, y = _toy()
    clf = Classifier(build_conv_autoencoder(filters=(4, 8)).encoder, 3)
    with pytest.raises(ValueError, match="labels"):
        semi_supervised.self_train(clf, x, y[:-1], x, rounds=1, steps=1)


def test_fixmatch_stage_runs_after_fine_tuning_on_grey_images():
    keras.utils.set_random_seed(0)
    x, y = _toy()
    unlabeled, _ = _toy(6, seed=1)
    clf = Classifier(build_conv_autoencoder(filters=(4, 8)).encoder, 3)
    recipe = dataclasses.replace(
        recipes.ImageRecipe(), probe_steps=4, finetune_steps=4, fixmatch_steps=6,
        fixmatch_mu=2, batch_size=4, steps_per_epoch=3,
    )  # fmt: skip
    phases, stages = [], []
    recipes.fit_few_labels(
        clf, x[..., 0], y, unlabeled[..., 0], recipe,  # (N, 28, 28): no channel axis
        callbacks=lambda phase: [PhaseRecorder(phases, phase)],
        on_stage=lambda name, model: stages.append(name),
    )  # fmt: skip
    assert phases == ["probe", "finetune", "fixmatch"]
    assert stages == ["frozen encoder", "fine-tune", "+ FixMatch"]
    # Held out: 30 new images (another noise draw). Measured 1.0 after every stage for
    # seeds 0 / 1 / 2; chance is 1/3, and a FixMatch stage that collapses the classifier
    # onto one class (a wrong pseudo-label sign, a diverging rate) scores 0.33.
    held_x, held_y = _toy(10, seed=2)
    assert accuracy(clf, held_x[..., 0], held_y) >= 0.9


def test_rgb_images_get_input_normalization_and_colour_views_by_default():
    from ptft_keras.specs import ImageSpec

    rgb = recipes.build_autoencoder(ImageSpec(16, 16, 3), recipes.ImageRecipe())
    assert rgb.encoder.layers[1].name == "input_norm"
    assert any("color_jitter" in layer.name for layer in rgb.augmentation.layers)
    grey = recipes.build_autoencoder(ImageSpec(16, 16, 1), recipes.ImageRecipe())
    assert "input_norm" not in [layer.name for layer in grey.encoder.layers]
    assert not any("color" in layer.name for layer in grey.augmentation.layers)
    off = recipes.ImageRecipe(colour_augmentation=0.0, input_normalization=False)
    plain = recipes.build_autoencoder(ImageSpec(16, 16, 3), off)
    assert "input_norm" not in [layer.name for layer in plain.encoder.layers]
    assert len(plain.augmentation.layers) == 3  # rotation, zoom, shift
    # The opt-in colour-invariant input: no colour views, no per-channel standardisation.
    distance = recipes.build_autoencoder(
        ImageSpec(16, 16, 3), recipes.ImageRecipe(background_distance=True)
    )
    names = [layer.name for layer in distance.encoder.layers]
    assert names[1] == "representation" and "input_norm" not in names
    assert len(distance.augmentation.layers) == 3
    assert distance.decoder.output_shape == (None, 16, 16, 1)  # it reconstructs the map


def test_reconstruction_grid_shows_what_the_autoencoder_reconstructs(tmp_path):
    import matplotlib.image

    from ptft_keras.specs import ImageSpec
    from ptft_keras.training.plots import reconstruction_grid

    images = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    heights = {}
    for on in (False, True):
        recipe = recipes.ImageRecipe(background_distance=on)
        ae = recipes.build_autoencoder(ImageSpec(16, 16, 3), recipe)
        path = reconstruction_grid(ae, images, str(tmp_path / f"{on}.png"))
        heights[on] = matplotlib.image.imread(path).shape[0]
    # input, noised, 2 reconstructions; + the map row (figure height: rows + 0.5 in)
    assert heights[True] - heights[False] == 80 and heights[False] == int(4.5 * 80)


def test_background_distance_defaults_on_for_colour_shapes_on_plain_backgrounds():
    from ptft_keras.data.datasets.mnist import colour_digits, load_mnist
    from ptft_keras.specs import ImageSpec

    digits = load_mnist("bundled")[0][:200]
    colour, rgb = colour_digits(digits, 32, seed=0), ImageSpec(32, 32, 3)
    recipe, reason = recipes.ImageRecipe().for_data(colour, rgb)
    assert recipe.background_distance is True and "100% of sampled images" in reason
    noise = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3)).astype("uint8")
    recipe, reason = recipes.ImageRecipe().for_data(noise, rgb)  # photo-like: no one colour
    assert recipe.background_distance is False and "0% of sampled" in reason
    grey, _ = recipes.ImageRecipe().for_data(digits, ImageSpec(28, 28, 1))
    assert grey.background_distance is False  # grey images keep the model they had
    kept, reason = recipes.ImageRecipe(background_distance=False).for_data(colour, rgb)
    assert kept.background_distance is False and reason.endswith("(set)")


def test_optional_recipe_fields_parse_as_their_annotated_type():
    import argparse

    from ptft_keras.training.recipes.arguments import add_recipe_arguments, recipe_from_args

    parser = add_recipe_arguments(argparse.ArgumentParser(), recipes.ImageRecipe())
    args = parser.parse_args(["--colour-augmentation", "0.5", "--no-input-normalization"])
    recipe = recipe_from_args(recipes.ImageRecipe, args)
    assert recipe.colour_augmentation == 0.5 and recipe.input_normalization is False
    assert recipe_from_args(recipes.ImageRecipe, parser.parse_args([])).colour_augmentation is None
