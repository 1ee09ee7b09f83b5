"""What a new user meets, checked as a user meets it: the installed ``ssd-keras`` command in
a new process, files written by one process read by another."""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from conftest import BACKEND, fault_env

from ssd_keras.models.files import save_model
from ssd_keras.models.ssd7 import build_model

SCALES = [0.2, 0.4, 0.6, 0.8, 0.95]
CLASSES = ["background", "circle", "rectangle", "triangle"]


def ssd_keras(*argv, timeout=600, env=None):
    """Runs the installed console script (as a user does); returns the CompletedProcess.
    `env` adds to this process's environment variables (None: removes one)."""
    script = os.path.join(os.path.dirname(sys.executable), "ssd-keras")
    if not os.path.exists(script):
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    env = {
        name: value
        for name, value in dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})).items()
        if value is not None
    }  # None: not set
    return subprocess.run([script, *argv], capture_output=True, text=True, timeout=timeout, env=env)


def keras_refused(folder):
    """Environment variables that put a `keras` which cannot be imported first on the path:
    for errors that must come back at once, before Keras and its backend start (5-7 s)."""
    os.makedirs(os.path.join(folder, "keras"))
    with open(os.path.join(folder, "keras", "__init__.py"), "w") as f:
        f.write("raise ImportError('keras was imported')\n")
    return {"PYTHONPATH": str(folder)}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(100, 150, (64 + 8 * i, 80, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A decoding SSD7 saved with the demo's threshold (0.01) and its class names, the same
    without names, and an untrained one whose boxes reach far beyond any image."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    detector = build_model(
        (64, 64, 3),
        3,
        mode="inference",
        scales=SCALES,
        confidence_thresh=0.01,
        top_k=200,
        subtract_mean=127.5,
        divide_by_stddev=127.5,
    )
    save_model(detector, str(folder / "named.keras"), CLASSES)
    save_model(detector, str(folder / "unnamed.keras"))
    # The SSD7 notebook's variances [1, 1, 1, 1] and a width/height offset of 25: boxes of
    # about e^25 pixels, beyond the C int range that OpenCV draws in.
    wild = build_model(
        (64, 64, 3), 3, mode="inference", scales=SCALES, variances=[1.0] * 4, confidence_thresh=0.01, top_k=20
    )
    for layer in wild.layers:
        if layer.name.startswith("boxes") and layer.name[5:].isdigit():
            kernel, bias = layer.get_weights()
            bias = np.tile([0.0, 0.0, 25.0, 25.0], len(bias) // 4).astype(np.float32)
            layer.set_weights([np.zeros_like(kernel), bias])
    save_model(wild, str(folder / "wild.keras"))
    return folder


def _detections(folder):
    with open(os.path.join(folder, "detections.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_decoding_flags_apply_to_a_model_that_already_decodes(models, images, tmp_path):
    # The saved threshold (0.01) used to win over --confidence-thresh and --top-k.
    counts = {}
    for threshold, top_k in (("0.01", "30"), ("0.5", "200")):
        out = str(tmp_path / threshold)
        result = ssd_keras(
            "predict",
            "--model-file",
            str(models / "named.keras"),
            "--confidence-thresh",
            threshold,
            "--top-k",
            top_k,
            "--quiet",
            "--out",
            out,
            str(images),
        )
        assert result.returncode == 0, result.stderr[-2000:]
        records = _detections(out)
        scores = [d["confidence"] for r in records for d in r["detections"]]
        assert all(score > float(threshold) for score in scores)
        counts[threshold] = [len(r["detections"]) for r in records]
    assert counts["0.01"] == [30] * 4  # --top-k
    assert 0 < sum(counts["0.5"]) < 120


@pytest.mark.slow
def test_class_names_come_from_the_model_file(models, images, tmp_path):
    result = ssd_keras(
        "predict",
        "--model-file",
        str(models / "named.keras"),
        "--confidence-thresh",
        "0.5",
        "--quiet",
        "--out",
        str(tmp_path / "named"),
        str(images),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = {d["class"] for r in _detections(str(tmp_path / "named")) for d in r["detections"]}
    assert names and names <= set(CLASSES[1:])  # not 'aeroplane', 'bicycle', ...
    result = ssd_keras(
        "predict",
        "--model-file",
        str(models / "unnamed.keras"),
        "--confidence-thresh",
        "0.5",
        "--quiet",
        "--out",
        str(tmp_path / "unnamed"),
        str(images),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = {d["class"] for r in _detections(str(tmp_path / "unnamed")) for d in r["detections"]}
    assert names and names <= {"class_1", "class_2", "class_3"}
    # Told before Keras starts: the file stores its class names.
    result = ssd_keras(
        "predict",
        "--model-file",
        str(models / "named.keras"),
        "--classes",
        "cat,dog",
        "--out",
        str(tmp_path / "x"),
        str(images),
        env=keras_refused(tmp_path / "stub"),
    )
    assert result.returncode == 2 and "--classes names 2 classes (cat, dog), but the model has 3" in result.stderr, (
        result.stderr[-2000:]
    )
    result = ssd_keras(
        "predict",
        "--model-file",
        str(models / "unnamed.keras"),
        "--classes",
        "cat,dog",
        "--out",
        str(tmp_path / "x"),
        str(images),
    )
    assert result.returncode == 2 and "--classes names 2 classes (cat, dog), but the model has 3" in result.stderr


def test_classes_in_another_order_than_the_model_file_are_refused(models, images, tmp_path, capsys):
    from ssd_keras.cli import main

    argv = [
        "predict",
        "--model-file",
        str(models / "named.keras"),
        "--quiet",
        "--out",
        str(tmp_path / "out"),
        str(images),
    ]
    assert main(argv + ["--classes", "triangle,circle,rectangle"]) == 2  # the detections would carry the wrong names
    err = capsys.readouterr().err
    assert (
        "--classes lists the classes of "
        + str(models / "named.keras")
        + " in another order (triangle, circle, rectangle) than it "
        "was trained with (circle, rectangle, triangle)"
    ) in err
    assert not os.path.exists(tmp_path / "out")
    assert main(argv + ["--classes", "disc,box,wedge", "--confidence-thresh", "0.01"]) == 0  # renamed: said, and done
    assert (
        "ssd-keras predict: warning: --classes (disc, box, wedge) are not the class names stored in "
        + str(models / "named.keras")
        + " (circle, rectangle, triangle)"
    ) in capsys.readouterr().err
    names = {d["class"] for r in _detections(str(tmp_path / "out")) for d in r["detections"]}
    assert names and names <= {"disc", "box", "wedge"}


@pytest.mark.slow
def test_a_corrupt_image_is_skipped_and_named(models, images, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("img0.png", "img1.png"):
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = str(tmp_path / "out")
    result = ssd_keras("predict", "--model-file", str(models / "named.keras"), "--quiet", "--out", out, str(folder))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "broken.jpg" in result.stderr and "1 of 3 images could not be read" in result.stderr
    # A warning is one line of the command's, without Python's file, line number and source line.
    warning = f"ssd-keras predict: warning: Skipped {folder / 'broken.jpg'}: Cannot decode image file"
    assert warning in result.stderr and "UserWarning" not in result.stderr and "prediction.py" not in result.stderr
    assert sorted(os.path.basename(r["file"]) for r in _detections(out)) == ["img0.png", "img1.png"]
    assert sorted(n for n in os.listdir(out) if n.endswith(".png")) == ["img0.png", "img1.png"]
    strict = ssd_keras(
        "predict", "--model-file", str(models / "named.keras"), "--quiet", "--strict", "--out", out, str(folder)
    )
    assert strict.returncode == 1
    only_bad = ssd_keras(
        "predict", "--model-file", str(models / "named.keras"), "--quiet", "--out", out, str(folder / "broken.jpg")
    )
    assert only_bad.returncode == 1 and "1 of 1 images could not be read" in only_bad.stderr


@pytest.mark.slow
def test_training_data_at_fault_is_named_before_training_or_when_met(tmp_path):
    # A CSV that names a missing image is refused before any work, and a box with swapped
    # columns is named in a warning. An image that cannot be decoded stops training when its
    # batch comes, in one line naming it (under TensorFlow its error arrives wrapped in the
    # input pipeline's); mended, the same command starts again in the same --out.
    folder, out = tmp_path / "images", tmp_path / "run"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    labels = folder / "labels.csv"
    rows = [f"img{i}.png,8,40,8,40,1" for i in range(6)]

    def train_on(rows):
        labels.write_text("frame,xmin,xmax,ymin,ymax,class_id\n" + "\n".join(rows) + "\n")
        return ssd_keras(
            "train",
            "--model",
            "ssd7",
            "--image-size",
            "64x64",
            "--batch-size",
            "2",
            "--epochs",
            "1",
            "--augment",
            "none",
            "--classes",
            "a,b",
            "--quiet",
            "--data-format",
            "csv",
            "--images-dir",
            str(folder),
            "--labels",
            str(labels),
            "--out",
            str(out),
        )

    result = train_on(rows + ["gone.png,8,40,8,40,1", "img0.png,40,8,8,40,2"])
    assert result.returncode == 1
    assert (
        f"ssd-keras train: warning: 1 of 8 boxes in {labels} have xmax <= xmin or ymax <= ymin (training leaves them "
        "out; "
        "evaluation counts them as objects to find): img0.png (xmin 40, ymin 8, xmax 8, ymax 40)\n"
    ) in result.stderr
    assert result.stderr.endswith(
        f"ssd-keras train: error: 1 of 7 image files that {labels} names are missing: {folder / 'gone.png'}\n"
    )
    assert not out.exists()
    (folder / "img3.png").write_bytes(b"\x89PNG not really")
    result = train_on(rows)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.endswith(
        f"ssd-keras train: error: DatasetError: Cannot decode image file: {folder / 'img3.png'}. Training "
        "stopped at epoch 1; the last checkpoint is none yet; mend the data and start again.\n"
    ), result.stderr
    result = train_on(rows[:3] + rows[4:])  # no --overwrite needed: the failed run left no epoch behind
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.isfile(out / "model.keras")


def test_boxes_far_outside_the_image_are_drawn_clipped_and_kept_in_the_json(models, images, tmp_path):
    out = str(tmp_path / "wild")
    result = ssd_keras(
        "predict",
        "--model-file",
        str(models / "wild.keras"),
        "--confidence-thresh",
        "0.01",
        "--quiet",
        "--out",
        out,
        str(images),
    )
    assert result.returncode == 0, result.stderr[-2000:]  # cv2.rectangle used to reject the corners
    records = _detections(out)
    assert all(os.path.isfile(os.path.join(out, r["drawing"])) for r in records)
    widths = [d["xmax"] - d["xmin"] for r in records for d in r["detections"]]
    assert widths and min(widths) > 2**31  # the model's numbers, not the clipped ones


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.write_text("no model here"), "Not a .keras or .h5 model file"),
        (lambda path: path.with_suffix(".keras").write_bytes(b"PK\x03\x04 truncated"), "Not a Keras model file"),
    ],
)
def test_a_file_that_is_not_a_model_is_named(make, message, images, tmp_path):
    path = tmp_path / "model.txt"
    make(path)
    target = path if path.exists() else path.with_suffix(".keras")
    result = ssd_keras(
        "predict",
        "--model-file",
        str(target),
        "--quiet",
        "--out",
        str(tmp_path / "out"),
        str(images),
        env=keras_refused(tmp_path / "stub"),
    )
    assert result.returncode == 1 and message in result.stderr and str(target) in result.stderr
    assert "not found" not in result.stderr.lower()


@pytest.mark.slow
def test_keras2_h5_files_given_as_a_model_name_the_flags_that_load_them(images, tmp_path):
    from conftest import write_keras2_weights

    from ssd_keras.errors import NotAModelError
    from ssd_keras.inference.loading import load_detector
    from ssd_keras.models.presets import build, builder_kwargs

    keras.utils.set_random_seed(5)
    source, _ = build("ssd7", builder_kwargs("ssd7", 3, (64, 64, 3)), mode="training")
    weights, whole = str(tmp_path / "ssd7_weights.h5"), str(tmp_path / "ssd7_epoch-20_loss-1.2345.h5")
    write_keras2_weights(weights, source)
    write_keras2_weights(whole, source, whole_model=True)  # the original's ModelCheckpoint file
    for path, message in (
        (weights, f"{weights} holds weights only"),
        (whole, f"{whole} is a whole model saved by Keras 2.1.6"),
    ):
        with pytest.raises(NotAModelError) as error:
            load_detector(path)
        assert message in str(error.value), str(error.value)
    assert f"--model ssd7 --image-size 64x64 --weights {whole}" in str(error.value)  # read from the file
    # The advice works: the same detections as the model itself, saved by Keras 3.
    save_model(source, str(tmp_path / "source.keras"), CLASSES)
    runs = {
        "keras": ["--model-file", str(tmp_path / "source.keras")],
        "advice": ["--model", "ssd7", "--image-size", "64x64", "--classes", ",".join(CLASSES[1:]), "--weights", whole],
    }
    found = {}
    for name, flags in runs.items():
        out = str(tmp_path / name)
        result = ssd_keras(
            "predict", *flags, "--confidence-thresh", "0.01", "--top-k", "20", "--quiet", "--out", out, str(images)
        )
        assert result.returncode == 0, result.stderr[-2000:]
        found[name] = [(os.path.basename(r["file"]), r["detections"]) for r in _detections(out)]
    assert found["advice"] == found["keras"] and sum(len(d) for _, d in found["keras"]) > 0


def test_weights_that_do_not_fit_the_model_name_the_cause(tmp_path):
    import h5py
    from conftest import write_keras2_weights

    from ssd_keras.inference.loading import load_weights_file
    from ssd_keras.models.presets import build, builder_kwargs

    def ssd7(n_classes):
        return build("ssd7", builder_kwargs("ssd7", n_classes, (64, 64, 3)), mode="training")[0]

    path = str(tmp_path / "three_classes.h5")
    write_keras2_weights(path, ssd7(3))
    wrong = (
        f"--weights {path} is for 3 classes (plus background), the model for 20: give --classes with its 3 class names"
    )
    with pytest.raises(ValueError) as error:
        load_weights_file(ssd7(20), path)  # --classes forgotten: the VOC default
    assert str(error.value) == wrong
    with pytest.raises(ValueError, match="or for other classes make a file with `ssd-keras sample-weights`"):
        load_weights_file(ssd7(20), path, for_training=True)
    with h5py.File(path, "a") as f:  # another architecture: not a matter of classes
        del f["conv1/conv1/kernel:0"]
        f["conv1"].create_dataset("conv1/kernel:0", data=np.zeros((3, 3, 3, 32), np.float32))
    with pytest.raises(
        ValueError,
        match=r"does not fit the model built from --model, --image-size and --scales \(1 layer\(s\) "
        r"differ: conv1: conv1/kernel:0: file \(3, 3, 3, 32\) vs model \(5, 5, 3, 32\)\)",
    ):
        load_weights_file(ssd7(3), path)
    partial = str(tmp_path / "no_classifiers.h5")
    write_keras2_weights(partial, ssd7(3), skip=("classes4", "classes5"))
    with pytest.warns(
        UserWarning, match="has no weights for 2 layers of the model, which keep random values: classes4, classes5"
    ):
        load_weights_file(ssd7(3), partial)
    assert load_weights_file(ssd7(3), partial, for_training=True).model_only == [
        "classes4",
        "classes5",
    ]  # a base network: no warning
    # Keras 3's own weights files (model.save_weights) load as Keras loads them, by structure.
    source, keras3 = ssd7(3), str(tmp_path / "mine.weights.h5")
    source.save_weights(keras3)
    target = ssd7(3)
    assert load_weights_file(target, keras3) is None
    assert all(np.array_equal(a, b) for a, b in zip(target.get_weights(), source.get_weights()))
    with pytest.raises(
        ValueError,
        match=r"mine.weights.h5 \(Keras 3 weights, which load only into the same architecture\) does not "
        r"fit .* \(variable.shape=\(3, 3, 64, 84\), Received: value.shape=\(3, 3, 64, 16\)\)$",
    ):
        load_weights_file(ssd7(20), keras3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--batch-size", "-4", "--data-format", "voc", "--images-dir", "/no/such/dir"],
            "expected a positive integer",
        ),
        (
            ["train", "--resume", "latest", "--data-format", "voc", "--images-dir", "/no/such/dir"],
            "--resume latest: no checkpoint",
        ),
        (
            ["train", "--classes", "my_classes.txt", "--data-format", "voc", "--images-dir", "/no/such/dir"],
            "Class names file not found: my_classes.txt",
        ),
        (["predict", "--top-k", "0", "--model-file", "m.keras", "x.png"], "expected a positive integer"),
        (
            ["train", "--data-format", "voc", "--images-dir", "/no/such/dir"],
            "holds an earlier training run (1 files: model.keras)",
        ),
    ],
)
def test_argument_errors_exit_2_before_any_data_is_read(argv, message, tmp_path):
    # The images directory does not exist: reading data first would fail with status 1.
    if "earlier training run" in message:  # the same command run again into the folder of a run that ended
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "model.keras").write_bytes(b"")
    result = ssd_keras(*argv, "--out", str(tmp_path / "run"), env=keras_refused(tmp_path / "stub"))
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Images directory not found" not in result.stderr


def test_evaluate_names_a_missing_data_path_before_it_loads_the_model(tmp_path):
    # Loading SSD300 takes its seconds after Keras' start: a mistyped path is named first.
    env = keras_refused(tmp_path / "stub")
    (tmp_path / "images").mkdir()
    for argv, message in (
        (["--images-dir", str(tmp_path / "imgs")], f"Images directory not found: {tmp_path / 'imgs'}"),
        (["--images-dir", str(tmp_path / "images"), "--image-set", "test.txt"], "Image-set file not found: test.txt"),
    ):
        result = ssd_keras(
            "evaluate", "--model-file", str(tmp_path / "ssd300.keras"), "--data-format", "voc", *argv, env=env
        )
        assert result.returncode == 1 and f"ssd-keras evaluate: error: {message}" in result.stderr, result.stderr[
            -2000:
        ]


@pytest.mark.backends
@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow: the test below, twice")
@pytest.mark.slow
def test_demo_runs_under_jax_and_pytorch(tmp_path):
    out = str(tmp_path / "demo")
    result = ssd_keras("demo", "--smoke", "--epochs", "2", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics["mAP"] <= 1.0 and len(metrics["AP"]) == 3 and np.isfinite(metrics["final_loss"])
    with open(os.path.join(out, "training_log.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()] == ["epoch", "0", "1"]  # one row per epoch
    assert len(_detections(os.path.join(out, "predictions"))) == 8
    assert keras.saving.load_model(os.path.join(out, "ssd7_shapes.keras")).output.shape[1:] == (200, 6)


@pytest.mark.slow
def test_demo_shows_epochs_of_all_times_and_is_repeatable_even_when_interrupted(tmp_path):
    runs = []
    for k in range(2):
        out = str(tmp_path / f"demo{k}")
        if k == 1:  # Ctrl-C in epoch 2 (4 steps an epoch), then --resume: the same demo to the end
            stopped = ssd_keras("demo", "--smoke", "--epochs", "2", "--out", out, env=fault_env("interrupt-at-step:6"))
            assert stopped.returncode == 130 and "goes on at epoch 2, batch 3 (--resume latest)" in stopped.stderr, (
                stopped.stderr[-2000:]
            )
            assert not os.path.exists(os.path.join(out, "metrics.json"))
        result = ssd_keras("demo", "--smoke", "--epochs", "2", "--out", out, *(["--resume"] if k else []))
        assert result.returncode == 0, result.stderr[-2000:]
        # "epoch 2/2" with its loss and times, not Keras' "Epoch 2/2" of a one-epoch fit.
        assert (
            ("epoch 1/2:" in result.stderr) != bool(k)
            and "epoch 2/2:" in result.stderr
            and "elapsed, about" in result.stderr
        )
        assert "Epoch 2/2" not in result.stdout + result.stderr
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        parts = metrics["data_seconds"] + metrics["training_seconds"] + metrics["evaluation_seconds"]
        assert 0 < metrics["training_seconds"] < metrics["seconds"] and parts <= metrics["seconds"]
        assert 0.0 <= metrics["mAP"] <= 1.0 and len(metrics["AP"]) == 3
        # Every test image drawn; detections.json uses predict's convention: absolute paths.
        records = _detections(os.path.join(out, "predictions"))
        assert len(records) == 8 and all(os.path.isabs(r["file"]) for r in records)
        assert sorted(n for n in os.listdir(os.path.join(out, "predictions")) if n.endswith(".png")) == sorted(
            r["drawing"] for r in records
        )
        model = keras.saving.load_model(os.path.join(out, "ssd7_shapes.keras"))
        assert model.output.shape[1:] == (200, 6)
        with open(os.path.join(out, "training_log.csv")) as f:
            assert [line.split(",")[0] for line in f.read().split()] == ["epoch", "0", "1"]  # every epoch kept
        runs.append((metrics["mAP"], metrics["final_loss"]))
    assert runs[0] == runs[1]  # seeded: the same numbers run to run


@pytest.mark.slow
def test_jax_runs_keep_their_compiled_programs_for_the_next_run(models, images, tmp_path):
    # Under JAX a run compiles every weight initializer of the model and its predictions;
    # ssd-keras keeps JAX's compilation cache in $XDG_CACHE_HOME/ssd_keras/jax, so a second
    # run compiles nothing (SSD300's predict on 24 images: 20 s, then 12 s on 2 cores).
    cache = tmp_path / "xdg" / "ssd_keras" / "jax"
    env = {
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "JAX_COMPILATION_CACHE_DIR": None,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": None,
    }
    entries = []
    for k in range(2):
        result = ssd_keras(
            "predict",
            "--backend",
            "jax",
            "--model-file",
            str(models / "named.keras"),
            "--quiet",
            "--out",
            str(tmp_path / f"run{k}"),
            str(images),
            env=env,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        entries.append(sorted(os.listdir(cache)))
    assert len(entries[0]) > 10 and entries[1] == entries[0]  # the second run found every program there
    assert _detections(tmp_path / "run1") == _detections(tmp_path / "run0")


def test_detections_json_stays_json_when_boxes_reach_infinity(tmp_path):
    # Width/height offsets of 200 with variances 1: e^200 overflows float32 to inf; Python's
    # json wrote -Infinity and Infinity, which no JSON reader takes.
    model = build_model(
        (64, 64, 3), 3, mode="inference", scales=SCALES, variances=[1.0] * 4, confidence_thresh=0.01, top_k=5
    )
    for layer in model.layers:
        if layer.name.startswith("boxes") and layer.name[5:].isdigit():
            kernel, bias = layer.get_weights()
            layer.set_weights([np.zeros_like(kernel), np.tile([0.0, 0.0, 200.0, 200.0], len(bias) // 4)])
    save_model(model, str(tmp_path / "infinite.keras"))
    cv2.imwrite(str(tmp_path / "image.png"), np.full((64, 64, 3), 128, np.uint8))
    out = tmp_path / "out"
    result = ssd_keras(
        "predict", "--model-file", str(tmp_path / "infinite.keras"), "--confidence-thresh", "0.01", "--quiet",
        "--out", str(out), str(tmp_path / "image.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    [record] = json.loads((out / "detections.json").read_text(), parse_constant=refuse)
    assert record["detections"] and all(d["xmin"] is None and d["xmax"] is None for d in record["detections"])
    assert all(d["confidence"] > 0.01 for d in record["detections"])


DEMO_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ssd7_shapes_demo.keras")


@pytest.mark.backends
@pytest.mark.slow
def test_export_writes_files_that_predict_and_evaluate_take(tmp_path):
    import onnx

    from ssd_keras import Detector
    from ssd_keras.data.loading import load_dataset
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset
    from ssd_keras.evaluation.metrics import evaluate_voc
    from ssd_keras.inference.loading import load_detector

    info = make_shapes_dataset(str(tmp_path / "shapes"), n_trainval=10, n_test=6, seed=2, verbose=False)
    test_data = ["--data-format", "voc", "--images-dir", info["images_dir"], "--image-set", info["test"],
                 "--annotations", info["annotations_dir"]]  # fmt: skip
    onnx_file = str(tmp_path / "ssd7.onnx")
    result = ssd_keras(
        "export", "--model-file", DEMO_MODEL, "--out", onnx_file,
        "--confidence-thresh", "0.05", "--top-k", "50", "--input-dtype", "float32",
    )  # fmt: skip
    assert result.returncode == 0 and f"Wrote {onnx_file} (onnx)" in result.stdout, result.stderr[-2000:]
    proto = onnx.load(onnx_file)
    info_json = json.loads({p.key: p.value for p in proto.metadata_props}["ssd_keras"])
    assert info_json["class_names"] == CLASSES  # those stored in the .keras file
    assert info_json["decoding"]["confidence_thresh"] == 0.05 and info_json["decoding"]["top_k"] == 50
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    # predict: the .onnx file's detections are the Keras model's, named as the file says
    result = ssd_keras(
        "predict", "--model-file", onnx_file, "--quiet", "--out", str(tmp_path / "p"), info["images_dir"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = _detections(tmp_path / "p")
    expected = Detector(DEMO_MODEL, top_k=50)([r["file"] for r in found])
    assert sum(len(r["detections"]) for r in found) >= 10
    for record, detections in zip(found, expected):
        want = detections.to_records()
        assert [d["class"] for d in record["detections"]] == [d["class"] for d in want]
        for got, wanted in zip(record["detections"], want):
            assert abs(got["confidence"] - wanted["confidence"]) <= 2e-4
            assert all(abs(got[k] - wanted[k]) <= 0.11 for k in ("xmin", "ymin", "xmax", "ymax"))

    # evaluate: the mAP of the Keras model with the same decoding
    result = ssd_keras(
        "evaluate", "--model-file", onnx_file, *test_data, "--confidence-thresh", "0.05", "--top-k", "50",
        "--quiet", "--out", str(tmp_path / "e"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "e" / "metrics.json") as f:
        onnx_map = json.load(f)["mAP"]
    dataset = load_dataset("voc", [info["images_dir"]], [info["test"]], [info["annotations_dir"]],
                           classes=CLASSES, verbose=False)  # fmt: skip
    keras_model = load_detector(DEMO_MODEL, confidence_thresh=0.05, top_k=50)
    assert abs(onnx_map - evaluate_voc(keras_model, dataset, 3, 128, 128, verbose=False)["mAP"]) <= 1e-3

    # INT8 from --model and --weights, calibrated on at most --calibration-images images
    weights = str(tmp_path / "demo.weights.h5")
    keras_model.save_weights(weights)
    int8_file = str(tmp_path / "ssd7_int8.onnx")
    result = ssd_keras(
        "export", "--model", "ssd7", "--weights", weights, "--image-size", "128x128", "--classes", "disc,box,wedge",
        "--out", int8_file, "--int8", "--calibration", info["images_dir"], "--calibration-images", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Wrote {int8_file} (INT8 onnx, calibrated on 8 images)" in result.stdout
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(int8_file).graph.node}
    assert Detector(int8_file).class_names == ["background", "disc", "box", "wedge"]

    # SavedModel and TFLite: TensorFlow's formats
    tflite = str(tmp_path / "ssd7.tflite")
    result = ssd_keras("export", "--model-file", DEMO_MODEL, "--out", tflite, "--int8", "--quiet")
    if BACKEND != "tensorflow":
        assert result.returncode == 1
        assert f"--format tflite needs the 'tensorflow' Keras backend, but Keras runs on '{BACKEND}'" in result.stderr
        return
    assert result.returncode == 0 and os.path.isfile(tflite), result.stderr[-2000:]
    saved = str(tmp_path / "saved")
    result = ssd_keras("export", "--model-file", DEMO_MODEL, "--out", saved, "--format", "saved_model", "--quiet")
    assert result.returncode == 0 and os.path.isfile(os.path.join(saved, "saved_model.pb")), result.stderr[-2000:]
