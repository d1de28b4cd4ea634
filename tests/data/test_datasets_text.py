"""SST-2 / IMDB loaders (local TSV, TFDS through mocks), label budgets, batching."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data import sst2  # noqa: E402
from ptft_keras.data.sst2 import (  # noqa: E402
    load_imdb,
    load_pretraining_corpus,
    load_sst2,
    make_text_dataset,
    maximal_phrases,
    read_sst2_tsv,
    sample_label_budget,
)

pytestmark = pytest.mark.tf_only


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tsv_dir(tmp_path):
    _write(tmp_path / "train.tsv", "label\tsentence\n0\tbad film\n1\tgreat fun\n1\tgood\n0\tdull\n")
    _write(tmp_path / "dev.tsv", "label\tcontent\n1\ta joy .\n0\tnot good .\n")
    return tmp_path


def test_load_local_tsv_both_headers(tsv_dir):
    sentences, labels = load_sst2("train", data_dir=str(tsv_dir))
    assert list(sentences) == ["bad film", "great fun", "good", "dull"]
    assert labels.dtype == np.int64 and list(labels) == [0, 1, 1, 0]
    dev_sentences, dev_labels = load_sst2("dev", data_dir=str(tsv_dir))  # header 'content'
    assert list(dev_sentences) == ["a joy .", "not good ."] and list(dev_labels) == [1, 0]
    assert list(load_pretraining_corpus(data_dir=str(tsv_dir))) == list(sentences)


@pytest.mark.parametrize(
    "content, error, match",
    [
        ("", ValueError, "empty"),
        ("label\ttext\n0\tx\n", ValueError, "header"),
        ("label\tsentence\n2\tx\n", ValueError, "line 2"),
        ("label\tsentence\n1\n", ValueError, "line 2"),
        ("label\tsentence\n", ValueError, "no examples"),
    ],
)
def test_corrupt_tsv_errors_name_the_problem(tmp_path, content, error, match):
    path = _write(tmp_path / "train.tsv", content)
    with pytest.raises(error, match=match):
        read_sst2_tsv(str(path))


def test_missing_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory missing"):
        load_sst2("train", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="dev.tsv"):
        load_sst2("dev", data_dir=str(tmp_path))
    (tmp_path / "bin.tsv").write_bytes(b"label\tsentence\n0\t\xff\xfe\n")
    with pytest.raises(ValueError, match="UTF-8"):
        read_sst2_tsv(str(tmp_path / "bin.tsv"))
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
    assert list(load_pretraining_corpus("imdb")) == ["A long review."]
    assert load_imdb("unsupervised")[1].tolist() == [-1]
    assert calls == [
        ("glue/sst2", "validation", "/d"),
        ("imdb_reviews", "unsupervised", None),
        ("imdb_reviews", "unsupervised", None),
    ]
    with pytest.raises(ValueError, match="split"):
        load_imdb("validation")


def test_label_budget_is_balanced_seeded_and_checked():
    sentences = np.array([f"s{i}" for i in range(100)], dtype=object)
    labels = np.array([0] * 70 + [1] * 30)
    few, few_labels = sample_label_budget(sentences, labels, 20, seed=3)
    assert len(few) == 20 and few_labels.sum() == 10
    assert all(labels[int(s[1:])] == y for s, y in zip(few, few_labels, strict=True))
    again, _ = sample_label_budget(sentences, labels, 20, seed=3)
    assert list(again) == list(few)
    assert len(sample_label_budget(sentences, labels, "all")[0]) == 100
    with pytest.raises(ValueError, match="class 1"):
        sample_label_budget(sentences, labels, 80)


def test_maximal_phrases_drops_word_spans_only():
    texts = ["a great film .", "great film", "film", "a great", "great", "eat film", "b", "b"]
    texts += ["", "z"]
    kept = list(maximal_phrases(texts))
    # "eat film" is a substring of "a great film ." but not a word span of it.
    assert kept == ["a great film .", "eat film", "b", "z"]


def test_make_text_dataset_buckets_and_keeps_pairs():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=200)
    ids = np.zeros((200, 40), np.int32)
    for i, n in enumerate(lengths):
        ids[i, :n] = i + 5  # every token carries its example index
    labels = np.arange(200) % 2
    ds = make_text_dataset(ids, labels, batch_size=16, shuffle=True, seed=1)
    seen = []
    for inputs, y in ds:
        tokens = inputs["token_ids"].numpy()
        assert tokens.shape[1] <= 40 and tokens.shape[0] <= 16
        assert (inputs["padding_mask"].numpy() == (tokens != 0)).all()
        first = tokens[:, 0] - 5
        assert (labels[first] == y.numpy()).all()
        assert (tokens.shape[1] - lengths[first]).max() < 16  # bucketed: little padding
        seen += first.tolist()
    assert sorted(seen) == list(range(200))
    with pytest.raises(ValueError, match="labels"):
        make_text_dataset(ids, labels[:5])


def test_real_sst2_files(shared_data_dir):
    sentences, labels = load_sst2("train", data_dir=f"{shared_data_dir}/sst2")
    assert len(sentences) == 67_349 and set(labels.tolist()) == {0, 1}
    longest = maximal_phrases(sentences)  # the pretraining corpus of `--pretrain-corpus`
    assert len(longest) == 6_886 and sum(len(t.split()) for t in longest) == 133_442
    dev_sentences, dev_labels = load_sst2("dev", data_dir=f"{shared_data_dir}/sst2")
    assert len(dev_sentences) == 872 and 0.5 < dev_labels.mean() < 0.52
    assert sst2.DEFAULT_SST2_DIR.endswith("sst2")
