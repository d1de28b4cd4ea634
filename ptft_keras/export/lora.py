"""Merge a LoRA model for serving and prove the merge changed nothing.

`check_lora_export(model, x, output_dir, name)` does what a LoRA user must check before
serving: merge the adapters into the kernels (`ptft_keras.peft.merge_lora`), compare the
merged model's outputs with the LoRA model's on `x`, save the adapter file (with the
head), and export the merged model as a SavedModel (Keras `model.export`) whose reloaded
outputs are compared too. Returns the figures as a dict.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from ptft_keras.peft.lora import merge_lora, save_lora_weights


def check_lora_export(lora_model, x, output_dir, name, head=("head/*",)):
    """Merge, save the adapters, export and reload; max |difference| at each step.

    Args:
        lora_model: a model with LoRA-enabled layers.
        x: inputs to compare on (an array, or a dict of arrays for text models).
        output_dir: where `<name>_lora.npz` and the SavedModel `<name>_lora_merged` go.
        head: variable patterns saved with the adapters (the freshly trained head).
    """
    merged = merge_lora(lora_model)
    logits = lora_model.predict(x, batch_size=256, verbose=0)
    result = {
        "merged_max_abs_diff": float(
            np.max(np.abs(merged.predict(x, batch_size=256, verbose=0) - logits))
        )
    }
    os.makedirs(output_dir, exist_ok=True)
    adapter_file = os.path.join(output_dir, f"{name}_lora.npz")
    save_lora_weights(lora_model, adapter_file, extra=head)
    result["adapter_file_bytes"] = os.path.getsize(adapter_file)
    path = os.path.join(output_dir, f"{name}_lora_merged")
    if isinstance(x, dict):
        merged.export(path, verbose=False)
        reloaded = tf.saved_model.load(path)  # keep a reference while serving
        served = reloaded.serve({k: tf.constant(v) for k, v in x.items()})
    else:
        spec = [keras.InputSpec(shape=(None,) + x.shape[1:], dtype="float32")]
        merged.export(path, input_signature=spec, verbose=False)
        reloaded = tf.saved_model.load(path)
        served = reloaded.serve(tf.constant(x))
    result["savedmodel_lora_variables"] = sum("lora" in v.name for v in reloaded.variables)
    result["savedmodel_max_abs_diff"] = float(np.max(np.abs(np.asarray(served) - logits)))
    return result
