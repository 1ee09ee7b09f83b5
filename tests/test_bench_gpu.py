"""benchmarks/bench_gpu.py, the command that measures the GPU figures, on a tiny CPU configuration."""

import json

import pytest


@pytest.mark.backends
def test_bench_gpu_measures_every_figure(tmp_path):
    from benchmarks.bench_gpu import main

    out = tmp_path / "figures.json"
    figures = main(["--model", "ssd7", "--image-size", "64", "--train-batch", "2", "--precisions", "float32,bfloat16",
                    "--infer-batches", "1,2", "--confidences", "0.01", "--pipeline-workers", "2", "--pipeline-images", "64",
                    "--steps", "1", "--repeats", "1", "--peer", "off", "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    for key in ("train_float32", "train_bfloat16"):
        assert figures[key]["images_per_s"] > 0 and figures[key]["finite"]
    for key in ("end_to_end_batch1_conf0.01", "end_to_end_batch2_conf0.01"):
        assert figures[key]["frames_per_s"] > 0 and figures[key]["ms"] > 0
    assert figures["forward_batch8_fps"] > 0 and figures["pipeline_2_workers"] > 0
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the mixed run
