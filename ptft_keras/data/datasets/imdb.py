"""IMDb movie reviews: the unlabeled pretraining corpus for the text recipe.

- `"path"` (offline): a one-review-a-line file (plain or `.gz`) or a folder of them;
  default `../shared/data/imdb_unsup` beside the project (48,538 reviews, 11.3M words,
  reviews that quote SST-2 dev sentences removed; see that folder's README), or
  `$PTFT_IMDB_DIR`. Never shipped in the package.
- `"tfds"` (online): TensorFlow Datasets `imdb_reviews`, split `unsupervised` (50,000
  reviews) by default; `train` / `test` carry labels.
"""

import os

import numpy as np

from ptft_keras.data.text import corpus_dataset

DEFAULT_IMDB_DIR = os.environ.get(
    "PTFT_IMDB_DIR",
    os.path.abspath(
        os.path.join(
            os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data", "imdb_unsup"
        )
    ),
)


def default_corpus_source():
    """`("path", DEFAULT_IMDB_DIR)` when the offline copy exists, else `("tfds", None)`."""
    return ("path", DEFAULT_IMDB_DIR) if os.path.isdir(DEFAULT_IMDB_DIR) else ("tfds", None)


def imdb_corpus(source="path", path=None, data_dir=None):
    """The unlabeled reviews as a `tf.data.Dataset` of strings (streamed).

    `source="path"` reads `path` (default `DEFAULT_IMDB_DIR`); `source="tfds"` loads
    `imdb_reviews/unsupervised` through TFDS (downloads into `data_dir` the first time).
    """
    if source == "path":
        return corpus_dataset(DEFAULT_IMDB_DIR if path is None else path)
    if source == "tfds":
        import tensorflow_datasets as tfds  # heavy; only for this source

        ds = tfds.load("imdb_reviews", split="unsupervised", data_dir=data_dir)
        return ds.map(lambda row: row["text"])
    raise ValueError(f"source must be 'path' or 'tfds'; got {source!r}")


def pretraining_corpus(corpus=None):
    """`(documents, description)` for a `--corpus` value: a path (one document a line,
    `.gz`, or a folder), `"tfds"`, or None (the offline copy if present, else TFDS)."""
    source, path = ("tfds", None) if corpus == "tfds" else ("path", corpus)
    if corpus is None:
        source, path = default_corpus_source()
    where = path if source == "path" else "TFDS imdb_reviews/unsupervised"
    return imdb_corpus(source, path), where


def load_imdb(split="unsupervised", data_dir=None):
    """TFDS `imdb_reviews` -> `(texts, labels)` arrays; labels are -1 in `unsupervised`."""
    if split not in ("train", "test", "unsupervised"):
        raise ValueError(f"split must be 'train', 'test' or 'unsupervised'; got {split!r}")
    import tensorflow_datasets as tfds  # heavy; only for this source

    rows = list(tfds.as_numpy(tfds.load("imdb_reviews", split=split, data_dir=data_dir)))
    texts = [r["text"].decode("utf-8", "replace") for r in rows]
    return np.array(texts, dtype=object), np.array([r["label"] for r in rows], np.int64)
