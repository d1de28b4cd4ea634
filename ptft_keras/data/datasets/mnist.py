"""MNIST loading from four sources, all returning the same arrays.

`load_mnist(source, data_dir, split)` returns `(images, labels)`: `images` uint8
`(N, 28, 28)`, `labels` int64 `(N,)` in 0..9.

| source      | where from                                            | needs a network |
|-------------|-------------------------------------------------------|-----------------|
| `"tfds"`    | TensorFlow Datasets `mnist` (cached in `data_dir`)    | first call only |
| `"keras"`   | `keras.datasets.mnist` (`mnist.npz` in `data_dir`)    | first call only |
| `"idx"`     | a directory of IDX files (gzip or raw), see below     | no              |
| `"bundled"` | the 8,000-image sample shipped in this package        | no              |

The bundled sample is the first 8,000 images of the official MNIST test set (t10k), see
`ptft_keras/data/bundled/README.md` for provenance and licence. It is a *sample*: split
it explicitly with `ptft_keras.data.splits.split_dataset`.

The IDX reader is our own (about 40 lines) because neither Keras nor TFDS exposes a
public reader for a local IDX directory; it validates the magic numbers (2051 images,
2049 labels), the image size, the counts and the file length, so a truncated or wrong
file fails with the path and what was expected instead of returning garbage.
"""

import gzip
import os
import struct

import numpy as np

SOURCES = ("tfds", "keras", "idx", "bundled")
SPLITS = ("train", "test", "all")
BUNDLED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundled", "mnist"
)

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims (count, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim (count)
IMAGE_SIZE = 28
NUM_CLASSES = 10

# IDX file pairs a directory may hold, by split name: (images stem, labels stem).
# Each stem is looked up as `<stem>.gz`, then `<stem>`; `.idx3-ubyte` (a dot, as on some
# mirrors) is accepted too.
IDX_PAIRS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "8k": ("mnist-8k-images-idx3-ubyte", "mnist-8k-labels-idx1-ubyte"),
}


def load_mnist(source="tfds", data_dir=None, split=None):
    """Load MNIST as `(images uint8 (N, 28, 28), labels int64 (N,))`.

    Args:
      source: `"tfds"`, `"keras"`, `"idx"` or `"bundled"` (see the module docstring).
      data_dir: for `"tfds"` the TFDS data directory, for `"keras"` the directory holding
        (or receiving) `mnist.npz`, for `"idx"` the directory of IDX files (required).
        Ignored for `"bundled"`.
      split: `"train"` (60k), `"test"` (10k) or `"all"` (both, train first) for `"tfds"`
        and `"keras"`; default `"train"`. For `"idx"`: `"train"`, `"test"` or `"8k"`
        picks a file pair; default: the only pair in the directory. `"bundled"` has one
        split (the 8k sample) and accepts only `None`.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown MNIST source {source!r}; expected one of {SOURCES}.")
    if source == "bundled":
        if split is not None:
            raise ValueError(f"The bundled MNIST sample has no splits; got split={split!r}.")
        return _load_idx_dir(BUNDLED_DIR, "8k")
    if source == "idx":
        if data_dir is None:
            raise ValueError("source='idx' needs data_dir, a directory of MNIST IDX files.")
        return _load_idx_dir(data_dir, split)
    split = "train" if split is None else split
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} for source={source!r}; expected {SPLITS}.")
    if source == "tfds":
        return _load_tfds(data_dir, split)
    return _load_keras(data_dir, split)


def _load_tfds(data_dir, split):
    import tensorflow_datasets as tfds  # heavy import, only for this source

    tfds_split = {"train": "train", "test": "test", "all": "train+test"}[split]
    images, labels = tfds.as_numpy(
        tfds.load("mnist", split=tfds_split, batch_size=-1, as_supervised=True, data_dir=data_dir)
    )
    return _checked(np.asarray(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels, "tfds")


def _load_keras(data_dir, split):
    import keras

    path = "mnist.npz" if data_dir is None else os.path.join(os.path.abspath(data_dir), "mnist.npz")
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data(path=path)
    parts = {"train": [(x_train, y_train)], "test": [(x_test, y_test)]}
    parts["all"] = parts["train"] + parts["test"]
    images = np.concatenate([x for x, _ in parts[split]])
    labels = np.concatenate([y for _, y in parts[split]])
    return _checked(images, labels, "keras.datasets.mnist")


def _checked(images, labels, where):
    """Normalise dtypes and check shapes and label range of loaded arrays."""
    images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{where}: expected images (N, 28, 28), got shape {images.shape}.")
    if len(images) != len(labels) or labels.ndim != 1:
        raise ValueError(f"{where}: {len(images)} images but labels of shape {labels.shape}.")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{where}: labels must be in 0..9, got {labels.min()}..{labels.max()}.")
    return images.astype(np.uint8), labels


def find_idx_files(data_dir, split=None):
    """Return `(images_path, labels_path)` for `split` in `data_dir` (see `load_mnist`)."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"MNIST IDX directory not found: {data_dir!r}.")
    found = {}
    for name, stems in IDX_PAIRS.items():
        paths = [_find_stem(data_dir, stem) for stem in stems]
        if any(paths):
            found[name] = paths
    expected = {k: f"{v[0]}[.gz] + {v[1]}[.gz]" for k, v in IDX_PAIRS.items()}
    if split is None:
        if len(found) != 1:
            raise (FileNotFoundError if not found else ValueError)(
                f"{data_dir!r} holds {sorted(found) or 'no'} MNIST IDX file pairs; expected "
                f"exactly one of {expected}, or pass split= to choose."
            )
        split = next(iter(found))
    if split not in IDX_PAIRS:
        raise ValueError(f"Unknown IDX split {split!r}; expected one of {tuple(IDX_PAIRS)}.")
    images_path, labels_path = found.get(split, (None, None))
    for path, stem in zip((images_path, labels_path), IDX_PAIRS[split], strict=True):
        if path is None:
            raise FileNotFoundError(f"{stem}[.gz] not found in MNIST IDX directory {data_dir!r}.")
    return images_path, labels_path


