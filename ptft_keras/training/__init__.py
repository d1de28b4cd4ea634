"""Training: strategies, fault-tolerant callbacks, schedules, optimizers and recipes."""

from ptft_keras._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        [
            "get_strategy",
            "STRATEGY_NAMES",
            "add_strategy_arguments",
            "check_global_batch_size",
            "xla_option",
            "task_info",
        ],
        "ptft_keras.training.strategies",
    ),
    **dict.fromkeys(["training_callbacks", "EpochLogger"], "ptft_keras.training.callbacks"),
    "tfidf_logistic_regression": "ptft_keras.training.baselines",
    **dict.fromkeys(
        ["AtomicBackupAndRestore", "CorruptCheckpointError", "save_on_chief"],
        "ptft_keras.training.checkpointing",
    ),
    **dict.fromkeys(["warmup_then_decay", "WarmupLinearDecay"], "ptft_keras.training.schedules"),
    **dict.fromkeys(
        ["LayerwiseAdamW", "layerwise_lr_multipliers", "transformer_lr_groups"],
        "ptft_keras.training.layerwise_lr",
    ),
    **dict.fromkeys(
        [
            "pretrain_autoencoder",
            "finetune_classifier",
            "self_train",
            "pseudo_label",
            "ShiftedBatches",
        ],
        "ptft_keras.training.recipes",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
