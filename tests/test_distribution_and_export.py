"""Issue 7 on a CPU: MirroredStrategy on two logical devices, mixed precision, XLA, SavedModel and TFLite export."""

import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from ssd_keras_cli.configs import build, make_encoder, model_kwargs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KWARGS = dict(model_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])
LABELS = [np.array([[1, 5, 5, 40, 30], [2, 30, 20, 60, 62]], float), np.array([[3, 10, 12, 50, 50]], float)]


def test_mirrored_strategy_equals_one_device_on_the_same_global_batch():
    # A fresh process: logical devices must be configured before TensorFlow starts.
    result = subprocess.run([sys.executable, os.path.join(HERE, "_mirrored_check.py")], capture_output=True, text=True, timeout=600)
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
    processes = [subprocess.Popen(argv_of(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env_of(i) if env_of else None) for i in range(2)]
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


def test_cli_trains_with_the_multiworker_strategy(tmp_path):
    from data_generator.synthetic_shapes import make_shapes_dataset

    info = make_shapes_dataset(str(tmp_path / "shapes"), n_trainval=8, n_test=2, seed=1, verbose=False)
    ports = [str(_free_port()), str(_free_port())]
    out = str(tmp_path / "run")

    def env(i):
        cluster = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        return dict(os.environ, TF_CONFIG=json.dumps(cluster), TF_CPP_MIN_LOG_LEVEL="3")

    argv = [sys.executable, "-m", "ssd_keras_cli", "train", "--model", "ssd7", "--image-size", "64x64", "--batch-size", "4",
            "--optimizer", "adam", "--augment", "flip", "--classes", ",".join(info["classes"][1:]), "--seed", "0", "--quiet",
            "--epochs", "1", "--strategy", "multiworker", "--out", out, "--data-format", "voc", "--images-dir", info["images_dir"],
            "--image-set", info["trainval"], "--annotations", info["annotations_dir"]]
    _cluster(lambda i: argv, env)
    for folder in (out, os.path.join(out, "worker-1")):  # the chief's files, and worker 1's apart
        assert os.path.isfile(os.path.join(folder, "model.keras"))
        with open(os.path.join(folder, "training_log.csv")) as f:
            rows = f.read().split()
        assert len(rows) == 2
    with open(os.path.join(out, "training_log.csv")) as f, open(os.path.join(out, "worker-1", "training_log.csv")) as g:
        assert f.read() == g.read()  # both workers log the same global loss


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_ssd7_trains_and_stays_close_to_float32(policy):
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    reference, sizes = build("ssd7", KWARGS)
    y = make_encoder("ssd7", KWARGS, sizes, neg_iou_limit=0.5)(LABELS)
    try:
        keras.mixed_precision.set_global_policy(policy)
        model, _ = build("ssd7", KWARGS)
        model.set_weights(reference.get_weights())
        assert model.get_layer("classes4").compute_dtype == policy.split("_")[1]
        assert model.output.dtype == "float32"  # predictions, and so the loss, in float32
        low, high = model.predict(x, verbose=0), reference.predict(x, verbose=0)
        tolerance = 0.02 if policy == "mixed_float16" else 0.1  # bfloat16 keeps 8 bits of mantissa
        np.testing.assert_allclose(low[..., :4], high[..., :4], atol=tolerance)          # class probabilities
        np.testing.assert_allclose(low[..., 4:8], high[..., 4:8], atol=5 * tolerance)    # offsets
        np.testing.assert_allclose(low[..., 8:], high[..., 8:], atol=1e-6)              # anchors, variances: exact
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss().compute_loss)
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_l2_normalization_under_mixed_precision():
    from keras_layers.keras_layer_L2Normalization import L2Normalization

    x = np.random.default_rng(1).normal(size=(2, 5, 5, 8)).astype("float32") * 30
    expected = L2Normalization(gamma_init=20)(x)
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = L2Normalization(gamma_init=20)
        out = layer(x)
        assert layer.weights[0].dtype == "float32" and out.dtype == "float16"
        np.testing.assert_allclose(np.asarray(out, dtype=np.float32), expected, rtol=2e-3, atol=2e-2)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_jit_compiled_training_step_matches_the_plain_one():
    x = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(3)
        model, sizes = build("ssd7", KWARGS)
        y = make_encoder("ssd7", KWARGS, sizes, neg_iou_limit=0.5)(LABELS)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=SSDLoss().compute_loss, jit_compile=jit)
        losses.append([float(model.train_on_batch(x, y)) for _ in range(2)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from ssd_keras_cli.export import convert_tflite, export_saved_model
    from ssd_keras_cli.inference import add_decoding

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
    from ssd_keras_cli.export import run_tflite

    detector, _ = exported[True]
    images = np.random.default_rng(6).integers(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    np.testing.assert_allclose(run_tflite(exported["tflite"], images), detector.predict(images.astype("float32"), verbose=0), atol=0.01)


def test_tflite_ssd300_with_fast_decoding_uses_builtin_ops_and_matches_keras(tmp_path):
    from ssd_keras_cli.export import convert_tflite, export_saved_model, run_tflite, tflite_interpreter

    keras.utils.set_random_seed(0)
    model, _ = build("ssd300", model_kwargs("ssd300", 20), "inference_fast", confidence_thresh=0.2, top_k=20)
    images = np.random.default_rng(0).integers(0, 256, (1, 300, 300, 3)).astype(np.uint8)
    # Random heads give saturated scores and exploding boxes; scale them to what a trained
    # model gives (logits of order 1, offsets of order 0.5), so that scores do not tie.
    heads = [layer for layer in model.layers if layer.name.endswith(("_mbox_conf", "_mbox_loc"))]
    features = keras.Model(model.input, [layer.input for layer in heads]).predict(images.astype("float32"), verbose=0)
    for layer, feature in zip(heads, features):
        kernel, bias = layer.get_weights()
        spread = np.std(np.tensordot(feature[0], kernel[1, 1], axes=1))
        layer.set_weights([kernel / spread * (1.5 if layer.name.endswith("conf") else 0.5), bias])
    tflite = convert_tflite(export_saved_model(model, str(tmp_path / "saved")), str(tmp_path / "ssd300.tflite"))  # builtins only
    ops = {op["op_name"] for op in tflite_interpreter(tflite)._get_ops_details()}
    assert {"CONV_2D", "L2_NORMALIZATION", "SOFTMAX", "EXP"} <= ops and not any(op.startswith("Flex") for op in ops)
    expected = model.predict(images.astype("float32"), verbose=0)
    assert (expected[0, :, 0] > 0).sum() == 20  # top_k boxes found
    np.testing.assert_allclose(run_tflite(tflite, images), expected, atol=2e-3)


def test_tflite_refuses_combined_nms_without_flex(exported, tmp_path):
    from ssd_keras_cli.export import convert_tflite

    with pytest.raises(Exception, match="CombinedNonMaxSuppression"):
        convert_tflite(exported[False][1], str(tmp_path / "x.tflite"))


def test_export_needs_a_decoding_model(tmp_path):
    from ssd_keras_cli.export import export_saved_model

    model, _ = build("ssd7", KWARGS)
    with pytest.raises(ValueError, match="decoded output"):
        export_saved_model(model, str(tmp_path / "x"))
