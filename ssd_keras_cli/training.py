"""Training an SSD as the original notebooks do, with Keras 3's `fit`.

`train` is what ``ssd-keras train`` and the demo call; it can be called from Python
with `DataGenerator` objects. It writes, under `out_dir`:

* ``checkpoints/epoch-NN_loss-L[_val_loss-V].keras``: the full model (optimizer state
  included) after each epoch, or after each improvement when there is validation data;
* ``checkpoints/resume/step-S.keras``: resume points every `save_every` steps (and at
  epoch ends without a new epoch checkpoint), the newest two kept;
* ``training_log.csv``: the per-epoch losses and learning rate (appended on resume);
* ``train.log``: starts, resumes, checkpoints written, faults;
* ``model.keras``: the model at the end (training mode, with the class names;
  `ssd-keras predict` and `evaluate` add the decoding layer).

Every file is written atomically, and a run killed at any point goes on with
``resume='latest'`` exactly where its newest complete checkpoint was written (see
`ssd_keras_cli.checkpointing`).
"""

import math
import os
import re

import numpy as np

from ssd_keras_cli.configs import build, make_encoder, model_kwargs

AUGMENTATIONS = ("ssd", "constant", "flip", "none")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("steps", "plateau", "constant")
STRATEGIES = ("none", "mirrored", "multiworker", "data-parallel")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"Expected `{name}` to be one of {set(allowed)}. Received: {name}={value!r}")


def transformations(augment, img_height, img_width, background=(0, 0, 0), seed=None):
    """The training transformations of each `augment` choice.

    'ssd': the paper's chain (`SSDDataAugmentation`: photometric distortions, expand,
    IoU-constrained crop, flip, resize); 'constant': resize, then the SSD7 notebook's
    `DataAugmentationConstantInputSize`; 'flip': resize and random horizontal flips;
    'none': resize only.
    """
    from data_generator.data_augmentation_chain_constant_input_size import DataAugmentationConstantInputSize
    from data_generator.data_augmentation_chain_original_ssd import SSDDataAugmentation
    from data_generator.object_detection_2d_geometric_ops import RandomFlip, Resize
    from data_generator.object_detection_2d_photometric_ops import ConvertTo3Channels

    _check("augment", augment, AUGMENTATIONS)
    background = tuple(int(round(b)) for b in np.broadcast_to(np.asarray(background, dtype=float), (3,)))
    if augment == "ssd":
        return [ConvertTo3Channels(), SSDDataAugmentation(img_height, img_width, background=background, rng=seed)]
    base = [ConvertTo3Channels(), Resize(img_height, img_width)]
    if augment == "constant":
        return base + [DataAugmentationConstantInputSize(background=background, rng=seed)]
    if augment == "flip":
        return base + [RandomFlip(dim="horizontal", prob=0.5, rng=seed)]
    return base


def lr_steps(learning_rate, boundaries):
    """The SSD300 notebook's schedule: `learning_rate`, divided by 10 at each boundary epoch."""
    boundaries = sorted(int(b) for b in boundaries)

    def schedule(epoch, lr=None):
        return float(learning_rate * 0.1 ** sum(epoch >= b for b in boundaries))

    return schedule


