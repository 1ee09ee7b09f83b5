"""The ssd-keras command line: help, errors and exit codes, and train -> evaluate -> predict on tiny data."""

import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import BACKEND  # noqa: E402

from ssd_keras.cli import main  # noqa: E402
from ssd_keras.cli.parser import build_parser  # noqa: E402

SUBCOMMANDS = ("train", "evaluate", "predict", "export", "sample-weights", "demo")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    return make_shapes_dataset(
        str(tmp_path_factory.mktemp("data") / "shapes"), n_trainval=12, n_test=6, seed=1, verbose=False
    )


def _voc_args(info, split="trainval", prefix=""):
    return [
        f"--{prefix}data-format",
        "voc",
        f"--{prefix}images-dir",
        info["images_dir"],
        f"--{prefix}image-set",
        info[split],
        f"--{prefix}annotations",
        info["annotations_dir"],
    ]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_explains_every_flag(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"
            assert action.option_strings[-1] in text


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "ssd-keras")
    if not os.path.exists(script):
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "train" in result.stdout and "sample-weights" in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--model-file", "missing.keras", "no_such_image.jpg"], "Input not found: no_such_image.jpg"),
        (
            ["evaluate", "--model-file", "missing.keras", "--data-format", "voc", "--images-dir", "/no/such/dir"],
            "Images directory not found: /no/such/dir",
        ),  # the data paths first: loading a model takes seconds
        (
            ["evaluate", "--model-file", "missing.keras", "--data-format", "hdf5", "--hdf5", __file__],
            "Model file not found: missing.keras",
        ),
        (["train", "--data-format", "voc", "--images-dir", "/no/such/dir"], "Images directory not found: /no/such/dir"),
        (["train", "--data-format", "hdf5"], "needs an HDF5 file"),
        (["train", "--data-format", "csv", "--images-dir", "."], "needs a labels file"),
        (
            ["sample-weights", "--source", "missing.h5", "--dest", "out.h5", "--random", "3"],
            "Weights file not found: missing.h5",
        ),
    ],
)
def test_errors_name_the_culprit_and_exit_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith(f"ssd-keras {argv[0]}: error:")


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "ssd1000", "--data-format", "voc"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ssd1000'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--image-size", "big", "--data-format", "voc"])
    assert main(["predict", "--model", "ssd7", "README.md"]) == 2
    assert "give --model-file, or --model with --weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model-file", "m.onnx", "--out", "x.onnx"], "--model-file m.onnx is exported already"),
        (["--model-file", "m.keras", "--out", "x.onnx", "--int8"], "--int8 for ONNX needs --calibration"),
        (["--model-file", "m.keras", "--out", "x.onnx", "--calibration", "."], "--calibration is for --int8 ONNX"),
        (
            ["--model-file", "m.keras", "--out", "x.tflite", "--int8", "--calibration", "."],
            "--calibration is for --int8 ONNX files (TFLite's INT8 quantises the weights",
        ),
        (["--model", "ssd7", "--out", "x.onnx"], "give --model-file, or --model with --weights"),
    ],
)
def test_export_arguments_that_cannot_work_exit_2(argv, message, capsys):
    assert main(["export", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the same check, under TensorFlow only")
def test_export_names_what_it_cannot_find_or_make(tmp_path, capsys):
    assert main(["export", "--model-file", "m.keras", "--out", "x.onnx", "--int8", "--calibration", "nowhere"]) == 1
    assert "Input not found: nowhere" in capsys.readouterr().err
    assert main(["export", "--model-file", str(tmp_path / "m.keras"), "--out", "x.onnx"]) == 1
    assert f"Model file not found: {tmp_path / 'm.keras'}" in capsys.readouterr().err
    argv = ["export", "--model-file", "m.keras", "--out", "x.tflite", "--input-dtype", "float32"]
    assert main(argv) == 2
    assert "--input-dtype float32 is for ONNX files; a tflite takes uint8 images" in capsys.readouterr().err
    assert not os.path.exists("x.onnx") and not os.path.exists("x.tflite")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--confidence-thresh", "1.5"], "--confidence-thresh: expected a number from 0 to 1, got '1.5'"),
        (["predict", "--confidence-thresh", "-0.1"], "--confidence-thresh: expected a number from 0 to 1, got '-0.1'"),
        (["evaluate", "--iou-threshold", "45"], "--iou-threshold: expected a number from 0 to 1, got '45'"),
        (["evaluate", "--iou-threshold", "nan"], "--iou-threshold: expected a number from 0 to 1, got 'nan'"),
        (["train", "--lr", "0"], "--lr: expected a positive number, got '0'"),
        (["train", "--lr", "inf"], "--lr: expected a positive number, got 'inf'"),
        (["train", "--lr", "fast"], "--lr: expected a positive number, got 'fast'"),
        (["train", "--initial-epoch", "-1"], "--initial-epoch: expected an epoch number (0 or more), got '-1'"),
        (
            ["sample-weights", "--source", "a.h5", "--dest", "b.h5", "--random", "0"],
            "--random: expected a positive integer, got '0'",
        ),
        (
            ["sample-weights", "--source", "a.h5", "--dest", "b.h5", "--keep", "0,1", "--source-classes", "-81"],
            "--source-classes: expected a positive integer, got '-81'",
        ),
    ],
)
def test_numbers_out_of_range_exit_2_naming_the_flag(argv, message, capsys):
    # Before: a confidence of 1.5 ran and found nothing, a negative learning rate trained uphill.
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--lr-schedule", "plateau"],
            "--materialize cannot use --lr-schedule plateau: ReduceLROnPlateau and EarlyStopping would start",
        ),
        (
            ["--steps-per-epoch", "5"],
            "--materialize trains on the whole data set every epoch; leave out --steps-per-epoch",
        ),
    ],
)
def test_materialize_refuses_what_it_cannot_do_before_reading_data(extra, message, tmp_path, capsys):
    argv = [
        "train",
        "--materialize",
        *extra,
        "--data-format",
        "voc",
        "--images-dir",
        "/no/such/dir",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Images directory not found" not in err
    from ssd_keras.training import TrainingConfig, train  # the same check in the Python API, before anything is read

    with pytest.raises(ValueError, match="materialize=True (cannot use lr_schedule='plateau'|trains on the whole)"):
        train(
            TrainingConfig(
                model="ssd7",
                n_classes=3,
                out_dir=str(tmp_path),
                materialize=True,
                **({"lr_schedule": "plateau"} if "plateau" in extra else {"steps_per_epoch": 5}),
            )
        )


def test_train_refuses_a_start_it_cannot_make_before_reading_data(tmp_path, capsys):
    old = tmp_path / "ssd300_pascal_07+12_epoch-20_loss-4.5.h5"  # a checkpoint of the original ssd_keras
    old.write_bytes(b"")
    base = ["train", "--data-format", "voc", "--images-dir", "/no/such/dir", "--out", str(tmp_path / "run")]
    for extra, message in (
        (
            ["--initial-epoch", "5", "--epochs", "5"],
            "--initial-epoch 5 is not below --epochs 5: there would be nothing",
        ),
        (
            ["--resume", "latest", "--overwrite"],
            "--resume goes on with the checkpoint's run, weights included; leave out --overwrite (a new run)",
        ),
        (["--resume", "latest", "--weights", str(old)], "leave out --weights (a new run's starting weights)"),
        (
            ["--resume", str(old)],
            f"--resume takes a .keras checkpoint of ssd-keras train, not {old}; to go on from "
            f"the weights of an .h5 file (e.g. a checkpoint of the original ssd_keras): "
            f"--weights {old} --initial-epoch N",
        ),
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Images directory not found" not in err, err
    from ssd_keras.training import TrainingConfig, train

    with pytest.raises(ValueError, match="initial_epoch 7 is not below epochs 3"):
        train(TrainingConfig(model="ssd7", n_classes=3, out_dir=str(tmp_path), epochs=3, initial_epoch=7))


def test_resume_refuses_a_checkpoint_of_other_images_or_classes_before_reading_data(tmp_path, capsys):
    from ssd_keras.models.files import save_model
    from ssd_keras.models.ssd7 import build_model
    from ssd_keras.training.engine import check_resume_fits

    checkpoint = str(tmp_path / "epoch-03_loss-4.2000.keras")
    save_model(
        build_model((64, 64, 3), 3, scales=[0.2, 0.4, 0.6, 0.8, 0.95]), checkpoint, ["background", "a", "b", "c"]
    )
    base = [
        "train",
        "--model",
        "ssd7",
        "--resume",
        checkpoint,
        "--data-format",
        "voc",
        "--images-dir",
        "/no/such/dir",
        "--out",
        str(tmp_path / "run"),
    ]
    for extra, message in (
        (
            ["--image-size", "64x64", "--classes", "a,b"],
            f"The checkpoint {checkpoint} was trained on 3 classes (a, b, c), --classes names 2 (a, b): resume with",
        ),
        (
            ["--classes", "a,b,c"],
            f"The checkpoint {checkpoint} takes 64x64 images, --image-size (or --model's default) "
            "says 300x480: resume with the settings it was trained with",
        ),
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Images directory not found" not in err, err
    check_resume_fits(checkpoint, (64, 64, 3), ["background", "a", "b", "c"])  # what fits passes
    with pytest.raises(ValueError, match=r"takes 64x64 images, image_size \(or the model's default\) says 32x32"):
        check_resume_fits(checkpoint, (32, 32), None)


def test_train_goes_on_from_the_weights_of_an_original_checkpoint_at_its_epoch(shapes, tmp_path):
    # The original notebook's way to go on: load the model, fit(initial_epoch=...). Here the
    # old whole-model .h5 gives its weights, and --initial-epoch the epoch and its learning rate.
    from conftest import write_keras2_weights

    from ssd_keras.models.presets import build, builder_kwargs

    source, _ = build("ssd7", builder_kwargs("ssd7", 3, (64, 64, 3)), mode="training")
    old = str(tmp_path / "ssd7_epoch-02_loss-3.2100.h5")
    write_keras2_weights(old, source, whole_model=True)
    out = str(tmp_path / "run")
    argv = [
        "train",
        "--backend",
        BACKEND,
        "--model",
        "ssd7",
        "--image-size",
        "64x64",
        "--batch-size",
        "4",
        "--augment",
        "none",
        "--classes",
        ",".join(shapes["classes"][1:]),
        "--weights",
        old,
        "--initial-epoch",
        "2",
        "--epochs",
        "3",
        "--steps-per-epoch",
        "1",
        "--lr",
        "0.001",
        "--lr-boundaries",
        "1,2",
        "--seed",
        "0",
        "--quiet",
        "--out",
        out,
        *_voc_args(shapes),
    ]
    os.makedirs(os.path.join(out, "checkpoints", "resume"))
    for name in ("checkpoints/epoch-07_loss-9.9.keras", "checkpoints/resume/step-00000099.keras", "model.keras"):
        with open(os.path.join(out, name), "w") as f:  # an earlier run's files: --overwrite deletes them
            f.write("earlier")
    assert main(argv + ["--overwrite"]) == 0
    with open(os.path.join(out, "training_log.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()] == ["epoch", "2"]
    import keras

    trained = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert np.isclose(
        float(keras.ops.convert_to_numpy(trained.optimizer.learning_rate)), 1e-5
    )  # both boundaries passed
    with open(os.path.join(out, "train.log")) as f:
        log = f.read()
    assert "starting over: removed 3 files of the earlier run" in log and "training ssd7 from epoch 3 to 3" in log
    checkpoints = sorted(os.listdir(os.path.join(out, "checkpoints")))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("epoch-03_loss-") and checkpoints[1] == "resume"
    assert os.listdir(os.path.join(out, "checkpoints", "resume")) == []


def test_numbers_at_the_ends_of_their_range_are_taken():
    parser = build_parser()
    args = parser.parse_args(["predict", "--confidence-thresh", "0", "--iou-threshold", "1", "x.png"])
    assert (args.confidence_thresh, args.iou_threshold) == (0.0, 1.0)
    args = parser.parse_args(["train", "--lr", "1e-5", "--initial-epoch", "0", "--data-format", "voc"])
    assert (args.lr, args.initial_epoch) == (1e-5, 0)


def _coco_file(folder, categories=((1, "person"),), crowd=True):
    """A 40 x 60 image with a box of the first category (5..25 x 5..30) and a crowd of it
    (30..55 x 10..35), and the COCO file naming `categories` ((id, name) in file order)."""
    import cv2

    cv2.imwrite(str(folder / "0.png"), np.zeros((40, 60, 3), np.uint8))
    first = categories[0][0]
    coco = {
        "images": [{"id": 3, "file_name": "0.png", "height": 40, "width": 60}],
        "categories": [{"id": i, "name": name} for i, name in categories],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": first, "bbox": [5, 5, 20, 25], "iscrowd": 0},
            {"id": 2, "image_id": 3, "category_id": first, "bbox": [30, 10, 25, 25], "iscrowd": int(crowd)},
        ],
    }
    (folder / "instances.json").write_text(json.dumps(coco))
    return ["--images-dir", str(folder), "--annotations", str(folder / "instances.json")]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--coordinator", "a:1"], "--coordinator, --num-processes and --process-id are for --strategy data-parallel"),
        (
            ["--strategy", "data-parallel", "--num-processes", "2", "--process-id", "2"],
            "--process-id 2 is not one of the 2 processes' ids, 0 to 1",
        ),
        (["--strategy", "data-parallel", "--coordinator", "a:1", "--materialize"], "--materialize is for one process"),
        (["--resume", "auto", "--overwrite"], "--resume auto goes on from the run in the folder; --overwrite would"),
    ],
)
def test_run_settings_that_cannot_work_exit_2_before_anything_starts(extra, message, tmp_path, capsys):
    argv = ["train", "--model", "ssd7", "--out", str(tmp_path), "--data-format", "voc", "--images-dir", "/nowhere"]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["empty csv", "header-only csv", "empty image set", "coco without annotations"])
def test_label_files_without_boxes_are_named_with_what_they_lack(kind, tmp_path, capsys):
    (tmp_path / "images").mkdir()
    if "csv" in kind:
        labels = tmp_path / "labels.csv"
        labels.write_text("" if kind == "empty csv" else "image_name,xmin,xmax,ymin,ymax,class_id\n\n")
        data = ["--data-format", "csv", "--images-dir", str(tmp_path / "images"), "--labels", str(labels)]
        message = f"CSV labels file {labels} " + ("is empty" if kind == "empty csv" else "has only its header row")
    elif kind == "empty image set":
        (tmp_path / "Annotations").mkdir()
        image_set = tmp_path / "trainval.txt"
        image_set.write_text("\n")
        data = ["--data-format", "voc", "--images-dir", str(tmp_path / "images"), "--image-set", str(image_set),
                "--annotations", str(tmp_path / "Annotations")]  # fmt: skip
        message = f"Image-set file {image_set} lists no image ids: it is empty"
    else:
        data = ["--data-format", "coco", *_coco_file(tmp_path / "images")]
        coco = json.loads((tmp_path / "images" / "instances.json").read_text())
        (tmp_path / "images" / "instances.json").write_text(json.dumps(dict(coco, annotations=[])))
        message = f"COCO annotations file {tmp_path / 'images' / 'instances.json'}: no boxes"
    assert main(["train", "--model", "ssd7", "--out", str(tmp_path / "run"), *data]) == 1
    err = capsys.readouterr().err
    assert message in err and "empty data set" not in err, err


@pytest.fixture
def trained(monkeypatch):
    """What `ssd-keras train` hands to `training.train`: (model, data set, class names, validation set)."""
    import ssd_keras.training.engine

    seen = []
    monkeypatch.setattr(
        ssd_keras.training.engine,
        "train",
        lambda config, data, val_dataset=None, callbacks=(): seen.append(
            (config.model, data, list(config.class_names), val_dataset)
        ),
    )
    return seen


def test_exclude_crowd_leaves_coco_crowd_boxes_out_of_training_and_validation(tmp_path, trained):
    data = _coco_file(tmp_path)
    argv = [
        "train",
        "--model",
        "ssd7",
        "--quiet",
        "--data-format",
        "coco",
        *data,
        "--val-data-format",
        "coco",
        *[("--val-" + a[2:]) if a.startswith("--") else a for a in data],
    ]
    for extra, n_train in (([], 2), (["--exclude-crowd"], 1)):
        assert main([*argv, "--out", str(tmp_path / f"run{n_train}"), *extra]) == 0
        _, train_data, _, val_data = trained.pop()
        assert len(train_data.labels[0]) == n_train and train_data.eval_neutral[0].tolist() == [False, True][:n_train]
        assert val_data.labels[0].tolist() == [[1, 5, 5, 25, 30]]  # the validation loss: never the crowd


def test_coco_training_takes_the_class_names_of_the_file(tmp_path, trained, capsys):
    # parse_json numbers the categories 1..n in the file's order. The command trained a model
    # of --classes, by default the 20 VOC names ("aeroplane" drawn for a triangle), and
    # --classes in another order than the file's named every class wrongly.
    data = _coco_file(tmp_path, [(7, "triangle"), (2, "circle"), (5, "rectangle")])
    argv = [
        "train",
        "--model",
        "ssd7",
        "--quiet",
        "--data-format",
        "coco",
        *data,
        "--out",
        str(tmp_path / "run"),
        "--overwrite",
    ]
    for extra in ([], ["--classes", "triangle,circle,rectangle"]):
        assert main([*argv, *extra]) == 0
        model, train_data, class_names, _ = trained.pop()
        assert class_names == ["background", "triangle", "circle", "rectangle"] and train_data.labels[0][
            :, 0
        ].tolist() == [1, 1]
    assert main([*argv, "--classes", "circle,rectangle,triangle"]) == 2
    assert (
        "--classes (circle, rectangle, triangle) list the categories of "
        + data[3]
        + " in another order: the file numbers "
        "them triangle, circle, rectangle (class ids 1 to 3)"
    ) in capsys.readouterr().err
    assert main([*argv, "--classes", "person"]) == 2
    assert "--classes (person) are not the categories of" in capsys.readouterr().err
    missing = [str(tmp_path / "missing.json") if a == data[3] else a for a in argv]
    assert main([*missing, "--classes", "names.txt"]) == 2  # before the data is read
    assert "Class names file not found: names.txt" in capsys.readouterr().err
    # A validation set must have the training classes, in their order.
    val = tmp_path / "val"
    val.mkdir()
    val_data = _coco_file(val, [(2, "circle"), (5, "rectangle"), (7, "triangle")])
    assert (
        main([*argv, "--val-data-format", "coco", *[("--val-" + a[2:]) if a.startswith("--") else a for a in val_data]])
        == 2
    )
    assert "The training classes (triangle, circle, rectangle) list the categories of" in capsys.readouterr().err
    assert not trained


def test_evaluate_on_coco_data_matches_the_models_classes_by_name(tmp_path, capsys):
    # The model's class 1 (circle) was scored against the file's class 1 (triangle).
    from ssd_keras.models.files import save_model
    from ssd_keras.models.ssd7 import build_model

    data = _coco_file(tmp_path, [(7, "triangle"), (2, "circle"), (5, "rectangle")], crowd=False)  # two triangles
    model = build_model((64, 64, 3), 3, mode="inference", scales=[0.2, 0.4, 0.6, 0.8, 0.95])
    argv = ["evaluate", "--quiet", "--data-format", "coco", *data, "--batch-size", "1"]
    for names, table in (
        (["triangle", "circle", "rectangle"], None),
        (["circle", "rectangle", "triangle"], None),
        (None, ["triangle", "circle", "rectangle"]),
    ):
        path = str(tmp_path / "model.keras")
        save_model(model, path, None if names is None else ["background", *names])
        assert main([*argv, "--model-file", path]) == 0
        out, err = capsys.readouterr()
        rows = [line.split() for line in out.splitlines()[1:4]]
        # The table in the model's order (a model without names: the file's), the triangles under "triangle".
        assert [row[0] for row in rows] == (table or names) and {row[0]: int(row[2]) for row in rows}["triangle"] == 2
        assert ("numbers its categories in another order" in err) == (names == ["circle", "rectangle", "triangle"])
    save_model(model, path, ["background", "circle", "square", "triangle"])
    assert main([*argv, "--model-file", path]) == 2
    assert (
        f"The classes of {path} (circle, square, triangle) are not the categories of {data[3]}"
        in capsys.readouterr().err
    )
    two = build_model((64, 64, 3), 2, mode="inference", scales=[0.2, 0.4, 0.6, 0.8, 0.95])
    save_model(two, str(tmp_path / "two.keras"))
    assert main([*argv, "--model-file", str(tmp_path / "two.keras")]) == 2
    assert (
        "The model has 2 classes, but " + data[3] + " has 3 categories (triangle, circle, rectangle)"
        in capsys.readouterr().err
    )


def test_coco_metrics_of_a_model_whose_classes_the_file_orders_otherwise(tmp_path, monkeypatch):
    from test_evaluator import _as_predictions, _StubModel

    from ssd_keras.data.generator import DataGenerator
    from ssd_keras.data.loading import renumber_classes
    from ssd_keras.evaluation.metrics import evaluate_coco_metrics

    data = _coco_file(tmp_path, [(7, "triangle"), (2, "circle")], crowd=False)
    dataset = DataGenerator(verbose=False)
    dataset.parse_json([data[1]], [data[3]], ground_truth_available=True, verbose=False)
    renumber_classes(dataset, ["background", "circle", "triangle"])  # the model's order
    assert dataset.labels[0][:, 0].tolist() == [2, 2] and dataset.classes_to_cats == {1: 2, 2: 7}
    # The model finds both triangles, as its class 2: category 7, so AP 1.
    found = _as_predictions([[2, 5, 5, 25, 30], [2, 30, 10, 55, 35]], (30 / 40, 30 / 60))
    scratch = tmp_path / "tmp"  # the temporary folder of its detections file, removed afterwards
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    metrics = evaluate_coco_metrics(_StubModel([found]), dataset, data[3], 30, 30, batch_size=1, verbose=False)
    assert metrics["AP"] == pytest.approx(1.0)
    assert not os.listdir(scratch)
    with pytest.raises(ValueError, match="Expected the classes"):
        renumber_classes(dataset, ["background", "circle", "square"])


def test_class_ids_beyond_the_models_are_named_before_training(tmp_path, capsys):
    # The label encoder found them in some batch: "Batch item 0, box 0 has class_id 3".
    import cv2

    from ssd_keras.data.generator import DataGenerator
    from ssd_keras.training.batches import check_class_ids

    rows = ["frame,xmin,xmax,ymin,ymax,class_id"]
    for i, ids in enumerate([[1, 2], [2], [], [1, 3, 4]]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((40, 60, 3), np.uint8))
        rows += [f"{i}.png,{5 + k},{20 + k},5,30,{c}" for k, c in enumerate(ids)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    argv = [
        "train",
        "--model",
        "ssd7",
        "--quiet",
        "--data-format",
        "csv",
        "--images-dir",
        str(tmp_path),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--out",
        str(tmp_path / "run"),
    ]
    assert main([*argv, "--classes", "a,b"]) == 1
    assert (
        f"The training data: {tmp_path / '3.png'}, box 1, has class id 3, but the model has 2 classes (ids 1 to 2); "
        "2 box(es) in all"
    ) in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")  # nothing written
    dataset = DataGenerator(
        filenames=[str(tmp_path / "0.png")] * 3,
        labels=[np.zeros((0, 5)), np.array([[1, 0, 0, 9, 9]]), np.array([[2, 0, 0, 9, 9], [1, 1, 1, 5, 5]])],
        verbose=False,
    )
    check_class_ids(dataset, 2)
    dataset.labels[2][1, 0] = 1.5  # not an integer
    with pytest.raises(ValueError, match=r"0.png, box 1, has class id 1.5"):
        check_class_ids(dataset, 2, "validation")
    dataset.labels[2][1, 0] = 0  # the background
    with pytest.raises(
        ValueError, match=r"The validation data: .*0.png, box 1, has class id 0, but the model has 2 classes"
    ):
        check_class_ids(dataset, 2, "validation")


def test_predict_inputs_are_listed_once_and_a_folder_of_folders_is_named(tmp_path):
    from ssd_keras.inference.prediction import find_images

    (tmp_path / "photos" / "day1").mkdir(parents=True)
    (tmp_path / "photos" / "day2").mkdir()
    for name in ("photos/day1/a.jpg", "photos/day1/b.PNG", "photos/day1/notes.txt", "photos/day2/a.jpg"):
        (tmp_path / name).write_bytes(b"")
    day1 = str(tmp_path / "photos" / "day1")
    assert find_images([day1]) == [os.path.join(day1, "a.jpg"), os.path.join(day1, "b.PNG")]
    # Named and in its folder: once (it was predicted twice).
    assert find_images([os.path.join(day1, "b.PNG"), day1]) == [
        os.path.join(day1, "b.PNG"),
        os.path.join(day1, "a.jpg"),
    ]
    with pytest.raises(
        FileNotFoundError,
        match=r"No images .* its subfolders are not searched, give them instead: "
        rf"{day1} {tmp_path / 'photos' / 'day2'}$",
    ):
        find_images([str(tmp_path / "photos")])


def test_voc_needs_matching_parts(shapes, capsys):
    argv = [
        "train",
        "--data-format",
        "voc",
        "--images-dir",
        shapes["images_dir"],
        "--annotations",
        shapes["annotations_dir"],
    ]
    assert main(argv) == 1
    assert "one image-set file (--image-set)" in capsys.readouterr().err


@pytest.mark.backends
@pytest.mark.slow
def test_train_resume_evaluate_predict(shapes, tmp_path, capsys):
    out = str(tmp_path / "run")
    common = [
        "--backend",
        BACKEND,
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
        ",".join(shapes["classes"][1:]),
        "--seed",
        "0",
        "--quiet",
        "--out",
        out,
    ]
    assert (
        main(
            [
                "train",
                *common,
                "--epochs",
                "1",
                "--steps-per-epoch",
                "2",
                *_voc_args(shapes),
                *_voc_args(shapes, "test", "val-"),
            ]
        )
        == 0
    )
    assert os.path.isfile(os.path.join(out, "model.keras"))
    checkpoints = [name for name in os.listdir(os.path.join(out, "checkpoints")) if name.endswith(".keras")]
    assert len(checkpoints) == 1 and checkpoints[0].startswith("epoch-01_loss-") and "_val_loss-" in checkpoints[0]
    # Resume from the newest checkpoint: epoch 2 is appended to the same log.
    assert (
        main(["train", *common, "--epochs", "2", "--steps-per-epoch", "2", "--resume", "latest", *_voc_args(shapes)])
        == 0
    )
    with open(os.path.join(out, "training_log.csv")) as f:
        rows = f.read().split()
    assert rows[0].startswith("epoch") and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    # The same command again without --resume would overwrite the model and the log: refused
    # before any data is read, unless --overwrite.
    model_bytes = open(os.path.join(out, "model.keras"), "rb").read()
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                *common,
                "--epochs",
                "1",
                "--steps-per-epoch",
                "2",
                "--data-format",
                "voc",
                "--images-dir",
                "/no/such/dir",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        f"{out} holds an earlier training run (" in err
        and "Go on from it with --resume latest, start over with --overwrite" in err
    )
    assert open(os.path.join(out, "model.keras"), "rb").read() == model_bytes

    metrics_dir = str(tmp_path / "metrics")
    assert (
        main(
            [
                "evaluate",
                "--backend",
                BACKEND,
                "--model-file",
                os.path.join(out, "model.keras"),
                "--classes",
                ",".join(shapes["classes"][1:]),
                "--quiet",
                "--out",
                metrics_dir,
                *_voc_args(shapes, "test"),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "circle" in table and "mAP (11-point)" in table
    with open(os.path.join(metrics_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics["mAP"] <= 1.0 and len(metrics["AP"]) == 3 and sum(metrics["num_gt"]) > 0

    pred_dir = str(tmp_path / "pred")
    assert (
        main(
            [
                "predict",
                "--backend",
                BACKEND,
                "--model-file",
                os.path.join(out, "model.keras"),
                "--confidence-thresh",
                "0.0",
                "--top-k",
                "5",
                "--quiet",
                "--out",
                pred_dir,
                shapes["images_dir"],
            ]
        )
        == 0
    )
    with open(os.path.join(pred_dir, "detections.json")) as f:
        records = json.load(f)
    assert len(records) == 18 and all(os.path.isfile(os.path.join(pred_dir, r["drawing"])) for r in records)
    assert all(len(r["detections"]) <= 5 for r in records)
    for record in records:
        for d in record["detections"]:
            assert d["xmin"] <= d["xmax"] and d["ymin"] <= d["ymax"] and d["class_id"] in (1, 2, 3)


def test_sample_weights_command(tmp_path, capsys):
    from ssd_keras.models.legacy_weights import read_legacy_h5
    from ssd_keras.models.ssd7 import build_model
    from ssd_keras.models.vgg16_reduced import write_legacy_h5

    model = build_model((64, 64, 3), 5, scales=[0.2, 0.4, 0.6, 0.8, 0.95])  # 6 classes with background
    rng = np.random.default_rng(0)
    weights = {
        layer.name: [rng.normal(size=w.shape).astype(np.float32) for w in layer.weights]
        for layer in model.layers
        if layer.weights
    }
    source, dest = str(tmp_path / "source.h5"), str(tmp_path / "dest.h5")
    write_legacy_h5(source, weights)
    layers = "classes4,classes5,classes6,classes7"
    assert (
        main(
            ["sample-weights", "--source", source, "--dest", dest, "--keep", "0,4,2", "--source-classes", "6"]
            + ["--classifier-layers", layers]
        )
        == 0
    )
    out = read_legacy_h5(dest)
    kernel = out["classes4"][0][1]
    expected = weights["classes4"][0].reshape(3, 3, 64, 4, 6)[..., [0, 4, 2]].reshape(3, 3, 64, 12)
    np.testing.assert_array_equal(kernel, expected)
    assert "classes [0, 4, 2] of 6" in capsys.readouterr().out
    # Without --classifier-layers: the file's own (SSD7's here; the default was SSD300's only).
    auto = str(tmp_path / "auto.h5")
    assert main(["sample-weights", "--source", source, "--dest", auto, "--keep", "0,4,2", "--source-classes", "6"]) == 0
    for name in layers.split(","):
        np.testing.assert_array_equal(read_legacy_h5(auto)[name][0][1], out[name][0][1])
    capsys.readouterr()
    for extra, message in (
        (["--keep", "0,7", "--source-classes", "6"], "Classes [7] are not classes of the source, which has 6 (0 to 5"),
        (["--random", "9", "--source-classes", "6"], "Cannot keep 9 random classes of a source with 6"),
        (
            ["--keep", "0,4"],
            "Layer 'classes4': 24 channels are not a whole number of blocks of 81 classes. Give --source-classes",
        ),
    ):
        assert main(["sample-weights", "--source", source, "--dest", str(tmp_path / "bad.h5"), *extra]) == 1
        assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "bad.h5")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow traces the training step")
def test_training_traces_its_step_once_under_tensorflow(tmp_path, monkeypatch):
    # Keras builds an unbuilt optimizer inside the first traced step; TensorFlow then traces
    # the step a second time (as one that creates no variables). `train` builds it first.
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    from ssd_keras.data.generator import DataGenerator
    from ssd_keras.training import TrainingConfig, train

    traced = []
    train_step = TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step", lambda self, data: traced.append(1) or train_step(self, data))
    rng = np.random.default_rng(3)
    dataset = DataGenerator(
        filenames=[f"img{i}.png" for i in range(4)], labels=[np.array([[1, 8, 8, 40, 40]], float)] * 4, verbose=False
    )
    dataset.images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    for extra in ({}, {"resume": "latest", "epochs": 2}):
        traced.clear()
        config = TrainingConfig(
            model="ssd7",
            n_classes=1,
            out_dir=str(tmp_path),
            image_size=(64, 64, 3),
            **{"epochs": 1, **extra},
            batch_size=2,
            augment="none",
            lr_schedule="constant",
            verbose=0,
        )
        model, history = train(config, dataset)
        assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"]).all()
        assert len(traced) == 1, f"{extra}: the training step was traced {len(traced)} times"
