"""`TrainingConfig`: every setting of a training run, each default in one place.

``ssd-keras train`` builds a `TrainingConfig` from its flags (and takes its defaults from
here); Python code builds one and calls `ssd_keras.training.train`. `check` finds the
arguments that cannot work before anything is read or built, and imports no Keras, so
the command line answers them at once.

Examples:
    >>> from ssd_keras.training import TrainingConfig
    >>> config = TrainingConfig(model="ssd7", class_names=("background", "car", "truck"), epochs=10, batch_size=4)
    >>> config.n_classes_given, config.lr_boundaries
    (2, (80, 100))
"""

import dataclasses
import os

from ssd_keras.errors import ArgumentError
from ssd_keras.models.presets import MODELS

AUGMENTATIONS = ("ssd", "constant", "flip", "none")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("steps", "plateau", "constant")
STRATEGIES = ("none", "mirrored", "multiworker", "data-parallel")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", True, False)


@dataclasses.dataclass
class TrainingConfig:
    """The settings of one training run (`ssd_keras.training.train`).

    Attributes:
        model: 'ssd300', 'ssd512' or 'ssd7', with the configuration of the original's
            notebook (`ssd_keras.models.presets`).
        out_dir: the run's folder: checkpoints, ``training_log.csv``, ``train.log``,
            ``model.keras``.
        class_names: the class names, 'background' first, stored in every model file
            written (for ``ssd-keras predict`` and ``evaluate``). For COCO data, None means
            the annotation file's categories.
        n_classes: the number of positive classes, if `class_names` is None.
        image_size: ``(height, width, channels)``; None for the notebook's size.
        scales: 'pascal' or 'coco' anchor scales (SSD300/SSD512), or a list.
        epochs: the last epoch, counted from 1 (Keras' `epochs`, resumed ones included).
        steps_per_epoch: batches per epoch; None for one pass over the data.
        batch_size: the global batch, split between the replicas of a strategy.
        optimizer: 'sgd' (momentum 0.9, the SSD300 notebook) or 'adam' (the SSD7 notebook).
        learning_rate: the base learning rate.
        lr_schedule: 'steps' (divided by 10 at each `lr_boundaries` epoch), 'plateau'
            (ReduceLROnPlateau and EarlyStopping) or 'constant'.
        lr_boundaries: the epochs of the 'steps' schedule.
        weights: starting weights: a Keras-2 ``.h5`` loaded by layer name (e.g. the reduced
            VGG-16), or a Keras 3 ``.weights.h5`` of the same architecture.
        resume: a checkpoint ``.keras`` file, 'latest' for the newest complete one in
            `out_dir`, or 'auto': that one if there is one, else a new run (the same
            settings for the first start and every restart of a preemptible job);
            training goes on at the batch it was written after, with its optimizer state,
            schedule and data stream.
        initial_epoch: the epoch to start from, counted from 0: with `resume`, instead of
            the checkpoint's; without, a new run that starts there with that epoch's
            learning rate (e.g. from the `weights` of an earlier run). With 'auto', only
            for the new run.
        overwrite: a new run in an `out_dir` that holds an earlier run's files deletes them;
            without it, that is an `ArgumentError`.
        save_every: also write a resume point every this many steps (None: at epoch ends).
        save_every_minutes: also write a resume point when this many minutes have passed
            since the last checkpoint (a preempted job loses at most that much).
        augment: 'ssd' (the paper's chain), 'constant' (the SSD7 notebook's), 'flip' or 'none'.
        workers: threads (or processes) building batches.
        use_multiprocessing: build batches in worker processes (shared memory).
        materialize: build each epoch's batches first and train on them as arrays (one
            `fit` per epoch): faster on a few cores; not with the 'plateau' schedule or
            `steps_per_epoch`.
        seed: seeds the weights, the augmentation and the batch order.
        strategy: 'none'; 'mirrored' or 'multiworker' (TensorFlow's tf.distribute, the
            cluster from ``TF_CONFIG``); 'data-parallel' (JAX, all devices, of all
            processes when `coordinator` or a cluster environment says there are several).
        coordinator: JAX across processes: ``HOST:PORT`` of process 0's coordination
            service (default: ``JAX_COORDINATOR_ADDRESS``, or what JAX detects on SLURM,
            Open MPI or Kubernetes); with `num_processes` and `process_id`.
        num_processes, process_id: the number of processes and this one's (0 first).
        mixed_precision: 'float32', 'mixed_float16' or 'mixed_bfloat16'.
        jit_compile: Keras' `jit_compile` for the training step: 'auto', True or False.
        model_overrides: builder arguments that replace the notebook's.
        encoder_overrides: `SSDInputEncoder` matching arguments that replace the notebook's.
        train_data: where the training data is (`ssd_keras.data.DataSource`), when `train`
            is not given a `DataGenerator`.
        val_data: the same for optional validation data.
        verbose: 0 for silence, else progress bars.
    """

    model: str = "ssd300"
    out_dir: str = os.path.join("runs", "train")
    class_names: tuple | None = None
    n_classes: int | None = None
    image_size: tuple | None = None
    scales: str | tuple = "pascal"
    epochs: int = 120
    steps_per_epoch: int | None = None
    batch_size: int = 32
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    lr_schedule: str = "steps"
    lr_boundaries: tuple = (80, 100)
    weights: str | None = None
    resume: str | None = None
    initial_epoch: int | None = None
    overwrite: bool = False
    save_every: int | None = None
    save_every_minutes: float | None = None
    augment: str = "ssd"
    workers: int = 1
    use_multiprocessing: bool = False
    materialize: bool = False
    seed: int | None = None
    strategy: str = "none"
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    mixed_precision: str = "float32"
    jit_compile: str | bool = "auto"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    encoder_overrides: dict = dataclasses.field(default_factory=dict)
    train_data: object = None
    val_data: object = None
    verbose: int = 1

    @property
    def n_classes_given(self):
        """The number of positive classes the settings give (`class_names` first), or None."""
        return len(self.class_names) - 1 if self.class_names is not None else self.n_classes

    def replace(self, **changes):
        """A copy with `changes` (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def check(self, flags=False):
        """Raises `ArgumentError` for settings that cannot work; reads no data, imports no Keras.

        Args:
            flags: name the command line's flags in the messages (``--epochs``), not the
                attributes (``epochs``).
        """
        for name, allowed in (
            ("model", MODELS),
            ("augment", AUGMENTATIONS),
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", LR_SCHEDULES),
            ("strategy", STRATEGIES),
            ("mixed_precision", PRECISIONS),
            ("jit_compile", JIT_COMPILE),
        ):
            check_choice(name, getattr(self, name), allowed)
        for name in ("epochs", "batch_size", "steps_per_epoch", "save_every", "workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ArgumentError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
        if self.class_names is not None and self.n_classes is not None and self.n_classes != len(self.class_names) - 1:
            raise ArgumentError(
                f"`class_names` names {len(self.class_names) - 1} classes, `n_classes` is {self.n_classes}"
            )
        if self.save_every_minutes is not None and not self.save_every_minutes > 0:
            raise ArgumentError(
                f"Expected `save_every_minutes` to be a positive number. Received: {self.save_every_minutes!r}"
            )
        if self.resume == "auto" and self.overwrite:
            names = ("--resume auto", "--overwrite") if flags else ("resume='auto'", "overwrite=True")
            raise ArgumentError(f"{names[0]} goes on from the run in the folder; {names[1]} would delete it: give one")
        check_processes(self, flags)
        if self.resume not in (None, "auto") and (self.overwrite or self.weights):
            # Each would be silently ignored: a resumed run has its checkpoint's weights and folder.
            what = (
                ("--overwrite (a new run)" if flags else "overwrite=True (a new run)")
                if self.overwrite
                else ("--weights (a new run's starting weights)" if flags else "weights (a new run's starting weights)")
            )
            raise ArgumentError(
                f"{'--resume' if flags else 'resume'} goes on with the checkpoint's run, weights included; "
                f"leave out {what}"
            )
        check_materialize(self.materialize, self.lr_schedule, self.steps_per_epoch, flags)
        check_initial_epoch(self.initial_epoch, self.epochs, flags)


def check_processes(config, flags=False):
    """Raises `ArgumentError` for settings of several processes that cannot work."""
    name = (lambda attribute: "--" + attribute.replace("_", "-")) if flags else (lambda attribute: attribute)
    several = config.coordinator is not None or config.num_processes is not None or config.process_id is not None
    if not several:
        return
    if config.strategy != "data-parallel":
        raise ArgumentError(
            f"{name('coordinator')}, {name('num_processes')} and {name('process_id')} are for "
            f"{'--strategy' if flags else 'strategy'} data-parallel (JAX across processes)"
        )
    if config.materialize:
        raise ArgumentError(
            f"{'--materialize' if flags else 'materialize=True'} is for one process: across processes each builds "
            "its share of every batch as it comes"
        )
    if config.num_processes is not None and (not isinstance(config.num_processes, int) or config.num_processes < 1):
        raise ArgumentError(f"Expected `num_processes` to be a positive integer. Received: {config.num_processes!r}")
    if config.process_id is not None and config.num_processes is not None:
        if not 0 <= config.process_id < config.num_processes:
            raise ArgumentError(
                f"{name('process_id')} {config.process_id} is not one of the {config.num_processes} processes' ids, "
                f"0 to {config.num_processes - 1}"
            )


def check_choice(name, value, allowed):
    """Raises `ArgumentError` unless `value` is one of `allowed` (the Keras idiom's message)."""
    if value not in allowed:
        raise ArgumentError(f"Expected `{name}` to be one of {set(allowed)}. Received: {name}={value!r}")


def check_initial_epoch(initial_epoch, epochs, flags=False):
    """Raises `ArgumentError` if training from `initial_epoch` to `epochs` would train nothing."""
    if initial_epoch is not None and initial_epoch >= epochs:
        names = ("--initial-epoch", "--epochs") if flags else ("initial_epoch", "epochs")
        raise ArgumentError(
            f"{names[0]} {initial_epoch} is not below {names[1]} {epochs}: there would be nothing to train "
            f"(epochs count from 0 in {names[0]}; {names[1]} is the last one, counted from 1)"
        )


def check_materialize(materialize, lr_schedule, steps_per_epoch, flags=False):
    """Raises `ArgumentError` for what training from each epoch's arrays cannot do: the
    'plateau' schedule (its callbacks would restart every epoch, one `fit` call each) and
    `steps_per_epoch` (every epoch is the whole data set). `flags`: name the CLI's flags."""
    if not materialize:
        return
    name = "--materialize" if flags else "materialize=True"
    if lr_schedule == "plateau":
        schedule = "--lr-schedule plateau" if flags else "lr_schedule='plateau'"
        raise ArgumentError(
            f"{name} cannot use {schedule}: ReduceLROnPlateau and EarlyStopping would start again every epoch; "
            f"use the 'steps' or 'constant' schedule"
        )
    if steps_per_epoch is not None:
        steps = "--steps-per-epoch" if flags else "steps_per_epoch"
        raise ArgumentError(f"{name} trains on the whole data set every epoch; leave out {steps}")
