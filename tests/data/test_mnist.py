"""load_mnist: bundled / IDX sources on real data, tfds / keras sources mocked (no network)."""

import gzip
import os
import struct
import sys
import types

import keras
import numpy as np
import pytest

from ptft_keras.data.datasets import mnist
from ptft_keras.data.datasets.mnist import load_mnist


def write_idx(path, array, magic=None):
    """Write `array` (uint8) as an IDX file; gzip it when `path` ends with .gz."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    data = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    data += array.tobytes()
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


def fake_digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


def test_bundled_is_the_real_8k_sample(shared_data_dir):
    images, labels = load_mnist("bundled")
    assert images.shape == (8000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (8000,) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=10)
    assert counts.min() == 723 and counts.max() == 905  # as the data README says
    # The shipped copy is byte-for-byte the shared data.
    shared_images, shared_labels = load_mnist("idx", os.path.join(shared_data_dir, "mnist"))
    np.testing.assert_array_equal(images, shared_images)
    np.testing.assert_array_equal(labels, shared_labels)


def test_bundled_ships_provenance_readme():
    readme = os.path.join(os.path.dirname(mnist.BUNDLED_DIR), "README.md")
    text = open(readme).read()
    assert "CC BY-SA 3.0" in text and "LeCun" in text and "t10k" in text


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("stem", ["train-{}-idx{}-ubyte", "train-{}.idx{}-ubyte"])
def test_idx_standard_names_gzip_and_raw(tmp_path, gz, stem):
    images, labels = fake_digits(12)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / (stem.format("images", 3) + ext), images)
    write_idx(tmp_path / (stem.format("labels", 1) + ext), labels)
    got_images, got_labels = load_mnist("idx", str(tmp_path))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_several_pairs_need_a_split(tmp_path):
    for prefix, n in (("train", 10), ("t10k", 4)):
        images, labels = fake_digits(n, seed=n)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError, match="pass split="):
        load_mnist("idx", str(tmp_path))
    assert len(load_mnist("idx", str(tmp_path), split="train")[0]) == 10
    assert len(load_mnist("idx", str(tmp_path), split="test")[0]) == 4


def test_idx_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mnist("idx", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no.*MNIST IDX file pairs"):
        load_mnist("idx", str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", fake_digits(3)[0])
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist("idx", str(tmp_path))
    with pytest.raises(ValueError, match="needs data_dir"):
        load_mnist("idx")


def _pair(tmp_path, images, labels, images_magic=None):
    write_idx(tmp_path / "train-images-idx3-ubyte", images, magic=images_magic)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return str(tmp_path)


def test_idx_corrupt_files_raise_value_errors_naming_the_file(tmp_path):
    images, labels = fake_digits(5)
    # Images and labels swapped: magic numbers 2049 vs 2051.
    write_idx(tmp_path / "train-images-idx3-ubyte", labels)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic number 2049.*2051"):
        load_mnist("idx", str(tmp_path))
    # Wrong image size.
    with pytest.raises(ValueError, match="expected 28x28"):
        load_mnist("idx", _pair(tmp_path, np.zeros((5, 27, 28)), labels))
    # Count mismatch between images and labels.
    with pytest.raises(ValueError, match="5 images.*4 labels"):
        load_mnist("idx", _pair(tmp_path, images, labels[:4]))
    # Truncated data.
    path = _pair(tmp_path, images, labels)
    with open(tmp_path / "train-images-idx3-ubyte", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match="data bytes; expected 3920"):
        load_mnist("idx", path)
    # A .gz that is not gzip.
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"Cannot read IDX file.*train-images-idx3-ubyte.gz"):
        load_mnist("idx", path)
    # Labels out of range.
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        load_mnist("idx", _pair(tmp_path, images, labels + 7))


def test_unknown_source_and_split():
    with pytest.raises(ValueError, match="Unknown MNIST source 'mnist'"):
        load_mnist("mnist")
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        load_mnist("keras", split="validation")
    with pytest.raises(ValueError, match="no splits"):
        load_mnist("bundled", split="train")


def test_tfds_source_mocked(monkeypatch, tmp_path):
    calls = {}

    def fake_load(name, **kwargs):
        calls.update(kwargs, name=name)
        n = 6 if kwargs["split"] == "train" else 9
        images, labels = fake_digits(n)
        return images[..., None], labels  # tfds gives (N, 28, 28, 1)

    fake = types.SimpleNamespace(load=fake_load, as_numpy=lambda tree: tree)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    images, labels = load_mnist("tfds", data_dir=str(tmp_path))
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8 and labels.shape == (6,)
    assert calls == dict(
        name="mnist", split="train", batch_size=-1, as_supervised=True, data_dir=str(tmp_path)
    )
    assert load_mnist("tfds", split="all")[0].shape == (9, 28, 28)
    assert calls["split"] == "train+test"


def test_keras_source_mocked(monkeypatch, tmp_path):
    paths = []

    def fake_load_data(path="mnist.npz"):
        paths.append(path)
        return fake_digits(6, seed=1), fake_digits(4, seed=2)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    train_images, _ = load_mnist("keras", data_dir=str(tmp_path))
    assert paths == [os.path.join(str(tmp_path), "mnist.npz")]
    images, labels = load_mnist("keras", split="all")
    assert paths[-1] == "mnist.npz"  # keras's own cache, ~/.keras/datasets
    assert images.shape == (10, 28, 28) and labels.shape == (10,)
    np.testing.assert_array_equal(images[:6], train_images)
    np.testing.assert_array_equal(images[6:], fake_digits(4, seed=2)[0])


def test_colour_digits_keep_the_digit_in_random_readable_colours():
    digits = np.zeros((50, 28, 28), np.uint8)
    digits[:, 10:18, 12:16] = 255  # a bar: the "ink"
    a = mnist.colour_digits(digits, size=32, seed=1)
    np.testing.assert_array_equal(a, mnist.colour_digits(digits, size=32, seed=1))
    assert a.shape == (50, 32, 32, 3) and a.dtype == np.uint8
    ink = a.reshape(50, -1, 3)[np.arange(50), a.reshape(50, -1, 3).sum(-1).argmax(1)]
    background = a[:, 0, 0, :].astype(float)  # the corner: never ink
    assert len({tuple(c) for c in background}) > 40  # a colour per image
    # the bar's 32 ink pixels stand out from the background in every image
    differs = (np.abs(a.astype(float) - background[:, None, None, :]).sum(-1) > 60).sum((1, 2))
    assert (differs == 32).all(), differs
    assert not np.array_equal(a, mnist.colour_digits(digits, size=32, seed=2))
    assert ink.shape == (50, 3)
    with pytest.raises(ValueError, match=r"size must be >= 28, got 20"):
        mnist.colour_digits(digits, size=20)
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28\), got \(50, 28, 28, 3\)"):
        mnist.colour_digits(a[:, :28, :28], size=32)
