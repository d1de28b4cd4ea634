"""Continued pretraining with keras-hub's own tasks, then classification on that backbone."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from ptft_keras.export.hub import export_hub_classifier  # noqa: E402
from ptft_keras.models import hub  # noqa: E402
from tests.hub.conftest import SEQ  # noqa: E402

pytestmark = pytest.mark.tf_only


def held_out_loss(task, batch):
    """Mean LM cross-entropy per predicted token on one fixed, preprocessed batch."""
    x, y, sample_weight = batch
    logits = task(x, training=False)
    loss = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    weight = np.asarray(sample_weight, "float32")  # 0 on padding / unmasked slots
    return float((np.asarray(loss) * weight).sum() / weight.sum())


def test_masked_lm_pretraining_lowers_held_out_loss_and_the_classifier_shares_it(
    bert_preset, sst2_texts
):
    texts, labels, held_out = sst2_texts
    mlm = hub.hub_masked_lm(bert_preset, sequence_length=SEQ)
    assert isinstance(mlm, keras_hub.models.BertMaskedLM)
    pre = mlm.preprocessor  # keras-hub's defaults: 15% selected, 80/10/10
    assert (pre.mask_selection_rate, pre.mask_token_rate, pre.random_token_rate) == (
        0.15,
        0.8,
        0.1,
    )
    batch = mlm.preprocessor(tf.constant(held_out))  # masks drawn once, reused
    before = held_out_loss(mlm, batch)
    mlm.compile(optimizer=keras.optimizers.Adam(5e-3))
    for _ in range(3):  # 3 epochs; train_on_batch runs keras-hub's preprocessor eagerly
        for start in range(0, len(texts), 32):  # (`fit` is exercised in test_hub_models)
            mlm.train_on_batch(tf.constant(texts[start : start + 32]))
    after = held_out_loss(mlm, batch)
    print("masked LM held-out loss", before, after)
    assert after < before - 0.5, (before, after)  # seeded: 5.03 -> 4.21 nats

    pretrained = [w.numpy().copy() for w in mlm.backbone.weights]
    clf = hub.hub_text_classifier(mlm, 2, sequence_length=SEQ)  # tokenizer: the task's
    assert clf.backbone is mlm.backbone  # shared object: no copy to go wrong
    for value, variable in zip(pretrained, clf.backbone.weights, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())
    assert isinstance(clf.preprocessor, keras_hub.models.BertTextClassifierPreprocessor)
    assert clf.preprocessor.tokenizer is mlm.preprocessor.tokenizer

    # The copying path: a classifier from the preset, then a strict, reported transfer.
    fresh = hub.hub_text_classifier(bert_preset, 2, sequence_length=SEQ)
    report = hub.transfer_backbone(mlm, fresh)
    assert report.ok and not report.unused and not report.untouched
    assert len(report.moved) == len(mlm.backbone.weights) == len(fresh.backbone.weights)
    for value, variable in zip(pretrained, fresh.backbone.weights, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())
    fresh.compile(optimizer=keras.optimizers.Adam(1e-3))
    loss = fresh.train_on_batch(texts[:32], np.array(labels[:32]))  # fit: test_hub_models
    assert np.isfinite(loss[0] if isinstance(loss, list) else loss)


def test_causal_lm_pretraining_then_last_token_classifier(gpt2_preset, sst2_texts, tmp_path):
    texts, labels, held_out = sst2_texts
    lm = hub.hub_causal_lm(gpt2_preset, sequence_length=SEQ)
    assert isinstance(lm, keras_hub.models.GPT2CausalLM)
    batch = lm.preprocessor(tf.constant(held_out))  # deterministic: next-token targets
    before = held_out_loss(lm, batch)
    lm.compile(optimizer=keras.optimizers.Adam(5e-3))
    for _ in range(3):  # 3 epochs; train_on_batch preprocesses eagerly, where `fit` would
        for start in range(0, len(texts), 32):  # spend ~10 s tracing the BPE tokenizer
            lm.train_on_batch(tf.constant(texts[start : start + 32]))
    after = held_out_loss(lm, batch)
    print("causal LM held-out loss", before, after)
    assert after < before - 1.0, (before, after)

    clf = hub.hub_text_classifier(lm, 2, label_names=["neg", "pos"], sequence_length=SEQ)
    assert isinstance(clf, hub.HubCausalClassifier) and clf.backbone is lm.backbone
    x = clf.preprocessor(tf.constant(["a great film", "dull , dull , dull ."]))
    # Pooling reads the last real token: logits == head(hidden[last real position]).
    hidden = lm.backbone(x).numpy()  # (2, SEQ, hidden)
    last = x["padding_mask"].numpy().sum(axis=1) - 1
    expected = clf.output_dense(hidden[np.arange(2), last]).numpy()
    np.testing.assert_allclose(clf(x, training=False).numpy(), expected, atol=1e-5)
    clf.compile(optimizer=keras.optimizers.Adam(1e-3))
    head = clf.output_dense.kernel.numpy().copy()
    # train_on_batch preprocesses eagerly (fit would trace the byte-pair tokenizer).
    loss = clf.train_on_batch(tf.constant(texts[:32]), np.array(labels[:32]))
    assert np.isfinite(loss[0] if isinstance(loss, list) else loss)
    assert not np.array_equal(head, clf.output_dense.kernel.numpy())

    path = str(tmp_path / "gpt2_clf.keras")
    clf.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is hub.HubCausalClassifier and loaded.label_names == ["neg", "pos"]
    probe = tf.constant(["a great film", "not good"])
    # Eager calls (a byte-pair tokenizer takes seconds to trace for each `predict`); each
    # model with its own preprocessor: the reloaded tokenizer must pack as the original.
    expected = clf(clf.preprocessor(probe), training=False).numpy()
    reloaded = loaded(loaded.preprocessor(probe), training=False).numpy()
    np.testing.assert_allclose(reloaded, expected, atol=1e-5)

    # A byte-pair tokenizer (lookup tables) inside the SavedModel, loaded back here.
    served = tf.saved_model.load(export_hub_classifier(clf, str(tmp_path / "gpt2_export")))
    out = served.signatures["serving_default"](text=tf.constant(probe))
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected), atol=1e-5)
    assert [v.decode() for v in out["label"].numpy()] == [
        ["neg", "pos"][i] for i in expected.argmax(axis=1)
    ]


def test_pretraining_compiles_a_hub_task_with_the_loss_per_target_token(bert_preset, sst2_texts):
    """`pretrain_on_corpus` on a keras-hub task: its training loss is the held-out loss's
    quantity (mean per masked token). keras-hub's default divides by every mask slot,
    empty ones too: a training loss of 0.23 was logged beside a held-out 5.66."""
    from ptft_keras.training.recipes.text import TextRecipe, pretrain_on_corpus

    texts, _, held_out = sst2_texts
    mlm = hub.hub_masked_lm(bert_preset, sequence_length=SEQ)
    recipe = TextRecipe(pretrain_batch=16, steps_per_epoch=1, pretrain_lr=1e-3)
    documents = tf.data.Dataset.from_tensor_slices(texts)
    validation = tf.data.Dataset.from_tensor_slices(held_out)
    history = pretrain_on_corpus(mlm, documents, None, recipe, steps=1,
                                 validation_documents=validation)  # fmt: skip
    x, y, sample_weight = batch = mlm.preprocessor(tf.constant(held_out))
    assert 0 < float(tf.reduce_mean(sample_weight)) < 0.9  # empty slots on short sentences
    compiled = mlm.compute_loss(
        x=x, y=y, y_pred=mlm(x, training=False), sample_weight=sample_weight
    )
    assert float(compiled) == pytest.approx(held_out_loss(mlm, batch), rel=1e-4)
    assert history.history["loss"][0] == pytest.approx(history.history["val_loss"][0], rel=0.3)
