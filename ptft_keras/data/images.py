"""Images from arrays, folders and TFDS, scaled by one `ImageSpec`, streamed with `tf.data`.

    folder = scan_image_folder("photos/")            # class sub-folders -> labels
    spec = infer_image_spec(folder)                   # ImageSpec(32, 32, 3, "unit")
    ds = image_dataset(folder, spec, batch_size=64, shuffle=True)   # (x, y) batches
    x, y = load_images(folder, spec)                  # small labeled sets as arrays

Sources:
- a folder of class sub-folders (`photos/cat/*.png`, `photos/dog/*.jpg`): the sub-folder
  names, sorted, are the label names (as `keras.utils.image_dataset_from_directory`); a
  class folder without images is an error that names it (a class silently dropped would
  change what the model predicts); hidden folders (`.ipynb_checkpoints`) are not classes;
- a folder of unlabeled images, searched recursively;
- numpy arrays `(N, H, W)` or `(N, H, W, C)`, uint8 (0-255) or float (already 0-1):
  `images_from_arrays`;
- TensorFlow Datasets (`mnist`, `fashion_mnist`, `cifar10`, ...), for users with a
  network: `load_tfds_images`.

Files: `.png`, `.jpg`/`.jpeg`, `.bmp`, `.gif` (first frame), any size from 8x8 up, grey
or colour. Every file is checked first (Pillow reads its header and verifies it): a file
that cannot be read raises an error naming it, or with `skip_corrupt=True` is left out and
counted. Why not `image_dataset_from_directory` itself: it cannot leave out a file it has
listed and its decode error does not name the file; the loading below uses the same ops
(`tf.io.read_file`, `tf.io.decode_image`, `tf.image.resize`) on the checked list.

Size and channel policy (`on_mismatch`):
- `"resize"` (training data): every image is resized to the spec's height x width with
  bilinear interpolation, the aspect ratio is not kept (Keras' default); grey images
  become RGB by repeating the channel, RGB becomes grey by luminance, alpha is dropped.
- `"error"` (data for a trained model: evaluate, predict): an image whose size or channel
  count differs from the spec raises a `ValueError` that says what the model expects.

The default spec (`infer_image_spec`) takes the most common size in the data and 1
channel if every image is grey, else 3.
"""

import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf

from ptft_keras.specs import MIN_IMAGE_SIDE, ImageSpec, LabelMap

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ON_MISMATCH = ("resize", "error")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclasses.dataclass
class ImageFolder:
    """The checked files of an image folder (what `scan_image_folder` returns).

    `labels` are class ids into `label_map.names` (None for an unlabeled folder);
    `sizes[i]` is `(height, width)` and `channels[i]` 1 or 3 for `files[i]`; `skipped`
    lists `(path, reason)` of the files left out with `skip_corrupt=True`.
    """

    directory: str
    files: list
    sizes: list
    channels: list
    labels: np.ndarray | None = None
    label_map: LabelMap | None = None
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.files)

    @property
    def labeled(self):
        return self.labels is not None


