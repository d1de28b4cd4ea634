"""`MaskedLM`: BERT-style masked-token model = bidirectional `TransformerBackbone` + head.

    hidden    = backbone({"token_ids", "padding_mask"})             # (batch, seq, hidden)
    selected  = hidden at mask_positions                             # (batch, M, hidden)
    logits    = LN(gelu(Dense(selected))) @ token_embedding.T + bias  # (batch, M, vocab)

Only the M selected positions go through the vocabulary projection (M ~ 15% of seq), as
in BERT and keras-hub's `MaskedLMHead`: the largest matmul of the model shrinks ~6x. Build
inputs with `ptft_keras.data.language_modeling.masked_lm_inputs` / `masked_lm_dataset`
(keras-hub's `MaskedLMMaskGenerator`: 15% of non-special tokens, 80/10/10): x carries
`mask_positions`, y the original ids there, and sample_weight is 1 only for real
selections, so the loss covers exactly the selected positions.
"""

import keras
from keras import ops

from ptft_keras.layers.mlm_head import GatherPositions, VocabularyBias
from ptft_keras.models.task import BackboneTask, lm_compile_defaults
from ptft_keras.models.transformer import TransformerBackbone


@keras.saving.register_keras_serializable(package="ptft_keras")
class MaskedLM(BackboneTask, keras.Model):
    """Masked language model over a bidirectional `TransformerBackbone`, tied embeddings.

    Args:
        backbone: a `TransformerBackbone` built with `causal=False`.
        head_activation: activation of the head's transform layer (BERT: gelu).

    Inputs: `{"token_ids", "padding_mask", "mask_positions": int (batch, M)}`.
    Output: float32 logits `(batch, M, vocab)` for the tokens at `mask_positions`.
    """

    def __init__(self, backbone, head_activation="gelu", **kwargs):
        if not isinstance(backbone, TransformerBackbone):
            raise ValueError(
                f"`backbone` must be a TransformerBackbone, received {type(backbone).__name__}."
            )
        if backbone.causal:
            raise ValueError(
                "MaskedLM needs a bidirectional backbone (causal=False): a masked token is "
                "predicted from both sides. Received a causal backbone."
            )
        dtype = backbone.dtype_policy
        # === Layers ===
        self.backbone = backbone
        self.gather = GatherPositions(dtype=dtype, name="mlm_gather")
        self.head_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation=head_activation,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=dtype,
            name="mlm_head_dense",
        )
        self.head_norm = keras.layers.LayerNormalization(
            epsilon=backbone.layer_norm_epsilon, dtype=dtype, name="mlm_head_norm"
        )
        self.head_bias = VocabularyBias(dtype=dtype, name="mlm_head_bias")

        # === Functional model ===
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        hidden = backbone(
            {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
        )
        selected = self.gather(hidden, inputs["mask_positions"])  # (batch, M, hidden)
        selected = self.head_norm(self.head_dense(selected))
        logits = backbone.token_embedding(selected, reverse=True)  # (batch, M, vocab), tied
        logits = ops.cast(self.head_bias(logits), "float32")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.head_activation = head_activation

    def compile(self, optimizer="auto", loss="auto", weighted_metrics="auto", **kwargs):
        """Defaults: AdamW(3e-4, weight decay 0.01), sparse CE on logits, accuracy weighted
        by the selection weights (so padding of the selection list never counts)."""
        super().compile(**lm_compile_defaults(optimizer, loss, weighted_metrics), **kwargs)

    def get_config(self):
        return self.task_config(head_activation=self.head_activation)
