"""export_latency at reduced size: both exported models, both batch sizes, both peers."""

import json

import pytest

from benchmarks import export_latency

pytestmark = pytest.mark.tf_only  # SavedModel export and loading


def test_reduced_run_writes_json(tmp_path):
    pytest.importorskip("tensorflow_text")
    out = tmp_path / "export.json"
    argv = ["--size", "reduced", "--repeats", "1", "--calls", "3", "--json", str(out)]
    export_latency.main(argv)
    result = json.loads(out.read_text())
    assert set(result["models"]) == {"image", "text"}
    for model in result["models"].values():
        assert set(model) == {"batch_1", "batch_64"}
        for figures in model.values():
            assert figures["savedmodel_ms"]["median"] > 0
            assert figures["keras_compiled_ms"]["median"] > 0
            assert figures["savedmodel_over_keras"] > 0


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="--models"):
        export_latency.main(["--models", "audio", "--repeats", "1"])
