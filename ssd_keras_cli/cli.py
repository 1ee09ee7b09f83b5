"""``ssd-keras``: train, evaluate, predict, sample weights, and the demo, from the shell.

Run ``ssd-keras <command> --help`` for every flag. Errors print one line naming the
file or argument at fault and exit with status 1 (2 for unusable arguments).
"""

import argparse
import json
import math
import os
import sys
import warnings

from misc_utils.backend_utils import BackendError

EXAMPLES = """examples:
  ssd-keras demo
  ssd-keras train --model ssd300 --data-format voc --images-dir VOC2007/JPEGImages \\
      --image-set VOC2007/ImageSets/Main/trainval.txt --annotations VOC2007/Annotations \\
      --weights VGG_ILSVRC_16_layers_fc_reduced.h5 --out runs/ssd300
  ssd-keras evaluate --model-file runs/ssd300/model.keras --data-format voc \\
      --images-dir VOC2007/JPEGImages --image-set VOC2007/ImageSets/Main/test.txt \\
      --annotations VOC2007/Annotations
  ssd-keras predict --model-file runs/ssd300/model.keras --classes voc photos/ --out predictions
  ssd-keras sample-weights --source VGG_coco_SSD_300x300_iter_400000.h5 \\
      --dest ssd300_8_classes.h5 --keep 0,3,8,1,2,10,4,6,12
"""


class CommandError(Exception):
    """A user error: printed without a traceback, exit status 1."""


class UsageError(CommandError):
    """Unusable arguments, found before any data is read: exit status 2, as argparse's."""


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
    """Flags that describe one data set (see `ssd_keras_cli.data.load_dataset`)."""
    from ssd_keras_cli.data import FORMATS

    dest = prefix.replace("-", "_")
    group = parser.add_argument_group(f"{prefix or 'data'} set" + help_suffix)
    group.add_argument(f"--{prefix}data-format", dest=f"{dest}data_format", choices=FORMATS, required=required,
                       help="annotation format: Pascal VOC XML, MS COCO JSON, CSV (one box per row) or an HDF5 file "
                            "written by DataGenerator.create_hdf5_dataset")
    group.add_argument(f"--{prefix}images-dir", dest=f"{dest}images_dir", action="append", default=[], metavar="DIR",
                       help="images directory; repeat for several VOC/COCO parts (e.g. VOC2007 and VOC2012)")
    group.add_argument(f"--{prefix}image-set", dest=f"{dest}image_set", action="append", default=[], metavar="FILE",
                       help="VOC: image-set file with one image id per line, one per --images-dir")
    group.add_argument(f"--{prefix}annotations", dest=f"{dest}annotations", action="append", default=[], metavar="PATH",
                       help="VOC: Annotations directory; COCO: instances JSON file; one per --images-dir")
    group.add_argument(f"--{prefix}labels", dest=f"{dest}labels", metavar="FILE", help="CSV: the labels file")
    group.add_argument(f"--{prefix}hdf5", dest=f"{dest}hdf5", metavar="FILE", help="HDF5: the data set file")


def _data_source(args, prefix):
    """The data flags (``--images-dir``... or ``--val-images-dir``...) as `load_dataset` keywords."""
    get = lambda name: getattr(args, prefix + name)  # noqa: E731
    return dict(data_format=get("data_format"), images_dirs=get("images_dir"), image_sets=get("image_set"), annotations=get("annotations"),
                labels_file=get("labels"), hdf5=get("hdf5"))


def _check_data(args, prefix):
    """The data flags' paths, checked before a model is loaded (see `data.check_data_paths`)."""
    from ssd_keras_cli.data import check_data_paths

    check_data_paths(**_data_source(args, prefix))


def _load_data(args, prefix, classes, exclude_difficult=False, exclude_crowd=False, in_memory=False):
    from ssd_keras_cli.data import load_dataset

    return load_dataset(**_data_source(args, prefix), input_format=args.csv_format.split(","), classes=classes,
                        exclude_difficult=exclude_difficult, exclude_crowd=exclude_crowd, in_memory=in_memory, verbose=not args.quiet)


def backend_arg(sub):
    """The ``--backend`` flag every command takes."""
    from misc_utils.backend_utils import BACKENDS

    sub.add_argument("--backend", choices=BACKENDS,
                     help="Keras backend (default: the KERAS_BACKEND environment variable, else Keras' own setting, "
                          "tensorflow unless changed)")


