"""benchmarks/bench_gpu.py, the command that measures the GPU figures, on a tiny CPU configuration."""

import json


def test_bench_gpu_measures_every_figure(tmp_path):
    from benchmarks.bench_gpu import main

    out = tmp_path / "figures.json"
    figures = main(["--model", "ssd7", "--image-size", "64", "--train-batch", "2", "--precisions", "float32,mixed_bfloat16",
                    "--infer-batches", "1,2", "--steps", "1", "--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    for key in ("train_float32_batch2", "train_mixed_bfloat16_batch2", "inference_batch1", "inference_batch2"):
        assert figures[key] > 0
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the mixed run
