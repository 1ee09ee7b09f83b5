"""The same SSD on TensorFlow, JAX and PyTorch.

`make test` runs this module under each backend (tests marked `backends`); the tests
marked `once` drive every backend themselves, in fresh processes (`conftest.run_under`),
and run in the TensorFlow session only.
"""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import BACKEND, ROOT, run_under

from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.presets import build, builder_kwargs, make_encoder

pytestmark = pytest.mark.backends
once = pytest.mark.skipif(BACKEND != "tensorflow", reason="drives every backend itself: runs in the TensorFlow session")
HERE = os.path.dirname(os.path.abspath(__file__))
KWARGS = dict(builder_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])
LABELS = [np.array([[1, 5, 5, 40, 30], [2, 30, 20, 60, 62]], float), np.array([[3, 10, 12, 50, 50]], float)]
OTHER_BACKENDS = ("jax", "torch")


# ---------------------------------------------------------------- in this process's backend


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.slow
def test_mixed_precision_ssd7_trains_and_stays_close_to_float32(policy):
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    reference, _ = build("ssd7", KWARGS)
    y = make_encoder("ssd7", reference, neg_iou_limit=0.5)(LABELS)
    try:
        keras.mixed_precision.set_global_policy(policy)
        model, _ = build("ssd7", KWARGS)
        model.set_weights(reference.get_weights())
        assert model.get_layer("classes4").compute_dtype == policy.split("_")[1]
        assert model.output.dtype == "float32"  # predictions, and so the loss, in float32
        low, high = model.predict(x, verbose=0), reference.predict(x, verbose=0)
        tolerance = 0.02 if policy == "mixed_float16" else 0.1  # bfloat16 keeps 8 bits of mantissa
        np.testing.assert_allclose(low[..., :4], high[..., :4], atol=tolerance)  # class probabilities
        np.testing.assert_allclose(low[..., 4:8], high[..., 4:8], atol=5 * tolerance)  # offsets
        np.testing.assert_allclose(low[..., 8:], high[..., 8:], atol=1e-6)  # anchors, variances: exact
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss().compute_loss)
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_l2_normalization_under_mixed_precision():
    from ssd_keras.layers.l2_normalization import L2Normalization

    x = np.random.default_rng(1).normal(size=(2, 5, 5, 8)).astype("float32") * 30
    expected = keras.ops.convert_to_numpy(L2Normalization(gamma_init=20)(x))
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = L2Normalization(gamma_init=20)
        out = layer(x)
        assert layer.weights[0].dtype == "float32" and keras.backend.standardize_dtype(out.dtype) == "float16"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out).astype(np.float32), expected, rtol=2e-3, atol=2e-2)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="JAX always compiles the step (jit_compile=False runs it op by op, 30 s "
    "here); torch.compile of it takes about 80 s on 2 CPU cores (measured: the "
    "same losses)",
)
@pytest.mark.slow
def test_jit_compiled_training_step_matches_the_plain_one():
    x = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(3)
        model, _ = build("ssd7", KWARGS)
        y = make_encoder("ssd7", model, neg_iou_limit=0.5)(LABELS)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=SSDLoss().compute_loss, jit_compile=jit)
        losses.append([float(model.train_on_batch(x, y)) for _ in range(2)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


@pytest.mark.slow
def test_decoding_layers_under_jit_compile_equal_the_numpy_decoders():
    # XLA on TensorFlow and JAX, torch.compile on PyTorch: the same detections as the NumPy rule.
    from test_decode_layers import _assert_parity, _raw_predictions

    from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast
    from ssd_keras.layers.decode_detections import DecodeDetections
    from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast

    y = _raw_predictions(11)
    args = dict(confidence_thresh=0.3, iou_threshold=0.45, img_height=120, img_width=160)
    inputs = keras.Input(y.shape[1:])
    model = keras.Model(
        inputs, [DecodeDetections(top_k=30, **args)(inputs), DecodeDetectionsFast(top_k=30, **args)(inputs)]
    )
    model.compile(jit_compile=True)
    per_class, fast = model.predict(y, verbose=0)
    _assert_parity(per_class, decode_detections(y, top_k=30, **args), 30)
    _assert_parity(fast, decode_detections_fast(y, top_k=30, **args), 30)


def _host_conversions(monkeypatch):
    """Records, under PyTorch, each tensor made from host data (a NumPy array, a list, a
    Python number): on a GPU each is a blocking copy after which PyTorch waits for the
    queued work. A record names the innermost caller outside PyTorch and Keras' backend
    and ops modules: a project file, or Keras itself (its trainer and metrics)."""
    import traceback

    import torch

    from benchmarks.bench_gpu import caller_outside_backend

    sites = []

    def recorded(make):
        def wrapper(data, *args, **kwargs):
            if not isinstance(data, torch.Tensor):
                sites.append(caller_outside_backend(traceback.extract_stack()[:-1]))
            return make(data, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(torch, "as_tensor", recorded(torch.as_tensor))
    monkeypatch.setattr(torch, "tensor", recorded(torch.tensor))
    return sites


@pytest.mark.skipif(
    BACKEND != "torch", reason="PyTorch runs op by op; the other backends trace constants into the graph"
)
def test_torch_steps_make_no_tensor_from_host_data_after_the_first(monkeypatch):
    import torch

    x = torch.as_tensor(np.random.default_rng(4).integers(0, 256, (2, 64, 64, 3)).astype("float32"))
    keras.utils.set_random_seed(0)
    model, _ = build("ssd7", KWARGS)
    y = torch.as_tensor(make_encoder("ssd7", model, neg_iou_limit=0.5)(LABELS))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=SSDLoss().compute_loss)
    detector, _ = build("ssd7", KWARGS, "inference", confidence_thresh=0.01, top_k=20)
    steps = {
        "forward": lambda: model.predict_on_batch(x),
        "training step": lambda: model.train_on_batch(x, y),
        "forward and decoding": lambda: detector.predict_on_batch(x),
    }
    for name, step in steps.items():
        step()  # the first call makes the layers' constants
        sites = _host_conversions(monkeypatch)
        step()
        monkeypatch.undo()
        ours = [site for site in sites if not site.startswith("keras/")]  # the others: Keras' trainer and metrics
        assert ours == [], f"{name}: tensors made from host data at {ours}"
        assert len(sites) <= (5 if name == "training step" else 0), f"{name}: {sites}"


@pytest.mark.skipif(
    BACKEND != "torch", reason="PyTorch runs op by op; the other backends trace constants into the graph"
)
def test_torch_ssd300_preprocessing_layers_make_no_tensor_from_host_data_after_the_first(monkeypatch):
    # SSD300's and SSD512's own layers, which SSD7 (above) does not have.
    import torch

    from ssd_keras.layers.l2_normalization import L2Normalization
    from ssd_keras.layers.preprocessing import InputChannelSwap

    x = torch.as_tensor(np.random.default_rng(6).random((2, 5, 5, 3)).astype("float32"))
    for layer in (InputChannelSwap([2, 1, 0]), L2Normalization()):
        first = layer(x)
        sites = _host_conversions(monkeypatch)
        again = layer(x)
        monkeypatch.undo()
        assert sites == [], f"{layer.__class__.__name__}: tensors made from host data at {sites}"
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(again), keras.ops.convert_to_numpy(first))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(InputChannelSwap([2, 1, 0])(x)), x.numpy()[..., ::-1])