def build_parser():
    from ssd_keras_cli.configs import MODELS
    from ssd_keras_cli.training import AUGMENTATIONS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, STRATEGIES

    parser = argparse.ArgumentParser(prog="ssd-keras", description="SSD object detection (ssd_keras for Keras 3).",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)

    def common(sub):
        backend_arg(sub)
        sub.add_argument("--quiet", action="store_true", help="no progress bars or Keras logs")
        sub.add_argument("--classes", metavar="NAMES",
                         help="class names: 'voc' (the 20 Pascal VOC classes), a text file with one name per line, or a "
                              "comma-separated list; 'background' is prepended if missing (default: train: voc; evaluate and "
                              "predict: the names stored in --model-file, else voc for 20 classes, else class_1, class_2, ...)")
        sub.add_argument("--csv-format", default="image_name,xmin,xmax,ymin,ymax,class_id",
                         help="CSV: the order of the first six columns (default: %(default)s)")

    # ---------------------------------------------------------------- train
    train = commands.add_parser("train", help="train SSD300, SSD512 or SSD7", description="Train an SSD as the original notebooks do.")
    common(train)
    train.add_argument("--model", choices=MODELS, default="ssd300", help="architecture (default: %(default)s)")
    train.add_argument("--image-size", type=_image_size, metavar="HxW", help="input size (default: 300x300, 512x512, 300x480 for ssd7)")
    train.add_argument("--scales", choices=("pascal", "coco"), default="pascal", help="anchor scales of the notebooks (ssd300/ssd512)")
    train.add_argument("--out", default="runs/train", metavar="DIR", help="checkpoints, training_log.csv and model.keras (default: %(default)s)")
    train.add_argument("--epochs", type=_positive_int, default=120, help="last epoch (default: %(default)s, the SSD300 notebook)")
    train.add_argument("--steps-per-epoch", type=_positive_int, metavar="N", help="batches per epoch (default: one pass over the data)")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="global batch size (default: %(default)s)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="SGD with momentum 0.9, or Adam (default: %(default)s)")
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="base learning rate (default: %(default)s)")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="steps",
                       help="steps: divide by 10 at each --lr-boundaries epoch (SSD300 notebook); plateau: ReduceLROnPlateau and "
                            "EarlyStopping (SSD7 notebook); constant (default: %(default)s)")
    train.add_argument("--lr-boundaries", type=_int_list, default=[80, 100], metavar="E1,E2", help="epochs of the steps schedule (default: 80,100)")
    train.add_argument("--weights", metavar="FILE",
                       help="starting weights: a Keras-2 .h5 loaded by layer name, e.g. VGG_ILSVRC_16_layers_fc_reduced.h5, or a Keras 3 "
                            ".weights.h5 of the same architecture")
    train.add_argument("--resume", metavar="FILE",
                       help="go on from a checkpoint .keras file, or 'latest' for the newest complete one in --out (damaged ones "
                            "are skipped with a warning), at the batch it was written after")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run in an --out that holds an earlier one, deleting its checkpoints, model and log "
                            "(without it, that is an error: the new run would overwrite them)")
    train.add_argument("--save-every", type=_positive_int, metavar="STEPS",
                       help="also write a resume point every STEPS training steps (default: at the end of each epoch only)")
    train.add_argument("--initial-epoch", type=_epoch, metavar="N",
                       help="epoch to start from, counted from 0: with --resume, instead of the checkpoint's; without, a new run "
                            "starts there with that epoch's learning rate, e.g. from the --weights of an earlier run")
    train.add_argument("--augment", choices=AUGMENTATIONS, default="ssd",
                       help="ssd: the paper's chain; constant: the SSD7 notebook's chain; flip; none (default: %(default)s)")
    train.add_argument("--workers", type=_positive_int, default=1, help="threads (or processes) building batches (default: %(default)s)")
    train.add_argument("--processes", action="store_true",
                       help="build batches in forked worker processes that return them through shared memory (the fastest on Linux) "
                            "instead of threads")
    train.add_argument("--materialize", action="store_true",
                       help="build each epoch's batches up front (with --workers/--processes), then train on them as arrays: "
                            "faster on a few cores, if an encoded epoch fits in memory (the demo's way; not with "
                            "--lr-schedule plateau or --steps-per-epoch)")
    train.add_argument("--in-memory", action="store_true", help="decode all images into memory first")
    train.add_argument("--exclude-difficult", action="store_true", help="VOC: leave out boxes flagged difficult")
    train.add_argument("--exclude-crowd", action="store_true", help="COCO: leave out crowd boxes (\"iscrowd\": 1)")
    train.add_argument("--strategy", choices=STRATEGIES, default="none",
                       help="several devices: mirrored (TensorFlow: all GPUs of this machine), multiworker (TensorFlow: the "
                            "machines in TF_CONFIG) or data-parallel (JAX: keras.distribution.DataParallel over all devices) "
                            "(default: none)")
    train.add_argument("--mixed-precision", choices=PRECISIONS, default="float32", help="Keras dtype policy (default: %(default)s)")
    train.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto", help="XLA for the training step (default: auto)")
    train.add_argument("--seed", type=int, help="seed for weights, augmentation and shuffling")
    _add_data_args(train)
    _add_data_args(train, prefix="val-", required=False, help_suffix=" (optional validation data, same flags with val-)")

    # ---------------------------------------------------------------- evaluate / predict: the model
    def model_args(sub, confidence):
        group = sub.add_argument_group("model")
        group.add_argument("--model-file", metavar="FILE", help="a .keras model (training or inference mode)")
        group.add_argument("--model", choices=MODELS, help="with --weights: build this architecture instead of loading --model-file")
        group.add_argument("--weights", metavar="FILE",
                           help="weights for --model: a Keras-2 .h5 (loaded by layer name), e.g. VGG_VOC0712_SSD_300x300_iter_120000.h5, "
                                "or a Keras 3 .weights.h5 of the same architecture")
        group.add_argument("--image-size", type=_image_size, metavar="HxW", help="with --model: input size")
        group.add_argument("--scales", choices=("pascal", "coco"), default="pascal", help="with --model: anchor scales (default: pascal)")
        group.add_argument("--confidence-thresh", type=_fraction, default=confidence, help="decoding: minimum score (default: %(default)s)")
        group.add_argument("--iou-threshold", type=_fraction, default=0.45, help="decoding: NMS IoU threshold (default: %(default)s)")
        group.add_argument("--top-k", type=_positive_int, default=200, help="decoding: boxes kept per image (default: %(default)s)")
        group.add_argument("--batch-size", type=_positive_int, default=8, help="images per prediction batch (default: %(default)s)")

    evaluate = commands.add_parser("evaluate", help="Pascal VOC mAP or COCO metrics of a model on a data set",
                                   description="Evaluate a model: Pascal VOC mAP (devkit rules) or COCO metrics.")
    common(evaluate)
    model_args(evaluate, 0.01)
    evaluate.add_argument("--metric", choices=("voc", "coco"), default="voc", help="(default: %(default)s)")
    evaluate.add_argument("--ap-mode", choices=("sample", "integrate"), default="sample",
                          help="VOC: 11-point sampling (VOC2007) or integration (VOC2010+) (default: %(default)s)")
    evaluate.add_argument("--data-mode", choices=("resize", "pad"), default="resize", help="how images are fitted to the model (default: resize)")
    evaluate.add_argument("--out", metavar="DIR", help="write metrics.json (and COCO's detections JSON) here")
    _add_data_args(evaluate)

    predict = commands.add_parser("predict", help="detect objects in images; write drawn PNGs and a JSON of detections",
                                  description="Detect objects in images or folders of images.")
    common(predict)
    model_args(predict, 0.5)
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories of images")
    predict.add_argument("--out", default="predictions", metavar="DIR", help="drawn PNGs and detections.json (default: %(default)s)")
    predict.add_argument("--strict", action="store_true",
                         help="exit with status 1 if any image cannot be read (default: only if none can; the others are written "
                              "and each bad file is named in a warning)")

    sample = commands.add_parser("sample-weights", help="sub-sample a trained SSD300's classifier weights to fewer classes",
                                 description="Turn trained SSD300 weights (e.g. 81 COCO classes) into weights for fewer classes "
                                             "(the weight_sampling_tutorial notebook).")
    backend_arg(sample)
    sample.add_argument("--source", required=True, metavar="FILE", help="Keras-2 .h5 weights of the trained model")
    sample.add_argument("--dest", required=True, metavar="FILE", help="the new .h5 file")
    keep = sample.add_mutually_exclusive_group(required=True)
    keep.add_argument("--keep", type=_int_list, metavar="I,J,...", help="class indices to keep, background (0) first, in the new order")
    keep.add_argument("--random", type=_positive_int, metavar="N", help="keep background and N-1 random classes")
    sample.add_argument("--source-classes", type=_positive_int, help="classes of the source incl. background (default: 81, COCO)")
    sample.add_argument("--classifier-layers", metavar="NAMES",
                        help="comma-separated class-prediction layers (default: those of the file: the *_mbox_conf layers of "
                             "SSD300 and SSD512, SSD7's classes4 to classes7)")
    sample.add_argument("--seed", type=int, help="seed for --random")
    sample.add_argument("--quiet", action="store_true", help="print nothing")

    demo = commands.add_parser("demo", help="the main job: synthetic data, train SSD7, evaluate, draw",
                               description="Write the synthetic shapes data set, train SSD7 on it, evaluate VOC mAP on the held-out "
                                           "split, save the model and draw predictions.")
    backend_arg(demo)
    demo.add_argument("--out", default="demo_output", metavar="DIR", help="(default: %(default)s; a demo there before is replaced)")
    demo.add_argument("--data", default=None, metavar="DIR", help="where the data set goes (default: OUT/shapes)")
    demo.add_argument("--epochs", type=_positive_int, help="training epochs (default: the demo's setting)")
    demo.add_argument("--smoke", action="store_true", help="a tiny run that checks the plumbing (seconds, low mAP)")
    demo.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars or Keras logs")
    demo.add_argument("--resume", nargs="?", const="latest", choices=["latest"],
                      help="go on from the newest complete checkpoint in --out, after a demo stopped by Ctrl-C or a kill "
                           "(same flags as that run)")
    return parser


