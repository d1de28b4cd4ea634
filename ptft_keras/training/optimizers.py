"""Optimizer factories: the AdamW that every text phase and LM pretraining uses.

    optimizer = adamw(1e-4, total_steps)                      # warmup + cosine, clipped
    optimizer = adamw(1e-4, total_steps, model, layer_decay=0.8)   # + LLRD
    optimizer = time_budget_adamw(2e-3)   # its rate set each step by TimeBudgetSchedule

Schedules live in `schedules.py`, layer-wise multipliers in `layerwise_lr.py`.
"""

import keras

from ptft_keras.training.layerwise_lr import (
    LayerwiseAdamW,
    layerwise_lr_multipliers,
    transformer_lr_groups,
)
from ptft_keras.training.schedules import warmup_then_decay

WEIGHT_DECAY = 0.01  # AdamW's decoupled decay, BERT's value
CLIPNORM = 1.0  # gradient norm clipping: keeps the first LM steps stable


def adamw(peak, total_steps, model=None, layer_decay=1.0):
    """AdamW + warmup-then-cosine over `total_steps`; with `layer_decay` < 1 (a
    `TransformerBackbone` model), lower blocks train slower (LLRD, `LayerwiseAdamW`)."""
    # A single step (a table smaller than two batches, one epoch): the peak, no schedule.
    rate = warmup_then_decay(peak, total_steps) if total_steps >= 2 else peak
    kwargs = dict(learning_rate=rate, weight_decay=WEIGHT_DECAY)
    if layer_decay == 1.0:
        return keras.optimizers.AdamW(clipnorm=CLIPNORM, **kwargs)
    groups = transformer_lr_groups(model.backbone.num_layers)
    multipliers = layerwise_lr_multipliers(model, groups, layer_decay)
    return LayerwiseAdamW(lr_multipliers=multipliers, clipnorm=CLIPNORM, **kwargs)


def time_budget_adamw(peak):
    """The same AdamW with a plain rate, for a run stopped by time: `TimeBudgetSchedule`
    (training/callbacks.py) sets the rate from the elapsed share of the budget."""
    return keras.optimizers.AdamW(peak, weight_decay=WEIGHT_DECAY, clipnorm=CLIPNORM)
