"""Parameter-efficient fine-tuning: LoRA, BitFit, adapters, trainable-parameter reports.

`set_trainable`, `trainable_keys`, `count_parameters` and `print_trainable_parameters`
live in `ptft_keras.variables` (the trainability primitive every package shares) and are
re-exported here, where PEFT users look for them.
"""

from ptft_keras.peft.lora import (
    TRANSFORMER_TARGETS,
    apply_lora,
    load_lora_weights,
    lora_layers,
    merge_lora,
    save_lora_weights,
)
from ptft_keras.peft.methods import (
    adapter_tuning,
    bitfit,
    full_finetuning,
    linear_probe,
    with_adapters,
)
from ptft_keras.variables import (
    count_parameters,
    print_trainable_parameters,
    set_trainable,
    trainable_keys,
)

__all__ = [
    "TRANSFORMER_TARGETS",
    "adapter_tuning",
    "apply_lora",
    "bitfit",
    "count_parameters",
    "full_finetuning",
    "linear_probe",
    "load_lora_weights",
    "lora_layers",
    "merge_lora",
    "print_trainable_parameters",
    "save_lora_weights",
    "set_trainable",
    "trainable_keys",
    "with_adapters",
]