def _classes(spec):
    """`data.read_classes`, a bad specification being an unusable argument (exit 2)."""
    from ssd_keras_cli.data import ClassesError, read_classes

    try:
        return read_classes(spec)
    except ClassesError as error:
        raise UsageError(str(error)) from None


def _detector(args):
    """``(decoding model, class names, named)`` from --model-file, or --model with --weights.

    The class names are --classes, else those stored in the model file (`named` True for
    both), else the 20 VOC names for a model of 20 classes, else ``class_1``, ``class_2``, ...

    Raises:
        UsageError: when --classes does not match the model's number of classes.
    """
    from ssd_keras_cli.data import VOC_CLASSES
    from ssd_keras_cli.inference import add_decoding, load_detector, n_classes_of
    from ssd_keras_cli.model_files import read_info

    decode = dict(confidence_thresh=args.confidence_thresh, iou_threshold=args.iou_threshold, top_k=args.top_k)
    classes = _classes(args.classes) if args.classes else None
    if args.model_file:
        stored = read_info(args.model_file).get("class_names")
        if classes and stored:  # checked before the model loads (seconds)
            _check_classes_against_stored(classes, stored, args.model_file)
        model = load_detector(args.model_file, **decode)
    elif args.model and args.weights:
        from ssd_keras_cli.configs import build, model_kwargs
        from ssd_keras_cli.inference import load_weights_file

        if not os.path.isfile(args.weights):
            raise FileNotFoundError(f"Weights file not found: {args.weights}")
        n_classes = len(classes or VOC_CLASSES) - 1
        model, _ = build(args.model, model_kwargs(args.model, n_classes, args.image_size, args.scales), mode="training")
        load_weights_file(model, args.weights)
        model, stored = add_decoding(model, **decode), None
    else:
        raise UsageError("give --model-file, or --model with --weights")
    n_classes = n_classes_of(model)
    named = bool(classes or stored)
    if classes is None:
        classes = stored or (list(VOC_CLASSES) if n_classes == 20 else ["background"] + [f"class_{i}" for i in range(1, n_classes + 1)])
    _check_class_count(classes, n_classes)
    return model, classes, named


