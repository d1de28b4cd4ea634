"""Image data: folders (labeled, unlabeled), specs, resizing policy, corrupt files, arrays."""

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data import images as image_data  # noqa: E402
from ptft_keras.specs import ImageSpec  # noqa: E402

pytestmark = pytest.mark.tf_only


def _save(path, array):
    """Write uint8 `(H, W[, C])` with the encoder its extension names."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    from PIL import Image

    array = np.asarray(array, np.uint8)
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(path)
    return path


@pytest.fixture
def mixed_folder(tmp_path):
    """3 classes; PNG, JPEG, BMP and GIF; grey and colour; mostly 12x10, one 20x20."""
    rng = np.random.default_rng(0)
    root = tmp_path / "labeled"
    _save(root / "ant" / "a.png", rng.integers(0, 256, (12, 10, 3)))
    _save(root / "ant" / "b.jpg", rng.integers(0, 256, (12, 10, 3)))
    _save(root / "bee" / "c.bmp", np.full((12, 10), 200))  # grey
    _save(root / "bee" / "nested" / "d.png", rng.integers(0, 256, (20, 20, 3)))  # other size
    _save(root / "cat" / "e.gif", rng.integers(0, 256, (12, 10)))
    (root / "cat" / "notes.txt").write_text("not an image")  # ignored
    return root


def test_labeled_folder_scan_spec_and_stream(mixed_folder):
    folder = image_data.scan_image_folder(mixed_folder)
    assert folder.labeled and folder.label_map.names == ["ant", "bee", "cat"]
    assert [os.path.basename(f) for f in folder.files] == [
        "a.png",
        "b.jpg",
        "c.bmp",
        "d.png",
        "e.gif",
    ]
    assert folder.labels.tolist() == [0, 0, 1, 1, 2]
    spec = image_data.infer_image_spec(folder)
    assert spec == ImageSpec(12, 10, 3)  # the most common size; colour present -> RGB
    x, y = image_data.load_images(folder, spec)
    assert x.shape == (5, 12, 10, 3) and x.dtype == np.float32 and y.tolist() == [0, 0, 1, 1, 2]
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x[2], 200 / 255, atol=1e-6)  # grey repeated into R, G and B
    # The PNG comes back exactly (lossless), scaled by 1/255.
    from PIL import Image

    np.testing.assert_allclose(x[0], np.asarray(Image.open(folder.files[0])) / 255, atol=1e-6)
    grey = image_data.load_images(folder, ImageSpec(12, 10, 1))[0]
    assert grey.shape == (5, 12, 10, 1)
    np.testing.assert_allclose(grey[2], 200 / 255, atol=1 / 255)
    batches = list(image_data.image_dataset(folder, spec, batch_size=2, shuffle=True, seed=0))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]


def test_mixed_sizes_resize_in_training_and_error_for_a_trained_model(mixed_folder):
    folder = image_data.scan_image_folder(mixed_folder)
    spec = ImageSpec(12, 10, 3)
    x, _ = image_data.load_images(folder, spec, on_mismatch="resize")
    assert x.shape[1:] == (12, 10, 3)  # the 20x20 image was resized (aspect not kept)
    with pytest.raises(ValueError, match=r"c.bmp' is 12x10x1; the model expects 12x10x3 images"):
        image_data.load_images(folder, spec, on_mismatch="error")  # grey for an RGB model
    bees = image_data.scan_image_folder(mixed_folder / "bee" / "nested")
    with pytest.raises(ValueError, match=r"d.png' is 20x20x3; the model expects 12x10x3"):
        image_data.check_against_spec(bees, spec)


def test_unlabeled_folder_is_searched_recursively(tmp_path):
    for i, sub in enumerate(["", "x", "x/y"]):
        _save(tmp_path / "pool" / sub / f"{i}.png", np.full((9, 9), i * 50))
    folder = image_data.scan_image_folder(tmp_path / "pool")
    assert not folder.labeled and len(folder) == 3
    x, y = image_data.load_images(folder, image_data.infer_image_spec(folder))
    assert x.shape == (3, 9, 9, 1) and y is None


def test_corrupt_files_are_named_or_skipped_and_counted(tmp_path):
    root = tmp_path / "labeled"
    for c in ("a", "b"):
        _save(root / c / "good.png", np.zeros((8, 8)))
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ValueError, match=r"Cannot read image '.*broken.png'.*--skip-corrupt"):
        image_data.scan_image_folder(root)
    logged = []
    folder = image_data.scan_image_folder(root, skip_corrupt=True, log=logged.append)
    assert len(folder) == 2 and [p for p, _ in folder.skipped] == [str(root / "b" / "broken.png")]
    assert "skipped 1 unreadable image(s)" in logged[0]
    assert image_data.load_images(folder, ImageSpec(8, 8, 1))[0].shape == (2, 8, 8, 1)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        image_data.scan_image_folder(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="file.png"):
        image_data.scan_image_folder(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images found"):
        image_data.scan_image_folder(tmp_path / "empty")
    _save(tmp_path / "one" / "only" / "a.png", np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"1 class sub-folder\(s\) with images \(\['only'\]\)"):
        image_data.scan_image_folder(tmp_path / "one", labeled=True)
    _save(tmp_path / "tiny" / "a.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least 8x8"):
        image_data.scan_image_folder(tmp_path / "tiny")
    _save(tmp_path / "mixed" / "a.png", np.zeros((8, 8)))
    _save(tmp_path / "mixed" / "c" / "b.png", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="beside class sub-folders"):
        image_data.scan_image_folder(tmp_path / "mixed", labeled=True)


def test_arrays_and_specs():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    x = image_data.images_from_arrays(digits)
    assert x.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], digits / 255, atol=1e-7)
    np.testing.assert_allclose(image_data.images_from_arrays(digits / 255.0), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"Float images must be in \[0, 1\]"):
        image_data.images_from_arrays(digits.astype("float32"))
    with pytest.raises(ValueError, match="do not match the spec 32x32x1"):
        image_data.images_from_arrays(digits, ImageSpec(32, 32, 1))
    colour = rng.integers(0, 256, (50, 16, 16, 3)).astype(np.uint8)
    spec = image_data.infer_image_spec(colour, scaling="standard")
    assert spec.scaling == "standard" and len(spec.mean) == 3
    standardised = image_data.images_from_arrays(colour, spec)
    np.testing.assert_allclose(standardised.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(standardised.std(axis=(0, 1, 2)), 1, atol=1e-3)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        ImageSpec(8, 8, 2)
    with pytest.raises(ValueError, match="height must be an int >= 8"):
        ImageSpec(4, 8, 1)
    assert ImageSpec.from_config(spec.to_config()) == spec


def test_tfds_images_through_a_mock(monkeypatch):
    import tensorflow_datasets as tfds

    class Info:
        features = {"label": type("L", (), {"names": ["airplane", "cat"]})()}

    def fake_load(name, split, data_dir, with_info, as_supervised, batch_size):
        assert (name, split, with_info, as_supervised, batch_size) == ("cifar10", "test", 1, 1, -1)
        images = tf.zeros((3, 32, 32, 3), tf.uint8)
        return (images, tf.constant([0, 1, 1])), Info()

    monkeypatch.setattr(tfds, "load", fake_load)
    images, labels, label_map = image_data.load_tfds_images("cifar10", "test")
    assert images.shape == (3, 32, 32, 3) and labels.tolist() == [0, 1, 1]
    assert label_map.names == ["airplane", "cat"]
