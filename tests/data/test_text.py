"""Generic text data: tables (CSV, TSV, JSON lines), label maps, corpora, batching."""

import gzip
import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data.splits import sample_few_labels  # noqa: E402
from ptft_keras.data.text import (  # noqa: E402
    corpus_dataset,
    describe_corpus,
    make_text_dataset,
    read_corpus,
    read_table,
)
from ptft_keras.specs import LabelMap  # noqa: E402

pytestmark = pytest.mark.tf_only

ROWS = [
    ("printer on fire", "hardware"),
    ("cannot log in", "account"),
    ("refund, please", "billing"),
]


def test_csv_tsv_and_json_lines_read_the_same(tmp_path):
    (tmp_path / "t.csv").write_text(
        "id,body,queue\n" + "".join(f'{i},"{t}",{q}\n' for i, (t, q) in enumerate(ROWS))
    )
    (tmp_path / "t.tsv").write_text("body\tqueue\n" + "".join(f"{t}\t{q}\n" for t, q in ROWS))
    (tmp_path / "t.jsonl").write_text(
        "".join(json.dumps({"body": t, "queue": q, "n": 1}) + "\n" for t, q in ROWS)
    )
    for name in ("t.csv", "t.tsv", "t.jsonl"):
        table = read_table(tmp_path / name, text_column="body", label_column="queue")
        assert list(table.texts) == [t for t, _ in ROWS], name
        assert table.labels == [q for _, q in ROWS] and table.replaced == 0


def test_default_columns_and_integer_labels(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        "".join(json.dumps({"text": f"t{i}", "label": i % 12}) + "\n" for i in range(24))
    )
    table = read_table(path)
    assert (table.text_column, table.label_column) == ("text", "label")
    labels = LabelMap.from_labels(table.labels)
    assert labels.names == [str(i) for i in range(12)]  # numeric order: 2 before 10
    assert labels.encode(table.labels).tolist() == [i % 12 for i in range(24)]


def test_errors_name_the_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nhello,a\n")
    with pytest.raises(
        ValueError, match=r"no label column 'queue'; its columns are \['text', 'label'\]"
    ):
        read_table(path, label_column="queue")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_table(tmp_path / "nowhere.csv")
    with pytest.raises(ValueError, match="Cannot tell the format"):
        (tmp_path / "t.xlsx").write_text("x")
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(ValueError, match=r"at least 2 classes; the labels hold 1: \['a'\]"):
        LabelMap.from_labels(read_table(path).labels)
    (tmp_path / "other.csv").write_text("sentence,mood\nhi,x\n")
    with pytest.raises(ValueError, match="cannot tell which column holds the labels"):
        read_table(tmp_path / "other.csv")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        read_table(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match=r"label 'spam' \(position 2\) is not one of the model's"):
        LabelMap(["ham", "eggs"]).encode(["ham", "spam"])


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes(b"text\tlabel\ncaf\xe9 ok\tpos\nfine\tneg\nbad \xff\xfe\tneg\n")
    table = read_table(path)
    assert table.replaced == 2
    assert list(table.texts) == ["caf\ufffd ok", "fine", "bad \ufffd\ufffd"]


def test_few_label_sampling_for_any_number_of_classes():
    labels = np.repeat(np.arange(5), [40, 30, 20, 10, 6])
    texts = np.array([f"t{i}" for i in range(len(labels))], dtype=object)
    few_x, few_y = sample_few_labels(texts, labels, 25, seed=1)
    assert np.bincount(few_y).tolist() == [5] * 5
    assert all(labels[int(t[1:])] == y for t, y in zip(few_x, few_y, strict=True))
    with pytest.raises(ValueError, match="class 4 has 6 examples; budget=35 needs 7"):
        sample_few_labels(texts, labels, 35)


def test_corpus_from_lines_gzip_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("one doc\n\ntwo doc\n")
    with gzip.open(tmp_path / "b.txt.gz", "wb") as f:
        f.write(b"three \xff doc\n")
    assert read_corpus(tmp_path / "a.txt") == ["one doc", "two doc"]
    assert read_corpus(tmp_path / "b.txt.gz") == ["three \ufffd doc"]
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "x.txt").write_text("a whole\nfile is one document")
    (folder / "sub" / "y.txt").write_text("another")
    assert sorted(read_corpus(folder)) == ["a whole\nfile is one document", "another"]
    stats = describe_corpus(tmp_path / "b.txt.gz")
    assert stats == {"files": 1, "documents": 1, "words": 3, "invalid_utf8": 1}
    assert describe_corpus(folder)["documents"] == 2
    assert isinstance(corpus_dataset(folder), tf.data.Dataset)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        corpus_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No .txt or .gz files"):
        corpus_dataset(tmp_path / "empty")


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


def test_a_repeated_text_stream_is_the_same_when_resumed_by_skipping():
    # A resumed fine-tune skips the batches of its done epochs: the batches after must be
    # those an uninterrupted run draws (each pass shuffled by its own seed).
    ids = np.zeros((70, 12), np.int32)
    for i in range(70):
        ids[i, : 1 + i % 12] = i + 5
    labels = np.arange(70) % 2

    def firsts(stream, n):
        return [tuple(inputs["token_ids"].numpy()[:, 0]) for inputs, _ in stream.take(n)]

    stream = make_text_dataset(ids, labels, batch_size=8, shuffle=True, seed=3, repeat=True)
    whole = firsts(stream, 40)  # several passes (about 12 batches a pass)
    resumed = firsts(
        make_text_dataset(ids, labels, batch_size=8, shuffle=True, seed=3, repeat=True).skip(25),
        15,
    )
    assert resumed == whole[25:]
    assert whole[:12] != whole[12:24]  # the passes are shuffled differently


def test_label_map_for_a_head_defaults_to_ids_and_checks_the_count():
    assert LabelMap.for_classes(None, 3).names == ["0", "1", "2"]
    assert LabelMap.for_classes(("neg", "pos"), 2).names == ["neg", "pos"]
    with pytest.raises(ValueError, match="3 label_names for num_classes=2"):
        LabelMap.for_classes(["a", "b", "c"], 2)
