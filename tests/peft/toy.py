"""A tiny 2-block transformer-shaped model for the fine-tuning tests.

Its layer paths follow `TransformerBackbone`'s (`block_0/attention/qkv`,
`block_0/mlp/output`, `block_0/attention_adapter`, ...), so the same patterns work on both.
`reverse=True` creates every block's sublayers in the opposite order, giving the same
paths but a different `model.weights` order (for order-independence tests).
"""

import keras
from keras import ops

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter


@keras.saving.register_keras_serializable(package="ptft_keras_tests")
class ToyAttention(keras.layers.Layer):
    def __init__(self, dim, reverse=False, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.reverse = dim, reverse
        make_qkv = lambda: keras.layers.EinsumDense("bsd,dk->bsk", (None, 3 * dim), name="qkv")
        make_out = lambda: keras.layers.Dense(dim, name="output")
        if reverse:
            self.out, self.qkv = make_out(), make_qkv()
        else:
            self.qkv, self.out = make_qkv(), make_out()

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.out.build(input_shape)

    def call(self, x):  # (batch, seq, dim)
        q, k, v = ops.split(self.qkv(x), 3, axis=-1)
        scores = ops.softmax(ops.einsum("bqd,bkd->bqk", q, k), axis=-1)
        return self.out(ops.einsum("bqk,bkd->bqd", scores, v))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "reverse": self.reverse}


@keras.saving.register_keras_serializable(package="ptft_keras_tests")
class ToyMLP(keras.layers.Layer):
    def __init__(self, dim, reverse=False, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.reverse = dim, reverse
        make_in = lambda: keras.layers.Dense(2 * dim, activation="relu", name="intermediate")
        make_out = lambda: keras.layers.Dense(dim, name="output")
        if reverse:
            self.out, self.inter = make_out(), make_in()
        else:
            self.inter, self.out = make_in(), make_out()

    def build(self, input_shape):
        self.inter.build(input_shape)
        self.out.build(tuple(input_shape[:-1]) + (2 * self.dim,))

    def call(self, x):
        return self.out(self.inter(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "reverse": self.reverse}


@keras.saving.register_keras_serializable(package="ptft_keras_tests")
class ToyBlock(keras.layers.Layer):
    def __init__(self, dim, adapter_dim=0, reverse=False, **kwargs):
        super().__init__(**kwargs)
        parts = [
            ("attention", lambda: ToyAttention(dim, reverse, name="attention")),
            ("mlp", lambda: ToyMLP(dim, reverse, name="mlp")),
            ("norm", lambda: keras.layers.LayerNormalization(name="norm")),
        ]
        if adapter_dim:
            parts += [
                (
                    "attention_adapter",
                    lambda: BottleneckAdapter(adapter_dim, name="attention_adapter"),
                ),
                ("mlp_adapter", lambda: BottleneckAdapter(adapter_dim, name="mlp_adapter")),
            ]
        for attr, make in reversed(parts) if reverse else parts:
            setattr(self, attr, make())
        self.dim, self.adapter_dim, self.reverse = dim, adapter_dim, reverse

    def build(self, input_shape):
        for layer in (self.attention, self.mlp, self.norm):
            layer.build(input_shape)
        if self.adapter_dim:
            self.attention_adapter.build(input_shape)
            self.mlp_adapter.build(input_shape)

    def call(self, x):
        h = self.attention(x)
        if self.adapter_dim:
            h = self.attention_adapter(h)
        x = self.norm(x + h)
        h = self.mlp(x)
        if self.adapter_dim:
            h = self.mlp_adapter(h)
        return x + h

    def get_config(self):
        config = {"dim": self.dim, "adapter_dim": self.adapter_dim, "reverse": self.reverse}
        return {**super().get_config(), **config}


def build_toy_model(dim=8, seq=4, num_blocks=2, num_classes=3, adapter_dim=0, reverse=False):
    """Input (batch, seq, dim) -> embedding Dense -> blocks -> mean pool -> head Dense."""
    inputs = keras.Input((seq, dim), name="features")
    x = keras.layers.Dense(dim, name="embedding")(inputs)
    order = list(range(num_blocks))
    blocks = {
        i: ToyBlock(dim, adapter_dim, reverse, name=f"block_{i}")
        for i in (reversed(order) if reverse else order)
    }
    for i in order:
        x = blocks[i](x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name="toy")


def toy_data(n=32, dim=8, seq=4, num_classes=3, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, seq, dim)).astype("float32")
    y = rng.integers(0, num_classes, size=(n,))
    return x, y
