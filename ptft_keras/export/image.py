"""Export a 28x28 image classifier as a TensorFlow SavedModel for serving.

    from ptft_keras.export.image import export_image_classifier
    export_image_classifier(classifier, "saved_models/mnist_classifier")

    loaded = tf.saved_model.load("saved_models/mnist_classifier")  # no ptft_keras needed
    probs = loaded.serve(raw_uint8_digits)                         # (N, num_classes)

The `serve` endpoint takes a batch of 28x28 grey images and returns class probabilities
(softmax of the model's logits), float32 `(N, num_classes)`. It accepts four input
signatures:

| dtype     | shapes                       | scaling inside the graph |
|-----------|------------------------------|--------------------------|
| `uint8`   | `(N, 28, 28)`, `(N, 28, 28, 1)` | divided by 255           |
| `float32` | `(N, 28, 28)`, `(N, 28, 28, 1)` | none: already in [0, 1]  |

Any other dtype or shape is refused by TensorFlow ("Could not find matching concrete
function", listing these signatures). The SavedModel `serving_default` signature (what
TF-Serving calls) is the uint8 `(N, 28, 28)` one, input name `images`, output `probs`.
A `logits` endpoint exposes the raw model: float32 in [0, 1], in the model's own image
shape.

Built with `keras.export.ExportArchive` (Keras's own SavedModel writer, which also
converts JAX-backend models through jax2tf) plus a small `tf.function` for the dtype and
shape handling, the documented way to add TensorFlow preprocessing to an export.
"""

import keras
import numpy as np
import tensorflow as tf

from ptft_keras.export.common import prepare_export_dir

IMAGE_SHAPES = ((28, 28), (28, 28, 1))


def model_image_shape(model):
    """The image shape `model` takes: (28, 28) or (28, 28, 1)."""
    shape = getattr(model, "image_shape", None)
    if shape is None:
        try:
            shape = model.input_shape[1:]
        except (AttributeError, ValueError):
            shape = None
    if shape is not None and tuple(shape) in IMAGE_SHAPES:
        return tuple(shape)
    raise ValueError(
        f"export_image_classifier needs a model of 28x28 images, i.e. input shape "
        f"(batch, 28, 28) or (batch, 28, 28, 1); {model.name!r} takes {shape}."
    )


def export_image_classifier(model, path, overwrite=False, from_logits=True, verbose=False):
    """Write `model` as a SavedModel at `path` with a `serve` endpoint (module docstring).

    Args:
      model: a built Keras model, images in [0, 1] -> (batch, num_classes) logits
        (or probabilities with `from_logits=False`), e.g. a `Classifier`.
      path: the SavedModel directory. An existing one is refused unless `overwrite`.
      overwrite: replace an existing SavedModel at `path` (see `prepare_export_dir`).
      from_logits: apply softmax to the model's outputs (True for `Classifier`).
      verbose: print Keras's list of endpoints.

    Returns the absolute export path.
    """
    image_shape = model_image_shape(model)
    probe = model(np.zeros((1,) + image_shape, "float32"), training=False)
    if len(probe.shape) != 2 or probe.shape[-1] < 2:
        raise ValueError(
            f"export_image_classifier needs (batch, num_classes) outputs; {model.name!r} "
            f"returns shape {tuple(probe.shape)}."
        )
    path = prepare_export_dir(path, overwrite=overwrite)

    archive = keras.export.ExportArchive()
    logits_fn = archive.track_and_add_endpoint(
        "logits", model, input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32)]
    )

    def to_probs(images):  # (N, 28, 28) or (N, 28, 28, 1), uint8 or float32
        x = tf.cast(images, tf.float32)
        if images.dtype == tf.uint8:
            x = x / 255.0
        x = tf.reshape(x, (-1,) + image_shape)  # (N, *image_shape)
        outputs = logits_fn(x)  # (N, num_classes)
        return tf.nn.softmax(outputs, axis=-1) if from_logits else outputs

    serve = tf.function(to_probs)
    for dtype in (tf.uint8, tf.float32):
        for shape in IMAGE_SHAPES:
            serve.get_concrete_function(tf.TensorSpec((None,) + shape, dtype, name="images"))
    archive.add_endpoint("serve", serve)

    # TF-Serving's default: one signature, raw uint8 digits, a named output.
    serving_default = tf.function(lambda images: {"probs": to_probs(images)})
    serving_default.get_concrete_function(tf.TensorSpec((None, 28, 28), tf.uint8, name="images"))
    archive.add_endpoint("serving_default", serving_default)
    archive.write_out(path, verbose=verbose)
    return path