def scan_image_folder(directory, labeled=None, skip_corrupt=False, log=None):
    """List and check the images under `directory`.

    Args:
        directory: a folder of class sub-folders (labeled) or of images (unlabeled,
            searched recursively).
        labeled: True, False, or None to decide from the layout: labeled when the folder
            holds sub-folders and no image files of its own.
        skip_corrupt: leave out unreadable files (printed with a count) instead of
            raising an error that names the first one.
        log: a `print`-like function for the summary line (default: no output).
    """
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"Image folder not found: {directory!r}.")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"Expected a folder of images, got the file {directory!r}.")
    subdirs = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    top_images = [e.name for e in os.scandir(directory) if _is_image(e.name) and e.is_file()]
    if labeled is None:
        labeled = bool(subdirs) and not top_images
    if labeled:
        if top_images:
            raise ValueError(
                f"{directory!r} holds image files ({top_images[0]!r}, ...) beside class "
                f"sub-folders; a labeled folder holds only class sub-folders."
            )
        subdirs = [c for c in subdirs if not c.startswith(".")]  # .ipynb_checkpoints, ...
        entries = [(path, c) for c in subdirs for path in _list_images(os.path.join(directory, c))]
        empty = sorted(set(subdirs) - {c for _, c in entries})
        if empty:
            raise ValueError(
                f"{directory!r}: class folder(s) {empty} hold no images (looked for "
                f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder(s)."
            )
        classes_with_images = sorted({c for _, c in entries})
        if len(classes_with_images) < 2:
            raise ValueError(
                f"{directory!r} has {len(classes_with_images)} class sub-folder(s) with images "
                f"({classes_with_images}); a classifier needs at least 2 classes."
            )
        label_map = LabelMap(classes_with_images)
    else:
        entries = [(path, None) for path in _list_images(directory)]
        label_map = None
    if not entries:
        raise ValueError(
            f"No images found in {directory!r} (looked for {', '.join(IMAGE_EXTENSIONS)}"
            f"{', recursively' if not labeled else ' in class sub-folders'})."
        )
    files, sizes, channels, labels, skipped = [], [], [], [], []
    for path, label in entries:
        try:
            size, grey = _inspect(path)
        except Exception as error:  # Pillow raises many types for bad files
            if not skip_corrupt:
                raise ValueError(
                    f"Cannot read image {path!r}: {error}. Remove the file, or pass "
                    f"skip_corrupt=True (--skip-corrupt) to leave unreadable files out."
                ) from error
            skipped.append((path, str(error)))
            continue
        files.append(path)
        sizes.append(size)
        channels.append(1 if grey else 3)
        labels.append(label)
    if not files:
        raise ValueError(f"None of the {len(entries)} images in {directory!r} could be read.")
    if skipped and log:
        log(f"skipped {len(skipped)} unreadable image(s) in {directory}, e.g. {skipped[0][0]}")
    folder = ImageFolder(directory, files, sizes, channels, skipped=skipped)
    if labeled:
        folder.label_map = label_map
        folder.labels = label_map.encode(labels, where=directory)
    if log:
        kinds = f"{len(label_map)} classes" if labeled else "unlabeled"
        log(f"{directory}: {len(files)} images ({kinds}), sizes {_size_summary(sizes)}")
    return folder


def image_files(paths):
    """An unlabeled `ImageFolder` of the given image files (checked like a folder's)."""
    paths = [os.fspath(p) for p in paths]
    sizes, channels = [], []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Image file not found: {path!r}.")
        try:
            size, grey = _inspect(path)
        except Exception as error:
            raise ValueError(f"Cannot read image {path!r}: {error}.") from error
        sizes.append(size)
        channels.append(1 if grey else 3)
    return ImageFolder(os.path.commonpath(paths) if paths else "", paths, sizes, channels)


def infer_image_spec(source, height=None, width=None, channels=None, scaling="unit"):
    """The `ImageSpec` for an `ImageFolder` or an image array (see the module policy).

    `height`, `width`, `channels` override what is inferred; `scaling="standard"`
    computes the per-channel mean and std of `pixels / 255` (from up to 2,000 images).
    """
    if isinstance(source, ImageFolder):
        (common_h, common_w), _ = collections.Counter(source.sizes).most_common(1)[0]
        grey = all(c == 1 for c in source.channels)
    else:
        array = np.asarray(source)
        if array.ndim not in (3, 4):
            raise ValueError(f"Expected images (N, H, W) or (N, H, W, C), got {array.shape}.")
        common_h, common_w = array.shape[1:3]
        grey = array.ndim == 3 or array.shape[-1] == 1
    spec = ImageSpec(
        height or int(common_h), width or int(common_w), channels or (1 if grey else 3)
    )
    if scaling == "unit":
        return spec
    if scaling != "standard":
        raise ValueError(f"scaling must be 'unit' or 'standard', got {scaling!r}.")
    if isinstance(source, ImageFolder):
        sample = _subset(source, 2000)
        pixels = next(iter(image_dataset(sample, spec, batch_size=len(sample)))).numpy()
    else:
        pixels = images_from_arrays(np.asarray(source)[:2000], spec)
    axes = tuple(range(pixels.ndim - 1))
    mean, std = pixels.mean(axis=axes), np.maximum(pixels.std(axis=axes), 1e-3)
    return dataclasses.replace(spec, scaling="standard", mean=tuple(mean), std=tuple(std))


PLAIN_BACKGROUND_DISTANCE = 0.1  # RGB-cube units (0..sqrt(3)) from the median colour
PLAIN_BACKGROUND_PIXELS = 0.5  # an image whose median colour covers this share of it
PLAIN_BACKGROUND_IMAGES = 0.8  # data where this share of the images are such


