"""The ``ssd-keras`` commands: each ``cmd_<name>(args)`` takes the parsed flags, checks what
it can before Keras starts (a file or flag at fault is named at once), does its work
through the package's Python API and returns the exit status."""

import json
import os
import sys
import warnings

from ssd_keras.cli.parser import JIT_VALUES
from ssd_keras.errors import ArgumentError


def _data_source(args, prefix, exclude_difficult=False, exclude_crowd=False, in_memory=False):
    """The data flags (``--images-dir``... or ``--val-images-dir``...) as a `DataSource`."""
    from ssd_keras.data.loading import DataSource

    get = lambda name: getattr(args, prefix + name)
    return DataSource(
        get("data_format"),
        images_dirs=tuple(get("images_dir")),
        image_sets=tuple(get("image_set")),
        annotations=tuple(get("annotations")),
        labels_file=get("labels"),
        hdf5=get("hdf5"),
        input_format=tuple(args.csv_format.split(",")),
        exclude_difficult=exclude_difficult,
        exclude_crowd=exclude_crowd,
        in_memory=in_memory,
    )


def _classes(spec):
    """`read_classes` (a bad specification is a `ClassesError`, an unusable argument: exit 2)."""
    from ssd_keras.data.loading import read_classes

    return read_classes(spec)


def _decoding(args):
    """The decoding flags, as `add_decoding` and `Detector` take them."""
    return dict(confidence_thresh=args.confidence_thresh, iou_threshold=args.iou_threshold, top_k=args.top_k)


def _model_source(args, classes):
    """``(model, stored class names)``: the --model-file path, or the --model built with
    --weights (in 'training' mode). The class names stored in a ``.keras`` file are checked
    against --classes before the model loads (seconds); an ONNX file's are read as it loads."""
    from ssd_keras.data.loading import VOC_CLASSES
    from ssd_keras.models.files import read_info

    if args.model_file:
        if args.model_file.endswith(".onnx"):
            return args.model_file, None
        stored = read_info(args.model_file).get("class_names")
        if classes and stored:
            _check_classes_against_stored(classes, stored, args.model_file)
        return args.model_file, stored
    if args.model and args.weights:
        from ssd_keras.inference.loading import load_weights_file
        from ssd_keras.models.presets import build, builder_kwargs

        if not os.path.isfile(args.weights):
            raise FileNotFoundError(f"Weights file not found: {args.weights}")
        n_classes = len(classes or VOC_CLASSES) - 1
        model, _ = build(
            args.model, builder_kwargs(args.model, n_classes, args.image_size, args.scales), mode="training"
        )
        load_weights_file(model, args.weights)
        return model, None
    raise ArgumentError("give --model-file, or --model with --weights")


def _detector(args):
    """``(Detector, class names, named)`` from --model-file (``.keras``, ``.h5`` or ``.onnx``),
    or --model with --weights.

    The class names are --classes, else those stored in the model file (`named` True for
    both), else the 20 VOC names for a model of 20 classes, else ``class_1``, ``class_2``, ...

    Raises:
        ArgumentError: when --classes does not match the model's number of classes.
    """
    from ssd_keras.data.loading import VOC_CLASSES
    from ssd_keras.inference.detector import Detector

    classes = _classes(args.classes) if args.classes else None
    source, stored = _model_source(args, classes)
    detector = Detector(source, **_decoding(args), batch_size=args.batch_size)
    if stored is None and detector._engine.class_names:  # an ONNX file's
        stored = detector.class_names
        if classes:
            _check_classes_against_stored(classes, stored, args.model_file)
    n_classes = detector.n_classes
    named = bool(classes or stored)
    if classes is None:
        classes = stored or (
            list(VOC_CLASSES) if n_classes == 20 else ["background"] + [f"class_{i}" for i in range(1, n_classes + 1)]
        )
    _check_class_count(classes, n_classes)
    detector.class_names = list(classes)
    return detector, classes, named


def _check_class_count(classes, n_classes):
    if len(classes) - 1 != n_classes:
        raise ArgumentError(
            f"--classes names {len(classes) - 1} classes ({', '.join(classes[1:])}), but the model has {n_classes}"
        )


