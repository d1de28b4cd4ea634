"""Parameter-efficient fine-tuning: LoRA, BitFit, adapters, trainable-parameter reports."""

from ptft_keras._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ["set_trainable", "trainable_keys", "count_parameters", "print_trainable_parameters"],
        "ptft_keras.peft.core",
    ),
    **dict.fromkeys(
        ["linear_probe", "full_finetuning", "bitfit", "adapter_tuning"], "ptft_keras.peft.methods"
    ),
    **dict.fromkeys(
        [
            "apply_lora",
            "save_lora_weights",
            "load_lora_weights",
            "merge_lora",
            "lora_layers",
            "TRANSFORMER_TARGETS",
        ],
        "ptft_keras.peft.lora",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
