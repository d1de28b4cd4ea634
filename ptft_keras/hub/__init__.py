"""keras-hub as one adapter: what is specific to keras-hub models lives here.

Not imported by `import ptft_keras`: importing keras-hub takes seconds and loads
TensorFlow and tensorflow_text even on the JAX backend. The generic code finds this
package only when a keras-hub model comes in (`ptft_keras.training.parts.parts_of`).

    parts    the parts description of keras-hub classifiers (head, units, adapters, LoRA)
"""
