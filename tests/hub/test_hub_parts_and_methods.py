"""Every fine-tuning method of the registry on keras-hub classifiers (their parts read by
`ptft_keras.hub.parts`): what trains, what a step changes.

Steps run eagerly (`run_eagerly=True`): tracing a keras-hub train function costs ~25 s on
a loaded core, an eager step on these tiny models ~2 s.
"""

import fnmatch

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.hub import parts  # noqa: E402
from ptft_keras.models import hub  # noqa: E402
from ptft_keras.peft.lora import lora_layers  # noqa: E402
from ptft_keras.training.methods import METHODS, prepare  # noqa: E402
from ptft_keras.variables import set_trainable, snapshot, variable_map  # noqa: E402
from tests.hub.conftest import SEQ  # noqa: E402

pytestmark = pytest.mark.tf_only
LN = ("/gamma", "/beta")  # LayerNormalization variables (keras-hub names its norms *_norm)


def _is_ln(key):
    return key.endswith(LN) and "norm" in key


# method -> (options, predicate over keys that must train, count BERT (2 layers), GPT-2 (1)).
# BERT: 5 embedding + 2 x 16 per layer + 2 pooled_dense + 2 logits = 41 variables;
# GPT-2: 2 embedding + 16 + 2 final layer_norm + 2 logits = 22.
EXPECTED = {
    "probe": ({}, lambda k: k.startswith("logits/"), 2, 2),
    "full": ({}, lambda k: True, 41, 22),
    "llrd": ({}, lambda k: True, 41, 22),
    # 6 biases per layer (q, k, v, output, 2 dense) + 4 LN + embeddings LN + pooled bias
    "bitfit": ({}, lambda k: k.startswith("logits/") or k.endswith("/bias") or _is_ln(k), 25, 14),
    "bitfit_strict": (
        {"bitfit_layer_norm": False},
        lambda k: k.startswith("logits/") or k.endswith("/bias"),
        15,
        8,
    ),
    # 2 adapters x (down, up) x (kernel, bias) per layer + every LN + logits
    "adapters": (
        {"adapter_dim": 4},
        lambda k: k.startswith("logits/") or "_adapter/" in k or _is_ln(k),
        28,
        16,
    ),
    "lora": (
        {"lora_rank": 2},  # keras-hub's default targets: query, value
        lambda k: k.startswith("logits/") or "lora_kernel" in k,
        10,
        6,
    ),
}


def _classifier(preset):
    return hub.hub_text_classifier(preset, 2, sequence_length=SEQ)


@pytest.fixture(scope="module")
def presets(bert_preset, gpt2_preset):
    return {"bert": bert_preset, "gpt2": gpt2_preset}


@pytest.fixture(scope="module")
def batch(sst2_texts):
    texts, labels, _ = sst2_texts
    return texts[:8], np.array(labels[:8])


def _step(plan, batch):
    """One eager AdamW step; returns the keys whose values changed (bit-level)."""
    clf = plan.model
    clf.compile(optimizer=plan.optimizer, run_eagerly=True)
    before = snapshot(clf)
    clf.train_on_batch(*batch)
    after = snapshot(clf)
    return sorted(k for k in before if not np.array_equal(before[k], after[k]))


@pytest.mark.parametrize(
    "family, methods",
    [
        ("bert", ["probe", "bitfit", "bitfit_strict", "full", "llrd", "adapters", "lora"]),
        ("gpt2", ["probe", "bitfit", "adapters", "lora"]),
    ],
)
def test_each_method_trains_exactly_its_share_and_a_step_changes_only_that(
    family, methods, presets, batch
):
    shared = _classifier(presets[family])  # mask-only methods reuse one classifier
    for name in methods:
        options, should_train, n_bert, n_gpt2 = EXPECTED[name]
        method = "bitfit" if name == "bitfit_strict" else name
        clf = _classifier(presets[family]) if method in ("adapters", "lora") else shared
        plan = prepare(clf, method, 1e-4, 1, **options)
        assert plan.model is clf  # keras-hub models change in place (adapters too)
        keys = list(variable_map(clf))
        expected = sorted(k for k in keys if should_train(k))
        assert plan.trainable == expected, (name, set(plan.trainable) ^ set(expected))
        assert len(expected) == (n_bert if family == "bert" else n_gpt2), (name, len(expected))
        assert {id(v) for v in clf.trainable_weights} == {
            id(v) for k, v in variable_map(clf).items() if k in expected
        }
        if method == "adapters":  # zero-initialised `up`: the identity, nothing moved
            assert [k for k in keys if "adapter" in k] and all(
                not np.any(v.numpy()) for k, v in variable_map(clf).items() if "/up/" in k
            )
        # Zero-initialised adapter `up` / LoRA `B` block the gradient of `down` / `A` in
        # the first step; give them values so that every trainable variable must move.
        for key, v in variable_map(clf).items():
            if key.endswith(("/up/kernel", "lora_kernel_b")):
                v.assign(np.full(v.shape, 0.01, "float32"))
        assert _step(plan, batch) == expected, name


