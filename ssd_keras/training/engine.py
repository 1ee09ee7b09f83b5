"""`train`: an SSD trained as the original notebooks do, with Keras 3's `fit`.

``ssd-keras train`` and the demo call it with a `TrainingConfig`; so can Python code, with
`DataGenerator` objects or the `DataSource` of each split. It writes, under `out_dir`:

* ``checkpoints/epoch-NN_loss-L[_val_loss-V].keras``: the full model (optimizer state
  included) after each epoch, or after each improvement when there is validation data;
* ``checkpoints/resume/step-S.keras``: resume points every `save_every` steps (and at
  epoch ends without a new epoch checkpoint), the newest two kept;
* ``training_log.csv``: the per-epoch losses and learning rate (appended on resume);
* ``train.log``: starts, resumes, checkpoints written, faults;
* ``model.keras``: the model at the end (training mode, with the class names;
  ``ssd-keras predict`` and ``evaluate`` add the decoding layer).

Every file is written atomically, and a run killed at any point goes on with
``resume='latest'`` exactly where its newest complete checkpoint was written (see
`ssd_keras.training.checkpointing`).

`train` is a sequence of steps, each a function below: `_load_data` (the data sets and
their classes, checked), `_open_run` (the folder, the log, the checkpoint to resume from),
`_build_model`, `_make_pipeline` (the encoder and the batches), `_make_callbacks`, `_fit`
and `_finish`.
"""

import contextlib
import dataclasses
import os
import re

from ssd_keras.errors import ArgumentError, TrainingError
from ssd_keras.models.presets import build, builder_kwargs, make_encoder
from ssd_keras.training.batches import check_class_ids, epoch_arrays, transformations
from ssd_keras.training.config import TrainingConfig


@dataclasses.dataclass
class _Run:
    """What the steps of `train` hand on to each other."""

    config: TrainingConfig
    out_dir: str
    log: object
    resume: str | None = None  # the checkpoint file training goes on from
    state: dict = dataclasses.field(default_factory=dict)  # its training state (epoch, batch, ...)
    class_names: list | None = None
    n_classes: int | None = None
    model_kwargs: dict | None = None
    model: object = None
    distribution: object = None
    train_set: object = None  # the `DataGenerator`s
    val_set: object = None
    train_data: object = None  # their `keras_dataset` batches
    val_data: object = None
    recorder: object = None
    callbacks: list = dataclasses.field(default_factory=list)
    progress: list = dataclasses.field(default_factory=list)
    history: object = None
    writer: bool = True  # this process writes the checkpoints, logs and model (JAX: process 0 of several)


def train(config, train_dataset=None, val_dataset=None, callbacks=()):
    """Trains the SSD that `config` describes; returns ``(model, history)``.

    Args:
        config: a `TrainingConfig`.
        train_dataset: a `DataGenerator` with labels; None to read `config.train_data`.
        val_dataset: the same for validation (optional; None reads `config.val_data`,
            if given).
        callbacks: more Keras callbacks.

    Returns:
        ``(model, history)``: the trained Keras model (training mode) and a
        `keras.callbacks.History` over all of this call's epochs.

    Raises:
        ArgumentError: for settings that cannot work (`TrainingConfig.check`), a new run in
            a folder with an earlier run's files, or class ids in the data that the
            model does not have (named, image and box).
        FileNotFoundError: for a missing weights or checkpoint file.
        CorruptModelFile: for a damaged checkpoint given by name.
        CheckpointError: when the output folder or a checkpoint cannot be written (the
            previous checkpoint stays intact).
        TrainingError: when the loss becomes NaN or infinite, a batch cannot be built or a
            batch worker process dies (the message names the epoch and batch and the last
            good checkpoint).
        TrainingInterrupted: on SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM, after
            the batch in progress and a resume point there, which ``resume='latest'`` goes
            on from (a second signal is a KeyboardInterrupt at once; not with
            ``strategy='multiworker'``).

    Examples:
        >>> from ssd_keras.training import TrainingConfig, train
        >>> config = TrainingConfig(model="ssd7", class_names=("background", "car"), image_size=(64, 64, 3),
        ...                         out_dir="runs/cars", epochs=2, batch_size=4, optimizer="adam")
        >>> model, history = train(config, train_dataset)  # doctest: +SKIP
    """
    from ssd_keras.training.checkpointing import check_new_run
    from ssd_keras.training.distribution import connect_processes

    config.check()
    config = resolve_resume(config)
    if config.weights is not None and not os.path.isfile(config.weights):
        raise FileNotFoundError(f"Weights file not found: {config.weights}")
    if config.resume is None and not config.overwrite:
        check_new_run(config.out_dir)  # before anything is read or written
    config = connect_processes(config)  # JAX across processes: before JAX does anything else
    data = _load_data(config, train_dataset, val_dataset)  # read and checked before anything is written
    run = _open_run(config)
    run.train_set, run.val_set, run.class_names, run.n_classes = data
    _build_model(run)
    _make_pipeline(run)
    _make_callbacks(run, callbacks)
    _fit(run)
    return _finish(run)


