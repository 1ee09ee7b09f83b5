"""The ``ssd-keras`` argument parser: every command and flag, with the defaults of the
settings' own classes (`TrainingConfig`, `DecodingConfig`, ...), and the flag types that
check values as they are parsed."""

import argparse
import math

from ssd_keras.data.loading import CSV_FORMAT, FORMATS
from ssd_keras.encoding.decoding_config import DECODING, DISPLAY_DECODING
from ssd_keras.export import FORMATS as EXPORT_FORMATS
from ssd_keras.models.presets import MODELS
from ssd_keras.training.config import AUGMENTATIONS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, STRATEGIES, TrainingConfig
from ssd_keras.utils.backend import BACKENDS

# --jit-compile's words for `TrainingConfig.jit_compile`
JIT_FLAGS = {"auto": "auto", True: "on", False: "off"}
JIT_VALUES = {flag: value for value, flag in JIT_FLAGS.items()}

EXAMPLES = """examples:
  ssd-keras demo
  ssd-keras train --model ssd300 --data-format voc --images-dir VOC2007/JPEGImages \\
      --image-set VOC2007/ImageSets/Main/trainval.txt --annotations VOC2007/Annotations \\
      --weights VGG_ILSVRC_16_layers_fc_reduced.h5 --out runs/ssd300
  ssd-keras evaluate --model-file runs/ssd300/model.keras --data-format voc \\
      --images-dir VOC2007/JPEGImages --image-set VOC2007/ImageSets/Main/test.txt \\
      --annotations VOC2007/Annotations
  ssd-keras predict --model-file runs/ssd300/model.keras --classes voc photos/ --out predictions
  ssd-keras export --model-file runs/ssd300/model.keras --out ssd300.onnx
  ssd-keras export --model-file runs/ssd300/model.keras --out ssd300_int8.onnx \\
      --int8 --calibration VOC2007/JPEGImages
  ssd-keras sample-weights --source VGG_coco_SSD_300x300_iter_400000.h5 \\
      --dest ssd300_8_classes.h5 --keep 0,3,8,1,2,10,4,6,12
"""


def _int_at_least(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text):
    return _int_at_least(text, 1, "a positive integer")