@pytest.mark.skipif(BACKEND != "torch", reason="counts the operations PyTorch runs one by one")
def test_torch_training_step_runs_as_many_operations_at_any_batch_size():
    # A Python loop over images or anchors inside the step (Keras' ops.scatter under
    # PyTorch loops over its indices; the loss's hard negative mining used it, 11 s a
    # step for SSD300 at batch 32 on an H200) makes the count grow with the batch.
    import torch
    from torch.overrides import TorchFunctionMode

    class Counted(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Counted.calls += 1
            return func(*args, **(kwargs or {}))

    keras.utils.set_random_seed(0)
    model, _ = build("ssd7", KWARGS)
    y = make_encoder("ssd7", model, neg_iou_limit=0.5)(LABELS)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=SSDLoss().compute_loss)
    x = np.random.default_rng(7).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    counts = {}
    for copies in (1, 3):
        images, targets = torch.as_tensor(np.concatenate([x] * copies)), torch.as_tensor(np.concatenate([y] * copies))
        model.train_on_batch(images, targets)  # the first step at this size
        Counted.calls = 0
        with Counted():
            model.train_on_batch(images, targets)
        counts[2 * copies] = Counted.calls
    assert counts[2] == counts[6], counts
    assert 0 < counts[2] < 3000, counts  # about 2,400 with Keras 3.15


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's transfer guard and compilation events")
def test_jax_predictions_copy_nothing_to_the_device_and_compile_once():
    import jax

    compiled = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kwargs: compiled.append(event) if event.startswith("/jax/core/compile") else None
    )
    x = jax.device_put(np.random.default_rng(5).integers(0, 256, (2, 64, 64, 3)).astype("float32"))
    model, _ = build("ssd7", KWARGS)
    detector, _ = build("ssd7", KWARGS, "inference", confidence_thresh=0.01, top_k=20)
    for step in (model.predict_on_batch, detector.predict_on_batch):
        first = step(x)
        compiled.clear()
        with jax.transfer_guard_host_to_device("disallow"):  # raises on any copy from the host
            again = step(x)
            with pytest.raises(Exception, match="host-to-device"):
                step(np.asarray(x))  # the guard is on: host images would be refused
        assert compiled == []
        np.testing.assert_array_equal(np.asarray(again), np.asarray(first))


