"""Data: MNIST (TFDS / keras.datasets / IDX / bundled), SST-2, tokenizer, LM pipelines.

Every module here uses TensorFlow (tf.data); names load on first use.
"""

from ptft_keras._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["load_mnist"], "ptft_keras.data.mnist"),
    **dict.fromkeys(
        ["MnistSplit", "split_dataset", "sample_few_labels", "make_dataset"],
        "ptft_keras.data.splits",
    ),
    **dict.fromkeys(
        [
            "causal_lm_inputs",
            "causal_lm_dataset",
            "masked_lm_inputs",
            "masked_lm_dataset",
            "make_mask_generator",
            "MaskGenerator",
            "bert_masking",
        ],
        "ptft_keras.data.language_modeling",
    ),
    **dict.fromkeys(
        [
            "load_sst2",
            "load_pretraining_corpus",
            "load_imdb",
            "sample_label_budget",
            "make_text_dataset",
        ],
        "ptft_keras.data.sst2",
    ),
    **dict.fromkeys(
        ["normalize_text", "train_tokenizer", "save_tokenizer", "load_tokenizer", "TextEncoder"],
        "ptft_keras.data.tokenizer",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
