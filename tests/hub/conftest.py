"""Tiny keras-hub presets written with keras-hub's own `save_to_preset` (no downloads).

BERT: `ptft_keras.models.hub_presets.random_bert_preset` (a WordPiece vocabulary computed
by `keras_hub.tokenizers.compute_word_piece_vocabulary` on 200 SST-2 training sentences).
GPT-2: a byte-level BPE (256 byte symbols + merges) trained by the `tokenizers` library on
the same sentences. Both: 1-2 layers, hidden 16.
"""

import os

import pytest

tf = pytest.importorskip("tensorflow")
keras_hub = pytest.importorskip("keras_hub")

SST2 = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "sst2")
SEQ = 24  # packed length in the tests; the backbones allow 32


def sst2_rows(start, stop):
    path = os.path.join(SST2, "train.tsv")
    if not os.path.exists(path):
        pytest.skip(f"offline SST-2 not found at {path}")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:][start:stop]
    return [text for _, text in rows], [int(label) for label, _ in rows]


@pytest.fixture(scope="session")
def sst2_texts():
    """(train texts, train labels, held-out texts)."""
    texts, labels = sst2_rows(0, 200)
    held_out, _ = sst2_rows(200, 264)
    return texts, labels, held_out


@pytest.fixture(scope="session")
def bert_preset(tmp_path_factory, sst2_texts):
    from ptft_keras.models.hub_presets import random_bert_preset

    path = str(tmp_path_factory.mktemp("presets") / "tiny_bert")
    shape = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32)
    random_bert_preset(path, sst2_texts[0], 400, dropout=0.0, max_sequence_length=32, **shape)
    return path


@pytest.fixture(scope="session")
def gpt2_preset(tmp_path_factory, sst2_texts):
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sst2_texts[0], vocab_size=400, special_tokens=["<|endoftext|>"])
    vocab = bpe.get_vocab()
    state = __import__("json").loads(bpe._tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocab, merges=merges)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=len(vocab),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
        dropout=0.0,
    )
    path = str(tmp_path_factory.mktemp("presets") / "tiny_gpt2")
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    return path
