"""Text normalisation and the WordPiece tokenizer: SST-2 form, robustness, save/load."""

import pytest

tf = pytest.importorskip("tensorflow")

from ptft_keras.data.tokenizer import (  # noqa: E402
    CLS_ID,
    PAD_ID,
    RESERVED_TOKENS,
    SEP_ID,
    TextEncoder,
    load_tokenizer,
    make_tokenizer,
    normalize_text,
    save_tokenizer,
    train_tokenizer,
)

pytestmark = pytest.mark.tf_only

CORPUS = [
    "a great movie !",
    "do n't waste your time .",
    "it 's a bad , bad film",
    "the acting is great and the story is good",
    "i 'm not sure it 's worth it",
    "can the movie be bad ? ca n't say",
] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS, vocabulary_size=80)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Great movie!", "great movie !"),
        ("I don't like it.", "i do n't like it ."),
        ("It's GREAT", "it 's great"),
        ("Can't stop, won't stop", "ca n't stop , wo n't stop"),
        ("We'll see; they're/you've (maybe)", "we 'll see ; they 're/you 've ( maybe )"),
        ("It\u2019s fine\u2026 ok...", "it 's fine\u2026 ok ..."),
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
        ("", ""),
        (
            "Mr. Hill paid 10,000 in the U.S. for 3.5 years.",
            "mr. hill paid 10,000 in the u.s. for 3.5 years .",
        ),
        ("What a...", "what a ..."),
        ("CAF\u00c9 na\u00efve \u65e5\u672c\u8a9e!", "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e !"),
    ],
)
def test_normalize_text_matches_sst2_form(raw, expected):
    assert normalize_text(raw).numpy().decode("utf-8") == expected


def test_normalize_text_leaves_sst2_text_unchanged():
    sst = "if you 've ever entertained the notion , what sex with strangers shows may put you off ."
    assert normalize_text(sst).numpy().decode() == sst


def test_sst2_dev_sentences_are_a_fixed_point(shared_data_dir):
    from ptft_keras.data.datasets.sst2 import load_sst2

    sentences, _ = load_sst2("dev", data_dir=f"{shared_data_dir}/sst2")
    normalized = [t.decode("utf-8") for t in normalize_text(list(sentences)).numpy()]
    assert normalized == [s.strip() for s in sentences]


def test_normalize_text_handles_invalid_utf8_and_long_text():
    out = normalize_text([b"\xff\xfebad", "x" * 50_000]).numpy()
    assert out[0].decode("utf-8").endswith("bad")
    assert len(out[1]) == 4000  # cut to MAX_CHARS, no error


def test_normalize_text_runs_in_a_graph():
    ds = tf.data.Dataset.from_tensor_slices(["Hello, World!", "It's"]).map(normalize_text)
    assert [t.decode() for t in ds.as_numpy_iterator()] == ["hello , world !", "it 's"]


def test_train_tokenizer_reserved_ids_and_known_words(tokenizer):
    vocabulary = tokenizer.get_vocabulary()
    assert tuple(vocabulary[: len(RESERVED_TOKENS)]) == RESERVED_TOKENS
    assert vocabulary[PAD_ID] == "[PAD]"
    assert 5 < tokenizer.vocabulary_size() <= 80
    assert "movie" in vocabulary


def test_text_encoder_packs_normalises_and_truncates(tokenizer):
    encoder = TextEncoder(tokenizer, sequence_length=8)
    out = encoder(["Great movie!", "", "movie " * 1000, "\u65e5\u672c\u8a9e \u00e9"])
    ids, mask = out["token_ids"].numpy(), out["padding_mask"].numpy()
    assert ids.shape == (4, 8) and mask.shape == (4, 8)
    movie = tokenizer.token_to_id("movie")
    assert list(ids[0][:5]) == [
        CLS_ID,
        tokenizer.token_to_id("great"),
        movie,
        tokenizer.token_to_id("!"),
        SEP_ID,
    ]
    assert list(ids[1][:3]) == [CLS_ID, SEP_ID, PAD_ID]  # empty string -> [CLS] [SEP]
    assert list(ids[2]) == [CLS_ID] + [movie] * 6 + [SEP_ID]  # long text truncated
    assert (ids[3][:2] == [CLS_ID, ids[3][1]]).all() and mask[3].sum() >= 3
    assert (mask == (ids != PAD_ID)).all()
    # Same ids when the text is already in SST-2 form: one normalisation for both.
    assert (encoder(["great movie !"])["token_ids"].numpy()[0] == ids[0]).all()


def test_text_encoder_works_in_tf_data_and_on_a_scalar(tokenizer):
    encoder = TextEncoder(tokenizer, sequence_length=6)
    batch = next(iter(tf.data.Dataset.from_tensor_slices(CORPUS).batch(4).map(encoder)))
    assert batch["token_ids"].shape == (4, 6)
    assert encoder("a great movie")["token_ids"].shape == (6,)


def test_save_and_load_tokenizer(tmp_path, tokenizer):
    save_tokenizer(tokenizer, str(tmp_path / "tok"))
    loaded = load_tokenizer(str(tmp_path / "tok"))
    assert loaded.get_vocabulary() == tokenizer.get_vocabulary()
    text = ["it 's a great movie"]
    assert (
        TextEncoder(loaded, 10)(text)["token_ids"].numpy()
        == TextEncoder(tokenizer, 10)(text)["token_ids"].numpy()
    ).all()


def test_tokenizer_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary"):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="reserved tokens"):
        make_tokenizer(["a", "b", "c", "d", "e", "f"])
    with pytest.raises(ValueError, match="vocabulary_size"):
        train_tokenizer(CORPUS, vocabulary_size=3)
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer([], vocabulary_size=50)
    with pytest.raises(ValueError, match="sequence_length"):
        TextEncoder(make_tokenizer(list(RESERVED_TOKENS) + ["a"]), 2)


@pytest.mark.parametrize(
    "normalizer, expected",
    [
        ("sst", "i do n't like it !"),
        ("lower", "i don't like it!"),
        ("none", "I  don't like IT!"),
    ],
)
def test_normalizers(normalizer, expected):
    out = normalize_text(["I  don't like IT!"], normalizer=normalizer)
    assert out.numpy()[0].decode() == expected


def test_tokenizer_records_its_normalizer_and_the_encoder_applies_it(tmp_path):
    from ptft_keras.data.tokenizer import TextEncoder, load_tokenizer, save_tokenizer

    texts = ["Great Movie", "great movie", "GREAT", "awful film"] * 5
    cased = train_tokenizer(texts, vocabulary_size=40, normalizer="none")
    assert cased.normalizer == "none" and "G" in cased.get_vocabulary()  # upper case kept
    save_tokenizer(cased, tmp_path)
    reloaded = load_tokenizer(tmp_path)
    assert reloaded.normalizer == "none"
    ids = TextEncoder(reloaded, 8)(["Great", "great"])["token_ids"].numpy()
    assert (ids[0] != ids[1]).any()  # case is kept: different ids
    lower = train_tokenizer(texts, vocabulary_size=40, normalizer="lower")
    ids = TextEncoder(lower, 8)(["Great", "great"])["token_ids"].numpy()
    assert (ids[0] == ids[1]).all()
    with pytest.raises(ValueError, match="normalizer must be one of"):
        train_tokenizer(texts, vocabulary_size=40, normalizer="upper")
