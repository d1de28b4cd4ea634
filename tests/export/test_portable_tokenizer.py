"""The portable tokenizer of LiteRT / ONNX text exports: `encode.py` (plain Python, no
TensorFlow) gives the toolkit tokenizer's ids on SST-2 and on constructed texts."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from ptft_keras.data.tokenizer import TextEncoder, load_tokenizer, train_tokenizer
from ptft_keras.export.portable_tokenizer import (
    check_reference_encoder,
    load_reference_encoder,
    write_portable_tokenizer,
)

pytestmark = pytest.mark.tf_only
SEQ = 24

CONSTRUCTED = [
    "",
    "   ",
    "Great movie!",
    "I don't like it. It's BAD... 10,000 people, 3.5 stars, Mr. Smith in the U.S.",
    "\u201cQuoted\u201d \u2018single\u2019 it\u02bcs",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c9T\u00c9 Stra\u00dfe \u1e9e",
    "\u65e5\u672c\u8a9e\u306e\u6620\u753b \u4e2d\u6587 \ud55c\uad6d\uc5b4",
    "emoji \U0001f600\U0001f44d\U0001f3fd family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\u039f\u0394\u039f\u03a3 \u0130stanbul \u0418\u0413\u0420\u0410 \u2c2f \U00010570",
    "tabs\tand\nnew\r\nlines\vvertical\fform \x1c\x1f sep \x85 nel \u00a0 nbsp \u3000 ideo",
    "zero\u200bwidth\ufeffbom soft\u00adhyphen",
    "nul \x00 inside the text",
    "a" * 150 + " " + "\u00e9" * 60,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "(brackets) [square] {curly} <angle> $5 ^caret `tick` ~tilde ... ?!",
    "word " * 5000,
    "\u00e9l\u00e8ve " * 20_000,  # 120k characters: cut at max_chars
    "x" * 100_000,
]
INVALID_UTF8 = [b"bad \xff byte", b"cut \xe2\x82", b"\xed\xa0\x80 surrogate", b"ok \xc3\xa9"]


def sst2_sentences(data_dir, n=300):
    """`n` SST-2 dev sentences, also re-cased and re-punctuated as people type them."""
    with open(os.path.join(data_dir, "sst2", "dev.tsv"), encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = [row["content"] for row in reader][: n // 2]
    typed = [
        s.capitalize().replace(" n't", "n't").replace(" 's", "'s").replace(" ,", ",") for s in rows
    ]
    return rows + typed


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    corpus = [t for t in CONSTRUCTED[:15]] * 2 + [
        "the movie is great , i love it .",
        "a dull , boring film that never works",
        "it 's not bad at all",
    ] * 5
    return train_tokenizer(corpus, vocabulary_size=300)


def test_encoder_equals_the_toolkit_tokenizer_on_constructed_texts(tokenizer, tmp_path):
    directory = write_portable_tokenizer(tokenizer, str(tmp_path / "tok"), SEQ)
    texts = CONSTRUCTED + INVALID_UTF8
    check_reference_encoder(directory, TextEncoder(tokenizer, SEQ), texts)  # raises if not
    got = load_reference_encoder(directory)(texts)
    assert got["token_ids"].shape == (len(texts), SEQ) and got["token_ids"].dtype == np.int32
    assert (got["token_ids"][:, 0] == 3).all()  # [CLS] first, also for the empty text
    assert np.unique(got["token_ids"]).size > 30  # real tokens, not all [UNK]


@pytest.mark.parametrize("normalizer", ["lower", "none"])
def test_other_normalizers(normalizer, tmp_path):
    corpus = [t for t in CONSTRUCTED[:15] if "\x00" not in t]  # a "\x00" token: tf-text fails
    tok = train_tokenizer(corpus, vocabulary_size=200, normalizer=normalizer)
    directory = write_portable_tokenizer(tok, str(tmp_path / normalizer), SEQ)
    check_reference_encoder(directory, TextEncoder(tok, SEQ), CONSTRUCTED + INVALID_UTF8)


def test_encoder_equals_the_toolkit_tokenizer_on_sst2(shared_data_dir, tmp_path):
    texts = sst2_sentences(shared_data_dir)
    tok = train_tokenizer(texts, vocabulary_size=1000)
    directory = write_portable_tokenizer(tok, str(tmp_path / "tok"), 48, check_texts=texts)
    assert len(texts) == 300
    ids = load_reference_encoder(directory)(texts)["token_ids"]
    assert (ids == 1).mean() < 0.01  # mostly known words


def test_a_different_encoder_is_caught(tokenizer, tmp_path):
    directory = write_portable_tokenizer(tokenizer, str(tmp_path / "tok"), SEQ)
    other = train_tokenizer(["completely different words only"] * 3, vocabulary_size=80)
    with pytest.raises(ValueError, match="reference encoder's token_ids differ"):
        check_reference_encoder(directory, TextEncoder(other, SEQ), CONSTRUCTED[:5])


def test_files_load_without_tensorflow_and_as_a_toolkit_tokenizer(tokenizer, tmp_path):
    directory = write_portable_tokenizer(tokenizer, str(tmp_path / "tok"), SEQ)
    assert load_tokenizer(directory).get_vocabulary() == tokenizer.get_vocabulary()
    script = (
        "import sys, encode; out = encode.Encoder()(['Great movie!']); "
        "print(out['token_ids'][0].tolist(), 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=directory, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    expected = TextEncoder(tokenizer, SEQ)(["Great movie!"])["token_ids"][0].numpy().tolist()
    assert result.stdout.split("]")[0] + "]" == str(expected)
    assert result.stdout.strip().endswith("False")  # TensorFlow never imported
