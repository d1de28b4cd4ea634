"""The toolkit tokenizer in portable form, for runtimes without TensorFlow (LiteRT, ONNX).

LiteRT and ONNX cannot hold the tokenizer as TensorFlow ops (the WordPiece op is a tf-text
custom op; the pip LiteRT interpreter and onnxruntime run neither), so a text export ships
the model on token ids plus a `tokenizer/` directory:

    tokenizer/
      vocabulary.txt   one WordPiece token a line (line number = id)
      tokenizer.json   the normalisation written out: normalizer, max_chars, sequence_length,
                       the lower-case table, the regex rules, the word-splitting character
                       classes, max_bytes_per_word (also readable by `load_tokenizer`)
      encode.py        `reference_encoder.py`: plain Python + numpy, no TensorFlow

The tables are computed here with the very TensorFlow ops the toolkit runs (`tf.strings.lower`
and keras-hub's RE2 classes over every code point), so the reference encoder does not depend
on the Unicode version of the Python that runs it. `write_portable_tokenizer` then loads the
written `encode.py` and checks that its ids equal `TextEncoder`'s on the given texts.
"""

import functools
import importlib.util
import json
import os
import shutil

import numpy as np
import tensorflow as tf
from keras_hub.src.tokenizers import word_piece_tokenizer as hub_wordpiece

from ptft_keras.data.tokenizer import (
    CONFIG_FILE,
    MAX_CHARS,
    TextEncoder,
    normalizer_rules,
    save_tokenizer,
    tokenizer_normalizer,
)

ENCODER_SOURCE = os.path.join(os.path.dirname(__file__), "reference_encoder.py")
ENCODER_FILE = "encode.py"
RE2_ASCII_SPACE = r"[\t\n\f\r ]"  # RE2's `\s`: ASCII, and no \v (Python's `\s` has more)


@functools.lru_cache(maxsize=1)
def _code_points():
    codes = np.array([c for c in range(0x110000) if not 0xD800 <= c < 0xE000])
    return codes, tf.constant([chr(c).encode("utf-8") for c in codes])


@functools.lru_cache(maxsize=1)
def lowercase_table():
    """`{code point: lower-cased text}` wherever `tf.strings.lower` changes a character."""
    codes, chars = _code_points()
    lowered = tf.strings.lower(chars, encoding="utf-8").numpy()
    return {
        str(c): low.decode("utf-8")
        for c, low in zip(codes.tolist(), lowered, strict=True)
        if c != 0 and low.decode("utf-8") != chr(c)  # NUL: the encoder ends the text there
    }


@functools.lru_cache(maxsize=1)
def split_classes():
    """keras-hub's word splitting as code point ranges: `drop` (whitespace, control and
    format characters) and `keep` (punctuation and CJK: a word each)."""
    codes, chars = _code_points()
    keep = tf.strings.regex_full_match(chars, hub_wordpiece.PUNCTUATION_AND_CJK_REGEX).numpy()
    split = tf.strings.regex_full_match(chars, hub_wordpiece.WHITESPACE_PUNCTUATION_AND_CJK_REGEX)
    drop = split.numpy() & ~keep
    return {"drop": _ranges(codes[drop]), "keep": _ranges(codes[keep])}


def _ranges(codes):
    """Sorted code points -> `[[first, last], ...]` runs."""
    if len(codes) == 0:
        return []
    breaks = np.flatnonzero(np.diff(codes) != 1)
    firsts = np.concatenate([codes[:1], codes[breaks + 1]])
    lasts = np.concatenate([codes[breaks], codes[-1:]])
    return [[int(a), int(b)] for a, b in zip(firsts, lasts, strict=True)]


def portable_rules(normalizer):
    """The normalizer's RE2 rules in Python `re` syntax (compiled with `re.ASCII`, which
    gives RE2's ASCII `\\b` and `\\d`; `\\s` is spelled out as RE2's set)."""
    return [[p.replace(r"\s", RE2_ASCII_SPACE), r] for p, r in normalizer_rules(normalizer)]


def write_portable_tokenizer(tokenizer, directory, sequence_length, check_texts=()):
    """Write `vocabulary.txt`, `tokenizer.json` and `encode.py` to `directory` (module
    docstring), then check that `encode.py`'s ids equal `TextEncoder`'s on `check_texts`
    (a `ValueError` naming the first text that differs). Returns the directory."""
    save_tokenizer(tokenizer, directory)
    config_path = os.path.join(directory, CONFIG_FILE)
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    normalizer = tokenizer_normalizer(tokenizer)
    config.update(
        sequence_length=int(sequence_length),
        max_chars=MAX_CHARS,
        max_bytes_per_word=hub_wordpiece.MAX_BYTES_PER_WORD,
        rules=portable_rules(normalizer),
        lowercase={} if normalizer == "none" else lowercase_table(),
        split=split_classes(),
    )
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False)
    shutil.copyfile(ENCODER_SOURCE, os.path.join(directory, ENCODER_FILE))
    if check_texts:
        check_reference_encoder(directory, TextEncoder(tokenizer, sequence_length), check_texts)
    return directory


def load_reference_encoder(directory):
    """The `Encoder` of the `encode.py` written to `directory`, imported from that file."""
    spec = importlib.util.spec_from_file_location(
        "ptft_reference_encoder", os.path.join(directory, ENCODER_FILE)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Encoder(directory)


def check_reference_encoder(directory, text_encoder, texts):
    """Raise `ValueError` unless the written encoder's ids equal `text_encoder`'s."""
    texts = list(texts)
    expected = text_encoder(texts)
    got = load_reference_encoder(directory)(texts, text_encoder.sequence_length)
    for key in ("token_ids", "padding_mask"):
        want = np.asarray(expected[key]).astype("int32")
        rows = np.flatnonzero(np.any(want != got[key], axis=1))
        if rows.size:
            i = int(rows[0])
            raise ValueError(
                f"the reference encoder's {key} differ from the toolkit tokenizer's on "
                f"{rows.size} of {len(texts)} texts, first {texts[i][:80]!r}: "
                f"{got[key][i].tolist()} != {want[i].tolist()}"
            )
