"""Pre-norm transformer block (GPT-2 / nanoGPT layout), built for speed.

    x = x + dropout(adapter?(attention(layer_norm(x))))
    x = x + dropout(adapter?(mlp(layer_norm(x))))

Sublayer names are stable because weight transfer and LoRA address variables by path:

    block_i/attention_norm          LayerNormalization
    block_i/attention/qkv           EinsumDense, kernel (hidden, 3 * hidden), columns [q | k | v]
    block_i/attention/output        EinsumDense, kernel (hidden, hidden)
    block_i/attention_adapter       BottleneckAdapter (only when adapter_dim > 0)
    block_i/mlp_norm                LayerNormalization
    block_i/mlp/intermediate        Dense (hidden -> intermediate), tanh-approximate gelu
    block_i/mlp/output              Dense (intermediate -> hidden)
    block_i/mlp_adapter             BottleneckAdapter (only when adapter_dim > 0)

Speed choices: one fused QKV matmul instead of three; `keras.ops.dot_product_attention`,
which on JAX + a recent NVIDIA GPU dispatches to the cuDNN flash-attention kernel (bf16 /
fp16 inputs) and skips the masked half of a causal matrix; no dropout on attention
probabilities (that would rule the fused kernel out) - dropout acts on the residual
branches and the embeddings instead. Every sublayer receives the block's dtype policy, so
`keras.config.set_dtype_policy("mixed_bfloat16")` runs matmuls in bf16 while
LayerNorm and softmax keep float32 statistics.
"""

import keras
from keras import ops

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, received {value!r}.")


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), received {value!r}.")


