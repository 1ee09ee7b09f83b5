"""Which Keras backend runs, and the features that need a particular one.

Layers, loss and models are written in `keras.ops` and run on TensorFlow, JAX and
PyTorch alike. A few features are TensorFlow's own: the `tf.distribute` strategies
(MirroredStrategy, MultiWorkerMirroredStrategy), SavedModel and TFLite export. Others are
JAX's: `keras.distribution.DataParallel` with `SSDLoss` over all devices. They call
`require_backend` first, so that using one under another backend fails at once with an
error naming the feature and the backend, instead of deep inside TensorFlow or JAX.

This module imports neither Keras nor a backend: the backend is read from Keras only
when a feature asks, so that `KERAS_BACKEND` can still be set before that.
"""

import os

BACKENDS = ("tensorflow", "jax", "torch")


class BackendError(RuntimeError):
    """A feature was used under a Keras backend that does not offer it."""


def current_backend():
    """The Keras backend in use ('tensorflow', 'jax', 'torch' or 'numpy')."""
    import keras

    return keras.backend.backend()


def require_backend(feature, *backends):
    """Raises `BackendError` unless the Keras backend is one of `backends`.

    Args:
        feature: what the caller is about to do, for the message (e.g. "SavedModel export").
        backends: the backends that offer it.

    Raises:
        BackendError: naming `feature`, the backend in use and how to choose another.
    """
    backend = current_backend()
    if backend not in backends:
        needed = " or ".join(repr(b) for b in backends)
        raise BackendError(
            f"{feature} needs the {needed} Keras backend, but Keras runs on {backend!r}. Set the environment variable "
            f"KERAS_BACKEND={backends[0]} before Keras is imported (ssd-keras: --backend {backends[0]})."
        )


def select_backend(name):
    """Sets `KERAS_BACKEND` to `name` before Keras is imported (the ``--backend`` flag).

    Raises:
        ValueError: for an unknown name, or if Keras already runs on another backend
            in this process (a backend cannot change once Keras is imported).
    """
    import sys

    if name not in BACKENDS:
        raise ValueError(f"Expected `backend` to be one of {set(BACKENDS)}. Received: backend={name!r}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(f"Keras is already imported with the {keras.backend.backend()!r} backend; "
                         f"start a new process with KERAS_BACKEND={name}.")
    os.environ["KERAS_BACKEND"] = name
