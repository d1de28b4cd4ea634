"""The library path of docs/images.md and docs/text.md on the user's kind of data, shrunk.

- Images: the bundled MNIST digits written (by the test) as 32x32 RGB PNGs in class
  sub-folders and an unlabeled folder -> scan -> pretrain (streamed from disk) -> few-label
  fine-tune -> export -> reload in a fresh process without ptft_keras -> same answers.
- Text: a CSV with string labels and 3 classes (SST-2 negative / positive sentences and
  IMDb review sentences) -> tokenizer -> LM pretraining -> fine-tune -> raw-string export
  -> fresh-process reload -> same answers.

Budgets are a few seconds each: these check the plumbing and that the export answers as
the Keras model does. The accuracy floors on the same data at full budgets are in the
slow `ptft` walkthroughs (tests/cli/test_cli_end_to_end.py), which run these functions
through the command line (the full-budget runs here cost ~9 minutes of the default suite).
"""

import csv
import gzip
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ptft_keras.data import images as image_data
from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.datasets.sst2 import load_sst2, maximal_phrases
from ptft_keras.data.splits import sample_few_labels, split_dataset
from ptft_keras.data.text import read_table
from ptft_keras.export.image import export_image_classifier
from ptft_keras.export.text import export_text_classifier
from ptft_keras.specs import ImageSpec, LabelMap
from ptft_keras.training.metrics import accuracy as accuracy_of
from ptft_keras.training.recipes import image as image_recipe
from ptft_keras.training.recipes import text as text_recipe

pytestmark = pytest.mark.tf_only

SERVE_IMAGES = """
import json, sys
import numpy as np
import tensorflow as tf
path, pixels = sys.argv[1:]
out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(np.load(pixels)))
print(json.dumps({"labels": [v.decode() for v in out["label"].numpy()],
                  "imported": any(m.startswith("ptft_keras") for m in sys.modules)}))
"""

SERVE_TEXT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
path, texts = sys.argv[1:]
texts = json.load(open(texts))
out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))
print(json.dumps({"labels": [v.decode() for v in out["label"].numpy()],
                  "imported": any(m.startswith("ptft_keras") for m in sys.modules)}))
