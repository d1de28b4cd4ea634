"""split_dataset / sample_few_labels / make_dataset: seeded, balanced, clear errors."""

import numpy as np
import pytest

from ptft_keras.data.splits import make_dataset, sample_few_labels, split_dataset


def data(n=100, num_classes=10):
    images = np.arange(n * 4, dtype=np.int64).reshape(n, 2, 2)  # row i holds 4i..4i+3
    return images, np.arange(n) % num_classes


def test_split_is_seeded_disjoint_and_complete():
    images, labels = data()
    split = split_dataset(images, labels, test_size=30, seed=3)
    assert split.pool_x.shape == (70, 2, 2) and split.test_x.shape == (30, 2, 2)
    ids = lambda x: x[:, 0, 0] // 4  # noqa: E731
    pool, test = ids(split.pool_x), ids(split.test_x)
    assert not set(pool) & set(test) and set(pool) | set(test) == set(range(100))
    np.testing.assert_array_equal(split.pool_y, labels[pool])  # pairs stay aligned
    np.testing.assert_array_equal(split.test_y, labels[test])
    again = split_dataset(images, labels, test_size=30, seed=3)
    np.testing.assert_array_equal(again.test_x, split.test_x)
    other = split_dataset(images, labels, test_size=30, seed=4)
    assert not np.array_equal(other.test_x, split.test_x)


@pytest.mark.parametrize("test_size", [0, 100, 150, 2.5])
def test_split_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        split_dataset(*data(), test_size=test_size)


def test_split_rejects_length_mismatch():
    images, labels = data()
    with pytest.raises(ValueError, match="100 images but 99 labels"):
        split_dataset(images, labels[:99])


def test_few_labels_is_class_balanced_seeded_and_shuffled():
    images, labels = data(200)
    x, y = sample_few_labels(images, labels, budget=50, seed=0)
    assert x.shape == (50, 2, 2)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [5] * 10)
    np.testing.assert_array_equal(labels[x[:, 0, 0] // 4], y)  # pairs stay aligned
    assert len(set(x[:, 0, 0])) == 50  # no duplicates
    assert not np.array_equal(y, np.sort(y))  # classes interleaved, not in blocks
    x2, _ = sample_few_labels(images, labels, budget=50, seed=0)
    np.testing.assert_array_equal(x, x2)
    x3, _ = sample_few_labels(images, labels, budget=50, seed=1)
    assert not np.array_equal(x, x3)


@pytest.mark.parametrize("budget", [None, "all"])
def test_few_labels_all(budget):
    images, labels = data()
    x, y = sample_few_labels(images, labels, budget=budget)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_few_labels_errors():
    images, labels = data(100)
    with pytest.raises(ValueError, match="budget=110 is larger than the data"):
        sample_few_labels(images, labels, 110)
    with pytest.raises(ValueError, match="budget=25 is not divisible by num_classes=10"):
        sample_few_labels(images, labels, 25)
    with pytest.raises(ValueError, match="positive int"):
        sample_few_labels(images, labels, "few")
    with pytest.raises(ValueError, match="positive int"):
        sample_few_labels(images, labels, 0)
    # Class 3 has only 2 examples; 5 per class are needed.
    skewed = labels.copy()
    skewed[np.flatnonzero(labels == 3)[2:]] = 4
    with pytest.raises(ValueError, match="class 3 has 2 examples; budget=50 needs 5"):
        sample_few_labels(images, skewed, 50)
    # num_classes given explicitly: 20 classes of which 10..19 are empty.
    with pytest.raises(ValueError, match="class 10 has 0 examples"):
        sample_few_labels(images, labels, 40, num_classes=20)


@pytest.mark.tf_only
def test_make_dataset_batches_and_shuffles():
    images, labels = data(10)
    ds = make_dataset(images, labels, batch_size=4)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)
    assert images.dtype == batches[0][0].dtype  # dtype kept
    xs = make_dataset(images, batch_size=10, shuffle=True, seed=0)
    epoch1, epoch2 = (next(iter(xs.as_numpy_iterator())) for _ in range(2))
    assert sorted(epoch1[:, 0, 0]) == sorted(images[:, 0, 0])  # same examples
    assert not np.array_equal(epoch1, images)  # shuffled
    assert not np.array_equal(epoch1, epoch2)  # reshuffled each epoch
    with pytest.raises(ValueError, match="x has 10 examples but y has 9"):
        make_dataset(images, labels[:9])
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(images, batch_size=0)
