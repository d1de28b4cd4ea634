"""Houlsby-style bottleneck adapter (Houlsby et al., 2019, "Parameter-Efficient Transfer
Learning for NLP").

    y = x + up(activation(down(x)))

`down` projects the hidden size to a small `bottleneck_dim`, `up` projects back. `up` is
zero-initialised (kernel and bias), so a freshly inserted adapter is the identity: adding
adapters to a pretrained backbone does not change its outputs until they are trained.
Only the adapter (and usually LayerNorm and the head) is trained; see
`ptft_keras.peft.methods.adapter_tuning`.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ptft_keras")
class BottleneckAdapter(keras.layers.Layer):
    """Residual bottleneck adapter: `x + up(act(down(x)))` over the last axis.

    Args:
        bottleneck_dim: width of the bottleneck (positive int), e.g. 8-64 for a hidden
            size of 256-768.
        activation: nonlinearity between the projections (any `keras.activations` name).
        kernel_initializer: initializer of the down projection. The up projection is always
            zero-initialised, which makes the adapter start as the identity.
        dropout: dropout rate on the adapter branch before the residual add.
    """

    def __init__(
        self,
        bottleneck_dim,
        activation="gelu",
        kernel_initializer="glorot_uniform",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(bottleneck_dim, int) or isinstance(bottleneck_dim, bool):
            raise ValueError(
                f"`bottleneck_dim` must be a positive int, received {bottleneck_dim!r}."
            )
        if bottleneck_dim <= 0:
            raise ValueError(f"`bottleneck_dim` must be a positive int, received {bottleneck_dim}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received {dropout}.")
        self.bottleneck_dim = bottleneck_dim
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dropout = dropout
        self.supports_masking = True

        # === Layers ===
        self.down = keras.layers.Dense(
            bottleneck_dim,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="down",
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.up = None  # width known only in build()

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim is None:
            raise ValueError(
                f"BottleneckAdapter needs a known last dimension, received shape {input_shape}."
            )
        self.up = keras.layers.Dense(
            hidden_dim,
            kernel_initializer="zeros",  # identity at insertion time
            bias_initializer="zeros",
            dtype=self.dtype_policy,
            name="up",
        )
        self.down.build(input_shape)
        self.up.build(tuple(input_shape[:-1]) + (self.bottleneck_dim,))
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.activation(self.down(inputs))  # (..., bottleneck)
        hidden = self.dropout_layer(hidden, training=training)
        return ops.add(inputs, self.up(hidden))  # (..., hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottleneck_dim": self.bottleneck_dim,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "dropout": self.dropout,
            }
        )
        return config