def _check_classes_against_stored(classes, stored, model_file):
    """--classes against the class names stored in `model_file` (background first in both)."""
    _check_class_count(classes, len(stored) - 1)
    if list(classes) != list(stored):
        if sorted(classes) == sorted(stored):
            raise ArgumentError(
                f"--classes lists the classes of {model_file} in another order ({', '.join(classes[1:])}) than it "
                f"was trained with ({', '.join(stored[1:])}): its class ids would name the wrong classes. Give them in "
                "its order, or leave out --classes"
            )
        warnings.warn(
            f"--classes ({', '.join(classes[1:])}) are not the class names stored in {model_file} "
            f"({', '.join(stored[1:])}); the model's class ids are named after --classes",
            stacklevel=3,
        )


def _training_config(args, classes):
    """The `TrainingConfig` of train's flags (`classes`: None while a COCO file's are unknown)."""
    from ssd_keras.training import TrainingConfig

    return TrainingConfig(
        model=args.model,
        out_dir=args.out,
        class_names=tuple(classes) if classes is not None else None,
        image_size=args.image_size,
        scales=args.scales,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        lr_schedule=args.lr_schedule,
        lr_boundaries=tuple(args.lr_boundaries),
        weights=args.weights,
        resume=args.resume,
        initial_epoch=args.initial_epoch,
        overwrite=args.overwrite,
        save_every=args.save_every,
        save_every_minutes=args.save_every_minutes,
        augment=args.augment,
        workers=args.workers,
        use_multiprocessing=args.processes,
        materialize=args.materialize,
        seed=args.seed,
        strategy=args.strategy,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        mixed_precision=args.mixed_precision,
        jit_compile=JIT_VALUES[args.jit_compile],
        train_data=_data_source(args, "", args.exclude_difficult, args.exclude_crowd, args.in_memory),
        val_data=_data_source(args, "val_", True, True, args.in_memory) if args.val_data_format else None,
        verbose=0 if args.quiet else 1,
    )


def _check_train_args(config):
    """Train's argument errors, found before any data is read; returns ``(config,
    checkpoint)``: the config with ``--resume auto`` decided, and the checkpoint to resume
    from (or None). With the class names not known yet (COCO), the checkpoint's classes
    are left for `_check_resume_fits`."""
    from ssd_keras.training.checkpointing import check_new_run
    from ssd_keras.training.engine import latest_checkpoint, resolve_resume

    config.check(flags=True)
    config = resolve_resume(config)  # 'auto': a checkpoint, or a new run
    if config.resume is None and not config.overwrite:
        check_new_run(config.out_dir, flags=True)
    checkpoint = latest_checkpoint(config.out_dir) if config.resume == "latest" else config.resume
    if config.resume == "latest" and checkpoint is None:
        raise ArgumentError(
            f"--resume latest: no checkpoint in {os.path.join(config.out_dir, 'checkpoints')} (--resume auto starts "
            "a new run where there is none)"
        )
    for flag, path in (
        ("--weights", config.weights),
        ("--resume", None if config.resume == "latest" else config.resume),
    ):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{flag}: file not found: {path}")
    if config.resume not in (None, "latest") and config.resume.endswith((".h5", ".hdf5")):
        # ssd_keras' checkpoints were .h5 models: their weights go on, not their optimizer state.
        raise ArgumentError(
            f"--resume takes a .keras checkpoint of ssd-keras train, not {config.resume}; to go on from the "
            f"weights of an .h5 file (e.g. a checkpoint of the original ssd_keras): --weights {config.resume} "
            "--initial-epoch N"
        )
    if checkpoint is not None and config.class_names is not None:
        _check_resume_fits(config, checkpoint)
    return config, checkpoint


def _check_resume_fits(config, checkpoint):
    from ssd_keras.models.presets import builder_kwargs
    from ssd_keras.training.engine import check_resume_fits

    image_size = builder_kwargs(config.model, config.n_classes_given, config.image_size, config.scales)["image_size"]
    check_resume_fits(checkpoint, image_size, config.class_names, flags=True)