def _number(text, what, fits):
    """A finite float for which `fits(value)` holds, else an argparse error naming `what`."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and fits(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_float(text):
    return _number(text, "a positive number", lambda value: value > 0)


def _fraction(text):
    return _number(text, "a number from 0 to 1", lambda value: 0 <= value <= 1)


def _epoch_free_int(text):
    return _int_at_least(text, 0, "a number from 0")


def _epoch(text):
    return _int_at_least(text, 0, "an epoch number (0 or more)")


def _int_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _image_size(text):
    values = _int_list(text.replace("x", ","))
    if len(values) not in (2, 3) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH (e.g. 300x300), got {text!r}")
    return tuple(values[:2]) + (values[2] if len(values) == 3 else 3,)


def _add_data_args(parser, prefix="", required=True, help_suffix=""):
    """Flags that describe one data set (see `ssd_keras.data.DataSource`)."""
    dest = prefix.replace("-", "_")
    group = parser.add_argument_group(f"{prefix or 'data'} set" + help_suffix)
    group.add_argument(
        f"--{prefix}data-format",
        dest=f"{dest}data_format",
        choices=FORMATS,
        required=required,
        help="annotation format: Pascal VOC XML, MS COCO JSON, CSV (one box per row) or an HDF5 file "
        "written by DataGenerator.create_hdf5_dataset",
    )
    group.add_argument(
        f"--{prefix}images-dir",
        dest=f"{dest}images_dir",
        action="append",
        default=[],
        metavar="DIR",
        help="images directory; repeat for several VOC/COCO parts (e.g. VOC2007 and VOC2012)",
    )
    group.add_argument(
        f"--{prefix}image-set",
        dest=f"{dest}image_set",
        action="append",
        default=[],
        metavar="FILE",
        help="VOC: image-set file with one image id per line, one per --images-dir",
    )
    group.add_argument(
        f"--{prefix}annotations",
        dest=f"{dest}annotations",
        action="append",
        default=[],
        metavar="PATH",
        help="VOC: Annotations directory; COCO: instances JSON file; one per --images-dir",
    )
    group.add_argument(f"--{prefix}labels", dest=f"{dest}labels", metavar="FILE", help="CSV: the labels file")
    group.add_argument(f"--{prefix}hdf5", dest=f"{dest}hdf5", metavar="FILE", help="HDF5: the data set file")


def backend_arg(sub):
    """The ``--backend`` flag every command takes."""
    sub.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: the KERAS_BACKEND environment variable, else Keras' own setting, "
        "tensorflow unless changed)",
    )


def build_parser():
    """The parser of ``ssd-keras`` and its commands (train, evaluate, predict, export,
    sample-weights, demo).

    Returns:
        an `argparse.ArgumentParser`; ``parse_args`` gives the command in ``args.command``.
    """
    parser = argparse.ArgumentParser(
        prog="ssd-keras",
        description="SSD object detection (ssd_keras for Keras 3).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for add in (_add_train, _add_evaluate, _add_predict, _add_export, _add_sample_weights, _add_demo):
        add(commands)
    return parser


def _common_args(sub):
    """The flags of train, evaluate and predict: backend, quiet, classes, CSV columns."""
    backend_arg(sub)
    sub.add_argument("--quiet", action="store_true", help="no progress bars or Keras logs")
    sub.add_argument(
        "--classes",
        metavar="NAMES",
        help="class names: 'voc' (the 20 Pascal VOC classes), a text file with one name per line, or a "
        "comma-separated list; 'background' is prepended if missing (default: train: voc; evaluate and "
        "predict: the names stored in --model-file, else voc for 20 classes, else class_1, class_2, ...)",
    )
    sub.add_argument(
        "--csv-format",
        default=",".join(CSV_FORMAT),
        help="CSV: the order of the first six columns (default: %(default)s)",
    )


def _add_train(commands):
    """``ssd-keras train``: its flags take their defaults from `TrainingConfig`."""
    defaults = TrainingConfig()
    train = commands.add_parser(
        "train", help="train SSD300, SSD512 or SSD7", description="Train an SSD as the original notebooks do."
    )
    _common_args(train)
    train.add_argument("--model", choices=MODELS, default=defaults.model, help="architecture (default: %(default)s)")
    train.add_argument(
        "--image-size", type=_image_size, metavar="HxW", help="input size (default: 300x300, 512x512, 300x480 for ssd7)"
    )
    train.add_argument(
        "--scales",
        choices=("pascal", "coco"),
        default=defaults.scales,
        help="anchor scales of the notebooks (ssd300/ssd512)",
    )
    train.add_argument(
        "--out",
        default=defaults.out_dir,
        metavar="DIR",
        help="checkpoints, training_log.csv and model.keras (default: %(default)s)",
    )
    _train_schedule_args(train, defaults)
    _train_start_args(train, defaults)
    _train_batch_args(train, defaults)
    _train_device_args(train, defaults)


def _train_schedule_args(train, defaults):
    """The flags of the schedule: epochs, steps, batch size, optimizer, learning rate."""
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=defaults.epochs,
        help="last epoch (default: %(default)s, the SSD300 notebook)",
    )
    train.add_argument(
        "--steps-per-epoch", type=_positive_int, metavar="N", help="batches per epoch (default: one pass over the data)"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=defaults.batch_size, help="global batch size (default: %(default)s)"
    )
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=defaults.optimizer,
        help="SGD with momentum 0.9, or Adam (default: %(default)s)",
    )
    train.add_argument(
        "--lr", type=_positive_float, default=defaults.learning_rate, help="base learning rate (default: %(default)s)"
    )
    train.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=defaults.lr_schedule,
        help="steps: divide by 10 at each --lr-boundaries epoch (SSD300 notebook); plateau: ReduceLROnPlateau and "
        "EarlyStopping (SSD7 notebook); constant (default: %(default)s)",
    )
    train.add_argument(
        "--lr-boundaries",
        type=_int_list,
        default=list(defaults.lr_boundaries),
        metavar="E1,E2",
        help=f"epochs of the steps schedule (default: {','.join(map(str, defaults.lr_boundaries))})",
    )


def _train_start_args(train, defaults):
    """The flags that say where a run starts: weights, resume, overwrite, resume points."""
    train.add_argument(
        "--weights",
        metavar="FILE",
        help="starting weights: a Keras-2 .h5 loaded by layer name, e.g. VGG_ILSVRC_16_layers_fc_reduced.h5, "
        "or a Keras 3 .weights.h5 of the same architecture",
    )
    train.add_argument(
        "--resume",
        metavar="FILE",
        help="go on from a checkpoint .keras file; 'latest': the newest complete one in --out (damaged ones are "
        "named and skipped); 'auto': that one if there is one, else start a new run (the same command for the "
        "first start and every restart, e.g. of a preemptible cluster job); at the batch it was written after",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in an --out that holds an earlier one, deleting its checkpoints, model and log "
        "(without it, that is an error: the new run would overwrite them)",
    )
    train.add_argument(
        "--save-every",
        type=_positive_int,
        metavar="STEPS",
        help="also write a resume point every STEPS training steps (default: at the end of each epoch only)",
    )
    train.add_argument(
        "--save-every-minutes",
        type=_positive_float,
        metavar="MINUTES",
        help="also write a resume point when MINUTES have passed since the last checkpoint: a killed or "
        "preempted run loses at most that much",
    )
    train.add_argument(
        "--initial-epoch",
        type=_epoch,
        metavar="N",
        help="epoch to start from, counted from 0: with --resume, instead of the checkpoint's; without, a new run "
        "starts there with that epoch's learning rate, e.g. from the --weights of an earlier run",
    )


def _train_batch_args(train, defaults):
    """The flags of the batches: augmentation, workers, materialize, what to read."""
    train.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default=defaults.augment,
        help="ssd: the paper's chain; constant: the SSD7 notebook's chain; flip; none (default: %(default)s)",
    )
    train.add_argument(
        "--workers",
        type=_positive_int,
        default=defaults.workers,
        help="threads (or processes) building batches (default: %(default)s)",
    )
    train.add_argument(
        "--processes",
        action="store_true",
        help="build batches in forked worker processes that return them through shared memory (the fastest on Linux) "
        "instead of threads",
    )
    train.add_argument(
        "--materialize",
        action="store_true",
        help="build each epoch's batches up front (with --workers/--processes), then train on them as arrays: "
        "faster on a few cores, if an encoded epoch fits in memory (the demo's way; not with "
        "--lr-schedule plateau or --steps-per-epoch)",
    )
    train.add_argument("--in-memory", action="store_true", help="decode all images into memory first")
    train.add_argument("--exclude-difficult", action="store_true", help="VOC: leave out boxes flagged difficult")
    train.add_argument("--exclude-crowd", action="store_true", help='COCO: leave out crowd boxes ("iscrowd": 1)')


def _train_device_args(train, defaults):
    """The flags of the devices: strategy, mixed precision, XLA, seed."""
    train.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=defaults.strategy,
        help="several devices: mirrored (TensorFlow: all GPUs of this machine), multiworker (TensorFlow: the "
        "machines in TF_CONFIG) or data-parallel (JAX: keras.distribution.DataParallel over all devices) "
        "(default: none)",
    )
    processes = train.add_argument_group(
        "JAX across processes (--strategy data-parallel; see the docs' cluster guide)",
        "Without these, JAX_COORDINATOR_ADDRESS and the cluster's own variables (SLURM, Open MPI) are used where set.",
    )
    processes.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, where the processes meet")
    processes.add_argument("--num-processes", type=_positive_int, metavar="N", help="the number of processes")
    processes.add_argument(
        "--process-id", type=_epoch_free_int, metavar="I", help="this process's number, 0 to N-1 (0 writes the files)"
    )
    train.add_argument(
        "--mixed-precision",
        choices=PRECISIONS,
        default=defaults.mixed_precision,
        help="Keras dtype policy (default: %(default)s)",
    )
    train.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default=JIT_FLAGS[defaults.jit_compile],
        help="XLA for the training step (default: auto)",
    )
    train.add_argument("--seed", type=int, help="seed for weights, augmentation and shuffling")
    _add_data_args(train)
    _add_data_args(
        train, prefix="val-", required=False, help_suffix=" (optional validation data, same flags with val-)"
    )


def _model_args(sub, decoding, batch_size=True):
    """The flags of evaluate, predict and export that choose the model and its decoding
    (`decoding`: the defaults); `batch_size`: add --batch-size."""
    group = sub.add_argument_group("model")
    group.add_argument(
        "--model-file",
        metavar="FILE",
        help="a .keras model (training or inference mode); evaluate and predict also take an .onnx file of "
        "ssd-keras export",
    )
    group.add_argument(
        "--model", choices=MODELS, help="with --weights: build this architecture instead of loading --model-file"
    )
    group.add_argument(
        "--weights",
        metavar="FILE",
        help="weights for --model: a Keras-2 .h5 (loaded by layer name), "
        "e.g. VGG_VOC0712_SSD_300x300_iter_120000.h5, or a Keras 3 .weights.h5 of the same architecture",
    )
    group.add_argument("--image-size", type=_image_size, metavar="HxW", help="with --model: input size")
    group.add_argument(
        "--scales",
        choices=("pascal", "coco"),
        default="pascal",
        help="with --model: anchor scales (default: pascal)",
    )
    group.add_argument(
        "--confidence-thresh",
        type=_fraction,
        default=decoding.confidence_thresh,
        help="decoding: minimum score (default: %(default)s)",
    )
    group.add_argument(
        "--iou-threshold",
        type=_fraction,
        default=decoding.iou_threshold,
        help="decoding: NMS IoU threshold (default: %(default)s)",
    )
    group.add_argument(
        "--top-k",
        type=_positive_int,
        default=decoding.top_k,
        help="decoding: boxes kept per image (default: %(default)s)",
    )
    if batch_size:
        group.add_argument(
            "--batch-size", type=_positive_int, default=8, help="images per prediction batch (default: %(default)s)"
        )


def _add_evaluate(commands):
    """``ssd-keras evaluate``."""
    evaluate = commands.add_parser(
        "evaluate",
        help="Pascal VOC mAP or COCO metrics of a model on a data set",
        description="Evaluate a model: Pascal VOC mAP (devkit rules) or COCO metrics.",
    )
    _common_args(evaluate)
    _model_args(evaluate, DECODING)
    evaluate.add_argument("--metric", choices=("voc", "coco"), default="voc", help="(default: %(default)s)")
    evaluate.add_argument(
        "--ap-mode",
        choices=("sample", "integrate"),
        default="sample",
        help="VOC: 11-point sampling (VOC2007) or integration (VOC2010+) (default: %(default)s)",
    )
    evaluate.add_argument(
        "--data-mode",
        choices=("resize", "pad"),
        default="resize",
        help="how images are fitted to the model (default: resize)",
    )
    evaluate.add_argument("--out", metavar="DIR", help="write metrics.json (and COCO's detections JSON) here")
    _add_data_args(evaluate)


def _add_predict(commands):
    """``ssd-keras predict``."""
    predict = commands.add_parser(
        "predict",
        help="detect objects in images; write drawn PNGs and a JSON of detections",
        description="Detect objects in images or folders of images.",
    )
    _common_args(predict)
    _model_args(predict, DISPLAY_DECODING)
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories of images")
    predict.add_argument(
        "--out", default="predictions", metavar="DIR", help="drawn PNGs and detections.json (default: %(default)s)"
    )
    predict.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 if any image cannot be read (default: only if none can; the others are written "
        "and each bad file is named in a warning)",
    )


def _add_export(commands):
    """``ssd-keras export``."""
    export = commands.add_parser(
        "export",
        help="export a trained model, decoding included, to ONNX, a SavedModel or TFLite (optionally INT8)",
        description="Export a trained SSD with its decoding (NMS included) for serving outside Keras: ONNX "
        "(from any backend), a TensorFlow SavedModel or TFLite (TensorFlow backend). The exported model takes "
        "a batch of images at the model's input size and returns rows [class_id, confidence, xmin, ymin, xmax, "
        "ymax]; ssd_keras.Detector runs an .onnx file on images of any size.",
    )
    _common_args(export)
    _model_args(export, DECODING, batch_size=False)
    export.add_argument(
        "--out", required=True, metavar="PATH", help="the file to write (.onnx, .tflite) or the SavedModel folder"
    )
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="(default: from --out: .onnx, .tflite, else saved_model)",
    )
    export.add_argument(
        "--input-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="ONNX: the images' type (float32: values 0-255) (default: %(default)s)",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="quantise to INT8: ONNX: the convolutions' weights and activations, calibrated on --calibration "
        "images; TFLite: the weights (dynamic range)",
    )
    export.add_argument(
        "--calibration",
        nargs="+",
        default=[],
        metavar="IMAGE_OR_DIR",
        help="with --int8 for ONNX: images or folders of images like those the model will see, e.g. its "
        "training images",
    )
    export.add_argument(
        "--calibration-images",
        type=_positive_int,
        default=100,
        metavar="N",
        help="with --int8: calibrate on at most N of them, chosen at random (default: %(default)s)",
    )


def _add_sample_weights(commands):
    """``ssd-keras sample-weights``."""
    sample = commands.add_parser(
        "sample-weights",
        help="sub-sample a trained SSD300's classifier weights to fewer classes",
        description="Turn trained SSD300 weights (e.g. 81 COCO classes) into weights for fewer classes "
        "(the weight_sampling_tutorial notebook).",
    )
    backend_arg(sample)
    sample.add_argument("--source", required=True, metavar="FILE", help="Keras-2 .h5 weights of the trained model")
    sample.add_argument("--dest", required=True, metavar="FILE", help="the new .h5 file")
    keep = sample.add_mutually_exclusive_group(required=True)
    keep.add_argument(
        "--keep",
        type=_int_list,
        metavar="I,J,...",
        help="class indices to keep, background (0) first, in the new order",
    )
    keep.add_argument("--random", type=_positive_int, metavar="N", help="keep background and N-1 random classes")
    sample.add_argument(
        "--source-classes", type=_positive_int, help="classes of the source incl. background (default: 81, COCO)"
    )
    sample.add_argument(
        "--classifier-layers",
        metavar="NAMES",
        help="comma-separated class-prediction layers (default: those of the file: the *_mbox_conf layers of "
        "SSD300 and SSD512, SSD7's classes4 to classes7)",
    )
    sample.add_argument("--seed", type=int, help="seed for --random")
    sample.add_argument("--quiet", action="store_true", help="print nothing")


def _add_demo(commands):
    """``ssd-keras demo``."""
    demo = commands.add_parser(
        "demo",
        help="the main job: synthetic data, train SSD7, evaluate, draw",
        description="Write the synthetic shapes data set, train SSD7 on it, evaluate VOC mAP on the held-out "
        "split, save the model and draw predictions.",
    )
    backend_arg(demo)
    demo.add_argument(
        "--out", default="demo_output", metavar="DIR", help="(default: %(default)s; a demo there before is replaced)"
    )
    demo.add_argument("--data", default=None, metavar="DIR", help="where the data set goes (default: OUT/shapes)")
    demo.add_argument("--epochs", type=_positive_int, help="training epochs (default: the demo's setting)")
    demo.add_argument("--smoke", action="store_true", help="a tiny run that checks the plumbing (seconds, low mAP)")
    demo.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars or Keras logs")
    demo.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        choices=["latest"],
        help="go on from the newest complete checkpoint in --out, after a demo stopped by Ctrl-C or a kill "
        "(same flags as that run)",
    )
