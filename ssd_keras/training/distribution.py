"""Training on several devices: tf.distribute strategies (TensorFlow) and Keras'
`DataParallel` (JAX), on one machine or across processes (`connect_processes`)."""

import contextlib
import os

from ssd_keras.training.config import STRATEGIES, check_choice

# How long JAX's coordination service waits for a process's heartbeat before it declares
# the process dead and stops the others (JAX's default: 100 s).
HEARTBEAT_TIMEOUT_S = int(os.environ.get("SSD_KERAS_HEARTBEAT_TIMEOUT", "20"))
# JAX's environment variables and the cluster managers JAX detects by theirs.
_CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE")


def several_processes(config):
    """Whether `config` asks for JAX across processes: the coordinator, process count or id
    given, or ``JAX_COORDINATOR_ADDRESS`` set (cluster launchers set the rest)."""
    if config.strategy != "data-parallel":
        return False
    given = (config.coordinator, config.num_processes, config.process_id)
    return any(value is not None for value in given) or "JAX_COORDINATOR_ADDRESS" in os.environ


def connect_processes(config):
    """Joins this process to the others (``jax.distributed.initialize``) before JAX does
    anything else, and returns `config` with a seed all processes share (each process must
    draw the same initial weights and batch order). On CPUs the processes exchange
    gradients through gloo. A process that stops sending heartbeats for
    `HEARTBEAT_TIMEOUT_S` seconds (killed, its machine gone) makes the others stop with an
    error instead of waiting for it. A no-op unless `several_processes(config)`.

    Raises:
        BackendError: under another backend than JAX.
    """
    if not several_processes(config):
        return config
    from ssd_keras.utils.backend import require_backend

    require_backend("--strategy data-parallel across processes (jax.distributed)", "jax")
    import jax
    import numpy as np

    if not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=config.coordinator,
            num_processes=config.num_processes,
            process_id=config.process_id,
            initialization_timeout=int(os.environ.get("SSD_KERAS_INITIALIZATION_TIMEOUT", "300")),
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        )
    from jax.experimental import multihost_utils

    seed = config.seed if config.seed is not None else int(np.random.default_rng().integers(2**31))
    shared = int(multihost_utils.broadcast_one_to_all(np.int64(seed)))
    return config.replace(seed=shared)


def process_index():
    """``(index, count)`` of this process among the JAX processes of the run (``(0, 1)``
    for one process, or another backend)."""
    import keras

    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


def agree_on_checkpoint(path, state):
    """Across JAX processes: raises `TrainingError` unless every process goes on from the same
    checkpoint (by its step; 0 for a new run), which needs the run's folder on a file
    system they share. A no-op for one process."""
    index, count = process_index()
    if count == 1:
        return
    import numpy as np
    from jax.experimental import multihost_utils

    step = int(state.get("global_step", 0)) if path is not None else 0
    steps = np.asarray(multihost_utils.process_allgather(np.int64(step))).ravel().tolist()
    if len(set(steps)) > 1:
        from ssd_keras.errors import TrainingError

        raise TrainingError(
            f"The processes would start from different checkpoints (after steps {steps}, by process); this one "
            f"(process {index}) from {path or 'none'}. Give every process the same --out on a file system they share"
        )


def check_batch_size(distribution, batch_size):
    """Raises `ArgumentError` unless the devices of a `DataParallel` divide the global batch."""
    mesh = getattr(distribution, "device_mesh", None)
    devices = mesh.devices.size if mesh is not None else 1
    if batch_size % devices == 0:
        return
    from ssd_keras.errors import ArgumentError

    raise ArgumentError(
        f"The global batch size {batch_size} (--batch-size) does not split evenly between the {devices} devices of "
        f"the data-parallel strategy: give a multiple of {devices}"
    )


def make_strategy(name):
    """The distribution of `name`, or None for 'none'.

    'mirrored' and 'multiworker' are `tf.distribute` strategies (TensorFlow backend);
    'data-parallel' is `keras.distribution.DataParallel` over all devices (JAX backend).
    Each has a ``scope()`` to build and compile the model in.

    Raises:
        BackendError: for a strategy the Keras backend does not offer.
    """
    from ssd_keras.utils.backend import require_backend

    check_choice("strategy", name, STRATEGIES)
    if name == "none":
        return None
    if name == "data-parallel":
        import keras

        require_backend("--strategy data-parallel (keras.distribution.DataParallel)", "jax")
        import jax

        distribution = keras.distribution.DataParallel(devices=jax.devices())  # those of every process
        # Each process's `keras_dataset` builds its own share of every batch (its `shard`).
        distribution.auto_shard_dataset = False
        return distribution
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
                    lambda v: (
                        strategy.experimental_local_results(v)[0]
                        if isinstance(v, tf.distribute.DistributedValues)
                        else v
                    ),
                    next(batches),
                )
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


@contextlib.contextmanager
def saving_alone():
    """While a process writes a model on its own (process 0 of several): no `keras.distribution`
    in force. Keras' saving makes throwaway variables (an optimizer's, to know which of its
    attributes to skip); made under the distribution, each would wait for the other
    processes to make it too."""
    import keras

    current = keras.distribution.distribution()
    if current is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def fit_scope(distribution):
    """The scope `fit` runs in: a `keras.distribution` (JAX) shards the batches only inside
    its scope; a tf.distribute strategy (or none) needs none there."""
    if distribution is not None and getattr(distribution, "extended", None) is None:
        return distribution.scope()
    return contextlib.nullcontext()


def build_scope(distribution):
    """The scope the model is built and compiled in: the distribution's, if there is one."""
    return distribution.scope() if distribution is not None else contextlib.nullcontext()
