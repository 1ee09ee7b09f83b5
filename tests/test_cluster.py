"""Training as a cluster runs it, with the installed ``ssd-keras train`` in fresh processes:
``--strategy data-parallel`` on two host devices equals one device on the same global batch;
two JAX processes on localhost (one CPU device each, gloo between them) equal one process
with two devices; a killed process stops the other within a minute, and the same commands
with ``--resume auto`` finish with the uninterrupted run's weights; resume under
tf.distribute's MirroredStrategy (two logical CPUs) and JAX's DataParallel."""

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import fault_env, shared_folder

HERE = os.path.dirname(os.path.abspath(__file__))
KILLED = -9
EPOCHS = 2
TWO_DEVICES = "--xla_force_host_platform_device_count=2"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    # 12 images: three full batches of 4 an epoch, as data-parallel training takes them.
    return make_shapes_dataset(
        str(tmp_path_factory.mktemp("data") / "shapes"), n_trainval=12, n_test=2, seed=4, verbose=False
    )


def _argv(data, out, *extra):
    return [
        "train", "--model", "ssd7", "--image-size", "64x64", "--batch-size", "4", "--optimizer", "sgd",
        "--lr", "0.01", "--lr-schedule", "constant", "--augment", "flip", "--epochs", str(EPOCHS), "--seed", "0",
        "--save-every", "1", "--quiet", "--classes", ",".join(data["classes"][1:]), "--out", str(out),
        "--data-format", "voc", "--images-dir", data["images_dir"], "--image-set", data["trainval"],
        "--annotations", data["annotations_dir"], *extra,
    ]  # fmt: skip


def _env(backend="jax", devices=2, fault=None, **more):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", SSD_KERAS_HEARTBEAT_TIMEOUT="15")
    env.pop("SSD_KERAS_FAULT", None)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags + ([f"--xla_force_host_platform_device_count={devices}"] if devices > 1 else []))
    if fault:
        env.update(fault_env(fault))
    env.update(more)
    return env


def _command():
    script = os.path.join(os.path.dirname(sys.executable), "ssd-keras")
    if not os.path.exists(script):
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    return [script]


