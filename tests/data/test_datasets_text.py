"""SST-2 and IMDb adapters (local files, TFDS through mocks), phrases, real data."""

import gzip

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data.datasets import imdb, sst2  # noqa: E402
from ptft_keras.data.datasets.sst2 import load_sst2, maximal_phrases, read_sst2_tsv  # noqa: E402

pytestmark = pytest.mark.tf_only


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tsv_dir(tmp_path):
    _write(
        tmp_path / "train.tsv", 'label\tsentence\n0\tbad film\n1\t"great" fun\n1\tgood\n0\tdull\n'
    )
    _write(tmp_path / "dev.tsv", "label\tcontent\n1\ta joy .\n0\tnot good .\n")
    return tmp_path


def test_load_local_tsv_both_headers(tsv_dir):
    sentences, labels = load_sst2("train", data_dir=str(tsv_dir))
    assert list(sentences) == ["bad film", '"great" fun', "good", "dull"]  # quotes are text
    assert labels.dtype == np.int64 and list(labels) == [0, 1, 1, 0]
    dev_sentences, dev_labels = load_sst2("dev", data_dir=str(tsv_dir))  # header 'content'
    assert list(dev_sentences) == ["a joy .", "not good ."] and list(dev_labels) == [1, 0]


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("label\tphrase\n0\tx\n", "cannot tell which column holds the texts"),
        ("label\tsentence\n2\tx\n", r"label '2' \(position 1\) is not one of the model's classes"),
        ("label\tsentence\n1\n", "row 2 has no 'sentence'"),
        ("label\tsentence\n", "no rows"),
    ],
)
def test_corrupt_tsv_errors_name_the_problem(tmp_path, content, match):
    path = _write(tmp_path / "train.tsv", content)
    with pytest.raises(ValueError, match=match):
        read_sst2_tsv(str(path))


def test_missing_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        load_sst2("train", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="split"):
        load_sst2("test")
    with pytest.raises(ValueError, match="source"):
        load_sst2("train", source="csv")


def _fake_tfds(monkeypatch, tables):
    """Replace tfds.load by in-memory datasets: no network in tests."""
    import tensorflow_datasets as tfds

    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append((name, split, data_dir))
        return tf.data.Dataset.from_tensor_slices(tables[(name, split)])

    monkeypatch.setattr(tfds, "load", fake_load)
    return calls


def test_tfds_sources_through_a_mock(monkeypatch):
    calls = _fake_tfds(
        monkeypatch,
        {
            ("glue/sst2", "validation"): {
                "sentence": [b"it 's fine", "caf\u00e9".encode()],
                "label": [1, 0],
                "idx": [0, 1],
            },
            ("imdb_reviews", "unsupervised"): {"text": [b"A long review."], "label": [-1]},
        },
    )
    sentences, labels = load_sst2("dev", source="tfds", data_dir="/d")
    assert list(sentences) == ["it 's fine", "caf\u00e9"] and list(labels) == [1, 0]
    assert [t.numpy() for t in imdb.imdb_corpus("tfds")] == [b"A long review."]
    assert imdb.load_imdb("unsupervised")[1].tolist() == [-1]
    assert calls == [
        ("glue/sst2", "validation", "/d"),
        ("imdb_reviews", "unsupervised", None),
        ("imdb_reviews", "unsupervised", None),
    ]
    with pytest.raises(ValueError, match="split"):
        imdb.load_imdb("validation")
    with pytest.raises(ValueError, match="source"):
        imdb.imdb_corpus("web")


def test_imdb_corpus_from_a_path(tmp_path):
    path = tmp_path / "reviews.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("First review.\n\nSecond <b>one</b>.\n")
    assert [t.numpy().decode() for t in imdb.imdb_corpus("path", str(path))] == [
        "First review.",
        "Second <b>one</b>.",
    ]


def test_maximal_phrases_drops_word_spans_only():
    texts = ["a great film .", "great film", "film", "a great", "great", "eat film", "b", "b"]
    texts += ["", "z"]
    kept = list(maximal_phrases(texts))
    # "eat film" is a substring of "a great film ." but not a word span of it.
    assert kept == ["a great film .", "eat film", "b", "z"]


def test_real_sst2_files(shared_data_dir):
    sentences, labels = load_sst2("train", data_dir=f"{shared_data_dir}/sst2")
    assert len(sentences) == 67_349 and set(labels.tolist()) == {0, 1}
    longest = maximal_phrases(sentences)  # the pretraining corpus of `--pretrain-corpus`
    assert len(longest) == 6_886 and sum(len(t.split()) for t in longest) == 133_442
    dev_sentences, dev_labels = load_sst2("dev", data_dir=f"{shared_data_dir}/sst2")
    assert len(dev_sentences) == 872 and 0.5 < dev_labels.mean() < 0.52
    assert sst2.LABELS.names == ["0", "1"]
