"""Training on several devices: tf.distribute strategies (TensorFlow) and Keras'
`DataParallel` (JAX)."""

import contextlib

from ssd_keras.training.config import STRATEGIES, check_choice


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


def fit_scope(distribution):
    """The scope `fit` runs in: a `keras.distribution` (JAX) shards the batches only inside
    its scope; a tf.distribute strategy (or none) needs none there."""
    if distribution is not None and getattr(distribution, "extended", None) is None:
        return distribution.scope()
    return contextlib.nullcontext()


def build_scope(distribution):
    """The scope the model is built and compiled in: the distribution's, if there is one."""
    return distribution.scope() if distribution is not None else contextlib.nullcontext()
