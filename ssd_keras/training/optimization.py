"""The optimizer, learning-rate schedule and dtype policy of the original notebooks."""

from ssd_keras.training.config import LR_SCHEDULES, OPTIMIZERS, PRECISIONS, check_choice


def lr_steps(learning_rate, boundaries):
    """The SSD300 notebook's schedule: `learning_rate`, divided by 10 at each boundary epoch.

    Returns:
        ``schedule(epoch, lr=None)``, a function for `keras.callbacks.LearningRateScheduler`.

    Examples:
        >>> schedule = lr_steps(1e-3, [80, 100])
        >>> [round(schedule(epoch), 6) for epoch in (0, 79, 80, 100)]
        [0.001, 0.001, 0.0001, 1e-05]
    """
    boundaries = sorted(int(b) for b in boundaries)

    def schedule(epoch, lr=None):
        return float(learning_rate * 0.1 ** sum(epoch >= b for b in boundaries))

    return schedule


def make_optimizer(name, learning_rate):
    """SGD with momentum 0.9 (the SSD300 notebook) or Adam (the SSD7 notebook).

    Raises:
        ArgumentError: for another `name`.
    """
    import keras

    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=False)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def schedule_callbacks(lr_schedule, learning_rate, lr_boundaries, monitor, verbose=1):
    """The Keras callbacks of a learning-rate schedule: 'steps' (the SSD300 notebook:
    divided by 10 at each boundary epoch), 'plateau' (the SSD7 notebook: ReduceLROnPlateau
    and EarlyStopping on `monitor`) or 'constant' (none)."""
    import keras

    check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    if lr_schedule == "steps":
        return [keras.callbacks.LearningRateScheduler(lr_steps(learning_rate, lr_boundaries), verbose=0)]
    if lr_schedule == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.2, patience=8, min_delta=0.001, min_lr=1e-5, verbose=int(verbose > 0)
            ),
            keras.callbacks.EarlyStopping(monitor=monitor, min_delta=0.0, patience=10, verbose=int(verbose > 0)),
        ]
    return []


def set_precision(policy):
    """Sets Keras' global dtype policy ('float32', 'mixed_float16' or 'mixed_bfloat16')."""
    import keras

    check_choice("mixed_precision", policy, PRECISIONS)
    keras.mixed_precision.set_global_policy(policy)