def train(data, out, *extra, timeout=600, **env):
    return subprocess.run(
        [*_command(), *_argv(data, out, *extra)], capture_output=True, text=True, timeout=timeout, env=_env(**env)
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_processes(data, out, *extra, faults=(None, None), timeout=600):
    """Two processes of one run on localhost, one CPU device each; returns their
    ``(returncode, stderr, seconds from start to exit)``."""
    import tempfile

    coordinator = f"127.0.0.1:{_free_port()}"
    logs = [tempfile.TemporaryFile("w+") for _ in range(2)]  # a pipe could fill and block a process
    start = time.monotonic()
    processes = [
        subprocess.Popen(
            [
                *_command(),
                *_argv(data, out, *extra),
                "--strategy",
                "data-parallel",
                "--coordinator",
                coordinator,
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(devices=1, fault=faults[i]),
        )  # fmt: skip
        for i in range(2)
    ]
    ended = [None, None]
    while None in ended:  # each process's time of exit, as it happens
        for i, process in enumerate(processes):
            if ended[i] is None and process.poll() is not None:
                ended[i] = time.monotonic() - start
        if time.monotonic() - start > timeout:
            for process in processes:
                process.kill()
            raise AssertionError("the processes did not end in time")
        time.sleep(0.2)
    results = []
    for process, log, seconds in zip(processes, logs, ended):
        log.seek(0)
        results.append((process.returncode, log.read(), seconds))
        log.close()
    return results


def final(out):
    """The weights, optimizer variables and training log of a finished run (JAX reads it)."""
    code = (
        "import json, sys, numpy as np, keras, ssd_keras.layers\n"
        "m = keras.saving.load_model(sys.argv[1] + '/model.keras')\n"
        "np.savez(sys.argv[1] + '/final.npz', *[np.asarray(v) for v in m.weights + m.optimizer.variables])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=_env(devices=1), capture_output=True)
    with np.load(os.path.join(out, "final.npz")) as arrays:
        values = [arrays[k] for k in sorted(arrays.files, key=lambda k: int(k.split("_")[1]))]
    with open(os.path.join(out, "training_log.csv")) as f:
        log = [line.split(",") for line in f.read().split()]
    return values, log


def assert_same(out, reference, atol=1e-5):
    values, log = final(out)
    ref_values, ref_log = reference
    assert len(values) == len(ref_values)
    worst = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(values, ref_values))
    assert worst <= atol, f"weights differ by up to {worst}"
    assert [row[0] for row in log] == [row[0] for row in ref_log] == ["epoch", *map(str, range(EPOCHS))]
    for row, ref_row in zip(log[1:], ref_log[1:]):
        assert float(row[1]) == pytest.approx(float(ref_row[1]), rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def parallel(data, tmp_path_factory):
    """The uninterrupted run on one process with two host devices (made once for all workers)."""
    with shared_folder(tmp_path_factory, "cluster_parallel") as out:
        if not (out / "model.keras").exists():
            shutil.rmtree(out, ignore_errors=True)
            result = train(data, out, "--strategy", "data-parallel")
            assert result.returncode == 0, result.stderr[-3000:]
        return final(out)


@pytest.mark.slow
def test_data_parallel_on_two_devices_trains_as_one_device(data, parallel, tmp_path):
    result = train(data, tmp_path / "one", devices=2)  # two devices there, the model on the first
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same(tmp_path / "one", parallel)
    result = train(data, tmp_path / "three", "--strategy", "data-parallel", "--batch-size", "3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "The global batch size 3 (--batch-size) does not split evenly between the 2 devices" in result.stderr


@pytest.mark.slow
def test_kill_9_then_resume_auto_under_data_parallel(data, parallel, tmp_path):
    killed = train(data, tmp_path, "--strategy", "data-parallel", "--resume", "auto", fault="kill-at-step:4")
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    result = train(data, tmp_path, "--strategy", "data-parallel", "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in (tmp_path / "train.log").read_text()
    assert_same(tmp_path, parallel)


@pytest.mark.slow
def test_kill_9_then_resume_under_tensorflow_mirrored_on_two_logical_cpus(data, tmp_path):
    script = os.path.join(HERE, "_mirrored_cli.py")

    def run(out, *extra, fault=None):
        return subprocess.run(
            [sys.executable, script, *_argv(data, out, "--strategy", "mirrored", *extra)],
            capture_output=True, text=True, timeout=600, env=_env("tensorflow", devices=1, fault=fault),
        )  # fmt: skip

    result = run(tmp_path / "reference")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas: 2" in result.stdout
    assert run(tmp_path / "killed", "--resume", "auto", fault="kill-at-step:4").returncode == KILLED
    result = run(tmp_path / "killed", "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same(tmp_path / "killed", final(tmp_path / "reference"), atol=1e-6)


@pytest.mark.slow
def test_two_jax_processes_train_as_one_process_with_two_devices(data, parallel, tmp_path):
    results = train_processes(data, tmp_path)
    for code, err, _ in results:
        assert code == 0, err[-3000:]
    assert_same(tmp_path, parallel)
    log = (tmp_path / "train.log").read_text()
    assert log.count("training ssd7 for") == 1 and log.count("finished after epoch") == 1  # process 0 writes alone
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "final.npz", "model.keras", "train.log", "training_log.csv"]


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_resume_auto_finishes_the_run(data, parallel, tmp_path):
    results = train_processes(data, tmp_path, "--resume", "auto", faults=(None, "kill-at-step:4"))
    (code0, err0, seconds0), (code1, _, seconds1) = results
    assert code1 == KILLED
    assert code0 != 0 and seconds0 - seconds1 < 60, (code0, seconds0, seconds1, err0[-2000:])
    results = train_processes(data, tmp_path, "--resume", "auto")
    for code, err, _ in results:
        assert code == 0, err[-3000:]
    assert "resuming from" in (tmp_path / "train.log").read_text()
    assert_same(tmp_path, parallel)
