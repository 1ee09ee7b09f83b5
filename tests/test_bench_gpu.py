"""benchmarks/bench_gpu.py, the command that measures the GPU figures, on a tiny CPU configuration."""

import json

import pytest


@pytest.mark.backends
def test_bench_gpu_measures_every_figure(tmp_path):
    from benchmarks.bench_gpu import main
    from conftest import BACKEND

    # Every case under TensorFlow; under JAX and PyTorch (the GPU machine's backends) the
    # mixed-precision training case and batch 1 only: the other cases run the same code
    # with other numbers, and each costs a compilation (half a minute on these 2 cores).
    precisions, batches = (["float32", "bfloat16"], [1, 2]) if BACKEND == "tensorflow" else (["bfloat16"], [1])
    out = tmp_path / "figures.json"
    figures = main(["--model", "ssd7", "--image-size", "64", "--train-batch", "2", "--precisions", ",".join(precisions),
                    "--infer-batches", ",".join(map(str, batches)), "--confidences", "0.01", "--pipeline-workers", "2",
                    "--pipeline-images", "64", "--steps", "1", "--repeats", "1", "--peer", "off", "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    for precision in precisions:
        assert figures[f"train_{precision}"]["images_per_s"] > 0 and figures[f"train_{precision}"]["finite"]
    for batch in batches:
        case = figures[f"end_to_end_batch{batch}_conf0.01"]
        assert case["frames_per_s"] > 0 and case["ms"] > 0
    assert figures["forward_batch8_fps"] > 0 and figures["pipeline_2_workers"] > 0
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the mixed run