def _check_class_count(classes, n_classes):
    if len(classes) - 1 != n_classes:
        raise UsageError(f"--classes names {len(classes) - 1} classes ({', '.join(classes[1:])}), but the model has {n_classes}")


def _check_classes_against_stored(classes, stored, model_file):
    """--classes against the class names stored in `model_file` (background first in both)."""
    _check_class_count(classes, len(stored) - 1)
    if list(classes) != list(stored):
        if sorted(classes) == sorted(stored):
            raise UsageError(f"--classes lists the classes of {model_file} in another order ({', '.join(classes[1:])}) than it "
                             f"was trained with ({', '.join(stored[1:])}): its class ids would name the wrong classes. Give them in "
                             "its order, or leave out --classes")
        warnings.warn(f"--classes ({', '.join(classes[1:])}) are not the class names stored in {model_file} "
                      f"({', '.join(stored[1:])}); the model's class ids are named after --classes", stacklevel=3)


def _check_train_args(args, classes):
    """Train's argument errors, found before any data is read; returns the checkpoint to
    resume from (or None). With `classes` None (not known yet) the checkpoint's classes
    are left for `_check_resume_fits`."""
    from ssd_keras_cli.checkpointing import check_new_run
    from ssd_keras_cli.training import check_initial_epoch, check_materialize, latest_checkpoint

    if args.resume is not None and (args.overwrite or args.weights):
        # Each would be silently ignored: a resumed run has its checkpoint's weights and folder.
        flag = "--overwrite (a new run)" if args.overwrite else "--weights (a new run's starting weights)"
        raise UsageError(f"--resume goes on with the checkpoint's run, weights included; leave out {flag}")
    try:
        check_materialize(args.materialize, args.lr_schedule, args.steps_per_epoch, flags=True)
        check_initial_epoch(args.initial_epoch, args.epochs, flags=True)
        if args.resume is None and not args.overwrite:
            check_new_run(args.out, flags=True)
    except ValueError as error:
        raise UsageError(str(error)) from None
    checkpoint = latest_checkpoint(args.out) if args.resume == "latest" else args.resume
    if args.resume == "latest" and checkpoint is None:
        raise UsageError(f"--resume latest: no checkpoint in {os.path.join(args.out, 'checkpoints')}")
    for flag, path in (("--weights", args.weights), ("--resume", None if args.resume == "latest" else args.resume)):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{flag}: file not found: {path}")
    if args.resume not in (None, "latest") and args.resume.endswith((".h5", ".hdf5")):
        # ssd_keras' checkpoints were .h5 models: their weights go on, not their optimizer state.
        raise UsageError(f"--resume takes a .keras checkpoint of ssd-keras train, not {args.resume}; to go on from the weights of "
                         f"an .h5 file (e.g. a checkpoint of the original ssd_keras): --weights {args.resume} --initial-epoch N")
    if checkpoint is not None and classes is not None:
        _check_resume_fits(args, checkpoint, classes)
    return checkpoint