def make_optimizer(name, learning_rate):
    """SGD with momentum 0.9 (the SSD300 notebook) or Adam (the SSD7 notebook)."""
    import keras

    _check("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=False)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_strategy(name):
    """The distribution of `name`, or None for 'none'.

    'mirrored' and 'multiworker' are `tf.distribute` strategies (TensorFlow backend);
    'data-parallel' is `keras.distribution.DataParallel` over all devices (JAX backend).
    Each has a ``scope()`` to build and compile the model in.

    Raises:
        BackendError: for a strategy the Keras backend does not offer.
    """
    from misc_utils.backend_utils import require_backend

    _check("strategy", name, STRATEGIES)
    if name == "none":
        return None
    if name == "data-parallel":
        import keras

        require_backend("--strategy data-parallel (keras.distribution.DataParallel)", "jax")
        return keras.distribution.DataParallel()
    require_backend(f"--strategy {name} (a tf.distribute strategy)", "tensorflow")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()  # the cluster comes from TF_CONFIG


def fix_multiworker(model):
    """Works around two Keras 3 (3.15) bugs that stop `fit` under
    MultiWorkerMirroredStrategy with more than one worker; a no-op for other strategies.

    1. Before the first step `fit` reduces the first batch, a tuple of per-replica
       tensors, in one `strategy.reduce` call. MirroredStrategy maps that over the tuple;
       MultiWorkerMirroredStrategy rejects it ("Attempt to convert a value
       (PerReplica...)"), and could not all-reduce uint8 images anyway. The batch only
       gives the model its input shapes, so here the local replica's part stands in.
    2. After each step the per-replica logs (the loss and metrics, scalars) are averaged
       with ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars ("Invalid
       reduction dimension 0"). Scalars are averaged over the replicas instead
       (``axis=None``), which is what the other strategies do.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return model
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    strategy = getattr(model, "_distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model
    build = model._maybe_symbolic_build

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                    next(batches))
                break
        return build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build
    if not getattr(tf_trainer.reduce_per_replica, "_ssd_keras_fix", False):
        reduce_per_replica = tf_trainer.reduce_per_replica

        def fixed_reduce_per_replica(values, strategy, reduction):
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean"):
                def reduce(v):
                    # (With one device per worker `run` returns plain tensors, not PerReplica.)
                    local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                    if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                        return strategy.reduce("MEAN", v, axis=None)
                    return reduce_per_replica(v, strategy, reduction)
                return tree.map_structure(reduce, values)
            return reduce_per_replica(values, strategy, reduction)

        fixed_reduce_per_replica._ssd_keras_fix = True
        tf_trainer.reduce_per_replica = fixed_reduce_per_replica
    return model


def set_precision(policy):
    """Sets Keras' global dtype policy ('float32', 'mixed_float16' or 'mixed_bfloat16')."""
    import keras

    _check("mixed_precision", policy, PRECISIONS)
    keras.mixed_precision.set_global_policy(policy)


def latest_checkpoint(out_dir):
    """The checkpoint ``--resume latest`` goes on from: the newest complete one under
    `out_dir` (damaged ones skipped with a warning), or None."""
    from ssd_keras_cli.checkpointing import find_resume_point

    return find_resume_point(out_dir)[0]


def epoch_of(path):
    """The epoch number in a checkpoint file name (``epoch-12_...`` -> 12), or None."""
    match = re.search(r"epoch-(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def train(model_name, train_dataset, n_classes, out_dir, val_dataset=None, image_size=None, scales="pascal", epochs=120,
          steps_per_epoch=None, batch_size=32, optimizer="sgd", learning_rate=1e-3, lr_schedule="steps", lr_boundaries=(80, 100),
          weights=None, resume=None, initial_epoch=None, augment="ssd", workers=1, use_multiprocessing=False, seed=None,
          strategy="none", mixed_precision="float32", jit_compile="auto", callbacks=(), model_overrides=None, encoder_overrides=None,
          materialize=False, verbose=1, save_every=None, class_names=None, overwrite=False):
    """Trains model `model_name` on `train_dataset`; returns ``(model, history)``.

    Args:
        model_name: 'ssd300', 'ssd512' or 'ssd7' (configurations in `ssd_keras_cli.configs`).
        train_dataset, val_dataset: `DataGenerator` objects with labels.
        n_classes: positive classes.
        out_dir: where checkpoints, the CSV log and ``model.keras`` go.
        image_size, scales: as `configs.model_kwargs`.
        epochs: the last epoch (as Keras' `epochs`, counting resumed ones).
        steps_per_epoch: batches per epoch (default: one pass over the data).
        batch_size: the global batch (split over the replicas of a strategy).
        optimizer, learning_rate: 'sgd' or 'adam' and the base rate.
        lr_schedule: 'steps' (the SSD300 notebook: divided by 10 at `lr_boundaries`),
            'plateau' (the SSD7 notebook: ReduceLROnPlateau and EarlyStopping) or 'constant'.
        weights: a Keras-2 ``.h5`` weights file loaded by layer name (e.g. the VGG-16 base).
        resume: a checkpoint ``.keras`` file, or 'latest' for the newest complete one in
            `out_dir`; training goes on from it, at the batch it was written after, with
            its optimizer state, schedule and data stream.
        initial_epoch: the epoch to start from (its batch 0, counted from 0 as Keras'
            `initial_epoch`): instead of the checkpoint's with `resume`; without it, a
            new run that starts there, with that epoch's learning rate and data, e.g.
            to go on from the `weights` of an earlier run (the original's checkpoints).
            Must be below `epochs`.
        augment: see `transformations`.
        workers, use_multiprocessing: of the `keras_dataset` adapter.
        seed: seeds Keras, the augmentation and the shuffling.
        strategy: 'none'; 'mirrored' or 'multiworker' (TensorFlow's tf.distribute; the
            cluster from ``TF_CONFIG``; every worker runs the same command, with the same
            `seed` so that they build the same batches, of which each keeps its share;
            workers other than the chief write under ``out_dir/worker-N``); or
            'data-parallel' (JAX: `keras.distribution.DataParallel` over all devices).
        mixed_precision: 'float32', 'mixed_float16' or 'mixed_bfloat16'.
        jit_compile: Keras' `jit_compile` for the training step.
        callbacks: more Keras callbacks.
        model_overrides, encoder_overrides: dicts replacing builder / `SSDInputEncoder`
            arguments of the notebook configuration (the demo uses SSD300's variances).
        materialize: build each epoch's batches up front and train from the arrays
            (one `fit` call per epoch). For data sets whose encoded epoch fits in memory,
            on small CPUs, where building batches during the steps competes with the
            training threads for the cores (measured on 2 cores: 71-85 ms per SSD7 step
            from arrays against 80-102 ms from the adapter; `benchmarks/bench_fit.py`).
            Callbacks that keep state across epochs inside one `fit` call
            (ReduceLROnPlateau, EarlyStopping) would restart every epoch: with
            `lr_schedule='plateau'` or a `steps_per_epoch` it is a ValueError.
        verbose: 0 for silence; else a progress bar per epoch ("epoch 3/22") with the
            loss and the time elapsed and left (`ssd_keras_cli.progress`).
        save_every: also write a resume point every this many steps (default: at epoch
            ends only).
        class_names: stored in the checkpoints and ``model.keras`` ('background' first),
            for `ssd-keras predict` and `evaluate`.
        overwrite: a new run (without `resume`) in an `out_dir` that holds an earlier
            run's checkpoints, model or log deletes them first; without it, that is a
            ValueError (the new run would overwrite the model and the log, and mix its
            checkpoints with the earlier ones).

    Raises:
        ValueError: for bad arguments; FileNotFoundError: for a missing weights or
            checkpoint file; `model_files.CorruptModelFile`: for a damaged checkpoint
            given by name; `model_files.CheckpointError`: when the output folder or a
            checkpoint cannot be written (the previous checkpoint stays intact);
            `checkpointing.TrainingError`: when the loss becomes NaN or infinite, or a
            batch worker process dies (the message names the epoch and batch and the
            last good checkpoint); `checkpointing.TrainingInterrupted`: on SIGINT
            (Ctrl-C, a notebook's interrupt) or SIGTERM, after the batch in progress and
            a resume point there, which ``resume='latest'`` goes on from (a second signal
            is a KeyboardInterrupt at once; not with `strategy='multiworker'`).
    """
    import keras

    from data_generator.batch_workers import WorkerError
    from keras_loss_function.keras_ssd_loss import SSDLoss

    _check("lr_schedule", lr_schedule, LR_SCHEDULES)
    check_materialize(materialize, lr_schedule, steps_per_epoch)
    if epochs < 1 or batch_size < 1 or (steps_per_epoch is not None and steps_per_epoch < 1):
        raise ValueError(f"Expected positive `epochs`, `batch_size` and `steps_per_epoch`. "
                         f"Received: epochs={epochs}, batch_size={batch_size}, steps_per_epoch={steps_per_epoch}")
    check_initial_epoch(initial_epoch, epochs)
    if train_dataset.labels is None:
        raise ValueError("The training data set has no labels.")
    check_class_ids(train_dataset, n_classes)
    if val_dataset is not None:
        check_class_ids(val_dataset, n_classes, "validation")
    for path in (weights,):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"Weights file not found: {path}")
    from ssd_keras_cli import faults
    from ssd_keras_cli.checkpointing import (RESUME_DIR, RunLog, StopOnSignal, TrainingError, check_new_run, find_resume_point,
                                             restore_callback_states, truncate_log)
    from ssd_keras_cli.model_files import ensure_writable, remove_stale_temporaries, save_model, verify
    from ssd_keras_cli.recorder import TrainingRecorder

    if resume is None and not overwrite:
        check_new_run(out_dir)  # before anything is written
    ensure_writable(os.path.join(out_dir, "checkpoints"))  # before anything is read or trained
    log = RunLog(out_dir)
    if resume is None and overwrite:
        check_new_run(out_dir, overwrite=True, log=log)
    for folder in (os.path.join(out_dir, "checkpoints"), os.path.join(out_dir, "checkpoints", RESUME_DIR)):
        for path in remove_stale_temporaries(folder):
            log.write(f"removed {path}, left by a run killed while writing it")
    state = {}
    if resume == "latest":
        resume, info = find_resume_point(out_dir, log)
        if resume is None:
            raise FileNotFoundError(f"No complete checkpoint to resume from in {os.path.join(out_dir, 'checkpoints')}")
        state = info.get("training") or {}
    elif resume is not None:
        state = verify(resume).get("training") or {}  # FileNotFoundError, CorruptModelFile name the file
    if resume is not None:
        if initial_epoch is not None:
            state = dict(epoch=initial_epoch, batch=0)
        elif not state:  # a checkpoint of an earlier version: its epoch from the name
            state = dict(epoch=epoch_of(resume) or 0, batch=0)
        log.write(f"resuming from {resume} at epoch {state['epoch'] + 1}, batch {state.get('batch', 0) + 1}")
    elif initial_epoch:  # e.g. going on from the weights of an earlier run: the schedule and data stream of that epoch
        state = dict(epoch=initial_epoch, batch=0)
        log.write(f"training {model_name} from epoch {initial_epoch + 1} to {epochs} in {out_dir}")
    else:
        log.write(f"training {model_name} for {epochs} epochs in {out_dir}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    set_precision(mixed_precision)

    kwargs = dict(model_kwargs(model_name, n_classes, image_size, scales), **(model_overrides or {}))
    if resume is not None:
        check_resume_fits(resume, kwargs["image_size"], class_names)
    distribution = make_strategy(strategy)
    scope = distribution.scope() if distribution is not None else _NullScope()
    with scope:
        model, _ = build(model_name, kwargs)
        if resume is not None:
            model = keras.models.load_model(resume)
        else:
            if weights is not None:
                from ssd_keras_cli.inference import load_weights_file

                load_weights_file(model, weights, for_training=True)
            model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss,
                          jit_compile=jit_compile)
        # Without a tf.distribute strategy, Keras builds the optimizer inside the first traced
        # step, and TensorFlow then traces that step again, as a step that creates no variables.
        # Built here, the step is traced once (the first epoch starts seconds sooner).
        if keras.backend.backend() == "tensorflow" and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    fix_multiworker(model)
    extended = getattr(distribution, "extended", None)  # tf.distribute only
    if extended is not None and not extended.should_checkpoint:
        # A worker other than the chief: its checkpoints, log and model go to a folder of its own.
        out_dir = os.path.join(out_dir, f"worker-{distribution.cluster_resolver.task_id}")
        ensure_writable(os.path.join(out_dir, "checkpoints"))
        log = RunLog(out_dir)
    encoder = make_encoder(model_name, model, **(encoder_overrides or {}))
    height, width = kwargs["image_size"][:2]
    background = kwargs.get("subtract_mean") or 0
    train_data = train_dataset.keras_dataset(batch_size, shuffle=True, transformations=transformations(augment, height, width, background, seed),
                                             label_encoder=encoder, workers=workers, use_multiprocessing=use_multiprocessing, seed=seed,
                                             steps_per_epoch=steps_per_epoch)
    if faults.planned("nan-at-step"):
        faults.inject_nan(train_data, faults.planned("nan-at-step"))
    val_data = None
    if val_dataset is not None:
        val_data = val_dataset.keras_dataset(batch_size, shuffle=False, transformations=transformations("none", height, width),
                                             label_encoder=encoder, workers=workers, use_multiprocessing=use_multiprocessing)
    monitor = "val_loss" if val_data is not None else "loss"
    schedule = []
    if lr_schedule == "steps":
        schedule.append(keras.callbacks.LearningRateScheduler(lr_steps(learning_rate, lr_boundaries), verbose=0))
    elif lr_schedule == "plateau":
        schedule += [keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.2, patience=8, min_delta=0.001, min_lr=1e-5,
                                                       verbose=int(verbose > 0)),
                     keras.callbacks.EarlyStopping(monitor=monitor, min_delta=0.0, patience=10, verbose=int(verbose > 0))]
    schedule += list(callbacks)
    restore_callback_states(schedule, state.get("callbacks"))
    info = {"class_names": list(class_names)} if class_names is not None else None  # stored in every model file written
    recorder = TrainingRecorder(out_dir, train_data.epoch_length, train_data, save_every=save_every, monitor=monitor, info=info,
                                state=state, callbacks=schedule, log=log)
    log_path = os.path.join(out_dir, "training_log.csv")
    if resume is not None:
        truncate_log(log_path, state["epoch"])  # the epochs after the checkpoint run again
    progress = []
    if verbose:
        from ssd_keras_cli.progress import EpochProgress

        progress.append(EpochProgress(epochs, state.get("epoch", 0)))
    # The recorder first: it completes a resumed epoch's loss before the others log it.
    all_callbacks = [recorder, *progress, keras.callbacks.CSVLogger(log_path, separator=",", append=resume is not None), *schedule]
    first_epoch, first_batch = state.get("epoch", 0), state.get("batch", 0)
    # A keras.distribution (JAX) shards the batches only inside its scope; tf.distribute needs none here.
    fit_scope = distribution.scope() if distribution is not None and extended is None else _NullScope()
    history = keras.callbacks.History()
    history.history = {}
    # Not across workers: each would stop after its own batch and leave the others waiting
    # in the next step's all-reduce; there a signal ends the processes as before.
    signals = StopOnSignal(recorder) if strategy != "multiworker" else _NullScope()
    try:
        with fit_scope, signals:
            if materialize:
                _fit_materialized(model, train_data, val_data, batch_size, epochs, first_epoch, recorder, all_callbacks, progress, history)
            else:
                if first_batch:  # the rest of the epoch the checkpoint was written in
                    recorder.start_epoch(first_epoch)
                    train_data.first_batch = first_batch
                    _merge(history, model.fit(train_data, epochs=first_epoch + 1, validation_data=val_data, callbacks=all_callbacks,
                                              initial_epoch=first_epoch, shuffle=False, verbose=0))
                    train_data.first_batch = 0
                    first_epoch += 1
                if first_epoch < epochs and not model.stop_training and recorder.failure is None:
                    recorder.start_epoch(first_epoch)
                    # shuffle=False: the data set has its own order per pass, seeded and resumable;
                    # Keras would shuffle the batch order again with Python's `random`.
                    _merge(history, model.fit(train_data, epochs=epochs, validation_data=val_data, callbacks=all_callbacks,
                                              initial_epoch=first_epoch, shuffle=False, verbose=0))
    except Exception as error:
        # A batch could not be built: a batch worker died, or the data raised (a missing or
        # damaged image...). Keras may hand the error on wrapped in a backend's error.
        cause = next((data.batch_error for data in (train_data, val_data) if getattr(data, "batch_error", None) is not None), None)
        if cause is None:
            raise
        last = recorder.last_checkpoint or resume
        if isinstance(cause, WorkerError):
            what, then = str(cause), "go on with --resume latest."
        else:
            what = f"{type(cause).__name__}: {str(cause).rstrip('.')}."
            then = "mend the data, then go on with --resume latest." if last else "mend the data and start again."
        message = f"{what} Training stopped at epoch {recorder.epoch + 1}; the last checkpoint is {last or 'none yet'}; {then}"
        log.write(message)
        raise TrainingError(message) from error
    finally:
        for bar in progress:  # before any message about why fit ended
            bar.close()
        train_data.close()
        if val_data is not None:
            val_data.close()
    if recorder.failure is not None:
        last = recorder.last_checkpoint or resume
        raise TrainingError(f"{recorder.failure}. The last good checkpoint is {last or 'none (none was written yet)'}; "
                            f"the batch's image files are listed in {log.path}.")
    if recorder.stop_signal is not None and recorder.epoch + 1 < epochs:  # stopped at the end of an epoch
        raise recorder.interrupted(recorder.epoch + 1, 0)
    save_model(model, os.path.join(out_dir, "model.keras"), info)
    log.write(f"finished after epoch {epochs}; saved {os.path.join(out_dir, 'model.keras')}")
    return model, history