def test_features_of_other_backends_name_the_backend_and_the_feature(tmp_path):
    from ssd_keras.errors import BackendError
    from ssd_keras.export.saved_model import convert_tflite, export_saved_model
    from ssd_keras.training.distribution import make_strategy

    if BACKEND == "tensorflow":
        with pytest.raises(
            BackendError, match="data-parallel .* needs the 'jax' Keras backend, but Keras runs on 'tensorflow'"
        ):
            make_strategy("data-parallel")
        return
    for call, feature in (
        (lambda: make_strategy("mirrored"), "--strategy mirrored"),
        (lambda: make_strategy("multiworker"), "--strategy multiworker"),
        (lambda: export_saved_model(None, str(tmp_path / "saved")), "SavedModel export"),
        (lambda: convert_tflite(str(tmp_path), str(tmp_path / "x.tflite")), "TFLite conversion"),
    ):
        with pytest.raises(
            BackendError, match=f"{feature}.* needs the 'tensorflow' Keras backend, but Keras runs on '{BACKEND}'"
        ):
            call()
    if BACKEND == "torch":
        with pytest.raises(BackendError, match="needs the 'jax' Keras backend"):
            make_strategy("data-parallel")


def test_the_jax_compilation_cache_goes_to_the_users_cache_folder_unless_chosen(tmp_path, monkeypatch):
    from ssd_keras.utils.backend import use_jax_compilation_cache

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for environ, folder in (
        ({}, tmp_path / "home" / ".cache" / "ssd_keras" / "jax"),
        ({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "ssd_keras" / "jax"),
    ):
        use_jax_compilation_cache(environ)
        assert environ["JAX_COMPILATION_CACHE_DIR"] == str(folder) and not folder.exists()  # made by JAX, if it runs
        assert environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0" and environ[
            "JAX_COMPILATION_CACHE_MAX_SIZE"
        ] == str(2**31)
    # No cache where JAX would fail to make one (it warned at the first compilation): a
    # folder that cannot be made, or no filelock package.
    (tmp_path / "file").write_text("")
    environ = {"XDG_CACHE_HOME": str(tmp_path / "file")}
    use_jax_compilation_cache(environ)
    assert "JAX_COMPILATION_CACHE_DIR" not in environ
    monkeypatch.setitem(sys.modules, "filelock", None)
    environ = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    use_jax_compilation_cache(environ)
    assert environ == {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    for chosen in ("/my/cache", ""):  # "": no cache
        environ = {"JAX_COMPILATION_CACHE_DIR": chosen}
        use_jax_compilation_cache(environ)
        assert environ == {"JAX_COMPILATION_CACHE_DIR": chosen}
    environ = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "2"}
    use_jax_compilation_cache(environ)
    assert environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"


def test_batch_workers_start_as_the_backend_needs(tmp_path):
    # JAX runs threads from its first computation on: its workers start from a fork
    # server, without JAX's "os.fork() was called" warning; the batches stay the same.
    from test_batch_workers import _data, _dataset

    from ssd_keras.data import batch_workers

    expected = {"tensorflow": "fork", "jax": "forkserver", "torch": "fork"}[BACKEND]
    assert batch_workers.default_start_method() == expected
    keras.ops.convert_to_numpy(
        keras.ops.sum(keras.ops.ones((64, 64)) @ keras.ops.ones((64, 64)))
    )  # the backend is running
    dataset = _dataset(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = _data(dataset, workers=2)
        batches = [tuple(np.array(a) for a in data[i]) for i in range(len(data))]
    assert data._pool.start_method == expected
    data.close()
    reference = _data(dataset, workers=1)  # built here, reseeded per batch as in the workers
    for step, (x, y) in enumerate(batches):
        x_ref, y_ref = reference._build((step, reference._batch_indices(step)))
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)


def _in_main(function):
    """`function` as if a notebook cell or a script had defined it (pickled as ``__main__.<name>``)."""
    main = sys.modules["__main__"]
    function.__module__ = "__main__"
    setattr(main, function.__qualname__, function)
    return function


def _double(task):
    return (np.full((256, 256), task * 2.0, np.float32),)