def _check_resume_fits(args, checkpoint, classes):
    from ssd_keras_cli.configs import model_kwargs
    from ssd_keras_cli.training import check_resume_fits

    image_size = model_kwargs(args.model, len(classes) - 1, args.image_size, args.scales)["image_size"]
    try:
        check_resume_fits(checkpoint, image_size, classes, flags=True)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _check_coco_classes(classes, dataset, path, what, hint, named=True):
    """Raises `UsageError` unless `classes` ('background' first) are the categories of the COCO
    file `path` read into `dataset`, in the file's order: `parse_json` numbers them 1 to n in
    that order, and class ids are all a model and the data have in common. With `named`
    False (a model whose class names are not known) only their number is compared."""
    found = list(dataset.classes_to_names)
    if (list(classes) == found) if named else (len(classes) == len(found)):
        return
    listing = lambda names: ", ".join(names[1:])  # noqa: E731
    if not named:
        raise UsageError(f"The model has {len(classes) - 1} classes, but {path} has {len(found) - 1} categories ({listing(found)})")
    if sorted(classes) == sorted(found):
        raise UsageError(f"{what} ({listing(classes)}) list the categories of {path} in another order: the file numbers them "
                         f"{listing(found)} (class ids 1 to {len(found) - 1}), so the ids would name the wrong classes. {hint}")
    raise UsageError(f"{what} ({listing(classes)}) are not the categories of {path} ({listing(found)}, class ids 1 to "
                     f"{len(found) - 1} in that order). {hint}")