def test_llrd_multipliers_decrease_with_depth(presets):
    for family, units in [
        ("bert", ["embeddings", "transformer_layer_0", "transformer_layer_1"]),
        ("gpt2", ["embeddings", "transformer_layer_0"]),
    ]:
        clf = _classifier(presets[family])
        assert list(parts.hub_units(clf))[: len(units)] == units
        plan = prepare(clf, "llrd", 1e-4, 1, llrd_decay=0.5)
        rates = plan.optimizer.lr_multipliers  # {variable.path: multiplier}
        paths = {k: v.path for k, v in variable_map(clf).items()}
        by_unit = []
        for unit, patterns in parts.hub_units(clf).items():
            values = {
                rates[paths[k]] for k in paths if any(fnmatch.fnmatchcase(k, p) for p in patterns)
            }
            by_unit.append((unit, values))
        # embeddings 0.5**L, block i 0.5**(L - i), the rest (pooler / final norm) 1.
        n = len(units)
        for depth, (unit, values) in enumerate(by_unit):
            assert values == {0.5 ** (n - depth) if depth < n else 1.0}, (family, unit)
        assert rates[paths["logits/kernel"]] == 1.0


def test_gradual_unfreezing_unfreezes_top_first_and_lp_ft_trains(presets, batch):
    clf = _classifier(presets["bert"])
    plan = prepare(clf, "gradual", 1e-4, 1)
    names = [s.name for s in plan.stages]
    assert names == ["head", "+pooled_dense", "+transformer_layer_1", "+transformer_layer_0", "all"]
    assert plan.trainable == ["logits/bias", "logits/kernel"]
    previous = set()
    embeddings = {"token_embedding", "position_embedding", "segment_embedding"}
    added_by_stage = [
        {"logits"},
        {"pooled_dense"},
        {"transformer_layer_1"},
        {"transformer_layer_0"},
        embeddings | {"embeddings_layer_norm"},
    ]
    for stage, added in zip(plan.stages, added_by_stage, strict=True):
        keys = set(set_trainable(clf, stage.trainable))
        assert previous < keys, stage.name
        layers = {k.split("/")[1] if k.startswith("bert_backbone/") else k.split("/")[0]
                  for k in keys - previous}  # fmt: skip
        assert layers == added, stage.name
        previous = keys
    assert previous == set(variable_map(clf)) and plan.stages[0].learning_rate == 1e-3

    gpt2 = prepare(_classifier(presets["gpt2"]), "gradual", 1e-4, 1)
    assert [s.name for s in gpt2.stages] == ["head", "+layer_norm", "+transformer_layer_0", "all"]

    # LP-FT through the toolkit's fit_stages: the probe stage, then all. Token ids, not
    # strings: a string pipeline in `fit` costs ~15 s of tracing here.
    lp = prepare(clf, "lp-ft", 1e-4, 2)  # probe at 10 x 1e-4, then everything at 1e-4
    x = {k: v.numpy() for k, v in clf.preprocessor(batch[0]).items()}
    clf.preprocessor = None
    before = snapshot(clf)
    history = lp.fit({"run_eagerly": True}, x=x, y=batch[1], batch_size=8, verbose=0)
    assert [(name, epoch) for name, epoch, _ in history.stages] == [
        ("linear_probe", 0),
        ("finetune_all", 1),
    ]
    assert history.stages[0][2] == ["logits/bias", "logits/kernel"]
    assert history.stages[1][2] == sorted(variable_map(clf))
    after = snapshot(clf)
    assert all(not np.array_equal(before[k], after[k]) for k in before)
    assert float(clf.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)


def test_adapters_round_trip_through_weights_and_refusals(presets, tmp_path):
    clf = _classifier(presets["gpt2"])
    probe = ["a great film", "dull , dull ."]
    x = clf.preprocessor(probe)  # eager calls: no predict function to trace
    plain = clf(x, training=False).numpy()
    paths = parts.add_hub_adapters(clf, 4, positions=("feedforward",))
    assert paths == ["transformer_layer_0/feedforward_adapter"]
    np.testing.assert_array_equal(clf(x, training=False).numpy(), plain)  # identity at first
    for key, v in variable_map(clf).items():
        if "_adapter/" in key:
            v.assign(np.random.default_rng(0).normal(0, 0.1, v.shape).astype("float32"))
    adapted = clf(x, training=False).numpy()
    assert np.abs(adapted - plain).max() > 1e-4  # the adapter is on the forward path
    clf.save_weights(str(tmp_path / "a.weights.h5"))
    fresh = _classifier(presets["gpt2"])
    parts.add_hub_adapters(fresh, 4, positions=("feedforward",))
    fresh.load_weights(str(tmp_path / "a.weights.h5"))
    np.testing.assert_allclose(fresh(x, training=False).numpy(), adapted, atol=1e-6)

    with pytest.raises(ValueError, match="already has a feedforward adapter"):
        parts.add_hub_adapters(clf, 4, positions=("feedforward",))
    with pytest.raises(ValueError, match=r"positions must be from \('attention', 'feedforward'\)"):
        parts.add_hub_adapters(fresh, 4, positions=("mlp",))
    with pytest.raises(ValueError, match="bottleneck_dim"):
        parts.add_hub_adapters(_classifier(presets["gpt2"]), 0)
    assert not lora_layers(clf.backbone)


def test_unknown_methods_and_options_name_the_choices(presets):
    clf = _classifier(presets["gpt2"])
    with pytest.raises(ValueError) as error:
        prepare(clf, "prefix_tuning", 1e-4, 1)
    assert "'prefix_tuning'" in str(error.value)
    assert all(repr(m) in str(error.value) for m in METHODS)
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['lora_rank'\] for 'bitfit'"):
        prepare(clf, "bitfit", 1e-4, 1, lora_rank=4)
    with pytest.raises(ValueError, match="decay"):
        prepare(clf, "llrd", 1e-4, 1, llrd_decay=1.5)
    with pytest.raises(ValueError, match="keras-hub's enable_lora fixes alpha = rank"):
        prepare(clf, "lora", 1e-4, 1, lora_alpha=16)
