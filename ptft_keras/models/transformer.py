"""`TransformerBackbone`: a GPT-2-style (causal) or BERT-style (bidirectional) encoder stack.

    token_ids -> token_embedding + position_embedding -> dropout
              -> block_0 ... block_{L-1} (pre-norm, see `TransformerBlock`)
              -> final_norm -> (batch, seq, hidden)

Inputs are a dict `{"token_ids": int (batch, seq), "padding_mask": bool/int (batch, seq)}`
(1 = real token), as in keras-hub. Sequences may be shorter than `max_sequence_length`,
never longer. `backbone.token_embedding` is a `keras.layers.ReversibleEmbedding`, so task
heads tie their output projection to it: `backbone.token_embedding(h, reverse=True)`.

Variable paths (what weight transfer and LoRA target): `token_embedding/embeddings`,
`position_embedding/embeddings`, `block_{i}/...` (see `ptft_keras.layers.transformer_block`),
`final_norm/{gamma,beta}`.
"""

import math

import keras

from ptft_keras.layers.embeddings import PositionEmbedding
from ptft_keras.layers.transformer_block import TransformerBlock

# Each preset says why it has the values it has.
PRESETS = {
    "tiny": dict(
        vocabulary_size=64,  # a handful of ids: unit tests only, builds in well under 1 s
        num_layers=2,  # two blocks: enough to test stacking, names and causality across blocks
        num_heads=2,  # more than one head, so the head split/merge is exercised
        hidden_dim=16,  # divisible by num_heads; tiny weights keep tests fast
        intermediate_dim=32,  # 2 x hidden: smallest MLP that still widens
        max_sequence_length=32,  # covers every test sequence
    ),
    "small": dict(
        vocabulary_size=8192,  # fits a WordPiece/BPE vocabulary trained on SST-2-sized text
        num_layers=4,  # ~3.3M non-embedding params: trains in minutes on a laptop CPU
        num_heads=4,  # head size 64, the size attention kernels are tuned for
        hidden_dim=256,  # 4 heads x 64
        intermediate_dim=1024,  # GPT-2 ratio: 4 x hidden
        max_sequence_length=128,  # SST-2 sentences are < 60 word pieces; attention cost ~seq^2
    ),
    "gpt2_small": dict(
        vocabulary_size=50304,  # GPT-2's 50,257 BPE ids padded up to a multiple of 64 so the
        # output matmul tiles evenly on tensor cores (nanoGPT's trick, ~free speed-up)
        num_layers=12,  # GPT-2 small (124M) layout, Radford et al. 2019
        num_heads=12,  # head size 64
        hidden_dim=768,
        intermediate_dim=3072,  # 4 x hidden
        max_sequence_length=1024,  # GPT-2's context window
    ),
}


def residual_output_initializer(num_layers, stddev=0.02):
    """GPT-2 init for projections that write into the residual stream: N(0, 0.02/sqrt(2L))."""
    return keras.initializers.RandomNormal(stddev=stddev / math.sqrt(2 * num_layers))


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, received {value!r}.")


