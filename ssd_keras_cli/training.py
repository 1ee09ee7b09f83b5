"""Training an SSD as the original notebooks do, with Keras 3's `fit`.

`train` is what ``ssd-keras train`` and the demo call; it can be called from Python
with `DataGenerator` objects. It writes, under `out_dir`:

* ``checkpoints/epoch-NN_loss-L[_val_loss-V].keras``: the full model (optimizer state
  included) after each epoch, or after each improvement when there is validation data;
* ``training_log.csv``: the per-epoch losses and learning rate (appended on resume);
* ``model.keras``: the model at the end (training mode; `ssd-keras predict` and
  `evaluate` add the decoding layer).
"""

import glob
import math
import os
import re

import numpy as np

from ssd_keras_cli.configs import build, make_encoder, model_kwargs

AUGMENTATIONS = ("ssd", "constant", "flip", "none")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("steps", "plateau", "constant")
STRATEGIES = ("none", "mirrored", "multiworker")
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
    """A `tf.distribute` strategy, or None for 'none'."""
    _check("strategy", name, STRATEGIES)
    if name == "none":
        return None
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
    """The newest ``checkpoints/*.keras`` file under `out_dir`, or None."""
    paths = glob.glob(os.path.join(out_dir, "checkpoints", "*.keras"))
    return max(paths, key=os.path.getmtime) if paths else None


