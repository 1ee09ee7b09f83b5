"""TensorFlow's own features on a CPU: MirroredStrategy on two logical devices,
MultiWorkerMirroredStrategy on a localhost cluster, SavedModel and TFLite export.
(Mixed precision and XLA, which every backend has, are in test_backends.py.)"""

import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import calm_heads, tensorflow_only  # noqa: E402

from ssd_keras.models.presets import build, builder_kwargs  # noqa: E402

pytestmark = tensorflow_only

HERE = os.path.dirname(os.path.abspath(__file__))
KWARGS = dict(builder_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])


@pytest.mark.slow
def test_mirrored_strategy_equals_one_device_on_the_same_global_batch():
    # A fresh process: logical devices must be configured before TensorFlow starts.
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "_mirrored_check.py")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    # All positives sit on replica 0: normalising per replica would halve the loss.
    assert numbers["mirrored_loss"] == pytest.approx(numbers["single_loss"], rel=1e-5)
    assert numbers["weight_difference"] < 1e-5


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _cluster(argv_of, env_of=None):
    """Runs two worker processes, `argv_of(i)`, concurrently; returns their outputs."""
    processes = [
        subprocess.Popen(
            argv_of(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_of(i) if env_of else None
        )
        for i in range(2)
    ]
    outputs = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            raise
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


@pytest.mark.slow
def test_multiworker_strategy_equals_one_device_on_the_same_global_batch():
    # Two workers on localhost, one CPU each, the global batch of 4 split 2 + 2.
    script = os.path.join(HERE, "_multiworker_check.py")
    ports = [str(_free_port()), str(_free_port())]
    workers = _cluster(lambda i: [sys.executable, script, "worker", str(i), *ports])
    single = subprocess.run([sys.executable, script, "single"], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    expected = json.loads(single.stdout.strip().splitlines()[-1])
    for output in workers:
        got = json.loads(output.strip().splitlines()[-1])
        assert got["replicas"] == 2 and expected["replicas"] == 1
        # All positives are on worker 0: per-worker normalisation would halve its loss.
        assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
        np.testing.assert_allclose(got["weights"], expected["weights"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["weight_abs"], expected["weight_abs"], rtol=1e-5)


@pytest.mark.slow
def test_cli_trains_with_the_multiworker_strategy(tmp_path):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    info = make_shapes_dataset(str(tmp_path / "shapes"), n_trainval=8, n_test=2, seed=1, verbose=False)
    ports = [str(_free_port()), str(_free_port())]
    out = str(tmp_path / "run")

    def env(i):
        cluster = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        return dict(os.environ, TF_CONFIG=json.dumps(cluster), TF_CPP_MIN_LOG_LEVEL="3")

    argv = [
        sys.executable,
        "-m",
        "ssd_keras",
        "train",
        "--model",
        "ssd7",
        "--image-size",
        "64x64",
        "--batch-size",
        "4",
        "--optimizer",
        "adam",
        "--augment",
        "flip",
        "--classes",
        ",".join(info["classes"][1:]),
        "--seed",
        "0",
        "--quiet",
        "--epochs",
        "1",
        "--strategy",
        "multiworker",
        "--out",
        out,
        "--data-format",
        "voc",
        "--images-dir",
        info["images_dir"],
        "--image-set",
        info["trainval"],
        "--annotations",
        info["annotations_dir"],
    ]
    _cluster(lambda i: argv, env)
    for folder in (out, os.path.join(out, "worker-1")):  # the chief's files, and worker 1's apart
        assert os.path.isfile(os.path.join(folder, "model.keras"))
        with open(os.path.join(folder, "training_log.csv")) as f:
            rows = f.read().split()
        assert len(rows) == 2
    with open(os.path.join(out, "training_log.csv")) as f, open(os.path.join(out, "worker-1", "training_log.csv")) as g:
        assert f.read() == g.read()  # both workers log the same global loss


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from ssd_keras.export.saved_model import convert_tflite, export_saved_model
    from ssd_keras.inference.loading import add_decoding

    keras.utils.set_random_seed(4)
    model, _ = build("ssd7", KWARGS)
    root = tmp_path_factory.mktemp("export")
    out = {}
    for fast in (False, True):
        detector = add_decoding(model, confidence_thresh=0.3, fast=fast)
        path = export_saved_model(detector, str(root / f"saved_{fast}"))
        out[fast] = (detector, path)
    out["tflite"] = convert_tflite(out[True][1], str(root / "ssd7.tflite"))
    return out


@pytest.mark.parametrize("fast", [False, True])
def test_saved_model_takes_uint8_and_matches_keras(exported, fast):
    import tensorflow as tf

    detector, path = exported[fast]
    images = np.random.default_rng(5).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    loaded = tf.saved_model.load(path)  # TensorFlow alone: no Keras objects needed
    served = loaded.serve(tf.constant(images)).numpy()
    expected = detector.predict(images.astype("float32"), verbose=0)
    assert served.shape == expected.shape == (2, 200, 6) and (expected[..., 0] > 0).sum() > 0
    np.testing.assert_allclose(served, expected, atol=1e-4)
    with pytest.raises((TypeError, ValueError)):
        loaded.serve(tf.constant(images.astype("float32")))  # the signature is uint8


def test_tflite_ssd7_with_fast_decoding_matches_keras(exported):
    from ssd_keras.export.saved_model import run_tflite

    detector, _ = exported[True]
    images = np.random.default_rng(6).integers(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    np.testing.assert_allclose(
        run_tflite(exported["tflite"], images), detector.predict(images.astype("float32"), verbose=0), atol=0.01
    )


@pytest.mark.slow
def test_tflite_ssd300_with_fast_decoding_uses_builtin_ops_and_matches_keras(tmp_path):
    from ssd_keras.export.saved_model import convert_tflite, export_saved_model, run_tflite, tflite_interpreter

    keras.utils.set_random_seed(0)
    model, _ = build("ssd300", builder_kwargs("ssd300", 20), "inference_fast", confidence_thresh=0.2, top_k=20)
    images = np.random.default_rng(0).integers(0, 256, (1, 300, 300, 3)).astype(np.uint8)
    calm_heads(model, images)
    tflite = convert_tflite(
        export_saved_model(model, str(tmp_path / "saved")), str(tmp_path / "ssd300.tflite")
    )  # builtins only
    ops = {op["op_name"] for op in tflite_interpreter(tflite)._get_ops_details()}
    assert {"CONV_2D", "L2_NORMALIZATION", "SOFTMAX", "EXP"} <= ops and not any(op.startswith("Flex") for op in ops)
    expected = model.predict(images.astype("float32"), verbose=0)
    assert (expected[0, :, 0] > 0).sum() == 20  # top_k boxes found
    np.testing.assert_allclose(run_tflite(tflite, images), expected, atol=2e-3)


def test_tflite_ssd7_with_per_class_decoding_uses_builtin_ops_and_matches_keras(exported, tmp_path):
    # DecodeDetections used to need TF's CombinedNonMaxSuppression, which TFLite lacks (Flex);
    # written in keras.ops it converts to builtin ops.
    from ssd_keras.export.saved_model import convert_tflite, run_tflite, tflite_interpreter

    detector, saved = exported[False]
    tflite = convert_tflite(saved, str(tmp_path / "ssd7_per_class.tflite"))
    assert not any(op["op_name"].startswith("Flex") for op in tflite_interpreter(tflite)._get_ops_details())
    images = np.random.default_rng(7).integers(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    expected = detector.predict(images.astype("float32"), verbose=0)
    assert (expected[0, :, 1] > 0).sum() > 0
    np.testing.assert_allclose(run_tflite(tflite, images), expected, atol=0.01)


def test_export_needs_a_decoding_model(tmp_path):
    from ssd_keras.export.saved_model import export_saved_model

    model, _ = build("ssd7", KWARGS)
    with pytest.raises(ValueError, match="decoded output"):
        export_saved_model(model, str(tmp_path / "x"))