def _merge(history, new):
    for key, values in new.history.items():
        history.history.setdefault(key, []).extend(values)


def _arrays(dataset, progress=None, sizes=None):
    """All batches of a `PyDataset`'s epoch as two arrays; `sizes`, a list, gets each
    batch's number of images (fewer than the batch size where images were dropped)."""
    batches = []
    for i in range(len(dataset)):
        batches.append(tuple(np.array(a) for a in dataset[i]))  # copies free worker slots
        if progress:
            progress[0].built()
    if sizes is not None:
        sizes.extend(len(b[0]) for b in batches)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def check_resume_fits(path, image_size, class_names, flags=False):
    """Raises a ValueError if checkpoint `path` was trained on other images or classes than
    the run resuming it is given (``(height, width)`` and the class names, background first;
    checkpoints of earlier versions store no names: their classes are not compared)."""
    from ssd_keras_cli.model_files import input_size, read_info

    size = input_size(path)
    given = tuple(int(n) for n in image_size[:2])
    if size is not None and size != given:
        names = "--image-size (or --model's default)" if flags else "image_size (or model_name's default)"
        raise ValueError(f"The checkpoint {path} takes {size[0]}x{size[1]} images, {names} says {given[0]}x{given[1]}: "
                         "resume with the settings it was trained with")
    stored = read_info(path).get("class_names")
    if stored and class_names is not None and list(stored) != list(class_names):
        names = "--classes" if flags else "class_names"
        raise ValueError(f"The checkpoint {path} was trained on {len(stored) - 1} classes ({', '.join(stored[1:])}), {names} "
                         f"names {len(class_names) - 1} ({', '.join(class_names[1:])}): resume with the classes it was trained on")


