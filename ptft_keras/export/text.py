"""Export a text classifier as a SavedModel that takes **raw strings**.

keras-hub's exported models expect token ids; here normalisation and tokenisation live
inside the serving graph, so a client sends text as users type it:

    export_text_classifier(model, tokenizer, "saved_models/sst2", sequence_length=64)

    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the WordPiece ops)
    served = tf.saved_model.load("saved_models/sst2")
    served.serve(tf.constant(["Great movie!", "I don't like it."]))["probabilities"]

The serving function runs exactly `ptft_keras.data.tokenizer.TextEncoder` (the training
pipeline's normalisation, WordPiece and packing) followed by the model and a softmax.
Built with `keras.export.ExportArchive`, the maintained Keras path to a SavedModel. The
loading process must `import tensorflow_text` (TF Serving needs the tf-text ops too).
"""

import keras
import tensorflow as tf

from ptft_keras.data.tokenizer import TextEncoder
from ptft_keras.export.common import prepare_export_dir

SIGNATURE = "serving_default"


def export_text_classifier(model, tokenizer, path, sequence_length, overwrite=False):
    """Write a SavedModel whose `serve` / `serving_default` maps strings to probabilities.

    Args:
        model: a Keras model taking `{"token_ids", "padding_mask"}` and returning logits
            `(batch, num_classes)` (e.g. `TextClassifier`).
        tokenizer: the WordPiece tokenizer the model was trained with.
        path: output directory; an existing path is an error unless `overwrite=True`.
        sequence_length: the length texts are packed to (the training length).

    Returns:
        `path`. Signature: `text` string `(batch,)` -> `{"probabilities": float32
        (batch, num_classes)}`. Empty, non-ASCII and very long strings are fine (long ones
        are truncated, as in training).
    """
    max_length = getattr(getattr(model, "backbone", None), "max_sequence_length", None)
    if max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"sequence_length={sequence_length} is longer than the model's "
            f"max_sequence_length={max_length}"
        )
    encoder = TextEncoder(tokenizer, sequence_length)
    embedding = getattr(getattr(model, "backbone", None), "vocabulary_size", None)
    if embedding is not None and tokenizer.vocabulary_size() != embedding:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size()} tokens but the model's "
            f"vocabulary_size is {embedding}; export the tokenizer it was trained with"
        )
    path = prepare_export_dir(path, overwrite=overwrite)  # absolute; FileExistsError if taken

    def serve(text):
        inputs = encoder(text)  # {"token_ids", "padding_mask"}: (batch, sequence_length)
        logits = model(inputs, training=False)  # (batch, num_classes)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)  # the tokenizer has no variables: its WordPiece model is a
    # constant captured by `serve` and stored in the graph
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")],
    )
    archive.write_out(path, verbose=False)
    return path
