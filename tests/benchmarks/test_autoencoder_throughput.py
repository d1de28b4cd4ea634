"""autoencoder_throughput at a tiny reduced setting: JSON fields and positive figures."""

import json

import pytest

from benchmarks import autoencoder_throughput

pytestmark = pytest.mark.tf_only  # the input-pipeline part measures tf.data


def test_reduced_run_writes_json(tmp_path):
    out = tmp_path / "ae.json"
    argv = ["--size", "reduced", "--images", "256", "--epochs", "1", "--repeats", "1"]
    autoencoder_throughput.main([*argv, "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["config"] == {"images": 256, "batch_size": 128, "epochs": 1}
    for peer in ("ptft_keras", "plain_keras"):
        for figure in ("images_per_s", "images_per_cpu_s"):
            figures = result["peers"][peer][figure]
            assert figures["median"] > 0 and len(figures["runs"]) == 1
    assert result["ratio"]["ptft_keras_over_plain_keras"] > 0
    assert result["ratio"]["by_cpu_time"]["ptft_keras_over_plain_keras"] > 0
    pipeline = result["input_pipeline"]
    assert set(pipeline["epoch_seconds"]) == {"make_dataset", "free_input", "pipeline_alone"}
    assert all(s["median"] > 0 for s in pipeline["epoch_seconds"].values())
    # The pipeline alone is faster than training through it: the bound is a share.
    assert 0.0 < pipeline["wait_share_upper_bound"] < 1.0
    assert len(pipeline["differential_wait_share_per_round"]) == 1


def test_plain_peer_is_the_same_network():
    from ptft_keras.models.autoencoder import build_conv_autoencoder

    ours = build_conv_autoencoder(seed=0)
    plain = autoencoder_throughput.build_plain_keras(seed=0)
    shapes = lambda model: sorted(tuple(w.shape) for w in model.trainable_weights)
    assert shapes(ours) == shapes(plain)
    assert ours.count_params() == plain.count_params()


def test_too_few_images_is_refused():
    with pytest.raises(ValueError, match="batch"):
        autoencoder_throughput.main(["--images", "10", "--repeats", "1"])
