import keras
import numpy as np
import pytest

from ptft_keras.layers.bottleneck_adapter import BottleneckAdapter
from ptft_keras.layers.embeddings import PositionEmbedding
from ptft_keras.layers.transformer_block import TransformerBlock
from tests.harness import run_layer_test

BLOCK_WEIGHTS = [
    "attention_norm/gamma",
    "attention_norm/beta",
    "attention/qkv/kernel",
    "attention/qkv/bias",
    "attention/output/kernel",
    "attention/output/bias",
    "mlp_norm/gamma",
    "mlp_norm/beta",
    "mlp/intermediate/kernel",
    "mlp/intermediate/bias",
    "mlp/output/kernel",
    "mlp/output/bias",
]


def _block(**kwargs):
    args = dict(num_heads=2, intermediate_dim=16, name="block_0")
    args.update(kwargs)
    block = TransformerBlock(**args)
    block.build((None, None, 8))
    return block


def _x(batch=2, seq=5, hidden=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, seq, hidden)).astype("float32")


def test_output_shape_and_stable_variable_names():
    block = _block()
    assert tuple(block(_x()).shape) == (2, 5, 8)
    assert [w.path for w in block.weights] == [f"block_0/{p}" for p in BLOCK_WEIGHTS]
    shapes = {w.path: tuple(w.shape) for w in block.weights}
    assert shapes["block_0/attention/qkv/kernel"] == (8, 24)  # fused q | k | v
    assert shapes["block_0/mlp/intermediate/kernel"] == (8, 16)


def test_adapters_are_named_and_start_as_identity():
    plain = _block()
    adapted = _block(adapter_dim=3)
    assert isinstance(adapted.attention_adapter, BottleneckAdapter)
    adapter_paths = [w.path for w in adapted.weights if "adapter" in w.path]
    assert {p.split("/")[1] for p in adapter_paths} == {"attention_adapter", "mlp_adapter"}
    assert len(adapted.weights) == len(plain.weights) + len(adapter_paths)
    for weight in plain.weights:  # same non-adapter weights ...
        match = [w for w in adapted.weights if w.path == weight.path]
        match[0].assign(weight)
    # ... and zero-initialised up projections -> identical outputs.
    np.testing.assert_allclose(adapted(_x()), plain(_x()), atol=1e-6)
    # A trained (non-zero) adapter changes the output: the hook is really in the path.
    adapted.mlp_adapter.up.kernel.assign(np.ones(adapted.mlp_adapter.up.kernel.shape))
    assert np.abs(np.asarray(adapted(_x())) - np.asarray(plain(_x()))).max() > 1e-3


def test_causal_block_ignores_future_and_bidirectional_does_not():
    x = _x()
    changed = x.copy()
    changed[:, 3:] = _x(seed=1)[:, 3:]  # new content at positions 3 and 4
    causal = _block()
    out, out_changed = np.asarray(causal(x)), np.asarray(causal(changed))
    np.testing.assert_array_equal(out[:, :3], out_changed[:, :3])
    assert np.abs(out[:, 3:] - out_changed[:, 3:]).max() > 1e-3
    bidirectional = _block(causal=False)
    out, out_changed = np.asarray(bidirectional(x)), np.asarray(bidirectional(changed))
    assert np.abs(out[:, :3] - out_changed[:, :3]).max() > 1e-3


def test_padding_mask_hides_padded_keys():
    block = _block(causal=False)
    x = _x()
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype="int32")
    changed = x.copy()
    changed[0, 3:] = 100.0  # garbage in the padded positions of row 0
    out = np.asarray(block(x, padding_mask=mask))
    out_changed = np.asarray(block(changed, padding_mask=mask))
    np.testing.assert_allclose(out[0, :3], out_changed[0, :3], atol=1e-5)
    np.testing.assert_allclose(out[1], out_changed[1], atol=1e-6)
    # Without the mask the garbage leaks into the real positions.
    leaked = np.asarray(block(changed))
    assert np.abs(leaked[0, :3] - out[0, :3]).max() > 1e-3


def test_dropout_only_in_training():
    block = _block(dropout=0.5)
    x = _x()
    np.testing.assert_array_equal(block(x), block(x))
    assert np.abs(np.asarray(block(x, training=True)) - np.asarray(block(x))).max() > 1e-3


def test_harness(tmp_path):
    kwargs = dict(num_heads=2, intermediate_dim=16, dropout=0.1, causal=False, adapter_dim=2)
    # The adapters' down-projections get no gradient in the first step (zero `up`).
    block = run_layer_test(TransformerBlock, kwargs, _x(), (2, 5, 8), tmp_path, min_changed=0.75)
    for key in ("num_heads", "intermediate_dim", "dropout", "causal", "adapter_dim"):
        assert key in block.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=0), "num_heads"),
        (dict(intermediate_dim=-1), "intermediate_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(adapter_dim=-2), "adapter_dim"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = dict(num_heads=2, intermediate_dim=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        TransformerBlock(**args)


def test_heads_must_divide_hidden():
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(num_heads=3, intermediate_dim=16).build((None, None, 8))


def test_position_embedding_slices_table():
    layer = PositionEmbedding(6, name="position_embedding")
    out = np.asarray(layer(np.zeros((2, 4, 3), "float32")))
    table = np.asarray(layer.embeddings)
    np.testing.assert_array_equal(out[0], table[:4])
    np.testing.assert_array_equal(out[1], table[:4])
    with pytest.raises(ValueError, match="sequence_length"):
        PositionEmbedding(0)


def test_mixed_precision_policy_reaches_sublayers():
    block = TransformerBlock(2, 16, dtype="mixed_bfloat16")
    out = block(_x())
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert block.attention.qkv.compute_dtype == "bfloat16"
    assert block.attention.qkv.kernel.dtype == "float32"  # variables stay float32