def cmd_train(args):
    """``ssd-keras train``: a `TrainingConfig` from the flags, checked, then `training.train`."""
    from ssd_keras.data.loading import check_coco_classes
    from ssd_keras.training import engine

    # COCO files name their categories: those are the classes (--classes, if given, must agree),
    # known once the file is read. Otherwise --classes, by default the 20 of Pascal VOC.
    coco = args.data_format == "coco"
    given = _classes(args.classes) if args.classes else None
    config = _training_config(args, None if coco else given or _classes("voc"))
    config, checkpoint = _check_train_args(config)
    verbose = not args.quiet
    train_data = config.train_data.load(config.class_names, verbose=verbose)
    if coco:
        if given:
            check_coco_classes(
                given,
                train_data,
                args.annotations[0],
                "--classes",
                "Leave out --classes (the file names the classes), or give them in its order",
            )
        config = config.replace(class_names=tuple(train_data.classes_to_names))
        if checkpoint is not None:
            _check_resume_fits(config, checkpoint)
    val_data = config.val_data.load(config.class_names, verbose=verbose) if config.val_data is not None else None
    if args.val_data_format == "coco":
        check_coco_classes(
            config.class_names,
            val_data,
            args.val_annotations[0],
            "The training classes",
            "Validate on data with the training classes, in their order",
        )
    engine.train(config, train_data, val_data)
    from ssd_keras.training.distribution import process_index

    index, count = process_index()
    path = os.path.join(args.out, "model.keras")
    print(f"Saved {path}" if index == 0 else f"Process {index} of {count}: done (process 0 saved {path})")
    return 0


def cmd_evaluate(args):
    """``ssd-keras evaluate``: VOC mAP or COCO metrics of a model on a data set."""
    from ssd_keras.data.loading import check_coco_classes
    from ssd_keras.evaluation.metrics import evaluate_coco_metrics, evaluate_voc, format_voc_table

    if args.metric == "coco" and (args.data_format != "coco" or len(args.annotations) != 1):
        raise ArgumentError("--metric coco needs --data-format coco with one --annotations file")
    source = _data_source(args, "")
    source.check()  # a path at fault is named before the model is loaded
    model, classes, named = _detector(args)
    height, width = model.input_size
    dataset = source.load(classes, verbose=not args.quiet)
    if args.data_format == "coco":
        found = list(dataset.classes_to_names)
        if named and list(classes) != found and sorted(classes) == sorted(found):
            from ssd_keras.data.loading import renumber_classes

            renumber_classes(dataset, classes)
            warnings.warn(
                f"{args.annotations[0]} numbers its categories in another order ({', '.join(found[1:])}) than the "
                f"model its classes ({', '.join(classes[1:])}): they are matched by name",
                stacklevel=2,
            )
        what = "--classes" if args.classes else f"The classes of {args.model_file}"
        check_coco_classes(
            classes, dataset, args.annotations[0], what, "Evaluate on data with the model's classes", named
        )
        classes = list(dataset.classes_to_names)  # the same, or names for a model that has none
    if args.metric == "coco":
        results = evaluate_coco_metrics(
            model,
            dataset,
            args.annotations[0],
            height,
            width,
            args.batch_size,
            args.data_mode,
            args.out,
            verbose=not args.quiet,
        )
        print(json.dumps(results, indent=2))
    else:
        results = evaluate_voc(
            model,
            dataset,
            len(classes) - 1,
            height,
            width,
            args.batch_size,
            args.data_mode,
            args.ap_mode,
            verbose=not args.quiet,
        )
        print(format_voc_table(results, classes))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        from ssd_keras.utils.files import write_json

        write_json(os.path.join(args.out, "metrics.json"), results, indent=2)
    return 0


def cmd_predict(args):
    """``ssd-keras predict``: drawn PNGs and ``detections.json`` for image files and folders."""
    from ssd_keras.inference.prediction import find_images, predict_images

    paths = find_images(args.inputs)
    model, classes, _ = _detector(args)
    records, failed = predict_images(
        model, paths, args.out, classes, batch_size=args.batch_size, verbose=not args.quiet
    )
    n_boxes = sum(len(r["detections"]) for r in records)
    print(f"{n_boxes} detections in {len(records)} images; drawn images and detections.json in {args.out}")
    if failed:
        print(
            f"ssd-keras predict: {len(failed)} of {len(paths)} images could not be read: "
            + "; ".join(f"{path} ({reason})" for path, reason in failed),
            file=sys.stderr,
        )
        if args.strict or not records:
            return 1
    return 0