def _open_run(config):
    """The run's folder and log (checked and written before any data is read), and the
    checkpoint it goes on from with its training state."""
    from ssd_keras.models.files import ensure_writable, remove_stale_temporaries, verify
    from ssd_keras.training.checkpointing import RESUME_DIR, NullLog, RunLog, check_new_run, find_resume_point
    from ssd_keras.training.distribution import agree_on_checkpoint, process_index

    out_dir = config.out_dir
    ensure_writable(os.path.join(out_dir, "checkpoints"))  # before anything is read or trained
    writer = process_index()[0] == 0
    run = _Run(config=config, out_dir=out_dir, log=RunLog(out_dir) if writer else NullLog(), writer=writer)
    if config.resume is None and config.overwrite:
        check_new_run(out_dir, overwrite=True, log=run.log)
    for folder in (os.path.join(out_dir, "checkpoints"), os.path.join(out_dir, "checkpoints", RESUME_DIR)):
        for path in remove_stale_temporaries(folder):
            run.log.write(f"removed {path}, left by a run killed while writing it")
    if config.resume == "latest":
        run.resume, info = find_resume_point(out_dir, run.log)
        if run.resume is None:
            raise FileNotFoundError(f"No complete checkpoint to resume from in {os.path.join(out_dir, 'checkpoints')}")
        run.state = info.get("training") or {}
    elif config.resume is not None:
        run.resume = config.resume
        run.state = verify(config.resume).get("training") or {}  # FileNotFoundError, CorruptModelFile name the file
    if run.resume is not None:
        if config.initial_epoch is not None:
            run.state = dict(epoch=config.initial_epoch, batch=0)
        elif not run.state:  # a checkpoint of an earlier version: its epoch from the name
            run.state = dict(epoch=epoch_of(run.resume) or 0, batch=0)
        run.log.write(
            f"resuming from {run.resume} at epoch {run.state['epoch'] + 1}, batch {run.state.get('batch', 0) + 1}"
        )
    elif config.initial_epoch:  # e.g. going on from the weights of an earlier run: that epoch's schedule and data
        run.state = dict(epoch=config.initial_epoch, batch=0)
        run.log.write(f"training {config.model} from epoch {config.initial_epoch + 1} to {config.epochs} in {out_dir}")
    else:
        run.log.write(f"training {config.model} for {config.epochs} epochs in {out_dir}")
    agree_on_checkpoint(run.resume, run.state)
    return run


def _load_data(config, train_dataset, val_dataset):
    """The data sets (read from the config's `DataSource` where none is given) and the
    class names and their number; every box's class must be one of the model's.

    Returns:
        ``(train_dataset, val_dataset, class_names, n_classes)``.
    """
    from ssd_keras.data.loading import check_coco_classes

    class_names = list(config.class_names) if config.class_names is not None else None
    verbose = bool(config.verbose)
    if train_dataset is None:
        if config.train_data is None:
            raise ArgumentError("No training data: give `train_dataset`, or `train_data` in the TrainingConfig")
        train_dataset = config.train_data.load(class_names, verbose=verbose)
        if config.train_data.data_format == "coco":  # the file names the classes
            if class_names is not None:
                check_coco_classes(
                    class_names,
                    train_dataset,
                    config.train_data.annotations[0],
                    "class_names",
                    "Leave out class_names (the file names the classes), or give them in its order",
                )
            class_names = list(train_dataset.classes_to_names)
    if val_dataset is None and config.val_data is not None:
        val_dataset = config.val_data.load(class_names, verbose=verbose)
        if config.val_data.data_format == "coco":
            check_coco_classes(
                class_names,
                val_dataset,
                config.val_data.annotations[0],
                "The training classes",
                "Validate on data with the training classes, in their order",
            )
    n_classes = len(class_names) - 1 if class_names is not None else config.n_classes
    if n_classes is None:
        raise ArgumentError("Give the classes: `class_names` ('background' first) or `n_classes` in the TrainingConfig")
    if train_dataset.labels is None:
        raise ArgumentError("The training data set has no labels.")
    check_class_ids(train_dataset, n_classes)
    if val_dataset is not None:
        check_class_ids(val_dataset, n_classes, "validation")
    return train_dataset, val_dataset, class_names, n_classes


