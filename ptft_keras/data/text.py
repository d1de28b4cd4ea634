"""Text: labeled tables (CSV, TSV, JSON lines), unlabeled corpora, batched token pipelines.

    table = read_table("tickets.csv", text_column="body", label_column="queue")
    labels = LabelMap.from_labels(table.labels)     # any number of classes >= 2
    y = labels.encode(table.labels)                 # int64 ids, saved with the model
    corpus = corpus_dataset("reviews.txt.gz")      # tf.data of documents, streamed

Tables: `.csv`, `.tsv` (or `.tab`) and `.jsonl` (also `.json` when it holds one object a
line), with a header row / keys. `text_column` and `label_column` name the fields; when
not given they are looked up among common names (`text`, `sentence`, ..., `label`, ...).
Labels may be strings or integers. A row with more fields than the header (a text with
an unquoted comma) is an error that names the row and how to quote it. Bytes that are
not UTF-8 are replaced with U+FFFD and counted (`LabeledTexts.replaced`); they never stop the read.

Corpora for pretraining: one document a line in a plain or gzip (`.gz`) file, several
such files, or a folder of `.txt` files (one document each, searched recursively).
`corpus_dataset` streams them (`tf.data.TextLineDataset` / `tf.io.read_file`), replacing
invalid UTF-8 inside the pipeline; `describe_corpus` counts documents, words and lines
with invalid UTF-8 in one pass.
"""

import csv
import dataclasses
import gzip
import io
import json
import os

import numpy as np
import tensorflow as tf

from ptft_keras.data.tokenizer import PAD_ID

TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "body")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclasses.dataclass
class LabeledTexts:
    """Texts and their raw labels (None for a table read without a label column)."""

    texts: np.ndarray  # (N,) Python str
    labels: list | None
    text_column: str
    label_column: str | None
    replaced: int = 0  # lines that held invalid UTF-8 (replaced by U+FFFD)

    def __len__(self):
        return len(self.texts)


def read_table(path, text_column=None, label_column=None, format=None, require_labels=True):
    """Read a CSV / TSV / JSON-lines table -> `LabeledTexts` (see the module docstring).

    Args:
        path: the table file.
        text_column, label_column: field names; default: the first common name present.
        format: `"csv"`, `"tsv"` or `"jsonl"`; default from the file extension.
        require_labels: False reads texts only when no label column is named or found.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Table not found: {path!r}.")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Expected a table file (CSV, TSV, JSON lines), got folder {path!r}."
        )
    format = format or TABLE_FORMATS.get(os.path.splitext(path)[1].lower())
    if format not in ("csv", "tsv", "jsonl"):
        raise ValueError(
            f"Cannot tell the format of {path!r}; expected a file ending in "
            f"{sorted(TABLE_FORMATS)} or format='csv'|'tsv'|'jsonl'."
        )
    text, replaced = _read_text(path)
    if format == "jsonl":
        rows, columns = _json_rows(text, path)
    else:
        # TSV as GLUE writes it: no quoting, a quote character is part of the text.
        quoting = csv.QUOTE_MINIMAL if format == "csv" else csv.QUOTE_NONE
        delimiter = "," if format == "csv" else "\t"
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
        try:
            columns = list(reader.fieldnames or [])
            rows = list(reader)
        except csv.Error as error:  # e.g. a stray carriage return or quote
            raise ValueError(
                f"{path!r} line {reader.line_num}: not a well-formed {format.upper()} row "
                f"({error})."
            ) from error
    if not columns:
        raise ValueError(f"{path!r} is empty; expected a header row naming the columns.")
    text_column = _column(path, columns, text_column, TEXT_COLUMNS, "text")
    if label_column is None and not require_labels and not set(LABEL_COLUMNS) & set(columns):
        label_column = None
    else:
        label_column = _column(path, columns, label_column, LABEL_COLUMNS, "label")
    texts, labels = [], []
    for number, row in enumerate(rows, start=2):
        if None in row:  # csv.DictReader: the fields past the header's
            _too_many_fields(path, number, row, columns, format)
        value = row.get(text_column)
        if value is None:
            raise ValueError(f"{path!r} row {number} has no {text_column!r} field: {row}.")
        texts.append(str(value))
        if label_column is not None:
            label = row.get(label_column)
            if label is None or str(label).strip() == "":
                raise ValueError(f"{path!r} row {number} has no {label_column!r} value.")
            labels.append(str(label).strip())
    if not texts:
        raise ValueError(f"{path!r} has a header but no rows.")
    return LabeledTexts(
        np.array(texts, dtype=object),
        labels if label_column is not None else None,
        text_column,
        label_column,
        replaced,
    )


def _too_many_fields(path, number, row, columns, format):
    fields = len(columns) + len(row[None])
    if format == "tsv":
        how = "a TSV text may not hold a tab; replace tabs in the texts with spaces"
    else:
        how = (
            'quote a text that holds commas, e.g. "this film, frankly, is fine",positive '
            "(a quote inside a quoted text is written twice)"
        )
    raise ValueError(
        f"{path!r} row {number} has {fields} fields, the header {len(columns)} "
        f"({', '.join(columns)}): {how}."
    )


def corpus_files(path):
    """The files of a corpus path: one file, or every `.txt`/`.gz` file under a folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Text corpus not found: {path!r}.")
    if os.path.isfile(path):
        return [path]
    files = []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".txt", ".gz"))]
    if not files:
        raise ValueError(f"No .txt or .gz files in corpus folder {path!r}.")
    return files