def check_class_ids(dataset, n_classes, which="training"):
    """Raises ValueError naming the first image of `dataset` with a box whose class id is not
    one of the model's, 1 to `n_classes` (found before training, not by the label encoder
    in some batch: "Batch item 0, box 0 has class_id 3")."""
    if dataset.labels is None or not len(dataset.labels):
        return
    column, width = list(dataset.labels_output_format).index("class_id"), len(dataset.labels_output_format)
    ids = [np.asarray(labels, dtype=np.float64).reshape(-1, width)[:, column] for labels in dataset.labels]
    ends = np.cumsum([len(image_ids) for image_ids in ids])
    ids = np.concatenate(ids)
    bad = np.flatnonzero((ids < 1) | (ids > n_classes) | (ids != np.round(ids)))
    if not len(bad):
        return
    image = int(np.searchsorted(ends, bad[0], side="right"))
    box = int(bad[0] - (ends[image - 1] if image else 0))
    name = dataset.filenames[image] if dataset.filenames is not None else f"item {image}"
    raise ValueError(f"The {which} data: {name}, box {box}, has class id {ids[bad[0]]:g}, but the model has {n_classes} classes "
                     f"(ids 1 to {n_classes}); {len(bad)} box(es) in all. Give the class names of the data (--classes), "
                     f"or leave those boxes out")