def _build_model(run):
    """Seeds, the dtype policy, the strategy, and the model: built and compiled, with the
    starting weights, or loaded from the checkpoint resumed."""
    import keras

    from ssd_keras.losses.ssd_loss import SSDLoss
    from ssd_keras.training.distribution import build_scope, check_batch_size, fix_multiworker, make_strategy
    from ssd_keras.training.optimization import make_optimizer, set_precision

    config = run.config
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    set_precision(config.mixed_precision)
    run.model_kwargs = dict(
        builder_kwargs(config.model, run.n_classes, config.image_size, config.scales), **config.model_overrides
    )
    if run.resume is not None:
        check_resume_fits(run.resume, run.model_kwargs["image_size"], run.class_names)
    run.distribution = make_strategy(config.strategy)
    check_batch_size(run.distribution, config.batch_size)
    with build_scope(run.distribution):
        model, _ = build(config.model, run.model_kwargs)
        if run.resume is not None:
            model = keras.models.load_model(run.resume)
        else:
            if config.weights is not None:
                from ssd_keras.inference.loading import load_weights_file

                load_weights_file(model, config.weights, for_training=True)
            model.compile(
                optimizer=make_optimizer(config.optimizer, config.learning_rate),
                loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss,
                jit_compile=config.jit_compile,
            )
        # Without a tf.distribute strategy, Keras builds the optimizer inside the first traced
        # step, and TensorFlow then traces that step again, as a step that creates no variables.
        # Built here, the step is traced once (the first epoch starts seconds sooner).
        if keras.backend.backend() == "tensorflow" and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    run.model = fix_multiworker(model)
    extended = getattr(run.distribution, "extended", None)  # tf.distribute only
    if extended is not None and not extended.should_checkpoint:
        # A worker other than the chief: its checkpoints, log and model go to a folder of its own.
        from ssd_keras.models.files import ensure_writable
        from ssd_keras.training.checkpointing import RunLog

        run.out_dir = os.path.join(run.out_dir, f"worker-{run.distribution.cluster_resolver.task_id}")
        ensure_writable(os.path.join(run.out_dir, "checkpoints"))
        run.log = RunLog(run.out_dir)


def _make_pipeline(run):
    """The label encoder of the model, and the training and validation batches
    (`DataGenerator.keras_dataset`, each batch seeded by its number)."""
    from ssd_keras.training.distribution import process_index

    config = run.config
    encoder = make_encoder(config.model, run.model, **config.encoder_overrides)
    height, width = run.model_kwargs["image_size"][:2]
    background = run.model_kwargs.get("subtract_mean") or 0
    augmentation = transformations(config.augment, height, width, background, config.seed)
    # Data parallel: batches of the global batch size only (the devices split each), and
    # across processes each builds its share of every batch.
    parallel = dict(full_batches=True, shard=process_index()) if config.strategy == "data-parallel" else {}
    run.train_data = run.train_set.keras_dataset(
        config.batch_size,
        shuffle=True,
        transformations=augmentation,
        label_encoder=encoder,
        workers=config.workers,
        use_multiprocessing=config.use_multiprocessing,
        seed=config.seed,
        steps_per_epoch=config.steps_per_epoch,
        **parallel,
    )
    if run.val_set is not None:
        run.val_data = run.val_set.keras_dataset(
            config.batch_size,
            shuffle=False,
            transformations=transformations("none", height, width),
            label_encoder=encoder,
            workers=config.workers,
            use_multiprocessing=config.use_multiprocessing,
            **parallel,
        )