def epoch_of(path):
    """The epoch number in a checkpoint file name (``epoch-12_...`` -> 12), or None."""
    match = re.search(r"epoch-(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def train(model_name, train_dataset, n_classes, out_dir, val_dataset=None, image_size=None, scales="pascal", epochs=120,
          steps_per_epoch=None, batch_size=32, optimizer="sgd", learning_rate=1e-3, lr_schedule="steps", lr_boundaries=(80, 100),
          weights=None, resume=None, initial_epoch=None, augment="ssd", workers=1, use_multiprocessing=False, seed=None,
          strategy="none", mixed_precision="float32", jit_compile="auto", callbacks=(), model_overrides=None, encoder_overrides=None,
          materialize=False, verbose=1):
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
        resume: a checkpoint ``.keras`` file, or 'latest' for the newest in `out_dir`;
            training goes on from it with its optimizer state.
        initial_epoch: the epoch to start from (default: read from the checkpoint name).
        augment: see `transformations`.
        workers, use_multiprocessing: of the `keras_dataset` adapter.
        seed: seeds Keras, the augmentation and the shuffling.
        strategy: 'none', 'mirrored' or 'multiworker' (the cluster from ``TF_CONFIG``;
            every worker runs the same command, with the same `seed` so that they build
            the same batches, of which each keeps its share; workers other than the
            chief write under ``out_dir/worker-N``).
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
            (ReduceLROnPlateau, EarlyStopping) restart every epoch, so use the 'steps'
            or 'constant' schedule with it.
        verbose: Keras' `fit` verbosity (0, 1 or 2).

    Raises:
        ValueError: for bad arguments; FileNotFoundError: for a missing weights or
        checkpoint file.
    """
    import keras

    from keras_loss_function.keras_ssd_loss import SSDLoss

    _check("lr_schedule", lr_schedule, LR_SCHEDULES)
    if epochs < 1 or batch_size < 1 or (steps_per_epoch is not None and steps_per_epoch < 1):
        raise ValueError(f"Expected positive `epochs`, `batch_size` and `steps_per_epoch`. "
                         f"Received: epochs={epochs}, batch_size={batch_size}, steps_per_epoch={steps_per_epoch}")
    if train_dataset.labels is None:
        raise ValueError("The training data set has no labels.")
    for path in (weights,):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"Weights file not found: {path}")
    if resume == "latest":
        resume = latest_checkpoint(out_dir)
        if resume is None:
            raise FileNotFoundError(f"No checkpoint to resume from in {os.path.join(out_dir, 'checkpoints')}")
    if resume is not None and not os.path.isfile(resume):
        raise FileNotFoundError(f"Checkpoint not found: {resume}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    set_precision(mixed_precision)
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)

    kwargs = dict(model_kwargs(model_name, n_classes, image_size, scales), **(model_overrides or {}))
    distribution = make_strategy(strategy)
    scope = distribution.scope() if distribution is not None else _NullScope()
    with scope:
        model, predictor_sizes = build(model_name, kwargs)
        if resume is not None:
            model = keras.models.load_model(resume)
            if initial_epoch is None:
                initial_epoch = epoch_of(resume) or 0
        else:
            if weights is not None:
                model.load_weights(weights, by_name=True)
            model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss,
                          jit_compile=jit_compile)
    fix_multiworker(model)
    if distribution is not None and not distribution.extended.should_checkpoint:
        # A worker other than the chief: its checkpoints, log and model go to a folder of its own.
        out_dir = os.path.join(out_dir, f"worker-{distribution.cluster_resolver.task_id}")
        os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    encoder = make_encoder(model_name, kwargs, predictor_sizes, **(encoder_overrides or {}))
    height, width = kwargs["image_size"][:2]
    background = kwargs.get("subtract_mean") or 0
    train_data = train_dataset.keras_dataset(batch_size, shuffle=True, transformations=transformations(augment, height, width, background, seed),
                                             label_encoder=encoder, workers=workers, use_multiprocessing=use_multiprocessing, seed=seed,
                                             steps_per_epoch=steps_per_epoch)
    train_data.epoch = initial_epoch or 0  # a resumed run goes on where the data stream was
    val_data = None
    if val_dataset is not None:
        val_data = val_dataset.keras_dataset(batch_size, shuffle=False, transformations=transformations("none", height, width),
                                             label_encoder=encoder, workers=workers, use_multiprocessing=use_multiprocessing)
    monitor = "val_loss" if val_data is not None else "loss"
    name = "epoch-{epoch:02d}_loss-{loss:.4f}" + ("_val_loss-{val_loss:.4f}" if val_data is not None else "") + ".keras"
    all_callbacks = [
        keras.callbacks.ModelCheckpoint(os.path.join(out_dir, "checkpoints", name), monitor=monitor, save_best_only=val_data is not None,
                                        save_weights_only=False, verbose=int(verbose > 0)),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "training_log.csv"), separator=",", append=resume is not None),
        keras.callbacks.TerminateOnNaN(),
    ]
    if lr_schedule == "steps":
        all_callbacks.append(keras.callbacks.LearningRateScheduler(lr_steps(learning_rate, lr_boundaries), verbose=0))
    elif lr_schedule == "plateau":
        all_callbacks += [keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.2, patience=8, min_delta=0.001, min_lr=1e-5,
                                                            verbose=int(verbose > 0)),
                          keras.callbacks.EarlyStopping(monitor=monitor, min_delta=0.0, patience=10, verbose=int(verbose > 0))]
    all_callbacks += list(callbacks)
    if materialize:
        history = _fit_materialized(model, train_data, val_data, batch_size, epochs, initial_epoch or 0, all_callbacks, verbose)
    else:
        history = model.fit(train_data, epochs=epochs, validation_data=val_data, callbacks=all_callbacks,
                            initial_epoch=initial_epoch or 0, verbose=verbose)
    model.save(os.path.join(out_dir, "model.keras"))
    return model, history


def _arrays(dataset):
    """All batches of a `PyDataset` as two arrays (and the end of its epoch)."""
    batches = [tuple(np.array(a) for a in dataset[i]) for i in range(len(dataset))]  # copies free worker slots
    dataset.on_epoch_end()
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _fit_materialized(model, train_data, val_data, batch_size, epochs, initial_epoch, callbacks, verbose):
    """`fit` one epoch at a time from arrays built anew (new augmentation) each epoch."""
    import keras

    validation = _arrays(val_data) if val_data is not None else None
    merged = keras.callbacks.History()
    merged.history = {}
    for epoch in range(initial_epoch, epochs):
        x, y = _arrays(train_data)
        history = model.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, validation_data=validation,
                            callbacks=callbacks, verbose=verbose)
        for key, values in history.history.items():
            merged.history.setdefault(key, []).extend(values)
        if model.stop_training:
            break
    return merged


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def steps_for(dataset_size, batch_size):
    """Batches in one pass over `dataset_size` images."""
    return math.ceil(dataset_size / batch_size)
