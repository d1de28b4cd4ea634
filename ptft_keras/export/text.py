"""Export a text classifier as a SavedModel that takes **raw strings** and checks them.

keras-hub's exported models expect token ids; here normalisation and tokenisation live
inside the serving graph, so a client sends text as users type it:

    export_text_classifier(model, tokenizer, "saved_models/sst2_1000")

    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the WordPiece ops)
    served = tf.saved_model.load("saved_models/sst2_1000")
    out = served.signatures["serving_default"](text=tf.constant(["Great movie!", "Dull."]))
    out["probabilities"], out["label"]          # (N, num_classes), (N,) class names

The serving function runs exactly `ptft_keras.data.tokenizer.TextEncoder` (the
tokenizer's normaliser, WordPiece and packing, as in training) followed by the model and
a softmax. Input: a string batch `(N,)` or `(N, 1)`; anything else (a scalar, `(2, 2)`)
raises `InvalidArgumentError` naming what was received and what is expected, and an empty
batch returns `(0, num_classes)`. Empty, non-ASCII, invalid-UTF-8 and very long strings
are fine (one row each; long ones are truncated, as in training). A non-string dtype is
refused by TensorFlow itself ("expected to be a string tensor but is a int32 tensor").

Endpoints: `serving_default` (signature: `text` -> `probabilities`, `label`), `serve`
(strings -> probabilities) and `label_names`. The tokenizer's files (`vocabulary.txt`,
`tokenizer.json`) are written to `assets/tokenizer/` beside the graph, so the export holds
everything needed to rebuild the pipeline. Built with `keras.export.ExportArchive`. The
loading process must `import tensorflow_text` (TF Serving needs the tf-text ops too).
"""

import os

import keras
import tensorflow as tf

from ptft_keras.data.tokenizer import TextEncoder, save_tokenizer
from ptft_keras.export.common import (
    add_serving_default,
    check_label_names,
    empty_or,
    prepare_export_dir,
)

EXPECTED_TEXT = "expected text (batch,) or (batch, 1) strings; got shape"


def add_text_endpoints(archive, encode, model, names):
    """`serve` (strings -> probabilities), `serving_default` (`text` -> `probabilities`,
    `label`) and `label_names` on `archive`: checked strings -> `encode` (strings -> the
    model's inputs) -> `model` (logits) -> softmax; an empty batch never runs the model."""
    num_classes = len(names)

    def probabilities(text):  # (N,) or (N, 1) strings, checked
        text = checked_texts(text)

        def predict():
            logits = model(encode(text), training=False)  # (N, num_classes)
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

        return empty_or(predict, tf.shape(text)[0], num_classes)

    spec = tf.TensorSpec(shape=None, dtype=tf.string, name="text")
    archive.add_endpoint("serve", tf.function(probabilities), input_signature=[spec])
    add_serving_default(archive, probabilities, spec, names)


def checked_texts(text):
    """`text` as `(N,)` after checking it is `(N,)` or `(N, 1)` inside the graph."""
    shape = tf.shape(text, out_type=tf.int64)
    rank = tf.size(shape)
    column = tf.cond(tf.equal(rank, 2), lambda: tf.equal(shape[-1], 1), lambda: False)
    ok = tf.logical_or(tf.equal(rank, 1), column)
    with tf.control_dependencies([tf.debugging.Assert(ok, [EXPECTED_TEXT, shape], summarize=8)]):
        return tf.reshape(text, (-1,))  # (N, 1) -> (N,): never changes the row count


def checked_sequence_length(model, tokenizer, sequence_length=None):
    """The length to pack texts to for `model` (default its `sequence_length`, else the
    backbone's `max_sequence_length`), after checking it and the tokenizer against the model."""
    backbone = getattr(model, "backbone", None)
    max_length = getattr(backbone, "max_sequence_length", None)
    sequence_length = sequence_length or getattr(model, "sequence_length", None) or max_length
    if sequence_length is None:
        raise ValueError(f"Pass sequence_length= (the training length) for {model.name!r}.")
    if max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"sequence_length={sequence_length} is longer than the model's "
            f"max_sequence_length={max_length}"
        )
    vocabulary_size = getattr(backbone, "vocabulary_size", getattr(model, "vocabulary_size", None))
    if vocabulary_size is not None and tokenizer.vocabulary_size() != vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size()} tokens but the model's "
            f"vocabulary_size is {vocabulary_size}; export the tokenizer it was trained with"
        )
    return int(sequence_length)


def export_text_classifier(
    model, tokenizer, path, sequence_length=None, overwrite=False, label_names=None
):
    """Write a SavedModel whose signature maps strings to probabilities and labels.

    Args:
        model: a Keras model taking `{"token_ids", "padding_mask"}` and returning logits
            `(batch, num_classes)` (e.g. `TextClassifier`).
        tokenizer: the WordPiece tokenizer the model was trained with (its normaliser
            comes with it).
        path: output directory; an existing path is an error unless `overwrite=True`.
        sequence_length: the length texts are packed to; default the classifier's
            `sequence_length` (the fine-tuning length), else the backbone's
            `max_sequence_length`.
        label_names: class names; default `model.label_names`, else "0", "1", ...

    Returns:
        The absolute export path.
    """
    sequence_length = checked_sequence_length(model, tokenizer, sequence_length)
    num_classes = int(model.output_shape[-1])
    names = check_label_names(label_names or getattr(model, "label_names", None), num_classes)
    encoder = TextEncoder(tokenizer, sequence_length)
    path = prepare_export_dir(path, overwrite=overwrite)  # absolute; FileExistsError if taken

    archive = keras.export.ExportArchive()
    archive.track(model)  # the tokenizer has no variables: its WordPiece model is a
    # constant captured by the serving functions and stored in the graph
    add_text_endpoints(archive, encoder, model, names)
    archive.write_out(path, verbose=False)
    save_tokenizer(tokenizer, os.path.join(path, "assets", "tokenizer"))
    return path