def check_initial_epoch(initial_epoch, epochs, flags=False):
    """Raises a ValueError if training from `initial_epoch` to `epochs` would train nothing."""
    if initial_epoch is not None and initial_epoch >= epochs:
        names = ("--initial-epoch", "--epochs") if flags else ("initial_epoch", "epochs")
        raise ValueError(f"{names[0]} {initial_epoch} is not below {names[1]} {epochs}: there would be nothing to train "
                         f"(epochs count from 0 in {names[0]}; {names[1]} is the last one, counted from 1)")


def check_materialize(materialize, lr_schedule, steps_per_epoch, flags=False):
    """Raises a ValueError for what training from each epoch's arrays cannot do: the
    'plateau' schedule (its callbacks would restart every epoch, one `fit` call each) and
    `steps_per_epoch` (every epoch is the whole data set). `flags`: name the CLI's flags."""
    if not materialize:
        return
    name = "--materialize" if flags else "materialize=True"
    if lr_schedule == "plateau":
        schedule = "--lr-schedule plateau" if flags else "lr_schedule='plateau'"
        raise ValueError(f"{name} cannot use {schedule}: ReduceLROnPlateau and EarlyStopping would start again every epoch; "
                         f"use the 'steps' or 'constant' schedule")
    if steps_per_epoch is not None:
        steps = "--steps-per-epoch" if flags else "steps_per_epoch"
        raise ValueError(f"{name} trains on the whole data set every epoch; leave out {steps}")


