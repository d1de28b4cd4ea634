"""SST-2 (binary sentiment) and IMDB text loaders, label budgets and batched pipelines.

Sources:
- `"tsv"` (offline): GLUE-format `train.tsv` / `dev.tsv` (header `label<TAB>sentence`;
  some copies say `content` instead of `sentence`), lower-cased and space-tokenised.
  Default directory: `../shared/data/sst2` beside the project, or `$PTFT_SST2_DIR`.
- `"tfds"` (online): TensorFlow Datasets `glue/sst2` (`train`, `validation`).
- `load_imdb`: TFDS `imdb_reviews` (`train`, `test`, and the 50k-review `unsupervised`
  split, a larger unlabeled pretraining corpus).

The sentences of `train.tsv` without their labels are the offline pretraining corpus
(`load_pretraining_corpus`); `dev.tsv` is the evaluation split; the few labelled examples
are a class-balanced seeded draw from `train.tsv` (`sample_label_budget`).
"""

import os

import numpy as np
import tensorflow as tf

from ptft_keras.data.splits import sample_few_labels
from ptft_keras.data.tokenizer import PAD_ID

DEFAULT_SST2_DIR = os.environ.get(
    "PTFT_SST2_DIR",
    os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "sst2")
    ),
)
_TSV_FILES = {"train": "train.tsv", "dev": "dev.tsv", "validation": "dev.tsv"}
_TFDS_SPLITS = {"train": "train", "dev": "validation", "validation": "validation"}
_TEXT_COLUMNS = ("sentence", "content")


def load_sst2(split="train", source="tsv", data_dir=None):
    """Load one SST-2 split -> `(sentences, labels)`.

    Args:
        split: `"train"` or `"dev"` (alias `"validation"`; GLUE's test split has no labels).
        source: `"tsv"` (local GLUE files) or `"tfds"` (`glue/sst2`, needs a network the
            first time).
        data_dir: directory of the TSVs (`"tsv"`) or the TFDS data dir (`"tfds"`).

    Returns:
        `sentences`: numpy array of Python `str`, `(N,)`; `labels`: int64 `(N,)`,
        0 = negative, 1 = positive.
    """
    if split not in _TSV_FILES:
        raise ValueError(f"split must be one of {sorted(_TSV_FILES)}; got {split!r}")
    if source == "tsv":
        directory = DEFAULT_SST2_DIR if data_dir is None else data_dir
        return read_sst2_tsv(os.path.join(directory, _TSV_FILES[split]))
    if source == "tfds":
        rows = _tfds_rows("glue/sst2", _TFDS_SPLITS[split], data_dir)
        return _decode([r["sentence"] for r in rows]), _labels([r["label"] for r in rows])
    raise ValueError(f"source must be 'tsv' or 'tfds'; got {source!r}")


def read_sst2_tsv(path):
    """Parse a GLUE SST-2 TSV file with a `label<TAB>sentence|content` header."""
    if not os.path.isfile(path):
        hint = "" if os.path.isdir(os.path.dirname(path) or ".") else " (directory missing)"
        raise FileNotFoundError(
            f"SST-2 file not found: {path!r}{hint}; expected GLUE-format TSVs "
            f"train.tsv and dev.tsv, e.g. in {DEFAULT_SST2_DIR!r}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path!r} is not UTF-8 text: {error}") from error
    if not lines:
        raise ValueError(f"{path!r} is empty; expected a header 'label<TAB>sentence'")
    header = lines[0].split("\t")
    if len(header) != 2 or header[0] != "label" or header[1] not in _TEXT_COLUMNS:
        raise ValueError(
            f"{path!r} has header {lines[0]!r}; expected 'label<TAB>sentence' "
            "(or 'label<TAB>content')"
        )
    sentences, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or fields[0] not in ("0", "1"):
            raise ValueError(
                f"{path!r} line {number}: {line[:80]!r}; expected '<0 or 1><TAB><sentence>'"
            )
        labels.append(int(fields[0]))
        sentences.append(fields[1])
    if not sentences:
        raise ValueError(f"{path!r} has a header but no examples")
    return np.array(sentences, dtype=object), np.array(labels, dtype=np.int64)


