"""Shared pytest setup: quiet TensorFlow, seeded runs, backend-aware skips."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

# Real offline data shipped beside the project (see ../shared/data/README.md).
SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs TensorFlow; backend is {keras.backend.backend()}")
    for item in items:
        if "tf_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def shared_data_dir():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"offline data not found at {SHARED_DATA}")
    return SHARED_DATA
