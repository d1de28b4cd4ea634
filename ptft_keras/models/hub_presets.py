"""Local keras-hub presets with random weights: the offline stand-in for a downloaded one.

    random_bert_preset("models/bert_tiny_random", texts)   # BERT-Tiny's shape, random
    mlm = hub_masked_lm("models/bert_tiny_random")          # the path a real preset takes

keras-hub's `from_preset` needs a network for a preset *name*; a directory written by its
own `save_to_preset` loads the same way offline. This writes one: a `BertBackbone` of
`bert_tiny_en_uncased`'s shape (Turc et al. 2019: 2 layers, width 128, 2 heads, 512
feed-forward) with random weights, and a lowercasing WordPiece `BertTokenizer` whose
vocabulary keras-hub's `compute_word_piece_vocabulary` learns from `texts`. Continued
pretraining (`hub_masked_lm`, `ptft pretrain text --backbone DIR`) then starts from zero
knowledge: what a user downloading `bert_tiny_en_uncased` would start from, minus its
pretraining on Wikipedia and books.
"""

import keras
import keras_hub

# bert_tiny_en_uncased's shape (keras-hub's preset config); max length 128, not 512: the
# toolkit's recipes never pack longer rows, and a shorter position table is cheaper.
BERT_TINY = dict(
    num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512, max_sequence_length=128
)


def random_bert_preset(directory, texts, vocabulary_size=4000, seed=0, dropout=0.1, **shape):
    """Write a random-weight BERT preset with a WordPiece vocabulary learned on `texts`.

    Args:
        directory: where keras-hub's `save_to_preset` writes (`config.json`,
            `model.weights.h5`, `tokenizer.json`, `assets/`).
        texts: a list of strings or a `tf.data.Dataset` of them.
        vocabulary_size: the target size; keras-hub's trainer only approximates it
            (the real size is `len(vocabulary)`, returned).
        seed: the backbone's initialisation.
        dropout: the backbone's dropout rate.
        **shape: overrides of `BERT_TINY` (`num_layers`, `hidden_dim`, ...).

    Returns:
        `(directory, vocabulary)`.
    """
    import tensorflow as tf  # not at module level: the model path stays TensorFlow-free

    unknown = sorted(set(shape) - set(BERT_TINY))
    if unknown:
        raise ValueError(f"Unknown BERT shape argument(s) {unknown}; expected {sorted(BERT_TINY)}.")
    if not isinstance(texts, tf.data.Dataset):
        if len(texts) == 0:
            raise ValueError("texts is empty: the WordPiece vocabulary needs some text.")
        texts = tf.data.Dataset.from_tensor_slices(list(texts))  # a list = file names to it
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        texts.batch(1000), vocabulary_size, lowercase=True
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), dropout=dropout, **{**BERT_TINY, **shape}
    )
    backbone.save_to_preset(directory)
    tokenizer.save_to_preset(directory)
    return directory, vocabulary
