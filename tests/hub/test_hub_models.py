"""keras-hub backbones as classifiers, continued pretraining, weight sharing/transfer."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.models import hub  # noqa: E402
from tests.harness import run_dtype_test, run_model_saving_test, run_train_step_test  # noqa: E402
from tests.hub.conftest import SEQ  # noqa: E402

pytestmark = pytest.mark.tf_only


def test_bert_classifier_from_local_preset_is_keras_hubs_own_and_trains(bert_preset, sst2_texts):
    texts, labels, _ = sst2_texts
    clf = hub.hub_text_classifier(
        bert_preset, 2, label_names=["negative", "positive"], sequence_length=SEQ
    )
    assert isinstance(clf, keras_hub.models.BertTextClassifier)
    assert type(clf).__name__ == "LabeledBertTextClassifier"
    assert clf.preprocessor.sequence_length == SEQ
    assert clf.label_names == ["negative", "positive"]
    # The backbone came from the preset's weights (the real from_preset path).
    stored = keras_hub.models.Backbone.from_preset(bert_preset)
    for a, b in zip(stored.weights, clf.backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    before = [w.numpy().copy() for w in clf.trainable_weights]
    clf.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = clf.fit(texts[:64], np.array(labels[:64]), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [
        not np.array_equal(b, w.numpy()) for b, w in zip(before, clf.trainable_weights, strict=True)
    ]
    assert all(changed)
    assert clf.predict(["a great film", "dull"], verbose=0).shape == (2, 2)


def test_every_keras_hub_classifier_has_a_registered_labeled_class():
    """Registered at import (not when first built), so a fresh process can load them."""
    from keras_hub.src.utils.preset_utils import list_subclasses

    bases = [
        cls
        for cls in list_subclasses(keras_hub.models.TextClassifier)
        if getattr(cls, "backbone_cls", None) is not None
    ]
    assert len(bases) >= 8  # BERT, RoBERTa, DistilBERT, ALBERT, DeBERTaV3, FNet, XLM-R, ESM
    registered = keras.saving.get_custom_objects()
    for cls in bases:
        labeled = registered[f"ptft_keras>Labeled{cls.__name__}"]
        assert issubclass(labeled, cls) and labeled.backbone_cls is None


def test_label_names_survive_a_keras_round_trip(bert_preset, tmp_path):
    clf = hub.hub_text_classifier(bert_preset, 3, label_names=["a", "b", "c"], sequence_length=SEQ)
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(clf) and loaded.label_names == ["a", "b", "c"]
    texts = ["a great film", "not good at all"]
    np.testing.assert_allclose(
        loaded.predict(texts, verbose=0), clf.predict(texts, verbose=0), atol=1e-6
    )


def test_bad_arguments_are_named(bert_preset):
    with pytest.raises(ValueError, match="sequence_length must be an int in \\[2, 32\\]"):
        hub.hub_text_classifier(bert_preset, 2, sequence_length=512)
    with pytest.raises(ValueError, match="3 label_names for num_classes=2"):
        hub.hub_text_classifier(bert_preset, 2, label_names=["a", "b", "c"], sequence_length=SEQ)
    with pytest.raises(TypeError, match="keras-hub preset"):
        hub.hub_text_classifier(42, 2)
    backbone = keras_hub.models.Backbone.from_preset(bert_preset)
    with pytest.raises(ValueError, match="No tokenizer: pass preset="):
        hub.hub_text_classifier(backbone, 2, sequence_length=SEQ)


def test_random_bert_preset_loads_as_a_downloaded_one_would(bert_preset, tmp_path):
    from ptft_keras.models.hub_presets import random_bert_preset

    backbone = keras_hub.models.Backbone.from_preset(bert_preset)  # the user's path
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.max_sequence_length) == (2, 16, 32)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(bert_preset)
    assert tokenizer.vocabulary_size() == backbone.vocabulary_size > 100
    ids = keras.ops.convert_to_numpy(tokenizer("a gripping film"))  # one string: a dense row
    assert len(ids) > 0 and int(np.max(ids)) < backbone.vocabulary_size
    with pytest.raises(ValueError, match="'hidden'"):
        random_bert_preset(str(tmp_path / "x"), ["a film"], 10, hidden=4)
    with pytest.raises(ValueError, match="empty"):
        random_bert_preset(str(tmp_path / "y"), [], 10)


@pytest.mark.parametrize("preset", ["bert_preset", "gpt2_preset"])
def test_harness(preset, request, sst2_texts, tmp_path):
    """The shared harness on both classifier wrappers (`Labeled<keras-hub class>` and
    `HubCausalClassifier`): `.keras` round trip on the token inputs its `call` sees, one
    training step from raw strings through its preprocessor, mixed_bfloat16."""
    path = request.getfixturevalue(preset)
    names = ["negative", "positive"]

    def build():
        return hub.hub_text_classifier(path, 2, label_names=names, sequence_length=SEQ)

    texts, labels, _ = sst2_texts
    model = build()
    tokens = model.preprocessor(texts[:8])  # {"token_ids", "padding_mask", ...}
    restored = run_model_saving_test(model, tokens, tmp_path)
    assert restored.label_names == names
    run_train_step_test(build(), np.array(texts[:16]), np.array(labels[:16]), loss="task")
    run_dtype_test(build, tokens, output_dtype="bfloat16")
