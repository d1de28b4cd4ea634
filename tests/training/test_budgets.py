"""Pretraining budgets (steps, tokens, wall time) and the corpus pretraining recipe."""

import io
import time

import keras
import numpy as np
import pytest

from ptft_keras.training.callbacks import UNTIL_STOPPED, Budget, EpochLogger

pytestmark = pytest.mark.tf_only


class Count(keras.callbacks.Callback):
    def __init__(self, sleep=0.0):
        super().__init__()
        self.steps, self.sleep = 0, sleep

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        time.sleep(self.sleep)


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_step_budget_stops_exactly_and_logs_tokens():
    x, y = np.ones((64, 3), "float32"), np.ones((64, 1), "float32")
    count, budget = Count(), Budget(max_steps=7, tokens_per_step=100)
    history = _model().fit(x, y, batch_size=4, epochs=5, callbacks=[budget, count], verbose=0)
    assert count.steps == 7 == budget.steps  # mid-epoch: 16 steps an epoch
    assert history.history["tokens"] == [700.0]
    assert history.history["tokens_per_second"][0] > 0
    with pytest.raises(ValueError, match="max_steps must be positive"):
        Budget(max_steps=0)


def test_time_budget_stops_within_one_step():
    x, y = np.ones((400, 3), "float32"), np.ones((400, 1), "float32")
    count = Count(sleep=0.05)
    start = time.perf_counter()
    _model().fit(
        x, y, batch_size=4, epochs=1, callbacks=[Budget(max_seconds=0.5), count], verbose=0
    )
    assert 0.5 <= time.perf_counter() - start < 2.0
    assert 5 <= count.steps <= 15  # 0.5 s of 0.05 s steps (+ step time), not all 100


def test_time_budgeted_log_lines_show_no_epoch_total_and_whole_token_counts():
    x, y = np.ones((64, 3), "float32"), np.ones((64, 1), "float32")
    stream = io.StringIO()
    budget = Budget(max_steps=20, tokens_per_step=1234)  # mid-epoch 2 of 16 steps each
    callbacks = [budget, EpochLogger(stream)]
    _model().fit(x, y, batch_size=4, epochs=UNTIL_STOPPED, callbacks=callbacks, verbose=0)
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1", "epoch 2"], lines
    assert "tokens=19,744" in lines[0] and "tokens=24,680" in lines[1], lines
    assert "loss=" in lines[0] and "." in lines[0].split("loss=")[1].split()[0]
    stream = io.StringIO()
    _model().fit(x, y, batch_size=4, epochs=2, callbacks=[EpochLogger(stream)], verbose=0)
    assert stream.getvalue().startswith("epoch 1/2  "), stream.getvalue()


def test_corpus_pretraining_spends_its_token_budget_and_learns(tmp_path):
    import tensorflow as tf

    from ptft_keras.training.recipes import text as text_recipe

    docs = [f"the film number {i % 13} was {'good' if i % 2 else 'bad'} ." for i in range(400)]
    recipe = text_recipe.TextRecipe(
        vocab_size=60,
        seq_len=16,
        pretrain_seq_len=16,
        hidden=16,
        layers=1,
        heads=2,
        intermediate=32,
        pretrain_batch=8,
        steps_per_epoch=20,
        pretrain_lr=3e-3,
    )
    tokenizer = text_recipe.train_text_tokenizer(docs, recipe)
    lm = text_recipe.build_language_model(tokenizer.vocabulary_size(), recipe, seed=0)
    stream, held_out = (tf.data.Dataset.from_tensor_slices(d) for d in (docs[:350], docs[350:]))
    tokens = 8 * 16 * 50  # 50 steps
    history = text_recipe.pretrain_on_corpus(
        lm, stream, tokenizer, recipe, tokens=tokens, validation_documents=held_out
    )
    assert history.history["tokens"][-1] == tokens  # 3 "epochs": 20 + 20 + 10 steps
    assert len(history.history["loss"]) == 3
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    # A saved LM reloads and fine-tunes to the same result as the one in memory.
    lm.save(tmp_path / "lm.keras")
    reloaded = keras.saving.load_model(tmp_path / "lm.keras", compile=False)
    ids = text_recipe.encode_texts(tokenizer, docs[:64], recipe.seq_len)
    labels = np.array([i % 2 for i in range(64)])
    results = []
    for source in (lm, reloaded):
        model = text_recipe.make_text_classifier(source, ["bad", "good"], recipe, seed=5)
        text_recipe.finetune_text_classifier(model, ids, labels, recipe, epochs=2, seed=5)
        results.append([keras.ops.convert_to_numpy(w) for w in model.weights])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
