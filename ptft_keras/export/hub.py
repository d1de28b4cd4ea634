"""Export a keras-hub text classifier as a SavedModel that takes **raw strings**.

    clf = hub_text_classifier("/models/my_bert", num_classes=2, label_names=["neg", "pos"])
    clf.fit(texts, labels)
    export_hub_classifier(clf, "saved_models/my_bert_sst2")

    import tensorflow as tf, tensorflow_text  # noqa: F401  (registers the tf-text ops)
    served = tf.saved_model.load("saved_models/my_bert_sst2")
    out = served.signatures["serving_default"](text=tf.constant(["Great movie!", "Dull."]))
    out["probabilities"], out["label"]          # (N, num_classes), (N,) class names

The same serving contract as `ptft_keras.export.text.export_text_classifier` (its
`checked_texts` and the `export.common` helpers): input a string batch `(N,)` or `(N, 1)`;
another rank raises `InvalidArgumentError` naming the shape received and the one expected;
an empty batch returns `(0, num_classes)`; endpoints `serving_default` (`text` ->
`probabilities`, `label`), `serve` (strings -> probabilities) and `label_names`.

The graph runs the classifier's own keras-hub preprocessor (tokenizer and packer, exactly
as `fit` and `predict` use it), the model and a softmax. keras-hub#2015 / #1629: a
tokenizer whose vocabulary lives in TensorFlow lookup tables (the byte-pair tokenizers,
e.g. GPT-2's `StaticHashTable`) failed to export as an untracked resource; the fix is to
track the preprocessor with the `ExportArchive`. Checked with keras-hub 0.32 / Keras 3.15:
tracking the task already tracks the preprocessor attached to it (a tracked attribute), so
both a WordPiece (BERT: `FastWordpieceTokenizer`, no table) and a byte-pair (GPT-2)
export load and agree in a fresh process even without the explicit call; it is made here
anyway (`archive.track(preprocessor)`), after building the preprocessor, which tracking
requires. The loading process needs `tensorflow_text` (the tokenizer's ops), not
keras-hub. A LoRA classifier should be merged first
(`ptft_keras.peft.hub.merge_hub_lora`).
"""

import keras
import tensorflow as tf

from ptft_keras.export.common import check_label_names, prepare_export_dir
from ptft_keras.export.text import add_text_endpoints


def export_hub_classifier(model, path, overwrite=False, label_names=None):
    """Write a SavedModel whose signature maps strings to probabilities and labels.

    Args:
        model: a keras-hub text classifier with its preprocessor (e.g. from
            `ptft_keras.models.hub.hub_text_classifier`), returning logits.
        path: output directory; an existing path is an error unless `overwrite=True`.
        label_names: class names; default `model.label_names`, else "0", "1", ...

    Returns:
        The absolute export path.
    """
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise ValueError(
            f"{model.name!r} has no preprocessor; a raw-string export needs the tokenizer. "
            "Set model.preprocessor (e.g. <Class>.preprocessor_cls.from_preset(preset))."
        )
    num_classes = int(model.output_shape[-1])
    names = check_label_names(label_names or getattr(model, "label_names", None), num_classes)
    path = prepare_export_dir(path, overwrite=overwrite)  # absolute; FileExistsError if taken

    if not preprocessor.built:  # tracking needs a built layer (keras-hub builds the
        preprocessor(tf.constant(["build"]))  # packer in build()); one call does it
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)  # its tokenizer's tables, if any (keras-hub#2015, #1629)
    add_text_endpoints(archive, preprocessor, model, names)  # {"token_ids", ...}: (N, seq)
    archive.write_out(path, verbose=False)
    return path