def _fit_materialized(model, train_data, val_data, batch_size, epochs, first_epoch, recorder, callbacks, progress, history):
    """`fit` one epoch at a time from arrays built anew (new augmentation) each epoch.

    A resumed epoch starts at the checkpoint's batch: its arrays are built whole (the
    same batches, as they are seeded by their number) and cut there.
    """
    import keras

    validation = _arrays(val_data) if val_data is not None else None
    for epoch in range(first_epoch, epochs):
        first_batch = recorder.start_epoch(epoch)
        if progress:
            progress[0].building(epoch, len(train_data))
        sizes = []
        x, y = _arrays(train_data, progress, sizes)
        recorder.batch_sizes = sizes  # fit's batches of the arrays may straddle the data set's
        x, y = x[first_batch * batch_size:], y[first_batch * batch_size:]
        _merge(history, model.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                                  validation_data=validation, callbacks=callbacks, verbose=0))
        for callback in callbacks:  # the next epoch's fit adds its row to this log instead of starting it anew
            if isinstance(callback, keras.callbacks.CSVLogger):
                callback.append = True
        if model.stop_training or recorder.failure is not None:
            break


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def steps_for(dataset_size, batch_size):
    """Batches in one pass over `dataset_size` images."""
    return math.ceil(dataset_size / batch_size)