def cmd_export(args):
    """``ssd-keras export``: the decoding model as ONNX, a SavedModel or TFLite, optionally INT8."""
    from ssd_keras.export import export_model

    fmt = args.format or (
        "onnx" if args.out.endswith(".onnx") else "tflite" if args.out.endswith(".tflite") else "saved_model"
    )
    if args.model_file and args.model_file.endswith(".onnx"):
        raise ArgumentError(f"--model-file {args.model_file} is exported already; export takes a .keras or .h5 model")
    if fmt != "onnx":
        from ssd_keras.utils.backend import require_backend

        require_backend(f"--format {fmt}", "tensorflow")  # before the model loads
        if args.input_dtype != "uint8":
            raise ArgumentError(f"--input-dtype {args.input_dtype} is for ONNX files; a {fmt} takes uint8 images")
    if args.int8 and fmt == "onnx" and not args.calibration:
        raise ArgumentError("--int8 for ONNX needs --calibration: images or folders of images to calibrate on")
    if args.calibration and not (args.int8 and fmt == "onnx"):
        raise ArgumentError(
            "--calibration is for --int8 ONNX files (TFLite's INT8 quantises the weights; it needs no images)"
        )
    if args.calibration:
        from ssd_keras.data.loading import find_images

        calibration_files = find_images(args.calibration)  # a path at fault is named before the model loads
    classes = _classes(args.classes) if args.classes else None
    source, stored = _model_source(args, classes)
    from ssd_keras.inference.loading import decoding_model
    from ssd_keras.inference.prediction import input_size
    from ssd_keras.models.decoding import n_classes_of

    model = decoding_model(source, **_decoding(args))

    if classes is not None:
        _check_class_count(classes, n_classes_of(model))
    calibration = None
    if args.calibration:
        from ssd_keras.export.quantize import calibration_images

        calibration = calibration_images(calibration_files, input_size(model), limit=args.calibration_images)
    export_model(
        model,
        args.out,
        fmt,
        class_names=classes or stored,
        input_dtype=args.input_dtype,
        int8=args.int8,
        calibration=calibration,
    )
    if not args.quiet:
        what = f"INT8 {fmt}" if args.int8 else fmt
        extra = f", calibrated on {len(calibration)} images" if calibration is not None else ""
        print(f"Wrote {args.out} ({what}{extra})")
    return 0


def cmd_sample_weights(args):
    """``ssd-keras sample-weights``: an ``.h5`` weights file for a subset of the source's classes."""
    from ssd_keras.models.weight_sampling import SSD300_CLASSIFIER_LAYERS, subsample_classifier_weights

    if not os.path.isfile(args.source):
        raise FileNotFoundError(f"Weights file not found: {args.source}")
    keep = args.keep if args.keep is not None else args.random
    if args.classifier_layers:
        layers = [name.strip() for name in args.classifier_layers.split(",")]
    else:  # those of the file: SSD300's, SSD512's (one more) or SSD7's
        from ssd_keras.inference.loading import is_classifier_layer
        from ssd_keras.models.legacy_weights import layers_with_weights

        layers = [name for name in layers_with_weights(args.source) if is_classifier_layer(name)]
        if not layers:
            raise ArgumentError(
                f"{args.source} has no class-prediction layers (*_mbox_conf, classes4...); name them with "
                f"--classifier-layers (SSD300's: {','.join(SSD300_CLASSIFIER_LAYERS)})"
            )
    source_classes = args.source_classes or 81
    try:
        kept = subsample_classifier_weights(
            args.source, args.dest, keep, n_classes_source=source_classes, classifier_layers=layers, rng=args.seed
        )
    except ValueError as error:
        if "blocks of" in str(error) and args.source_classes is None:
            raise ValueError(
                f"{error} Give --source-classes: the classes of {args.source}, background included "
                "(the default, 81, is COCO's)."
            ) from None
        raise
    if not args.quiet:
        print(f"Wrote {args.dest} with classes {kept} of {source_classes}")
    return 0


def cmd_demo(args):
    """``ssd-keras demo``: the synthetic shapes data set, SSD7 trained, evaluated and drawn."""
    from ssd_keras.demo import run_demo
    from ssd_keras.training.engine import latest_checkpoint

    if args.resume and latest_checkpoint(args.out) is None:
        raise ArgumentError(f"--resume: no checkpoint in {os.path.join(args.out, 'checkpoints')}")
    run_demo(
        args.out,
        data_dir=args.data,
        epochs=args.epochs,
        smoke=args.smoke,
        seed=args.seed,
        verbose=not args.quiet,
        resume=args.resume,
    )
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "export": cmd_export,
    "sample-weights": cmd_sample_weights,
    "demo": cmd_demo,
}
