"""Quality bar on the real 8k MNIST sample (slow: a few minutes on 2 CPU cores).

Reduced but honest: the default recipe and model (contrastive + denoising autoencoder),
10 pretraining epochs instead of the demo's 30, one label draw, then FixMatch for 1,000
steps instead of 2,000. Measured at these settings (2026-12-07, with another slow test
beside it: 810 s, against 1,133 s at 15 epochs and 2,000 steps): frozen 81.1% vs 59.4%
from scratch, tuned 92.6% vs 90.75%, + FixMatch 98.5%.
"""

import os

import keras
import pytest

from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.models.autoencoder import build_conv_autoencoder
from ptft_keras.models.classifier import Classifier
from ptft_keras.training import semi_supervised
from ptft_keras.training.metrics import accuracy
from ptft_keras.training.recipes import image as recipes


@pytest.mark.slow
# 810 s with another slow test beside it (2026-12-07); pytest's default 900 s once cut
# it off in CI while the text recipe's XLA pretraining shared the two cores.
@pytest.mark.timeout(2400)
def test_pretraining_and_default_recipe_on_real_mnist(shared_data_dir):
    keras.utils.set_random_seed(0)
    images, labels = load_mnist("idx", data_dir=os.path.join(shared_data_dir, "mnist"))
    split = split_dataset(images, labels, test_size=2000, seed=0)
    pool = split.pool_x.astype("float32")[..., None] / 255.0
    test_x, test_y = split.test_x.astype("float32")[..., None] / 255.0, split.test_y
    few_x, few_y = sample_few_labels(pool, split.pool_y, 100, 10, seed=0)

    ae = build_conv_autoencoder(
        latent_dim=64, latent_activation=None, contrastive_weight=1.0, seed=0
    )
    recipes.pretrain_autoencoder(ae, pool, epochs=10)
    pretrained = Classifier.from_pretrained(ae, num_classes=10)
    scratch = Classifier(keras.Model.from_config(ae.encoder.get_config()), num_classes=10)

    # Frozen features: class-mean prototypes of 100 labels. Pretraining must make the
    # encoder's features far better than a random encoder's (measured: 81.1% vs 59.4%).
    for clf in (pretrained, scratch):
        recipes.finetune_classifier(clf, few_x, few_y, probe_steps=0, finetune_steps=0)
    frozen_pre, frozen_scratch = (accuracy(c, test_x, test_y) for c in (pretrained, scratch))
    assert frozen_pre >= frozen_scratch + 0.15, (frozen_pre, frozen_scratch)

    # The default recipe (imprint -> probe -> fine-tune, shifts) with 100 labels, on both:
    # the pretrained encoder must end ahead of the same classifier from scratch
    # (measured 92.6% vs 90.75%; over 5 label draws at 30 epochs: +2.0 +- 0.6 points).
    for clf in (pretrained, scratch):
        recipes.finetune_classifier(clf, few_x, few_y)
    tuned, tuned_scratch = (accuracy(c, test_x, test_y) for c in (pretrained, scratch))
    assert tuned >= 0.90 and tuned >= tuned_scratch + 0.01, (tuned, tuned_scratch)
    # Semi-supervised: FixMatch on the 6,000-image pool (the recipe's defaults but 1,000
    # steps, not 2,000) must add far more than noise: measured +6 points here (98.5%),
    # +4 to +8 over the fine-tuned model on three label draws at 30 pretraining epochs
    # and 2,000 steps (docs/semi_supervised.md).
    # Without the unlabeled term it would be more supervised training on the same 100
    # labels (no such jump).
    recipe = recipes.ImageRecipe(fixmatch_steps=1000)
    semi_supervised.fixmatch(pretrained, few_x, few_y, pool, recipe)
    fixmatch = accuracy(pretrained, test_x, test_y)
    print(
        f"frozen {frozen_pre:.4f} vs {frozen_scratch:.4f}; tuned {tuned:.4f} vs "
        f"{tuned_scratch:.4f}; + FixMatch {fixmatch:.4f}"
    )
    assert fixmatch >= max(tuned + 0.02, 0.95), (fixmatch, tuned)