def _make_callbacks(run, extra):
    """The recorder (resume points, faults) first, the progress bars, the CSV log, the
    learning-rate schedule (with the state of a resumed run) and the caller's callbacks."""
    import keras

    from ssd_keras.training.checkpointing import restore_callback_states, truncate_log
    from ssd_keras.training.optimization import schedule_callbacks
    from ssd_keras.training.recorder import TrainingRecorder

    config = run.config
    monitor = "val_loss" if run.val_data is not None else "loss"
    schedule = schedule_callbacks(
        config.lr_schedule, config.learning_rate, config.lr_boundaries, monitor, config.verbose
    )
    schedule += list(extra)
    restore_callback_states(schedule, run.state.get("callbacks"))
    info = (
        {"class_names": list(run.class_names)} if run.class_names is not None else None
    )  # stored in every model file written
    run.recorder = TrainingRecorder(
        run.out_dir,
        run.train_data.epoch_length,
        run.train_data,
        save_every=config.save_every,
        save_every_minutes=config.save_every_minutes,
        writer=run.writer,
        monitor=monitor,
        info=info,
        state=run.state,
        callbacks=schedule,
        log=run.log,
    )
    log_path = os.path.join(run.out_dir, "training_log.csv")
    if run.resume is not None and run.writer:
        truncate_log(log_path, run.state["epoch"])  # the epochs after the checkpoint run again
    if config.verbose and run.writer:
        from ssd_keras.training.progress import EpochProgress

        run.progress.append(EpochProgress(config.epochs, run.state.get("epoch", 0)))
    csv_log = [keras.callbacks.CSVLogger(log_path, separator=",", append=run.resume is not None)] if run.writer else []
    # The recorder first: it completes a resumed epoch's loss before the others log it.
    run.callbacks = [run.recorder, *run.progress, *csv_log, *schedule]


def _fit(run):
    """`fit` from the checkpoint's epoch and batch to the last epoch, stopping cleanly on a
    signal; a batch that cannot be built is a `TrainingError` naming the cause."""
    from ssd_keras.errors import WorkerError
    from ssd_keras.training.checkpointing import StopOnSignal
    from ssd_keras.training.distribution import fit_scope, process_index

    run.history = _empty_history()
    # Not across workers: each would stop after its own batch and leave the others waiting
    # in the next step's all-reduce; there a signal ends the processes as before.
    across = run.config.strategy == "multiworker" or process_index()[1] > 1
    signals = StopOnSignal(run.recorder) if not across else contextlib.nullcontext()
    try:
        with fit_scope(run.distribution), signals:
            if run.config.materialize:
                _fit_materialized(run)
            else:
                _fit_batches(run)
    except Exception as error:
        # A batch could not be built: a batch worker died, or the data raised (a missing or
        # damaged image...). Keras may hand the error on wrapped in a backend's error.
        cause = next(
            (
                data.batch_error
                for data in (run.train_data, run.val_data)
                if getattr(data, "batch_error", None) is not None
            ),
            None,
        )
        if cause is None:
            raise
        last = run.recorder.last_checkpoint or run.resume
        if isinstance(cause, WorkerError):
            what, then = str(cause), "go on with --resume latest."
        else:
            what = f"{type(cause).__name__}: {str(cause).rstrip('.')}."
            then = "mend the data, then go on with --resume latest." if last else "mend the data and start again."
        message = (
            f"{what} Training stopped at epoch {run.recorder.epoch + 1}; "
            f"the last checkpoint is {last or 'none yet'}; {then}"
        )
        run.log.write(message)
        raise TrainingError(message) from error
    finally:
        for bar in run.progress:  # before any message about why fit ended
            bar.close()
        run.train_data.close()
        if run.val_data is not None:
            run.val_data.close()


def _fit_batches(run):
    """`fit` on the `keras_dataset` batches: first the rest of the epoch a checkpoint was
    written in, then the epochs after it."""
    model, recorder, config = run.model, run.recorder, run.config
    first_epoch, first_batch = run.state.get("epoch", 0), run.state.get("batch", 0)
    if first_batch:  # the rest of the epoch the checkpoint was written in
        recorder.start_epoch(first_epoch)
        run.train_data.first_batch = first_batch
        _merge(
            run.history,
            model.fit(
                run.train_data,
                epochs=first_epoch + 1,
                validation_data=run.val_data,
                callbacks=run.callbacks,
                initial_epoch=first_epoch,
                shuffle=False,
                verbose=0,
            ),
        )
        run.train_data.first_batch = 0
        first_epoch += 1
    if first_epoch < config.epochs and not model.stop_training and recorder.failure is None:
        recorder.start_epoch(first_epoch)
        # shuffle=False: the data set has its own order per pass, seeded and resumable;
        # Keras would shuffle the batch order again with Python's `random`.
        _merge(
            run.history,
            model.fit(
                run.train_data,
                epochs=config.epochs,
                validation_data=run.val_data,
                callbacks=run.callbacks,
                initial_epoch=first_epoch,
                shuffle=False,
                verbose=0,
            ),
        )


