"""Reusable layers (keras.ops only, every backend): Transformer block, embeddings, adapters,
noise, cosine logits, sequence pooling and the masked-LM head pieces."""

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.layers.cosine_logits import CosineLogits
from ptft_keras.layers.embeddings import PositionEmbedding
from ptft_keras.layers.mlm_head import GatherPositions, VocabularyBias
from ptft_keras.layers.noise import MaskingNoise
from ptft_keras.layers.pooling import SequencePooling
from ptft_keras.layers.transformer_block import FeedForward, FusedSelfAttention, TransformerBlock

__all__ = [
    "BottleneckAdapter",
    "CosineLogits",
    "FeedForward",
    "FusedSelfAttention",
    "GatherPositions",
    "MaskingNoise",
    "PositionEmbedding",
    "SequencePooling",
    "TransformerBlock",
    "VocabularyBias",
]
