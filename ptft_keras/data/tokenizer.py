"""Text normalisation and a WordPiece tokenizer trained on the pretraining corpus.

One pipeline runs everywhere: training (`tf.data`), evaluation and the exported
SavedModel (inside the serving graph):

    raw text --normalize_text--> SST-2 style text --WordPiece--> ids --pack--> model inputs

`normalize_text` runs one of three normalizers, TensorFlow string ops only, so it runs
inside graphs; the tokenizer records which one it was trained with (`tokenizer.json`)
and applies the same one in training, evaluation and the export:

- `"sst"`: text as people type it ("Great movie!", "don't", "It's") -> SST-2's
  lower-cased, space-tokenised form ("great movie !", "do n't", "it 's");
- `"lower"`: lower-case and collapse whitespace;
- `"none"`: keep the text (case included); only invalid UTF-8 and length are handled.

All three replace invalid UTF-8 with U+FFFD and cut texts to `MAX_CHARS` characters.

The tokenizer is keras-hub's `WordPieceTokenizer` (tf-text ops; the well-kept
implementation); its vocabulary is trained by the Hugging Face `tokenizers` WordPiece
trainer (a keras-hub dependency, much faster than keras-hub's own trainer).
Serving a SavedModel that contains it needs `import tensorflow_text` in the loading
process (it registers the ops).
"""

import json
import os

import keras_hub
import tensorflow as tf

# Reserved tokens come first, so their ids are fixed: [PAD] must be 0 (padding).
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[MASK]", "[CLS]", "[SEP]")
PAD_ID, UNK_ID, MASK_ID, CLS_ID, SEP_ID = range(len(RESERVED_TOKENS))
# Longer inputs are cut (in characters) before tokenising: bounds the work per string;
# the packer then truncates to the model's sequence length. Never an error.
MAX_CHARS = 4000
VOCAB_FILE = "vocabulary.txt"
NORMALIZERS = ("sst", "lower", "none")
CONFIG_FILE = "tokenizer.json"

# (pattern, replacement) pairs applied in order with RE2 (`tf.strings.regex_replace`).
_RULES = (
    # Typographic quotes and apostrophes -> ASCII.
    ("[\u2018\u2019\u02bc]", "'"),
    ("[\u201c\u201d]", '"'),
    # Penn-Treebank contractions as in SST: "don't" -> "do n't", "can't" -> "ca n't".
    (r"([a-z])n't\b", r"\1 n't"),
    (r"([a-z])'(s|m|d|re|ve|ll)\b", r"\1 '\2"),
    # Keep "...", "10,000", "3.5", "mr.", "u.s." whole (as SST does): hide their marks.
    (r"\.\.\.", " \x04 "),
    (r"(\d),(\d)", "\\1\x02\\2"),
    (r"(\d)\.(\d)", "\\1\x03\\2"),
    (r"\b(mr|mrs|ms|dr|st|vs|jr|sr|bros|etc|no|[a-z])\.", "\\1\x03"),
    # Detach punctuation from words: "movie!" -> "movie !", "(good)" -> "( good )".
    (r"([.,!?;:()\[\]{}\"])", r" \1 "),
    ("\x02", ","),
    ("\x03", "."),
    ("\x04", "..."),
    # Whitespace runs (tabs, newlines) -> one space.
    (r"\s+", " "),
)


def check_normalizer(normalizer):
    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {NORMALIZERS}, got {normalizer!r}.")
    return normalizer


def normalizer_rules(normalizer):
    """The RE2 `(pattern, replacement)` pairs `normalize_text` applies after lower-casing
    (none for `"none"`, which does not lower-case either)."""
    check_normalizer(normalizer)
    return {"sst": _RULES, "lower": _RULES[-1:], "none": ()}[normalizer]  # lower: whitespace


def normalize_text(texts, max_chars=MAX_CHARS, normalizer="sst"):
    """Normalize raw strings for the tokenizer (TF ops only; module docstring).

    Args:
        texts: string tensor (any shape) or Python str / list of str.
        max_chars: texts are cut to this many characters first (never an error).
        normalizer: `"sst"` (default), `"lower"` or `"none"`.

    Returns:
        A string tensor of the same shape. Invalid UTF-8 bytes become U+FFFD; non-ASCII
        letters are kept (lower-cased); empty strings stay empty.
    """
    check_normalizer(normalizer)
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    # Replace invalid UTF-8 instead of failing in the unicode ops below.
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    texts = tf.strings.substr(texts, 0, max_chars, unit="UTF8_CHAR")
    if normalizer == "none":
        return texts
    texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in normalizer_rules(normalizer):
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    return tf.strings.strip(texts)


