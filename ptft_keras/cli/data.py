"""What a `--data` path holds, and loading it the way the run was trained."""

import os

import keras
import numpy as np

from ptft_keras.cli.runs import CliError
from ptft_keras.data import images as image_data
from ptft_keras.data.text import TABLE_FORMATS, corpus_dataset, read_table
from ptft_keras.specs import LabelMap
from ptft_keras.training.recipes import text as text_recipe


def is_table(path):
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in TABLE_FORMATS


def check_exists(path, what):
    if not os.path.exists(path):
        raise CliError(f"{what} {path!r} does not exist.")


def check_modality(path, modality):
    """Refuse image data for a text run and the reverse, naming both."""
    check_exists(path, "--data")
    if modality == "image":
        if os.path.isfile(path):
            raise CliError(
                f"This is an image run; {path!r} is a file. Pass a folder of images (class "
                f"sub-folders for labeled data)."
            )
        text_files = [n for n in _names(path) if n.endswith((".txt", ".gz", *TABLE_FORMATS))]
        images = [n for n in _names(path) if n.lower().endswith(image_data.IMAGE_EXTENSIONS)]
        if text_files and not images:
            raise CliError(f"This is an image run; {path!r} holds text files, no images.")
    else:
        images = [n for n in _names(path) if n.lower().endswith(image_data.IMAGE_EXTENSIONS)]
        if images:
            raise CliError(f"This is a text run; {path!r} holds images ({images[0]}).")


def _names(path):
    if os.path.isfile(path):
        return [os.path.basename(path)]
    return [n for _, _, names in os.walk(path) for n in names][:2000]


def labeled_images(path, spec, skip_corrupt=False, resize=True, log=print):
    """`(x, y, LabelMap)` from a folder of class sub-folders, at the spec's size."""
    folder = image_data.scan_image_folder(path, labeled=True, skip_corrupt=skip_corrupt, log=log)
    on_mismatch = "resize" if resize else "error"
    try:
        x, y = image_data.load_images(folder, spec, on_mismatch=on_mismatch)
    except ValueError as error:
        raise CliError(str(error)) from error
    return x, y, folder.label_map


def labeled_texts(path, text_column=None, label_column=None, label_map=None, log=print):
    """`(texts, y, LabelMap, table)` from a CSV / TSV / JSON-lines table."""
    if not is_table(path):
        raise CliError(
            f"--data {path!r}: labeled text must be a table (.csv, .tsv, .jsonl) with a text "
            f"and a label column."
        )
    table = read_table(path, text_column, label_column)
    if table.replaced:
        log(f"{path}: {table.replaced} line(s) with invalid UTF-8; bytes replaced by U+FFFD")
    label_map = label_map or LabelMap.from_labels(table.labels)
    return table.texts, label_map.encode(table.labels, where=path), label_map, table


def unlabeled_texts(path, text_column=None, limit=None):
    """Texts of a corpus path (lines / .gz / folder of .txt) or of a table's text column."""
    if is_table(path):
        return list(read_table(path, text_column, require_labels=False).texts)[:limit]
    texts = []
    for document in corpus_dataset(path).take(-1 if limit is None else limit):
        texts.append(document.numpy().decode("utf-8"))
    if not texts:
        raise CliError(f"{path!r} holds no text.")
    return texts


def corpus_documents(path, text_column=None):
    """A `tf.data.Dataset` of documents: a table's text column, or a corpus path
    (one document a line, `.gz`, a folder of `.txt`), streamed."""
    import tensorflow as tf

    if is_table(path):
        texts = list(read_table(path, text_column, require_labels=False).texts)
        return tf.data.Dataset.from_tensor_slices(texts)
    return corpus_dataset(path)


def predict_probabilities(model, inputs, tokenizer=None, batch_size=256):
    """Softmax probabilities for image arrays or text strings."""
    if tokenizer is not None:
        ids = text_recipe.encode_texts(tokenizer, inputs, model.sequence_length)
        inputs = text_recipe.model_inputs(ids)
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


ONE_CLASS_CHECKED = 2000  # training examples predicted after a fine-tune (the first ones)


def warn_if_one_class(model, inputs, tokenizer=None, log=print):
    """Say so when the fine-tuned model predicts one class for every training example (it
    learned the majority share, nothing more): the class, and what to try. Returns the
    class name, or None."""
    probabilities = predict_probabilities(model, inputs[:ONE_CLASS_CHECKED], tokenizer)
    predicted = np.unique(probabilities.argmax(axis=1))
    if len(predicted) > 1:
        return None
    name = model.label_names[int(predicted[0])]
    log(
        f"warning: the fine-tuned model predicts {name!r} for every one of the "
        f"{len(probabilities)} training examples checked: it learned the most common class, "
        f"not the task. Try another --method (auto or full), a higher learning rate, more "
        f"epochs, or more pretraining."
    )
    return name


def accuracy_report(labels, predictions, label_map):
    """Accuracy and a per-class table (precision, recall, support) as a dict."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    per_class = {}
    for i, name in enumerate(label_map.names):
        predicted, actual = predictions == i, labels == i
        hits = int(np.sum(predicted & actual))
        per_class[name] = {
            "precision": hits / max(1, int(predicted.sum())),
            "recall": hits / max(1, int(actual.sum())),
            "support": int(actual.sum()),
        }
    return {"accuracy": float(np.mean(labels == predictions)), "per_class": per_class}