def plain_background_share(source, sample=200):
    """The share of images (up to `sample`, spread over `source`) that are shapes on one
    plain colour: at least half their pixels within 0.1 (RGB cube) of the median colour.

    Colour digits, glyphs, icons and scans score near 1; photographs rarely have half
    their pixels in one colour. `ImageRecipe.for_data` turns `BackgroundDistance` on for
    RGB data scoring >= 0.8. `source`: an `ImageFolder` or an image array.
    """
    spec = infer_image_spec(source)  # unit scaling: pixels in [0, 1]
    if isinstance(source, ImageFolder):
        pixels = load_images(_subset(source, sample), spec)[0][:sample]
    else:
        array = np.asarray(source)
        step = max(1, len(array) // sample)
        pixels = images_from_arrays(array[::step][:sample], spec)
    flat = pixels.reshape(len(pixels), -1, pixels.shape[-1])  # (n, H * W, C), in [0, 1]
    background = np.median(flat, axis=1, keepdims=True)
    near = np.linalg.norm(flat - background, axis=-1) < PLAIN_BACKGROUND_DISTANCE
    return float(np.mean(near.mean(axis=1) >= PLAIN_BACKGROUND_PIXELS))


def check_against_spec(folder, spec):
    """Raise if any image of `folder` differs in size or channels from `spec`."""
    for path, (h, w), c in zip(folder.files, folder.sizes, folder.channels, strict=True):
        if (h, w, c) != spec.shape:
            raise ValueError(
                f"{path!r} is {h}x{w}x{c}; the model expects {spec.describe()} images "
                f"(height x width x channels). Resize the images, or pass --resize to "
                f"resize them as in training."
            )


def image_dataset(folder, spec, batch_size=None, shuffle=False, seed=0, on_mismatch="resize"):
    """A `tf.data.Dataset` of scaled float32 images `(H, W, C)` [and int64 labels].

    Streams from disk (nothing is cached), so folders larger than memory work. With
    `shuffle`, the file order is reshuffled every epoch. Batched when `batch_size` is set.
    """
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}.")
    if on_mismatch == "error":
        check_against_spec(folder, spec)
    columns = (folder.files,) if not folder.labeled else (folder.files, folder.labels)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        ds = ds.shuffle(len(folder.files), seed=seed, reshuffle_each_iteration=True)

    ds = ds.map(
        lambda path, *label: (_load(path, spec), *label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if batch_size:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_image_stream(folder, spec, batch_size, epochs, seed=0, initial_epoch=0):
    """Batches of epochs `initial_epoch .. epochs - 1`, each a permutation of the files
    that depends only on `(seed, epoch)` (stateless random ops).

    For `fit(stream, epochs=epochs, initial_epoch=initial_epoch,
    steps_per_epoch=-(-len(folder) // batch_size))`: a run resumed at epoch k sees exactly
    the batches an uninterrupted run saw from epoch k on (a reshuffling `tf.data` pipeline
    restarts its shuffle order with every new iterator). Images only (labels dropped).
    """
    files = tf.constant(folder.files)
    n = len(folder.files)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        paths = tf.data.Dataset.from_tensor_slices(tf.gather(files, order))
        return paths.map(lambda p: _load(p, spec), num_parallel_calls=tf.data.AUTOTUNE).batch(
            batch_size
        )

    stream = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)
    return stream.prefetch(tf.data.AUTOTUNE)


def _load(path, spec):
    """One file -> `(H, W, C)` float32, scaled by `spec`."""
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    image = to_channels(image, spec.channels)
    image = tf.image.resize(image, (spec.height, spec.width), method="bilinear")
    return scale_images(image, spec)


def load_images(folder, spec, on_mismatch="resize"):
    """All images of `folder` as `(x float32 (N, H, W, C), labels or None)`, file order."""
    batches = list(image_dataset(folder, spec, batch_size=256, on_mismatch=on_mismatch))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches]) if folder.labeled else None
    return x, y


def to_channels(image, channels):
    """`(H, W, c)` decoded pixels (c in 1-4) -> `(H, W, channels)`; drops alpha."""
    image = image[..., :3] if image.shape[-1] == 4 else image
    have = tf.shape(image)[-1]
    image = tf.cond(have == 2, lambda: image[..., :1], lambda: image)  # grey + alpha
    image = tf.cond(have == 4, lambda: image[..., :3], lambda: image)
    if channels == 1:
        rgb_to_grey = lambda: tf.cast(tf.image.rgb_to_grayscale(image[..., :3]), image.dtype)
        image = tf.cond(tf.shape(image)[-1] == 3, rgb_to_grey, lambda: image[..., :1])
    else:
        image = tf.cond(
            tf.shape(image)[-1] == 1, lambda: tf.image.grayscale_to_rgb(image), lambda: image
        )
    return tf.ensure_shape(image, (None, None, channels))