def _is_document_file(path, f):
    """In a corpus folder, a `.txt` file is one document; any `.gz` file, or the single
    file given as the corpus, holds one document a line."""
    return os.path.isdir(path) and not f.endswith(".gz")


def corpus_dataset(path):
    """A `tf.data.Dataset` of documents (scalar strings), streamed from `path`.

    A file: one document a line (`.gz` decompressed on the fly), empty lines skipped. A
    folder: each `.txt` file one document (and `.gz` files one document a line).
    Invalid UTF-8 becomes U+FFFD.
    """
    files = corpus_files(path)
    parts = [
        tf.data.TextLineDataset(f, compression_type="GZIP" if f.endswith(".gz") else "")
        for f in files
        if not _is_document_file(path, f)
    ]
    documents = [f for f in files if _is_document_file(path, f)]
    if documents:
        parts.append(tf.data.Dataset.from_tensor_slices(documents).map(tf.io.read_file))
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    ds = ds.filter(lambda doc: tf.strings.length(tf.strings.strip(doc)) > 0)
    return ds.map(lambda doc: tf.strings.unicode_transcode(doc, "UTF-8", "UTF-8", errors="replace"))


def describe_corpus(path):
    """`{"files", "documents", "words", "invalid_utf8"}` of a corpus, in one Python pass."""
    files = corpus_files(path)
    documents = words = invalid = 0
    for f in files:
        if _is_document_file(path, f):
            text, bad = _read_text(f)
            documents += bool(text.strip())
            words += len(text.split())
            invalid += bad
            continue
        opener = gzip.open if f.endswith(".gz") else open
        with opener(f, "rb") as stream:
            for raw in stream:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line, invalid = raw.decode("utf-8", "replace"), invalid + 1
                if line.strip():
                    documents += 1
                    words += len(line.split())
    return {"files": len(files), "documents": documents, "words": words, "invalid_utf8": invalid}


def read_corpus(path, limit=None):
    """The documents of a corpus as a list of str (at most `limit`): for small corpora."""
    docs = []
    for doc in corpus_dataset(path).take(-1 if limit is None else limit):
        docs.append(doc.numpy().decode("utf-8"))
    return docs