"""


def serve_fresh(script, *args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(cwd),  # outside the project: ptft_keras is not importable
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["imported"] is False
    return result["labels"]


def test_image_folders_end_to_end(tmp_path):
    keras.utils.set_random_seed(0)
    digits, labels = load_mnist("bundled")
    split = split_dataset(digits, labels, test_size=500, seed=0)
    names = [f"digit_{d}" for d in range(10)]  # string class names
    pool, test = tmp_path / "pool", tmp_path / "test"
    few_x, few_y = sample_few_labels(split.pool_x, split.pool_y, 100, seed=0)
    image_data.write_image_folder(split.pool_x[:500], None, pool, names, (32, 32), channels=3)
    image_data.write_image_folder(few_x, few_y, tmp_path / "few", names, (32, 32), channels=3)
    image_data.write_image_folder(split.test_x, split.test_y, test, names, (32, 32), channels=3)

    unlabeled = image_data.scan_image_folder(pool)
    spec = image_data.infer_image_spec(unlabeled)
    assert spec == ImageSpec(32, 32, 3) and not unlabeled.labeled
    labeled = image_data.scan_image_folder(tmp_path / "few")
    assert labeled.label_map.names == names
    recipe = image_recipe.ImageRecipe(
        pretrain_epochs=2, probe_steps=10, finetune_steps=20, semi_supervised="none"
    )
    ae = image_recipe.build_autoencoder(spec, recipe, seed=0)
    assert ae.encoder.output_shape == (None, 64)
    stream = image_data.image_dataset(unlabeled, spec, shuffle=True, seed=0)  # from disk
    history = image_recipe.pretrain_autoencoder(ae, stream, epochs=recipe.pretrain_epochs)
    assert history.history["loss"][-1] < history.history["loss"][0]
    x, y = image_data.load_images(labeled, spec)
    clf = image_recipe.make_classifier(ae, labeled.label_map.names)
    image_recipe.fit_few_labels(clf, x, y, recipe=recipe)

    test_folder = image_data.scan_image_folder(test)
    test_x, test_y = image_data.load_images(test_folder, spec, on_mismatch="error")
    accuracy = accuracy_of(clf, test_x, test_y)
    path = export_image_classifier(clf, tmp_path / "export")
    pixels = np.round(test_x * 255).astype("uint8")  # the PNGs' own uint8 values
    np.save(tmp_path / "pixels.npy", pixels)
    served = serve_fresh(SERVE_IMAGES, path, tmp_path / "pixels.npy", cwd=tmp_path)
    served_accuracy = np.mean([names.index(s) == t for s, t in zip(served, test_y, strict=True)])
    print(
        f"32x32 RGB MNIST folders, 100 labels: keras {accuracy:.4f}, served {served_accuracy:.4f}"
    )
    assert abs(served_accuracy - accuracy) < 1e-6  # the export answers as the model does


def _three_class_rows(shared_data_dir, per_class, seed=0):
    """(text, label) rows: negative / positive SST-2 sentences and IMDb review sentences."""
    texts, labels = load_sst2("train", data_dir=os.path.join(shared_data_dir, "sst2"))
    sentences = maximal_phrases(texts)
    label_of = dict(zip(texts, labels, strict=True))
    rng = np.random.default_rng(seed)
    rows = []
    for name, wanted in (("negative", 0), ("positive", 1)):
        pool = [s for s in sentences if label_of[s] == wanted and len(s.split()) >= 6]
        rows += [(s, name) for s in rng.choice(pool, per_class, replace=False)]
    reviews = os.path.join(shared_data_dir, "imdb_unsup", "imdb_unsup.txt.gz")
    with gzip.open(reviews, "rt", encoding="utf-8") as f:
        firsts = [line.split(". ")[0] for _, line in zip(range(3 * per_class), f, strict=False)]
    firsts = [s for s in firsts if 6 <= len(s.split()) <= 40]
    rows += [(s, "imdb-user-review") for s in rng.choice(firsts, per_class, replace=False)]
    return [rows[i] for i in rng.permutation(len(rows))]


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def test_text_table_with_string_labels_end_to_end(shared_data_dir, tmp_path):
    keras.utils.set_random_seed(0)
    rows = _three_class_rows(shared_data_dir, per_class=200)
    test = read_table(_write_csv(tmp_path / "test.csv", rows[:150]))  # held out
    train = read_table(_write_csv(tmp_path / "train.csv", rows[150:]))
    labels = LabelMap.from_labels(train.labels)
    assert labels.names == ["imdb-user-review", "negative", "positive"]
    y, test_y = labels.encode(train.labels), labels.encode(test.labels)
    recipe = text_recipe.TextRecipe(
        vocab_size=500, seq_len=48, hidden=32, layers=1, heads=2, intermediate=64, lr=3e-4,
        pretrain_epochs=2, few_epochs=2,
    )  # fmt: skip
    corpus = list(train.texts)  # the labeled texts, labels dropped, are the unlabeled corpus
    tokenizer = text_recipe.train_text_tokenizer(corpus, recipe)
    corpus_ids = text_recipe.encode_texts(tokenizer, corpus, recipe.seq_len)
    lm = text_recipe.build_language_model(tokenizer.vocabulary_size(), recipe, seed=0)
    history = text_recipe.pretrain_language_model(lm, corpus_ids, recipe)
    assert history.history["loss"][-1] < history.history["loss"][0]
    few_ids, few_y = sample_few_labels(corpus_ids, y, 150, seed=0)  # 50 a class
    model = text_recipe.make_text_classifier(lm, labels.names, recipe)
    text_recipe.finetune_text_classifier(model, few_ids, few_y, recipe, recipe.few_epochs)
    test_ids = text_recipe.encode_texts(tokenizer, test.texts, recipe.seq_len)
    accuracy = accuracy_of(model, text_recipe.model_inputs(test_ids), test_y)
    path = export_text_classifier(model, tokenizer, tmp_path / "export")
    with open(tmp_path / "texts.json", "w") as f:
        json.dump(list(test.texts), f)
    served = serve_fresh(SERVE_TEXT, path, tmp_path / "texts.json", cwd=tmp_path)
    served_accuracy = np.mean(labels.encode(served) == test_y)
    print(f"3-class text table, 150 labels: keras {accuracy:.4f}, served {served_accuracy:.4f}")
    assert abs(served_accuracy - accuracy) < 1e-6  # the export answers as the model does