def train_tokenizer(texts, vocabulary_size=8000, normalizer="sst"):
    """Train a WordPiece vocabulary on `texts` (iterable of str or a string tf.data set).

    Texts are passed through `normalize_text(..., normalizer=normalizer)` first, exactly
    as at inference time. Returns a keras-hub `WordPieceTokenizer` whose first ids are
    `RESERVED_TOKENS` and whose `normalizer` attribute records the normalizer.
    """
    check_normalizer(normalizer)
    if not isinstance(vocabulary_size, int) or vocabulary_size <= len(RESERVED_TOKENS):
        raise ValueError(
            f"vocabulary_size must be an int > {len(RESERVED_TOKENS)} (the reserved "
            f"tokens); got {vocabulary_size!r}"
        )
    if isinstance(texts, tf.data.Dataset):
        dataset = texts
    else:
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("train_tokenizer needs at least one text; got an empty corpus")
        dataset = tf.data.Dataset.from_tensor_slices(texts)
    dataset = dataset.batch(1024).map(
        lambda t: normalize_text(t, max_chars=50_000, normalizer=normalizer)
    )
    normalized = (text.decode("utf-8") for batch in dataset.as_numpy_iterator() for text in batch)
    # The Hugging Face `tokenizers` WordPiece trainer (Rust; a keras-hub dependency):
    # 10,000 IMDb reviews in 7 s, where keras-hub's `compute_word_piece_vocabulary`
    # (tf-text's learner) took 90 s for 2,000. Its BertPreTokenizer splits on whitespace
    # and punctuation, as keras-hub's WordPieceTokenizer does at tokenisation time.
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    trainer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    trainer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer.train_from_iterator(
        normalized,
        trainers.WordPieceTrainer(
            vocab_size=vocabulary_size,
            special_tokens=list(RESERVED_TOKENS),  # ids 0..4, in this order
            limit_alphabet=500,  # rare characters become [UNK], not vocabulary entries
            continuing_subword_prefix="##",
        ),
    )
    vocabulary = [token for token, _ in sorted(trainer.get_vocab().items(), key=lambda kv: kv[1])]
    return make_tokenizer(vocabulary, normalizer)


def make_tokenizer(vocabulary, normalizer="sst"):
    """A keras-hub `WordPieceTokenizer` for `vocabulary` (list of str or a file path).

    `tokenizer.normalizer` (a plain attribute: keras-hub's tokenizer has no such option)
    names the `normalize_text` normalizer that `TextEncoder` and the export apply first.
    """
    check_normalizer(normalizer)
    if isinstance(vocabulary, str):
        with open(vocabulary, encoding="utf-8") as f:
            # One token a line, split on "\n" only: `splitlines` also splits on "\x1c",
            # "\x85", "\u2028", ..., which can be tokens, and would shift every later id.
            vocabulary = f.read().split("\n")[:-1]
    vocabulary = list(vocabulary)
    if tuple(vocabulary[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
        raise ValueError(
            f"vocabulary must start with the reserved tokens {list(RESERVED_TOKENS)}; "
            f"got {vocabulary[: len(RESERVED_TOKENS)]}"
        )
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, lowercase=False, strip_accents=False, oov_token="[UNK]"
    )
    tokenizer.normalizer = normalizer
    return tokenizer


def tokenizer_normalizer(tokenizer):
    """The normalizer a tokenizer was trained with (`"sst"` for tokenizers made before
    normalizers were recorded)."""
    return getattr(tokenizer, "normalizer", "sst")


def save_tokenizer(tokenizer, directory):
    """Write `vocabulary.txt` (one token per line) and `tokenizer.json` to `directory`."""
    os.makedirs(directory, exist_ok=True)
    vocabulary = tokenizer.get_vocabulary()
    with open(os.path.join(directory, VOCAB_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    config = {
        "vocabulary_size": len(vocabulary),
        "reserved_tokens": list(RESERVED_TOKENS),
        "normalizer": tokenizer_normalizer(tokenizer),
    }
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return directory


def load_tokenizer(directory):
    """Load a tokenizer written by `save_tokenizer`; clear error if files are missing."""
    path = os.path.join(directory, VOCAB_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no tokenizer vocabulary at {path!r}; expected a directory written by "
            "save_tokenizer (vocabulary.txt + tokenizer.json)"
        )
    config_path = os.path.join(directory, CONFIG_FILE)
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    tokenizer = make_tokenizer(path, config.get("normalizer", "sst"))
    if config:
        expected = config["vocabulary_size"]
        if expected != tokenizer.vocabulary_size():
            raise ValueError(
                f"{path!r} has {tokenizer.vocabulary_size()} tokens but {config_path!r} "
                f"says vocabulary_size={expected}; the files do not belong together"
            )
    return tokenizer


class TextEncoder:
    """Raw strings -> `{"token_ids", "padding_mask"}` of shape (batch, sequence_length).

    normalize (the tokenizer's normalizer) -> WordPiece -> `[CLS] tokens [SEP]` -> pad
    with `[PAD]` (id 0). Long texts
    are truncated (keeping `[SEP]`). Pure TF ops: use it in `Dataset.map` and inside
    `tf.function`s (the export graph).
    """

    def __init__(self, tokenizer, sequence_length):
        if not isinstance(sequence_length, int) or sequence_length < 3:
            raise ValueError(
                f"sequence_length must be an int >= 3 ([CLS], a token, [SEP]); "
                f"got {sequence_length!r}"
            )
        self.tokenizer = tokenizer
        self.normalizer = tokenizer_normalizer(tokenizer)
        self.sequence_length = sequence_length
        self.packer = keras_hub.layers.StartEndPacker(
            sequence_length=sequence_length,
            start_value=CLS_ID,
            end_value=SEP_ID,
            pad_value=PAD_ID,
            return_padding_mask=True,
        )

    def __call__(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 0:
            outputs = self._encode(texts[tf.newaxis])
            return {key: value[0] for key, value in outputs.items()}
        return self._encode(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def _encode(self, texts):
        # A tf.function: keras-hub layers return plain tf tensors here (called eagerly
        # they would convert ragged outputs to Python lists).
        # Cut long texts early (2 * sequence_length words is plenty of WordPieces).
        texts = normalize_text(texts, normalizer=self.normalizer)
        words = tf.strings.split(texts)[:, : 2 * self.sequence_length]
        token_ids = self.tokenizer(tf.strings.reduce_join(words, axis=-1, separator=" "))
        token_ids, padding_mask = self.packer(tf.cast(token_ids, "int32"))
        return {"token_ids": token_ids, "padding_mask": padding_mask}