def make_text_dataset(token_ids, labels=None, batch_size=32, shuffle=False, seed=0, repeat=False):
    """Token ids `(N, seq)` -> batches `{"token_ids", "padding_mask"}` (+ labels).

    Batches are bucketed by length and padded only to their bucket's width: SST-2
    phrases average ~11 tokens, so padding everything to the model length would waste
    most of the compute. `batch_size` is global (split across replicas by `tf.distribute`).
    Order is not preserved (use plain arrays for `predict`). `repeat=True` gives an
    endless stream of passes over the data, pass `p` shuffled (with `shuffle`) by a seed
    made of `seed` and `p`: its n-th batch is the same however the stream was reached
    (`skip(n)` in a resumed run, or n batches into an uninterrupted one), which
    `shuffle(reshuffle_each_iteration=True).repeat()` does not promise (measured: a
    resumed text fine-tune drew other batches from its third pass on).
    """
    token_ids = np.asarray(token_ids, dtype=np.int32)
    if token_ids.ndim != 2:
        raise ValueError(f"token_ids must be (N, seq); got shape {token_ids.shape}")
    if labels is not None and len(labels) != len(token_ids):
        raise ValueError(f"{len(token_ids)} sequences but {len(labels)} labels")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    lengths = np.maximum((token_ids != PAD_ID).sum(axis=1), 1).astype(np.int32)
    columns = (token_ids, lengths) if labels is None else (token_ids, lengths, labels)
    tensors = [tf.constant(c) for c in columns]

    def one_pass(number):  # a pass over the data, shuffled by (seed, pass number)
        indices = tf.range(len(token_ids))
        if shuffle:  # stateless: the order depends on (seed, number) only, not on the
            # global seed or on how many iterators came before
            keys = tf.random.stateless_uniform(
                [len(token_ids)], tf.stack([tf.cast(seed, tf.int64), number])
            )
            indices = tf.argsort(keys)
        examples = tf.data.Dataset.from_tensor_slices(indices).map(
            lambda i: tuple(tf.gather(t, i) for t in tensors)
        )
        return _bucketed(examples, token_ids.shape[1], batch_size, labels is not None)

    if not repeat:
        return one_pass(tf.constant(0, tf.int64)).prefetch(tf.data.AUTOTUNE)
    passes = tf.data.Dataset.range(2**62)
    return passes.flat_map(one_pass).prefetch(tf.data.AUTOTUNE)


def _bucketed(ds, seq, batch_size, labeled):
    """Examples -> length-bucketed batches (the inputs dict, + labels)."""
    ds = ds.map(lambda ids, n, *y: (ids[:n], *y) if y else ids[:n])  # variable length
    # Batches are padded to the top of their bucket: a fixed set of shapes (8, 16, ...,
    # seq), so Keras traces (and XLA compiles) the train step a few times only.
    widths = [w for w in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256) if w < seq] + [seq]
    ds = ds.bucket_by_sequence_length(
        lambda ids, *y: tf.shape(ids)[0],  # ids: (length,)
        bucket_boundaries=[w + 1 for w in widths],
        bucket_batch_sizes=[batch_size] * (len(widths) + 1),
        padding_values=(PAD_ID, np.int64(0)) if labeled else PAD_ID,
        pad_to_bucket_boundary=True,
    )

    def to_inputs(ids, *y):  # (batch, longest) -> the backbone's input dict
        inputs = {"token_ids": ids, "padding_mask": ids != PAD_ID}
        return (inputs, *y) if y else inputs

    return ds.map(to_inputs)


def _read_text(path):
    """File contents as str (gzip if `.gz`), invalid UTF-8 replaced; and the count of lines
    that held some."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        lines = data.split(b"\n")
        bad = 0
        for line in lines:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
        return data.decode("utf-8", "replace").removeprefix("\ufeff"), bad


def _json_rows(text, path):
    rows, columns = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path!r} line {number} is not a JSON object ({error}); expected JSON lines: "
                f"one object a line."
            ) from error
        if not isinstance(row, dict):
            raise ValueError(f"{path!r} line {number}: expected a JSON object, got {line[:60]!r}.")
        rows.append(row)
        columns += [k for k in row if k not in columns]
    return rows, columns


def _column(path, columns, wanted, defaults, role):
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(
                f"{path!r} has no {role} column {wanted!r}; its columns are {columns}."
            )
        return wanted
    for name in defaults:
        if name in columns:
            return name
    raise ValueError(
        f"{path!r}: cannot tell which column holds the {role}s (columns: {columns}); "
        f"name it with {role}_column= (--{role}-column)."
    )