def test_forkserver_workers_fall_back_to_fork_for_objects_of_main():
    from ssd_keras.data.batch_workers import BatchWorkers

    build = _in_main(_double)
    try:
        with (
            pytest.warns(UserWarning, match=r"fork instead .* uses _double, defined in __main__"),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)  # JAX's, for the fork that follows
            pool = BatchWorkers(build, 1, 1 << 20, 2, start_method="forkserver")
        assert pool.start_method == "fork"
        pool.submit(1, 3)
        np.testing.assert_array_equal(pool.get(1, timeout=60)[0], 6.0)
        pool.close()
    finally:
        delattr(sys.modules["__main__"], "_double")


@once
def test_forkserver_workers_never_run_the_users_script_again(tmp_path):
    # A script without an `if __name__ == "__main__":` guard, as notebooks become.
    script = tmp_path / "train_script.py"
    script.write_text(
        "import keras, numpy as np, pathlib, sys\n"
        f"sys.path.insert(0, {HERE!r})\n"
        "from test_batch_workers import _data, _dataset\n"
        "print('script body ran', flush=True)\n"
        "data = _data(_dataset(pathlib.Path(sys.argv[1])), workers=2)\n"
        "assert data._pool is None and len(data) >= 2\n"
        "x, y = data[1]\n"
        "print(data._pool.start_method, y.shape, flush=True)\n"
    )
    (tmp_path / "data").mkdir()
    result = run_under("jax", [str(script), str(tmp_path / "data")])
    assert result.stdout.count("script body ran") == 1 and "forkserver (3, 340, 15)" in result.stdout


# ---------------------------------------------------------------- every backend, from the TensorFlow session


@once
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.slow
def test_everything_runs_without_tensorflow_installed(backend, tmp_path):
    # Models, fit from keras_dataset, Evaluator, COCO JSON, .keras; TensorFlow features raise
    # BackendError. (A GPU machine may have no TensorFlow.)
    result = run_under(backend, [os.path.join(HERE, "_without_tensorflow.py"), str(tmp_path)], timeout=900)
    assert result.stdout.strip().splitlines()[-1] == "ok"


def _parallel(commands):
    processes = [
        subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for argv, env in commands
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


def _env(backend):
    return dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]),
    )


@once
@pytest.mark.slow
def test_keras_files_load_under_every_backend_with_the_same_outputs(tmp_path):
    backends = ("tensorflow",) + OTHER_BACKENDS
    script = os.path.join(HERE, "_cross_backend.py")
    # One process per backend: each writes its files, waits for the others', loads them all.
    for backend, output in zip(
        backends, _parallel([([script, str(tmp_path), ",".join(backends)], _env(b)) for b in backends])
    ):
        differences = json.loads(output.strip().splitlines()[-1])
        assert len(differences) == 3, differences
        for name, difference in differences.items():
            # The same detections: class ids, scores, and boxes in pixels within float32 rounding.
            assert difference < 1e-3, (backend, name, difference)


@once
@pytest.mark.slow
def test_jax_data_parallel_equals_one_device_on_the_same_global_batch():
    result = run_under(
        "jax",
        [os.path.join(HERE, "_data_parallel_check.py")],
        env={
            "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=2"]).strip()
        },
    )
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers["devices"] == 2
    # The positives sit in the first half of the batch (device 0): a per-device
    # normalisation would change the loss.
    assert numbers["parallel_loss"] == pytest.approx(numbers["single_loss"], rel=1e-5)
    assert numbers["weight_difference"] < 1e-5


@once
def test_the_command_line_leaves_tensorflow_unimported_under_jax_and_pytorch(tmp_path):
    # Keras imports TensorFlow, where installed, to ask whether it is (set_random_seed,
    # model.save): 4-5 s and 400 MB of each JAX or PyTorch run. Measured here without
    # `leave_tensorflow_unimported`: imported_by_keras true under both.
    script = os.path.join(HERE, "_tensorflow_left_alone.py")
    for backend, output in zip(
        OTHER_BACKENDS, _parallel([([script, str(tmp_path / b)], _env(b)) for b in OTHER_BACKENDS])
    ):
        found = json.loads(output.strip().splitlines()[-1])
        assert found == {
            "status": 1,
            "backend": backend,
            "outputs": [6],
            "imported_by_keras": False,
            "available_before": False,
            "available_after_import": True,
        }, found


def test_leaving_tensorflow_unimported_after_keras_is_imported_still_sees_it_once_imported():
    import tensorflow  # noqa: F401
    from keras.src.utils import module_utils

    from ssd_keras.utils.backend import leave_tensorflow_unimported

    leave_tensorflow_unimported()  # Keras is imported here: its lazy module is changed at once
    assert type(module_utils.tensorflow).only_once_imported and module_utils.tensorflow.available