@keras.saving.register_keras_serializable(package="ptft_keras")
class TransformerBackbone(keras.Model):
    """Token + position embedding, `num_layers` pre-norm blocks, final LayerNorm.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of `TransformerBlock`s (named `block_0` ...).
        num_heads: attention heads; must divide `hidden_dim`.
        hidden_dim: width of the residual stream.
        intermediate_dim: width of each block's MLP.
        max_sequence_length: longest input sequence (size of the position table).
        dropout: rate for embeddings and residual branches (0 for pretraining at scale).
        causal: True for a decoder (next-token LM), False for a bidirectional encoder (MLM,
            classification).
        adapter_dim: if > 0, bottleneck adapters of that width in every block.
        attention_padding_mask: True (default) masks padded keys in attention, correct for
            any padding. False (causal backbones only) leaves attention purely causal: exact
            for right-padded batches - padding comes after every real token, which causal
            attention never looks at - and the fastest path on GPU (cuDNN's causal flash
            kernel without a (batch, 1, seq, seq) mask bias and its gradient). Wrong for
            left padding. `generate` pads on the right, so it is safe there.
        layer_norm_epsilon: LayerNorm epsilon.
        dtype: dtype policy for all sublayers (e.g. `"mixed_bfloat16"`); None = global.

    Example:
        >>> backbone = TransformerBackbone.from_preset("tiny", causal=False)
        >>> hidden = backbone({"token_ids": ids, "padding_mask": ids != 0})  # (b, s, 16)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length,
        dropout=0.0,
        causal=True,
        adapter_dim=0,
        attention_padding_mask=True,
        layer_norm_epsilon=1e-5,
        dtype=None,
        **kwargs,
    ):
        _check_int("vocabulary_size", vocabulary_size, minimum=2)
        _check_int("num_layers", num_layers)
        _check_int("num_heads", num_heads)
        _check_int("hidden_dim", hidden_dim)
        _check_int("intermediate_dim", intermediate_dim)
        _check_int("max_sequence_length", max_sequence_length)
        _check_int("adapter_dim", adapter_dim, minimum=0)
        if hidden_dim % num_heads != 0:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` ({num_heads})."
            )
        if not attention_padding_mask and not causal:
            raise ValueError(
                "attention_padding_mask=False needs causal=True: a bidirectional model would "
                "attend to padding."
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"`dropout` must be a float in [0, 1), received {dropout!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), received {dropout!r}.")

        # === Layers ===
        init = keras.initializers.RandomNormal(stddev=0.02)  # GPT-2 / nanoGPT init
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            tie_weights=True,
            embeddings_initializer=init,
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            max_sequence_length, initializer=init, dtype=dtype, name="position_embedding"
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_blocks = [
            TransformerBlock(
                num_heads,
                intermediate_dim,
                dropout=dropout,
                causal=causal,
                adapter_dim=adapter_dim,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=init,
                output_kernel_initializer=residual_output_initializer(num_layers),
                dtype=dtype,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_norm"
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # (batch, seq, hidden)
        positions = self.position_embedding(tokens)  # (batch, seq, hidden)
        x = self.embeddings_dropout(self.embeddings_add([tokens, positions]))
        attention_mask = padding_mask if attention_padding_mask else None
        for block in self.transformer_blocks:
            x = block(x, padding_mask=attention_mask)  # (batch, seq, hidden)
        outputs = self.final_norm(x)
        # A fixed default name keeps variable keys (`backbone/block_0/...`, what transfer and
        # LoRA adapter files use) the same in every session, not `transformer_backbone_3`.
        kwargs.setdefault("name", "backbone")
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=outputs,
            dtype=dtype,
            **kwargs,
        )
        if dtype is not None:  # a functional model keeps the global policy (as keras-hub's
            self.dtype_policy = keras.dtype_policies.get(dtype)  # Backbone, set it here)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.causal = bool(causal)
        self.adapter_dim = adapter_dim
        self.attention_padding_mask = bool(attention_padding_mask)
        self.layer_norm_epsilon = layer_norm_epsilon

    def get_config(self):
        # Not chained to the functional config: the constructor rebuilds the graph.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "causal": self.causal,
            "adapter_dim": self.adapter_dim,
            "attention_padding_mask": self.attention_padding_mask,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    @classmethod
    def presets(cls):
        """Names of the built-in presets."""
        return sorted(PRESETS)

    @classmethod
    def preset_config(cls, name):
        """The constructor arguments of preset `name` (a copy)."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(PRESETS)}.")
        return dict(PRESETS[name])

    @classmethod
    def from_preset(cls, name, **overrides):
        """A randomly initialised backbone with preset `name`'s sizes; `overrides` replace
        or add constructor arguments, e.g. `from_preset("small", causal=False, dropout=0.1)`.
        (No pretrained weights ship with these presets: there is no download.)"""
        config = cls.preset_config(name)
        config.update(overrides)
        return cls(**config)