def _fit_materialized(run):
    """`fit` one epoch at a time from arrays built anew (new augmentation) each epoch.

    A resumed epoch starts at the checkpoint's batch: its arrays are built whole (the
    same batches, as they are seeded by their number) and cut there.
    """
    import keras

    model, recorder, batch_size = run.model, run.recorder, run.config.batch_size
    validation = epoch_arrays(run.val_data) if run.val_data is not None else None
    for epoch in range(run.state.get("epoch", 0), run.config.epochs):
        first_batch = recorder.start_epoch(epoch)
        if run.progress:
            run.progress[0].building(epoch, len(run.train_data))
        sizes = []
        x, y = epoch_arrays(run.train_data, run.progress, sizes)
        recorder.batch_sizes = sizes  # fit's batches of the arrays may straddle the data set's
        x, y = x[first_batch * batch_size :], y[first_batch * batch_size :]
        _merge(
            run.history,
            model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=False,
                validation_data=validation,
                callbacks=run.callbacks,
                verbose=0,
            ),
        )
        for callback in run.callbacks:  # the next epoch's fit adds its row to this log instead of starting it anew
            if isinstance(callback, keras.callbacks.CSVLogger):
                callback.append = True
        if model.stop_training or recorder.failure is not None:
            break


def _finish(run):
    """After `fit`: a NaN loss or a signal at an epoch's end is an error; otherwise the
    model is saved as ``model.keras`` with the class names."""
    from ssd_keras.models.files import save_model

    recorder = run.recorder
    if recorder.failure is not None:
        last = recorder.last_checkpoint or run.resume
        raise TrainingError(
            f"{recorder.failure}. The last good checkpoint is {last or 'none (none was written yet)'}; "
            f"the batch's image files are listed in {run.log.path}."
        )
    if recorder.stop_signal is not None and recorder.epoch + 1 < run.config.epochs:  # stopped at the end of an epoch
        raise recorder.interrupted(recorder.epoch + 1, 0)
    if run.writer:
        from ssd_keras.training.distribution import saving_alone

        path = os.path.join(run.out_dir, "model.keras")
        with saving_alone():
            save_model(run.model, path, run.class_names)
        run.log.write(f"finished after epoch {run.config.epochs}; saved {path}")
    return run.model, run.history


def _empty_history():
    import keras

    history = keras.callbacks.History()
    history.history = {}
    return history


def _merge(history, new):
    for key, values in new.history.items():
        history.history.setdefault(key, []).extend(values)


def resolve_resume(config, log=None):
    """`config` with ``resume='auto'`` decided: the newest complete checkpoint in `out_dir`
    (damaged ones are named and skipped) if there is one, else a new run (None). A resumed run
    drops the new run's `weights` and `initial_epoch`; other values are left as they are."""
    if config.resume != "auto":
        return config
    from ssd_keras.training.checkpointing import find_resume_point

    path, _ = find_resume_point(config.out_dir, log)
    if path is None:
        return config.replace(resume=None)
    return config.replace(resume=path, weights=None, initial_epoch=None)


def latest_checkpoint(out_dir):
    """The checkpoint ``--resume latest`` goes on from: the newest complete one under
    `out_dir` (damaged ones skipped with a warning), or None."""
    from ssd_keras.training.checkpointing import find_resume_point

    return find_resume_point(out_dir)[0]


def epoch_of(path):
    """The epoch number in a checkpoint file name (``epoch-12_...`` -> 12), or None."""
    match = re.search(r"epoch-(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def check_resume_fits(path, image_size, class_names, flags=False):
    """Raises `ArgumentError` if checkpoint `path` was trained on other images or classes
    than the run resuming it is given (``(height, width)`` and the class names, background
    first; checkpoints of earlier versions store no names: their classes are not compared)."""
    from ssd_keras.models.files import input_size, read_info

    size = input_size(path)
    given = tuple(int(n) for n in image_size[:2])
    if size is not None and size != given:
        names = "--image-size (or --model's default)" if flags else "image_size (or the model's default)"
        raise ArgumentError(
            f"The checkpoint {path} takes {size[0]}x{size[1]} images, {names} says {given[0]}x{given[1]}: "
            "resume with the settings it was trained with"
        )
    stored = read_info(path).get("class_names")
    if stored and class_names is not None and list(stored) != list(class_names):
        names = "--classes" if flags else "class_names"
        raise ArgumentError(
            f"The checkpoint {path} was trained on {len(stored) - 1} classes ({', '.join(stored[1:])}), {names} "
            f"names {len(class_names) - 1} ({', '.join(class_names[1:])}): resume with the classes it was trained on"
        )
