"""Models: autoencoders, classifiers, Transformer backbone and its LM/classification tasks.

Imported eagerly (keras.ops only, no TensorFlow) so that importing `ptft_keras` registers
every model class for `keras.saving.load_model` (`.keras` files, also the ones
`transfer_weights` reads). `ptft_keras.models.hub` (keras-hub text backbones) is not
imported here: it imports keras-hub; import it to use or load those.
"""

from ptft_keras.models.autoencoder import (
    Autoencoder,
    build_conv_autoencoder,
    build_dense_autoencoder,
)
from ptft_keras.models.causal_lm import CausalLM
from ptft_keras.models.classifier import Classifier
from ptft_keras.models.consistency import ConsistencyTrainer
from ptft_keras.models.contrastive import (
    build_projection_head,
    image_augmentation,
    nt_xent_loss,
)
from ptft_keras.models.heads import (
    SparseCategoricalHinge,
    build_classification_head,
    classification_loss,
)
from ptft_keras.models.masked_lm import MaskedLM
from ptft_keras.models.text_classifier import TextClassifier
from ptft_keras.models.text_ensemble import TextEnsemble
from ptft_keras.models.transformer import TransformerBackbone

__all__ = [
    "Autoencoder",
    "CausalLM",
    "Classifier",
    "ConsistencyTrainer",
    "MaskedLM",
    "SparseCategoricalHinge",
    "TextClassifier",
    "TextEnsemble",
    "TransformerBackbone",
    "build_classification_head",
    "build_conv_autoencoder",
    "build_dense_autoencoder",
    "build_projection_head",
    "classification_loss",
    "image_augmentation",
    "nt_xent_loss",
]