class _ProjectionPair(keras.layers.Layer):
    """What attention and the MLP share: an input and an output projection with their own
    initializers (GPT-2 scales the output one down with depth), shape-preserving."""

    def __init__(
        self,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "output_kernel_initializer": keras.initializers.serialize(
                    self.output_kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="ptft_keras")
class FusedSelfAttention(_ProjectionPair):
    """Multi-head self-attention with one fused QKV projection.

    Args:
        num_heads: number of attention heads; must divide the hidden size.
        causal: if True position t attends only to positions <= t.
        kernel_initializer: initializer of the QKV projection.
        output_kernel_initializer: initializer of the output projection (GPT-2 scales it
            down with depth, see `TransformerBackbone`).

    Call arguments:
        inputs: `(batch, seq, hidden)`.
        padding_mask: optional `(batch, seq)` bool/int, 1 (True) for real tokens. Keys at
            padded positions receive no attention.
    """

    def __init__(self, num_heads, causal=True, **kwargs):
        super().__init__(**kwargs)  # kernel_initializer, output_kernel_initializer, ...
        _check_positive_int("num_heads", num_heads)
        self.num_heads = num_heads
        self.causal = bool(causal)

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim is None or hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"The hidden size ({hidden_dim}) must be divisible by num_heads ({self.num_heads})."
            )
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        # 2-D kernels (like GPT-2's c_attn / c_proj) keep LoRA and weight ports simple.
        self.qkv = keras.layers.EinsumDense(
            "btd,de->bte",
            output_shape=(None, 3 * hidden_dim),
            bias_axes="e",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="qkv",
        )
        self.qkv.build(input_shape)
        self.attention_output = keras.layers.EinsumDense(
            "btd,de->bte",
            output_shape=(None, hidden_dim),
            bias_axes="e",
            kernel_initializer=self.output_kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.attention_output.build(input_shape)
        self.built = True

    def call(self, inputs, padding_mask=None):
        batch, seq = ops.shape(inputs)[0], ops.shape(inputs)[1]
        qkv = self.qkv(inputs)  # (batch, seq, 3 * hidden)
        qkv = ops.reshape(qkv, (batch, seq, 3, self.num_heads, self.head_dim))
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (batch, seq, heads, hd)
        mask = None
        if padding_mask is not None:
            # (batch, 1, seq_q, seq_k): cuDNN wants a full query axis, not a broadcast 1.
            mask = ops.cast(padding_mask, "bool")[:, None, None, :]
            mask = ops.broadcast_to(mask, (batch, 1, seq, seq))
        attended = ops.dot_product_attention(
            query, key, value, mask=mask, is_causal=self.causal
        )  # (batch, seq, heads, head_dim)
        attended = ops.reshape(attended, (batch, seq, self.hidden_dim))
        return self.attention_output(attended)  # (batch, seq, hidden)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "causal": self.causal}


@keras.saving.register_keras_serializable(package="ptft_keras")
class FeedForward(_ProjectionPair):
    """Position-wise MLP: `output(gelu(intermediate(x)))` with tanh-approximate gelu."""

    def __init__(self, intermediate_dim, **kwargs):
        super().__init__(**kwargs)  # kernel_initializer, output_kernel_initializer, ...
        _check_positive_int("intermediate_dim", intermediate_dim)
        self.intermediate_dim = intermediate_dim

    def build(self, input_shape):
        self.intermediate = keras.layers.Dense(
            self.intermediate_dim,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self.intermediate.build(input_shape)
        self.dense_output = keras.layers.Dense(
            input_shape[-1],
            kernel_initializer=self.output_kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.dense_output.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs):
        x = self.intermediate(inputs)  # (batch, seq, intermediate)
        x = ops.gelu(x, approximate=True)  # GPT-2's gelu; cheaper than the erf form
        return self.dense_output(x)  # (batch, seq, hidden)

    def get_config(self):
        return {**super().get_config(), "intermediate_dim": self.intermediate_dim}


@keras.saving.register_keras_serializable(package="ptft_keras")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer block: LN -> self-attention -> residual; LN -> MLP -> residual.

    Args:
        num_heads: attention heads (must divide the hidden size).
        intermediate_dim: width of the MLP (GPT-2: 4 x hidden).
        dropout: rate on both residual branches (not on attention probabilities).
        causal: causal (decoder, GPT) or bidirectional (encoder, BERT) attention.
        adapter_dim: if > 0, a `BottleneckAdapter(adapter_dim)` follows the attention output
            and the MLP output (`attention_adapter`, `mlp_adapter`), Houlsby et al. 2019.
        layer_norm_epsilon: LayerNorm epsilon (GPT-2 uses 1e-5).
        kernel_initializer / output_kernel_initializer: initializers of the input-side and
            residual-output-side projections.

    Call arguments:
        inputs: `(batch, seq, hidden)`; padding_mask: optional `(batch, seq)`, 1 = real token.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        causal=True,
        adapter_dim=0,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        output_kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive_int("num_heads", num_heads)
        _check_positive_int("intermediate_dim", intermediate_dim)
        _check_rate("dropout", dropout)
        if isinstance(adapter_dim, bool) or not isinstance(adapter_dim, int) or adapter_dim < 0:
            raise ValueError(f"`adapter_dim` must be an int >= 0, received {adapter_dim!r}.")
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.causal = bool(causal)
        self.adapter_dim = adapter_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer)
        self.supports_masking = False  # the padding mask is passed explicitly

        # === Layers ===
        policy = self.dtype_policy
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="attention_norm"
        )
        self.attention = FusedSelfAttention(
            num_heads,
            causal=causal,
            kernel_initializer=self.kernel_initializer,
            output_kernel_initializer=self.output_kernel_initializer,
            dtype=policy,
            name="attention",
        )
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="mlp_norm"
        )
        self.mlp = FeedForward(
            intermediate_dim,
            kernel_initializer=self.kernel_initializer,
            output_kernel_initializer=self.output_kernel_initializer,
            dtype=policy,
            name="mlp",
        )
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=policy, name="attn_drop")
        self.mlp_dropout = keras.layers.Dropout(dropout, dtype=policy, name="mlp_drop")
        self.attention_adapter = self.mlp_adapter = None
        if adapter_dim > 0:
            self.attention_adapter = BottleneckAdapter(
                adapter_dim, dtype=policy, name="attention_adapter"
            )
            self.mlp_adapter = BottleneckAdapter(adapter_dim, dtype=policy, name="mlp_adapter")

    def build(self, input_shape):
        for layer in (self.attention_norm, self.attention, self.mlp_norm, self.mlp):
            layer.build(input_shape)
        for adapter in (self.attention_adapter, self.mlp_adapter):
            if adapter is not None:
                adapter.build(input_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None):
        x = inputs  # (batch, seq, hidden)
        branch = self.attention(self.attention_norm(x), padding_mask=padding_mask)
        if self.attention_adapter is not None:
            branch = self.attention_adapter(branch, training=training)
        x = x + self.attention_dropout(branch, training=training)
        branch = self.mlp(self.mlp_norm(x))
        if self.mlp_adapter is not None:
            branch = self.mlp_adapter(branch, training=training)
        return x + self.mlp_dropout(branch, training=training)  # (batch, seq, hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "causal": self.causal,
                "adapter_dim": self.adapter_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "output_kernel_initializer": keras.initializers.serialize(
                    self.output_kernel_initializer
                ),
            }
        )
        return config