def cmd_train(args):
    from ssd_keras_cli.training import train

    # COCO files name their categories: those are the classes (--classes, if given, must agree),
    # known once the file is read. Otherwise --classes, by default the 20 of Pascal VOC.
    coco = args.data_format == "coco"
    given = _classes(args.classes) if args.classes else None
    classes = None if coco else given or _classes("voc")
    checkpoint = _check_train_args(args, classes)
    train_data = _load_data(args, "", classes, args.exclude_difficult, args.exclude_crowd, args.in_memory)
    if coco:
        classes = list(train_data.classes_to_names)
        if given:
            _check_coco_classes(given, train_data, args.annotations[0], "--classes",
                                "Leave out --classes (the file names the classes), or give them in its order")
        if checkpoint is not None:
            _check_resume_fits(args, checkpoint, classes)
    val_data = _load_data(args, "val_", classes, True, True, args.in_memory) if args.val_data_format else None
    if args.val_data_format == "coco":
        _check_coco_classes(classes, val_data, args.val_annotations[0], "The training classes",
                            "Validate on data with the training classes, in their order")
    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    train(args.model, train_data, len(classes) - 1, args.out, val_dataset=val_data, image_size=args.image_size, scales=args.scales,
          epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, optimizer=args.optimizer,
          learning_rate=args.lr, lr_schedule=args.lr_schedule, lr_boundaries=args.lr_boundaries, weights=args.weights, resume=args.resume,
          initial_epoch=args.initial_epoch, augment=args.augment, workers=args.workers, use_multiprocessing=args.processes,
          seed=args.seed, strategy=args.strategy, mixed_precision=args.mixed_precision, jit_compile=jit, verbose=0 if args.quiet else 1,
          class_names=classes, save_every=args.save_every, materialize=args.materialize, overwrite=args.overwrite)
    print(f"Saved {os.path.join(args.out, 'model.keras')}")
    return 0


def cmd_evaluate(args):
    from ssd_keras_cli.evaluation import evaluate_coco_metrics, evaluate_voc, format_voc_table

    if args.metric == "coco" and (args.data_format != "coco" or len(args.annotations) != 1):
        raise UsageError("--metric coco needs --data-format coco with one --annotations file")
    _check_data(args, "")  # a path at fault is named before the model is loaded
    model, classes, named = _detector(args)
    height, width = model.inputs[0].shape[1:3]
    dataset = _load_data(args, "", classes)
    if args.data_format == "coco":
        found = list(dataset.classes_to_names)
        if named and list(classes) != found and sorted(classes) == sorted(found):
            from ssd_keras_cli.data import renumber_classes

            renumber_classes(dataset, classes)
            warnings.warn(f"{args.annotations[0]} numbers its categories in another order ({', '.join(found[1:])}) than the "
                          f"model its classes ({', '.join(classes[1:])}): they are matched by name", stacklevel=2)
        what = "--classes" if args.classes else f"The classes of {args.model_file}"
        _check_coco_classes(classes, dataset, args.annotations[0], what, "Evaluate on data with the model's classes", named)
        classes = list(dataset.classes_to_names)  # the same, or names for a model that has none
    if args.metric == "coco":
        results = evaluate_coco_metrics(model, dataset, args.annotations[0], height, width, args.batch_size, args.data_mode,
                                        args.out, verbose=not args.quiet)
        print(json.dumps(results, indent=2))
    else:
        results = evaluate_voc(model, dataset, len(classes) - 1, height, width, args.batch_size, args.data_mode, args.ap_mode,
                               verbose=not args.quiet)
        print(format_voc_table(results, classes))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        from misc_utils.file_utils import write_json

        write_json(os.path.join(args.out, "metrics.json"), results, indent=2)
    return 0


def cmd_predict(args):
    from ssd_keras_cli.prediction import find_images, predict_images

    paths = find_images(args.inputs)
    model, classes, _ = _detector(args)
    records, failed = predict_images(model, paths, args.out, classes, batch_size=args.batch_size, verbose=not args.quiet)
    n_boxes = sum(len(r["detections"]) for r in records)
    print(f"{n_boxes} detections in {len(records)} images; drawn images and detections.json in {args.out}")
    if failed:
        print(f"ssd-keras predict: {len(failed)} of {len(paths)} images could not be read: "
              + "; ".join(f"{path} ({reason})" for path, reason in failed), file=sys.stderr)
        if args.strict or not records:
            return 1
    return 0


