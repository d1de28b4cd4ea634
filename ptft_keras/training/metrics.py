"""The one accuracy helper every recipe, comparison, example and test uses."""

import numpy as np


def accuracy(model, x, labels, batch_size=256):
    """Share of `x` whose argmax logit equals `labels`.

    `x`: what `model.predict` takes (images; `{"token_ids", "padding_mask"}` for a text
    classifier, e.g. `recipes.text.model_inputs(ids)`); the model may be uncompiled."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))
