"""benchmarks/bench_gpu.py, the command that measures the GPU figures, on a tiny CPU configuration."""

import json

import pytest


@pytest.mark.backends
@pytest.mark.slow
def test_bench_gpu_measures_every_figure(tmp_path):
    from benchmarks.bench_gpu import main
    from conftest import BACKEND

    # Every case under TensorFlow; under JAX and PyTorch (the GPU machine's backends) the
    # mixed-precision training case and batch 1 only: the other cases run the same code
    # with other numbers, and each costs a compilation (half a minute on these 2 cores).
    precisions, batches = (["float32", "bfloat16"], [1, 2]) if BACKEND == "tensorflow" else (["bfloat16"], [1])
    out = tmp_path / "figures.json"
    figures = main(["--model", "ssd7", "--image-size", "64", "--train-batch", "2", "--precisions", ",".join(precisions),
                    "--fit-steps", "2", "--infer-batches", ",".join(map(str, batches)), "--confidences", "0.01",
                    "--pipeline-workers", "2", "--pipeline-images", "64", "--steps", "1", "--repeats", "1", "--peer", "off",
                    "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    for precision in precisions:
        case = figures[f"train_{precision}"]
        assert case["images_per_s"] > 0 and case["fit_images_per_s"] > 0 and case["finite"]
        assert figures[f"forward_batch8_{precision}"]["frames_per_s"] > 0
    for batch in batches:
        case = figures[f"end_to_end_batch{batch}_conf0.01"]
        assert case["frames_per_s"] > 0 and case["ms"] > 0
    assert figures["pipeline_2_workers"] > 0
    if BACKEND == "jax":
        assert figures["compilations_while_timed"] == 0  # no step compiled again
        assert figures["end_to_end_batch1_conf0.01"]["bare_jit_ms"] > 0
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the mixed run


def test_peer_only_records_why_torchvision_cannot_run(tmp_path):
    # This environment's torchvision is absent or built for another torch; on the GPU
    # machine the peer runs (benchmarks/gpu_run.sh). The reason is kept in the JSON.
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("torchvision imports here: the peer would run for real (minutes on a CPU)")
    from benchmarks.bench_gpu import main

    out = tmp_path / "peer.json"
    with pytest.raises(SystemExit, match="--peer only: torchvision cannot be imported"):
        main(["--peer", "only", "--json", str(out)])
    assert "torchvision cannot be imported" in json.loads(out.read_text())["torchvision"]["skipped"]


def test_sync_sites_name_the_lines_that_made_pytorch_wait(monkeypatch):
    # No GPU here: PyTorch's sync debug mode is stood in for by the warning it gives.
    import warnings

    import keras
    import torch

    from benchmarks import bench_gpu

    modes = []
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)

    def step():
        for _ in range(3):
            warnings.warn("called a synchronizing CUDA operation")  # as PyTorch warns, from this line
        warnings.warn("something else")

    line = step.__code__.co_firstlineno + 2
    assert bench_gpu.sync_sites(step) == {f"tests/test_bench_gpu.py:{line}": 3}
    assert modes == ["warn", "default"]  # switched back off
