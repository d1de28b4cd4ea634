"""Training: strategies, fault-tolerant callbacks, schedules, optimizers, comparisons.

Everything here imports without TensorFlow (the GPU machines run Keras on JAX with no
TensorFlow installed); the recipes are in `ptft_keras.training.recipes`.
"""

from ptft_keras.training.baselines import tfidf_logistic_regression
from ptft_keras.training.callbacks import EpochLogger, training_callbacks
from ptft_keras.training.checkpointing import (
    AtomicBackupAndRestore,
    CorruptCheckpointError,
    save_on_chief,
)
from ptft_keras.training.layerwise_lr import (
    LayerwiseAdamW,
    layerwise_lr_multipliers,
    transformer_lr_groups,
)
from ptft_keras.training.schedules import WarmupLinearDecay, warmup_then_decay
from ptft_keras.training.strategies import (
    STRATEGY_NAMES,
    add_strategy_arguments,
    check_global_batch_size,
    get_strategy,
    task_info,
    xla_option,
)

__all__ = [
    "STRATEGY_NAMES",
    "AtomicBackupAndRestore",
    "CorruptCheckpointError",
    "EpochLogger",
    "LayerwiseAdamW",
    "WarmupLinearDecay",
    "add_strategy_arguments",
    "check_global_batch_size",
    "get_strategy",
    "layerwise_lr_multipliers",
    "save_on_chief",
    "task_info",
    "tfidf_logistic_regression",
    "training_callbacks",
    "transformer_lr_groups",
    "warmup_then_decay",
    "xla_option",
]
