"""Export an image classifier as a SavedModel that takes raw pixels and checks them.

    export_image_classifier(classifier, "saved_models/mnist_classifier")

    loaded = tf.saved_model.load("saved_models/mnist_classifier")   # no ptft_keras needed
    out = loaded.signatures["serving_default"](images=uint8_batch)
    out["probabilities"]  # (N, num_classes) float32, rows sum to 1
    out["label"]          # (N,) the predicted class names

Input: uint8 pixels `(N, H, W, C)` at the size and channel count the model was trained
on (`model.image_spec`), or `(N, H, W)` for a grey model. The scaling of the spec
(`pixels / 255`, and per-channel standardisation for `"standard"`) runs inside the graph.
Every signature checks its input before the model runs: a wrong rank, size or channel
count raises `InvalidArgumentError` whose message names what was received and what the
model expects ("expected images (batch, 28, 28) or (batch, 28, 28, 1) uint8; got shape
[2 28 28 3]"); never a reshape that changes the number of rows. An empty batch returns
`(0, num_classes)` probabilities.

Endpoints:

| endpoint | input | output |
|---|---|---|
| `serving_default` (signature) | `images`: uint8, any shape (checked) | `probabilities`, `label` |
| `serve` | uint8 (0-255) or float32 (0-1) images, any shape (checked) | probabilities |
| `logits` | float32 `(N, H, W, C)` model inputs (already scaled) | the model's logits |
| `label_names` | none | the class names, in class-id order |

A dtype other than uint8 at the signature is refused by TensorFlow itself: "input #0
was expected to be a uint8 tensor but is a float tensor".

Built with `keras.export.ExportArchive` (Keras's own SavedModel writer, which also
converts JAX-backend models through jax2tf) plus `tf.function`s for the checks and the
scaling, the documented way to add TensorFlow preprocessing to an export.
"""

import keras
import numpy as np
import tensorflow as tf

from ptft_keras.data.images import scale_images
from ptft_keras.export.common import (
    add_serving_default,
    check_label_names,
    empty_or,
    prepare_export_dir,
)
from ptft_keras.models.classifier import default_image_spec
from ptft_keras.specs import ImageSpec


def model_image_spec(model, image_spec=None):
    """The `ImageSpec` to export `model` with: given, the model's own, or from its input."""
    spec = ImageSpec.from_config(image_spec) or getattr(model, "image_spec", None)
    if spec is None:
        try:
            spec = default_image_spec(tuple(model.input_shape[1:]))
        except (AttributeError, ValueError):
            spec = None
    if spec is None:
        raise ValueError(
            f"Cannot tell what images {model.name!r} takes; pass image_spec=ImageSpec(...)."
        )
    return spec


def expected_images(spec):
    """How the serving signature describes its input, e.g. `(batch, 28, 28) or ...`."""
    h, w, c = spec.shape
    grey = f"(batch, {h}, {w}) or " if c == 1 else ""
    return f"{grey}(batch, {h}, {w}, {c})"


def checked_images(images, spec):
    """`images` as `(N, H, W, C)` after checking rank and sizes inside the graph."""
    h, w, c = spec.shape
    shape = tf.shape(images, out_type=tf.int64)
    rank = tf.size(shape)
    matches = lambda want: lambda: tf.reduce_all(tf.equal(shape[1:], want))
    ok = tf.cond(tf.equal(rank, 4), matches(tf.constant([h, w, c], tf.int64)), lambda: False)
    if c == 1:
        ok_grey = tf.cond(tf.equal(rank, 3), matches(tf.constant([h, w], tf.int64)), lambda: False)
        ok = tf.logical_or(ok, ok_grey)
    message = f"expected images {expected_images(spec)} {images.dtype.name}; got shape"
    with tf.control_dependencies([tf.debugging.Assert(ok, [message, shape], summarize=8)]):
        return tf.reshape(images, (-1, h, w, c))  # only adds the grey channel


def export_image_classifier(
    model, path, overwrite=False, from_logits=True, image_spec=None, label_names=None, verbose=False
):
    """Write `model` as a SavedModel at `path` (module docstring: endpoints and checks).

    Args:
      model: a built Keras model, scaled images -> (batch, num_classes) logits (or
        probabilities with `from_logits=False`), e.g. a `Classifier`.
      path: the SavedModel directory. An existing one is refused unless `overwrite`.
      overwrite: replace an existing SavedModel at `path` (see `prepare_export_dir`).
      from_logits: apply softmax to the model's outputs (True for `Classifier`).
      image_spec: the input `ImageSpec`; default `model.image_spec`.
      label_names: class names; default `model.label_names`, else "0", "1", ...
      verbose: print Keras's list of endpoints.

    Returns the absolute export path.
    """
    spec = model_image_spec(model, image_spec)
    probe = model(np.zeros((1, *spec.shape), "float32"), training=False)
    if len(probe.shape) != 2 or probe.shape[-1] < 2:
        raise ValueError(
            f"export_image_classifier needs (batch, num_classes) outputs; {model.name!r} "
            f"returns shape {tuple(probe.shape)}."
        )
    num_classes = int(probe.shape[-1])
    names = check_label_names(label_names or getattr(model, "label_names", None), num_classes)
    path = prepare_export_dir(path, overwrite=overwrite)

    archive = keras.export.ExportArchive()
    logits_fn = archive.track_and_add_endpoint(
        "logits", model, input_signature=[tf.TensorSpec((None, *spec.shape), tf.float32)]
    )

    def probabilities(images):  # any shape (checked), uint8 0-255 or float32 0-1
        x = checked_images(images, spec)
        pixels = tf.cast(x, tf.float32) * (1.0 if images.dtype == tf.uint8 else 255.0)

        def predict():
            outputs = tf.cast(logits_fn(scale_images(pixels, spec)), tf.float32)
            return tf.nn.softmax(outputs, axis=-1) if from_logits else outputs

        return empty_or(predict, tf.shape(x)[0], num_classes)  # (N, num_classes)

    serve = tf.function(probabilities)
    for dtype in (tf.uint8, tf.float32):
        serve.get_concrete_function(tf.TensorSpec(None, dtype, name="images"))
    archive.add_endpoint("serve", serve)

    add_serving_default(archive, probabilities, tf.TensorSpec(None, tf.uint8, name="images"), names)
    archive.write_out(path, verbose=verbose)
    return path
