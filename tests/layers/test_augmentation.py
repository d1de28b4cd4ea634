"""StrongAugment (images) and TokenAugmentation (tokens): the strong views of consistency
training. Every backend."""

import numpy as np
import pytest

from ptft_keras.layers import StrongAugment, TokenAugmentation
from tests.harness import run_layer_test

IMAGES = np.random.default_rng(0).uniform(0, 1, (6, 20, 24, 3)).astype("float32")


def test_strong_augment_harness(tmp_path):
    layer = run_layer_test(StrongAugment, {"seed": 1}, IMAGES, (6, 20, 24, 3), tmp_path,
                           trainable=False, output_dtype=None)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(layer(IMAGES)), IMAGES)  # inference: identity


def test_strong_augment_changes_each_image_differently_and_stays_in_range():
    layer = StrongAugment(value_range=(0.0, 1.0), seed=3)
    batch = np.repeat(IMAGES[:1], 4, axis=0)  # four copies of one image
    out = np.asarray(layer(batch, training=True))
    assert out.shape == batch.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, batch, atol=1e-3)
    assert all(not np.allclose(out[0], out[i], atol=1e-3) for i in range(1, 4))  # per image
    off = StrongAugment(strength=0.0)(batch, training=True)
    np.testing.assert_array_equal(np.asarray(off), batch)


def test_strong_augment_warps_in_the_edge_colour_not_black():
    # A plain colour image: rotation, shear and zoom-out read pixels from outside it, which
    # repeat its edge (the background), so no black corners appear.
    plain = np.broadcast_to(np.array([0.2, 0.6, 0.9], "float32"), (4, 20, 24, 3)).copy()
    layer = StrongAugment(contrast=0.0, brightness=0.0, cutout=None, seed=2)
    np.testing.assert_allclose(np.asarray(layer(plain, training=True)), plain, atol=1e-5)


def test_strong_augment_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"value_range.*\(1.0, 0.0\)"):
        StrongAugment(value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="cutout"):
        StrongAugment(cutout=(0.5, 0.2))


IDS = np.array([[3, 10, 11, 12, 13, 14, 15, 4, 0, 0], [3, 20, 21, 4, 0, 0, 0, 0, 0, 0]] * 50)
MASK = (IDS != 0).astype("int32")
SPECIAL = (0, 3, 4)


def test_token_augmentation_never_touches_specials_or_padding(tmp_path):
    layer = TokenAugmentation(100, mask_token_id=2, special_ids=SPECIAL, mask_rate=0.3,
                              replace_rate=0.3, min_replacement_id=5, seed=0)  # fmt: skip
    out = layer({"token_ids": IDS, "padding_mask": MASK}, training=True)
    ids = np.asarray(out["token_ids"])
    np.testing.assert_array_equal(np.asarray(out["padding_mask"]), MASK)
    special = np.isin(IDS, SPECIAL)
    np.testing.assert_array_equal(ids[special], IDS[special])  # [CLS], [SEP], padding kept
    changed = ids[~special] != IDS[~special]
    assert 0.4 < changed.mean() < 0.95  # 60% drawn + spans, minus replacements by the same id
    assert ids[~special].min() >= 2 and not np.isin(ids[~special], (0, 1, 3, 4)).any()
    same = layer({"token_ids": IDS, "padding_mask": MASK})  # inference: identity
    np.testing.assert_array_equal(np.asarray(same["token_ids"]), IDS)
    clone = TokenAugmentation.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"mask_rate": 1.0}, "mask_rate"), ({"mask_rate": 0.6, "replace_rate": 0.5}, "< 1"),
     ({"min_replacement_id": 100}, "min_replacement_id")],
)  # fmt: skip
def test_token_augmentation_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenAugmentation(100, mask_token_id=2, **kwargs)
