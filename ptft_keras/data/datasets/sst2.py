"""SST-2 (binary sentiment): a thin adapter over the generic table reader.

Sources:
- `"tsv"` (offline): GLUE-format `train.tsv` / `dev.tsv` (header `label<TAB>sentence`;
  some copies say `content`), lower-cased and space-tokenised. Default directory:
  `../shared/data/sst2` beside the project, or `$PTFT_SST2_DIR`.
- `"tfds"` (online): TensorFlow Datasets `glue/sst2` (`train`, `validation`).

The sentences of `train.tsv` without their labels are a small unlabeled corpus
(`maximal_phrases` keeps the 6,886 sentences of its 67,349 parse-tree phrases);
`dev.tsv` is the evaluation split; few-label budgets are class-balanced seeded draws
from `train.tsv` (`ptft_keras.data.splits.sample_few_labels`).
"""

import os

import numpy as np

from ptft_keras.data.text import read_table
from ptft_keras.specs import LabelMap

DEFAULT_SST2_DIR = os.environ.get(
    "PTFT_SST2_DIR",
    os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data", "sst2")
    ),
)
LABELS = LabelMap(["0", "1"])  # 0 = negative, 1 = positive
_TSV_FILES = {"train": "train.tsv", "dev": "dev.tsv", "validation": "dev.tsv"}
_TFDS_SPLITS = {"train": "train", "dev": "validation", "validation": "validation"}


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
        import tensorflow_datasets as tfds  # imported lazily: heavy, and only for "tfds"

        rows = list(
            tfds.as_numpy(tfds.load("glue/sst2", split=_TFDS_SPLITS[split], data_dir=data_dir))
        )
        texts = [r["sentence"].decode("utf-8", "replace") for r in rows]
        return np.array(texts, dtype=object), np.array([r["label"] for r in rows], np.int64)
    raise ValueError(f"source must be 'tsv' or 'tfds'; got {source!r}")


def read_sst2_tsv(path):
    """A GLUE SST-2 TSV (`label<TAB>sentence` or `label<TAB>content`) -> (texts, labels)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"SST-2 file not found: {path!r}; expected GLUE-format TSVs train.tsv and "
            f"dev.tsv, e.g. in {DEFAULT_SST2_DIR!r} (or set $PTFT_SST2_DIR)."
        )
    table = read_table(path, label_column="label", format="tsv")
    return table.texts, LABELS.encode(table.labels, where=path)


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


def validation_split(texts, labels, size=872, seed=0):
    """Hold `size` whole sentences out of SST-2's train phrases, for choosing a recipe
    without touching `dev.tsv`.

    The held-out texts are maximal phrases (sentences). Every train phrase that is a word
    span of a held-out sentence is removed from the returned train pool, so no part of a
    validation sentence is ever trained on. Returns `(train_texts, train_labels,
    validation_texts, validation_labels)`.
    """
    texts = np.asarray(texts, dtype=object)
    labels = np.asarray(labels)
    label_of = dict(zip(texts, labels, strict=True))
    sentences = sorted(maximal_phrases(texts))
    if not 0 < size < len(sentences):
        raise ValueError(f"size must be in 1..{len(sentences) - 1}, got {size!r}.")
    chosen = np.random.default_rng(seed).choice(len(sentences), size, replace=False)
    held_out = [sentences[i] for i in sorted(chosen)]
    framed = [f" {s} " for s in held_out]
    keep = np.array([not any(f" {t} " in f for f in framed) for t in texts])
    validation_labels = np.array([label_of[s] for s in held_out], dtype=np.int64)
    return texts[keep], labels[keep], np.array(held_out, dtype=object), validation_labels


def load_sst2_experiment(data_dir=None, validation=False, smoke=False):
    """The train pool and the scored split of an SST-2 experiment.

    `dev.tsv` is scored unless `validation`, which scores 872 sentences held out of
    `train.tsv` (`validation_split`) so a recipe is chosen without touching dev. `smoke`
    keeps 1,500 train phrases and 100 scored sentences. Returns `(train_texts,
    train_labels, eval_texts, eval_labels, split_name)`.
    """
    train_x, train_y = load_sst2("train", data_dir=data_dir)
    eval_x, eval_y = load_sst2("dev", data_dir=data_dir)
    if validation:
        train_x, train_y, eval_x, eval_y = validation_split(train_x, train_y, 872, seed=0)
    if smoke:
        train_x, train_y, eval_x, eval_y = (
            train_x[:1500],
            train_y[:1500],
            eval_x[:100],
            eval_y[:100],
        )
    split = "validation (held out of train.tsv)" if validation else "dev"
    return train_x, train_y, eval_x, eval_y, split
