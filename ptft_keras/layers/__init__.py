"""Layers: Transformer block, position embedding, bottleneck adapter (keras.ops only)."""

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.layers.embeddings import PositionEmbedding
from ptft_keras.layers.transformer_block import FeedForward, FusedSelfAttention, TransformerBlock

__all__ = [
    "BottleneckAdapter",
    "FeedForward",
    "FusedSelfAttention",
    "PositionEmbedding",
    "TransformerBlock",
]
