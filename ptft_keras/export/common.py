"""Shared export helpers: where an export goes (and when an old one may be replaced),
label names, empty batches."""

import os
import shutil

import tensorflow as tf

# A directory holding one of these is a previous export that `overwrite=True` may replace:
# a SavedModel, or a LiteRT / ONNX export (`ptft_keras.export.portable`).
EXPORT_MARKERS = frozenset({"saved_model.pb", "export.json"})


def prepare_export_dir(path, overwrite=False):
    """Make `path` ready for a new SavedModel and return it as an absolute path.

    If `path` exists, raise `FileExistsError` unless `overwrite=True`. With `overwrite`,
    only an empty directory or a previous export (a directory holding `saved_model.pb`
    or `export.json`) is removed; anything else (a file, a symlink, another directory,
    the current directory or one of its parents, the home directory) raises
    `ValueError` and nothing is deleted. Parent directories are created.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"Export path must be a non-empty str or path, got {path!r}.")
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(
                f"Export path {path!r} already exists; pass overwrite=True to replace it."
            )
        _check_removable(path)
        shutil.rmtree(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _check_removable(path):
    if os.path.islink(path) or not os.path.isdir(path):
        raise ValueError(
            f"Refusing to overwrite {path!r}: it is not a directory (a file or a symlink); "
            f"remove it yourself or choose another path."
        )
    cwd, home = os.path.abspath(os.getcwd()), os.path.abspath(os.path.expanduser("~"))
    if path in (os.path.abspath(os.sep), home) or cwd == path or cwd.startswith(path + os.sep):
        raise ValueError(f"Refusing to overwrite {path!r}: it is a root, home or working dir.")
    contents = os.listdir(path)
    if contents and not EXPORT_MARKERS & set(contents):
        raise ValueError(
            f"Refusing to overwrite {path!r}: it is not an export directory (no "
            f"saved_model.pb or export.json) and not empty; it holds {sorted(contents)[:5]}."
        )


def check_label_names(names, num_classes):
    """`names` as a list of str, checked against the model's number of outputs."""
    names = [str(i) for i in range(num_classes)] if names is None else [str(n) for n in names]
    if len(names) != num_classes:
        raise ValueError(
            f"{len(names)} label names for a model with {num_classes} outputs: {names}."
        )
    return names


def empty_or(predict, batch_size, num_classes):
    """`predict()` for a non-empty batch, else an empty `(0, num_classes)` float32 result
    (the model is never run on zero rows)."""

    return tf.cond(tf.equal(batch_size, 0), lambda: tf.zeros((0, num_classes), tf.float32), predict)


def add_serving_default(archive, probabilities, spec, names):
    """The `serving_default` signature (`spec` -> `probabilities` and `label`, the class name
    of the argmax) and the `label_names` endpoint; `probabilities` maps a batch to
    `(N, num_classes)` float32."""

    table = tf.constant(names)

    @tf.function(input_signature=[spec])
    def serving_default(inputs):
        probs = probabilities(inputs)
        return {"probabilities": probs, "label": tf.gather(table, tf.argmax(probs, axis=-1))}

    archive.add_endpoint("serving_default", serving_default)
    add_label_names_endpoint(archive, names)


def add_label_names_endpoint(archive, names):
    """A `label_names` endpoint (no input) returning the class names in id order."""

    table = tf.constant(names)
    archive.add_endpoint(
        "label_names", tf.function(lambda: {"label_names": table}, input_signature=[])
    )