def scale_images(pixels, spec):
    """uint8-range pixels (any float/int dtype) -> the model's float32 inputs (TF ops)."""
    x = tf.cast(pixels, tf.float32) / 255.0
    if spec.scaling == "standard":
        x = (x - tf.constant(spec.mean, tf.float32)) / tf.constant(spec.std, tf.float32)
    return x


def images_from_arrays(images, spec=None):
    """`(N, H, W)` / `(N, H, W, C)` uint8 (0-255) or float (0-1) arrays -> model inputs.

    Returns float32 `(N, H, W, C)` scaled by `spec` (default: `infer_image_spec`). The
    arrays must already have the spec's size and channel count.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected images (N, H, W), (N, H, W, 1) or (N, H, W, 3); got {images.shape}."
        )
    spec = spec or infer_image_spec(images)
    if images.shape[1:] != spec.shape:
        raise ValueError(
            f"Images of shape {images.shape[1:]} do not match the spec {spec.describe()}."
        )
    if images.dtype != np.uint8:  # floats in [0, 1]
        if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
            raise ValueError(
                f"Float images must be in [0, 1] (or pass uint8 0-255); got values in "
                f"[{images.min():.3g}, {images.max():.3g}]."
            )
        images = images * 255.0
    return spec.scale(images)


def load_tfds_images(name, split="train", data_dir=None):
    """TFDS image classification data -> `(uint8 images (N, H, W, C), labels, LabelMap)`.

    For users with a network (downloads into `data_dir` the first time), e.g. `"mnist"`,
    `"fashion_mnist"`, `"cifar10"`. Loads the whole split into memory.
    """
    import tensorflow_datasets as tfds  # heavy; only for this source

    (images, labels), info = tfds.load(
        name, split=split, data_dir=data_dir, with_info=True, as_supervised=True, batch_size=-1
    )
    images, labels = tfds.as_numpy(images), tfds.as_numpy(labels)
    label_map = LabelMap(info.features["label"].names)
    return np.asarray(images, np.uint8), np.asarray(labels, np.int64), label_map


def write_image_folder(images, labels, directory, label_names, size=None, channels=None):
    """Write arrays as PNG files in class sub-folders (`directory/<name>/<i>.png`).

    `images`: uint8 `(N, H, W[, C])`; `labels`: ids into `label_names` (None: one flat
    unlabeled folder). `size=(h, w)` resizes, `channels=3` makes grey images RGB. For
    demos and tests: turns array datasets into the folders users have.
    """
    images = np.asarray(images)
    images = images[..., None] if images.ndim == 3 else images
    os.makedirs(directory, exist_ok=True)
    for i, image in enumerate(images):
        tensor = tf.convert_to_tensor(image)
        if size is not None:
            tensor = tf.cast(tf.round(tf.image.resize(tensor, size)), tf.uint8)
        if channels == 3 and tensor.shape[-1] == 1:
            tensor = tf.image.grayscale_to_rgb(tensor)
        folder = directory if labels is None else os.path.join(directory, label_names[labels[i]])
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:05d}.png"), tf.io.encode_png(tensor))
    return directory


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _list_images(directory):
    found = []
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, n) for n in sorted(names) if _is_image(n)]
    return found


def _inspect(path):
    """`((height, width), is_grey)` of an image file; raises if it cannot be read."""
    from PIL import Image  # Pillow: a matplotlib dependency

    with Image.open(path) as image:
        width, height = image.size
        mode = image.mode
        image.verify()  # checks the file's structure without decoding all pixels
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ValueError(f"{height}x{width} pixels; images must be at least 8x8")
    if mode == "P":  # palette: grey only if the palette is
        with Image.open(path) as image:
            mode = image.convert("RGB").getextrema()
            grey = mode[0] == mode[1] == mode[2]
        return (height, width), grey
    return (height, width), mode in _GREY_MODES


def _subset(folder, n):
    step = max(1, len(folder) // n)
    keep = slice(None, None, step)
    labels = folder.labels[keep] if folder.labeled else None
    return dataclasses.replace(
        folder,
        files=folder.files[keep],
        sizes=folder.sizes[keep],
        channels=folder.channels[keep],
        labels=labels,
    )


def _size_summary(sizes):
    counts = collections.Counter(sizes).most_common()
    text = ", ".join(f"{h}x{w} ({n})" for (h, w), n in counts[:3])
    return text + (f", +{len(counts) - 3} other sizes" if len(counts) > 3 else "")
