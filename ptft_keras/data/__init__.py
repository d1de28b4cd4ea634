"""Data: images (arrays, folders, TFDS), text (tables, corpora), tokenizer, LM pipelines,
seeded splits, and thin adapters for MNIST, SST-2 and IMDb (`ptft_keras.data.datasets`).

Every module here uses TensorFlow (tf.data).
"""

from ptft_keras.data.images import (
    ImageFolder,
    image_dataset,
    images_from_arrays,
    infer_image_spec,
    load_images,
    load_tfds_images,
    scan_image_folder,
    write_image_folder,
)
from ptft_keras.data.language_modeling import (
    MaskGenerator,
    bert_masking,
    causal_lm_dataset,
    causal_lm_inputs,
    make_mask_generator,
    masked_lm_dataset,
    masked_lm_inputs,
)
from ptft_keras.data.splits import Split, make_dataset, sample_few_labels, split_dataset
from ptft_keras.data.text import (
    LabeledTexts,
    corpus_dataset,
    describe_corpus,
    make_text_dataset,
    read_corpus,
    read_table,
)
from ptft_keras.data.tokenizer import (
    TextEncoder,
    load_tokenizer,
    normalize_text,
    save_tokenizer,
    train_tokenizer,
)
from ptft_keras.specs import ImageSpec, LabelMap

__all__ = [
    "Split",
    "make_dataset",
    "sample_few_labels",
    "split_dataset",
    "ImageFolder",
    "ImageSpec",
    "LabelMap",
    "LabeledTexts",
    "MaskGenerator",
    "TextEncoder",
    "bert_masking",
    "causal_lm_dataset",
    "causal_lm_inputs",
    "corpus_dataset",
    "describe_corpus",
    "image_dataset",
    "images_from_arrays",
    "infer_image_spec",
    "load_images",
    "load_tfds_images",
    "load_tokenizer",
    "make_mask_generator",
    "make_text_dataset",
    "masked_lm_dataset",
    "masked_lm_inputs",
    "normalize_text",
    "read_corpus",
    "read_table",
    "save_tokenizer",
    "scan_image_folder",
    "train_tokenizer",
    "write_image_folder",
]