def cmd_sample_weights(args):
    from misc_utils.tensor_sampling_utils import SSD300_CLASSIFIER_LAYERS, subsample_classifier_weights

    if not os.path.isfile(args.source):
        raise FileNotFoundError(f"Weights file not found: {args.source}")
    keep = args.keep if args.keep is not None else args.random
    if args.classifier_layers:
        layers = [name.strip() for name in args.classifier_layers.split(",")]
    else:  # those of the file: SSD300's, SSD512's (one more) or SSD7's
        from models.legacy_weights import layers_with_weights
        from ssd_keras_cli.inference import is_classifier_layer

        layers = [name for name in layers_with_weights(args.source) if is_classifier_layer(name)]
        if not layers:
            raise UsageError(f"{args.source} has no class-prediction layers (*_mbox_conf, classes4...); name them with "
                             f"--classifier-layers (SSD300's: {','.join(SSD300_CLASSIFIER_LAYERS)})")
    source_classes = args.source_classes or 81
    try:
        kept = subsample_classifier_weights(args.source, args.dest, keep, n_classes_source=source_classes, classifier_layers=layers,
                                            rng=args.seed)
    except ValueError as error:
        if "blocks of" in str(error) and args.source_classes is None:
            raise ValueError(f"{error} Give --source-classes: the classes of {args.source}, background included "
                             "(the default, 81, is COCO's).") from None
        raise
    if not args.quiet:
        print(f"Wrote {args.dest} with classes {kept} of {source_classes}")
    return 0


def cmd_demo(args):
    from ssd_keras_cli.demo import run_demo

    from ssd_keras_cli.training import latest_checkpoint

    if args.resume and latest_checkpoint(args.out) is None:
        raise UsageError(f"--resume: no checkpoint in {os.path.join(args.out, 'checkpoints')}")
    run_demo(args.out, data_dir=args.data, epochs=args.epochs, smoke=args.smoke, seed=args.seed, verbose=not args.quiet,
             resume=args.resume)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "sample-weights": cmd_sample_weights, "demo": cmd_demo}


def _warning_printer(command):
    """`warnings.showwarning` for the command line: one line per warning ("ssd-keras predict:
    warning: Skipped ..."), not Python's two with the file, line number and source line."""

    def show(message, category, filename, lineno, file=None, line=None):
        kind = "" if category is UserWarning else f"{category.__name__}: "
        print(f"ssd-keras {command}: warning: {kind}{message}", file=file or sys.stderr, flush=True)

    return show


def main(argv=None):
    """Entry point of ``ssd-keras``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from misc_utils.backend_utils import (hide_tensorflow_start_up_lines, leave_tensorflow_unimported, select_backend,
                                          use_jax_compilation_cache)

    if args.backend:
        try:
            select_backend(args.backend)
        except ValueError as error:
            parser.error(str(error))
    use_jax_compilation_cache()
    hide_tensorflow_start_up_lines()
    leave_tensorflow_unimported()
    try:
        with warnings.catch_warnings():  # puts Python's printer back afterwards
            warnings.showwarning = _warning_printer(args.command)
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("ssd-keras: interrupted", file=sys.stderr)
        return 130
    except UsageError as error:
        print(f"ssd-keras {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (CommandError, ValueError, FileNotFoundError, OSError, BackendError) as error:
        print(f"ssd-keras {args.command}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # TrainingError, data errors (DatasetError, DegenerateBoxError...) and the like
        if type(error).__name__ == "TrainingInterrupted":
            print(f"ssd-keras {args.command}: {error}", file=sys.stderr)
            return 128 + error.signum  # as a shell reports a process ended by the signal
        if type(error).__name__ == "TrainingError":
            print(f"ssd-keras {args.command}: error: {error}", file=sys.stderr)
            return 1
        if type(error).__module__.split(".")[0] in ("data_generator", "ssd_encoder_decoder", "eval_utils", "misc_utils", "models"):
            print(f"ssd-keras {args.command}: error: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