def _find_stem(data_dir, stem):
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def _load_idx_dir(data_dir, split):
    images_path, labels_path = find_idx_files(data_dir, split)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{images_path}: expected 28x28 images, got {images.shape[1:]}.")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; expected equal counts."
        )
    return _checked(images, labels, labels_path)


def read_idx(path, expected_magic):
    """Read one IDX file (gzip or raw) into a uint8 array, validating its header."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"Cannot read IDX file {path!r}: {e}.") from e
    if len(data) < 4:
        raise ValueError(f"{path!r} is {len(data)} bytes; expected an IDX header.")
    (magic,) = struct.unpack(">i", data[:4])
    if magic != expected_magic:
        raise ValueError(f"{path!r} has magic number {magic}; expected {expected_magic}.")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path!r} is {len(data)} bytes; expected a {header}-byte header.")
    dims = struct.unpack(f">{ndim}i", data[4:header])
    size = int(np.prod(dims))
    if len(data) != header + size:
        raise ValueError(
            f"{path!r} has {len(data) - header} data bytes; expected {size} for dims {dims}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def colour_digits(images, size=32, seed=0, min_contrast=0.4):
    """MNIST digits as colour images: a random background and ink colour per image, at a
    random offset in a `size` x `size` canvas. The hard case for pretraining: colour
    varies more between images than shape does, and says nothing about the digit.

    Args:
      images: uint8 `(N, 28, 28)` grey digits (ink 255 on 0).
      size: canvas side in pixels (>= 28); the digit sits at a random offset inside.
      seed: the colours and offsets (the same seed gives the same images).
      min_contrast: least Euclidean distance between ink and background colours, in
        units of the RGB cube (0..sqrt(3)), so that every digit stays readable.

    Returns uint8 `(N, size, size, 3)`.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected grey digits of shape (N, 28, 28), got {images.shape}.")
    if size < IMAGE_SIZE:
        raise ValueError(f"size must be >= {IMAGE_SIZE}, got {size}.")
    rng = np.random.default_rng(seed)
    n = len(images)
    background = rng.random((n, 3))
    ink = rng.random((n, 3))
    while True:  # redraw the ink of pairs too alike to read
        close = np.linalg.norm(ink - background, axis=1) < min_contrast
        if not close.any():
            break
        ink[close] = rng.random((int(close.sum()), 3))
    offsets = rng.integers(0, size - IMAGE_SIZE + 1, size=(n, 2))
    alpha = np.zeros((n, size, size, 1), "float32")
    for i, (top, left) in enumerate(offsets):
        alpha[i, top : top + IMAGE_SIZE, left : left + IMAGE_SIZE, 0] = images[i] / 255.0
    mixed = background[:, None, None, :] * (1 - alpha) + ink[:, None, None, :] * alpha
    return np.round(255 * mixed).astype("uint8")
