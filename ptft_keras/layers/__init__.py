"""Reusable layers (keras.ops only, every backend): Transformer block, embeddings, adapters,
noise, cosine logits, a colour-invariant image input, sequence pooling, token reversal
(backward LMs), the masked-LM head pieces and the strong views of consistency training
(images and tokens)."""

from ptft_keras.layers.background_distance import BackgroundDistance
from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.layers.cosine_logits import CosineLogits
from ptft_keras.layers.embeddings import PositionEmbedding
from ptft_keras.layers.image_augmentation import StrongAugment
from ptft_keras.layers.mlm_head import GatherPositions, VocabularyBias
from ptft_keras.layers.noise import MaskingNoise
from ptft_keras.layers.pooling import SequencePooling
from ptft_keras.layers.reverse_tokens import ReverseTokens
from ptft_keras.layers.token_augmentation import TokenAugmentation
from ptft_keras.layers.transformer_block import FeedForward, FusedSelfAttention, TransformerBlock

__all__ = [
    "BackgroundDistance",
    "BottleneckAdapter",
    "CosineLogits",
    "FeedForward",
    "FusedSelfAttention",
    "GatherPositions",
    "MaskingNoise",
    "PositionEmbedding",
    "ReverseTokens",
    "SequencePooling",
    "StrongAugment",
    "TokenAugmentation",
    "TransformerBlock",
    "VocabularyBias",
]