def load_pretraining_corpus(source="tsv", data_dir=None):
    """Unlabeled sentences for language-model pretraining.

    `"tsv"` / `"tfds"`: the SST-2 train sentences with the labels dropped (67,349 phrases,
    offline with `"tsv"`); `"imdb"`: IMDB's `unsupervised` split (50,000 reviews, TFDS).
    """
    if source == "imdb":
        return load_imdb("unsupervised", data_dir)[0]
    return load_sst2("train", source, data_dir)[0]


def maximal_phrases(texts):
    """The texts that are not a word span of a longer text, longest first, deduplicated.

    SST-2's `train.tsv` holds every parse-tree phrase of ~6.9k sentences: 67,349 phrases
    (634k words) shrink to 6,886 maximal ones (133k words). A pretraining epoch over those
    sees every word in context at about a fifth of the cost of an epoch over all phrases.
    """
    kept, containing = [], {}  # containing[word]: framed kept texts with that word
    for text in sorted({str(t) for t in texts}, key=lambda t: (-len(t.split()), t)):
        words = text.split()
        if not words:  # the empty text is a span of every text
            continue
        framed = f" {' '.join(words)} "  # a span starts and ends at word edges
        rarest = min(words, key=lambda w: len(containing.get(w, ())))
        if not any(framed in other for other in containing.get(rarest, ())):
            kept.append(text)
            for word in set(words):
                containing.setdefault(word, []).append(framed)
    return np.array(kept, dtype=object)


def load_imdb(split="unsupervised", data_dir=None):
    """TFDS `imdb_reviews` -> `(texts, labels)`; labels are -1 in `unsupervised`."""
    if split not in ("train", "test", "unsupervised"):
        raise ValueError(f"split must be 'train', 'test' or 'unsupervised'; got {split!r}")
    rows = _tfds_rows("imdb_reviews", split, data_dir)
    return _decode([r["text"] for r in rows]), _labels([r["label"] for r in rows])


def sample_label_budget(sentences, labels, budget, seed=0):
    """Class-balanced seeded draw of `budget` labelled examples (`"all"`/None = all).

    Same rules as `ptft_keras.data.splits.sample_few_labels` (it does the work).
    """
    return sample_few_labels(sentences, labels, budget, num_classes=2, seed=seed)


def make_text_dataset(token_ids, labels=None, batch_size=32, shuffle=False, seed=0):
    """Token ids `(N, seq)` -> batches `{"token_ids", "padding_mask"}` (+ labels).

    Batches are bucketed by length and padded only to their bucket's width: SST-2
    phrases average ~11 tokens, so padding everything to the model length would waste
    most of the compute. `batch_size` is global (split across replicas by `tf.distribute`).
    Order is not preserved (use plain arrays for `predict`).
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
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        ds = ds.shuffle(len(token_ids), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda ids, n, *y: (ids[:n], *y) if y else ids[:n])  # variable length
    # Batches are padded to the top of their bucket: a fixed set of shapes (8, 16, ...,
    # seq), so Keras traces (and XLA compiles) the train step a few times only.
    seq = token_ids.shape[1]
    widths = [w for w in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256) if w < seq] + [seq]
    ds = ds.bucket_by_sequence_length(
        lambda ids, *y: tf.shape(ids)[0],  # ids: (length,)
        bucket_boundaries=[w + 1 for w in widths],
        bucket_batch_sizes=[batch_size] * (len(widths) + 1),
        padding_values=PAD_ID if labels is None else (PAD_ID, np.int64(0)),
        pad_to_bucket_boundary=True,
    )

    def to_inputs(ids, *y):  # (batch, longest) -> the backbone's input dict
        inputs = {"token_ids": ids, "padding_mask": ids != PAD_ID}
        return (inputs, *y) if y else inputs

    ds = ds.map(to_inputs)
    return ds.prefetch(tf.data.AUTOTUNE)


def _tfds_rows(name, split, data_dir):
    import tensorflow_datasets as tfds  # imported lazily: heavy, and only for "tfds"

    return list(tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir)))


def _decode(texts):
    values = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts]
    return np.array(values, dtype=object)


def _labels(values):
    return np.asarray(values, dtype=np.int64).reshape(-1)
