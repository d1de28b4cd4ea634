"""Reference text encoder for LiteRT / ONNX text exports: plain Python + numpy, no TensorFlow.

`ptft_keras.export.portable_tokenizer` copies this file as `tokenizer/encode.py` next to an
exported `.tflite` / `.onnx` text classifier, with `vocabulary.txt` and `tokenizer.json`
(every normalisation rule written out). It turns raw strings into the model's inputs with
the same ids as the toolkit's `TextEncoder` (TensorFlow ops), step by step:

1. invalid UTF-8 -> U+FFFD; cut to `max_chars` characters, and at a NUL character (as
   TensorFlow's string ops do);
2. normalizer "sst" / "lower": lower-case with the written-out table (TensorFlow's mapping,
   and the final-sigma rule), then the `rules` (Python `re`
   patterns, ASCII `\\b` and `\\d`), then strip ASCII whitespace; normalizer "none": nothing;
3. split on ASCII whitespace, keep the first `2 * sequence_length` words;
4. split words on the written-out character classes (whitespace / control / format
   characters are dropped, punctuation and CJK characters become words of their own);
5. WordPiece: greedy longest match, "##" continuations, a word longer than
   `max_bytes_per_word` UTF-8 bytes or with no match -> [UNK];
6. pack: [CLS] tokens[: length - 2] [SEP], padded with [PAD] (id 0) to `sequence_length`.

    from encode import Encoder                 # run from the tokenizer/ directory
    encoder = Encoder()                        # reads the files next to this one
    inputs = encoder(["Great movie!", "Dull."])  # {"token_ids", "padding_mask"}: int32 (N, L)

    python encode.py "Great movie!"           # prints the ids
"""

import bisect
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ASCII_WHITESPACE = " \t\n\v\f\r"


class Encoder:
    """Raw strings -> `{"token_ids", "padding_mask"}` int32 `(N, sequence_length)`."""

    def __init__(self, directory=HERE):
        with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
            config = json.load(f)
        with open(os.path.join(directory, "vocabulary.txt"), encoding="utf-8") as f:
            vocabulary = f.read().split("\n")[:-1]  # not splitlines: "\x85" can be a token
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        self.config = config
        self.sequence_length = config["sequence_length"]
        self.lower = {chr(int(k)): v for k, v in config["lowercase"].items()}
        self.rules = [(re.compile(p, re.ASCII), r) for p, r in config["rules"]]
        # Sorted, non-overlapping [first, last] code point ranges, looked up by bisection.
        self.drop = _ranges(config["split"]["drop"])
        self.keep = _ranges(config["split"]["keep"])
        self.special = {name: self.ids[name] for name in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")}

    def __call__(self, texts, sequence_length=None):
        length = sequence_length or self.sequence_length
        rows = [self.token_ids(text, length) for text in texts]
        token_ids = np.full((len(rows), length), self.special["[PAD]"], "int32")
        for i, row in enumerate(rows):
            token_ids[i, : len(row)] = row
        return {"token_ids": token_ids, "padding_mask": (token_ids != 0).astype("int32")}

    def token_ids(self, text, length):
        """`[CLS] ids [SEP]` (unpadded) for one str or UTF-8 bytes."""
        words = _split(self.normalize(text))[: 2 * length]
        ids = [i for word in words for piece in self.pieces(word) for i in self.wordpiece(piece)]
        return [self.special["[CLS]"], *ids[: length - 2], self.special["[SEP]"]]

    def normalize(self, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        text = text[: self.config["max_chars"]].split("\0", 1)[0]  # TF's ops end it at a NUL
        if self.config["normalizer"] == "none":
            return text
        text = _lower(text, self.lower)
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text.strip(ASCII_WHITESPACE)

    def pieces(self, word):
        """A word cut at dropped characters, with kept characters as pieces of their own."""
        pieces, start = [], 0
        for i, c in enumerate(word):
            keep, drop = _inside(self.keep, ord(c)), _inside(self.drop, ord(c))
            if keep or drop:
                pieces.append(word[start:i])
                pieces.append(c if keep else "")
                start = i + 1
        pieces.append(word[start:])
        return [p for p in pieces if p]

    def wordpiece(self, word):
        if len(word.encode("utf-8")) > self.config["max_bytes_per_word"]:
            return [self.special["[UNK]"]]
        ids, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    ids.append(self.ids[piece])
                    start = end
                    break
            else:
                return [self.special["[UNK]"]]
        return ids


def _lower(text, table):
    """Lower-case with TensorFlow's `table`, plus Unicode's one context rule (TensorFlow
    applies it): a capital sigma that ends a word becomes "\u03c2". Simplified: whether the
    characters beside it are letters is `str.isalpha` (Unicode skips case-ignorable ones)."""
    out = []
    for i, c in enumerate(text):
        if c == "\u03a3" and 0 < i and text[i - 1].isalpha():
            out.append("\u03c2" if not text[i + 1 : i + 2].isalpha() else "\u03c3")
        else:
            out.append(table.get(c, c))
    return "".join(out)


def _split(text):
    """`str.split` on ASCII whitespace only (TensorFlow's `tf.strings.split`)."""
    return [w for w in re.split(f"[{re.escape(ASCII_WHITESPACE)}]+", text) if w]


def _ranges(pairs):
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _inside(ranges, code):
    firsts, lasts = ranges
    i = bisect.bisect_right(firsts, code) - 1
    return i >= 0 and code <= lasts[i]


if __name__ == "__main__":
    encoded = Encoder()(sys.argv[1:])
    for row, mask in zip(encoded["token_ids"], encoded["padding_mask"], strict=True):
        print(" ".join(str(i) for i in row[mask.astype(bool)]))
