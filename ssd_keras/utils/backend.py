"""Which Keras backend runs, and the features that need a particular one.

Layers, loss and models are written in `keras.ops` and run on TensorFlow, JAX and
PyTorch alike. A few features are TensorFlow's own: the `tf.distribute` strategies
(MirroredStrategy, MultiWorkerMirroredStrategy), SavedModel and TFLite export. Others are
JAX's: `keras.distribution.DataParallel` with `SSDLoss` over all devices. They call
`require_backend` first, so that using one under another backend fails at once with an
error naming the feature and the backend, instead of deep inside TensorFlow or JAX.

`hide_tensorflow_start_up_lines` makes TensorFlow's import honour TF_CPP_MIN_LOG_LEVEL for the
lines its C++ side writes before its logging starts.

This module imports neither Keras nor a backend: the backend is read from Keras only
when a feature asks, so that `KERAS_BACKEND` can still be set before that.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import threading

from ssd_keras.errors import BackendError

BACKENDS = ("tensorflow", "jax", "torch")


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
    if name not in BACKENDS:
        raise ValueError(f"Expected `backend` to be one of {set(BACKENDS)}. Received: backend={name!r}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(
            f"Keras is already imported with the {keras.backend.backend()!r} backend; "
            f"start a new process with KERAS_BACKEND={name}."
        )
    os.environ["KERAS_BACKEND"] = name


def use_jax_compilation_cache(environ=os.environ):
    """Keeps JAX's compiled programs on disk across runs, unless the user chose otherwise.

    Under JAX, building a model compiles every weight initializer once per shape (SSD300:
    about 11 s on 2 CPU cores, against 1 s under TensorFlow or PyTorch), and each run
    compiles its training step and predictions again. With JAX's persistent compilation
    cache the next runs load them instead (SSD300 built in 1.5 s). `ssd-keras` calls this
    before Keras is imported: the cache lives in ``$XDG_CACHE_HOME/ssd_keras/jax`` (else
    ``~/.cache/ssd_keras/jax``), keeps every program however fast it compiled, and stays
    under 2 GiB (JAX drops the least recently used). A `JAX_COMPILATION_CACHE_DIR` already
    set, even to an empty string (no cache), is left as it is. Other backends ignore it.
    Without the `filelock` package (JAX bounds a cache's size only with it; PyTorch
    installs it) or a folder that can be written, there is no cache: JAX would warn at
    the first compilation instead. Nothing is written here: JAX makes the folder when it
    first compiles (never under the other backends).
    """
    if "JAX_COMPILATION_CACHE_DIR" in environ:
        return
    try:
        import filelock  # noqa: F401
    except ImportError:
        return
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = existing = os.path.join(base, "ssd_keras", "jax")
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # JAX makes the folders when it first compiles
    if not (os.path.isdir(existing) and os.access(existing, os.W_OK)):
        return
    environ["JAX_COMPILATION_CACHE_DIR"] = folder
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))


# ---------------------------------------------------------------- TensorFlow's start-up lines
#
# While it is imported, TensorFlow 2.21 writes lines from C++ before its logging has read
# TF_CPP_MIN_LOG_LEVEL, so they appear whatever that says, twice (one pair per native library):
#   WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
#   I0000 00:00:1796235954.363712    2127 port.cc:153] oneDNN custom operations are on. ...
# `hide_tensorflow_start_up_lines` makes that import honour the variable: what file
# descriptor 2 receives meanwhile goes through a filter that drops the log lines below the
# level and, at level 1 or more, the absl notice.

_LOG_LINE = re.compile(rb"([IWEF])\d{4} [\d:.]+ +\d+ [^\]\s]+:\d+\] ")
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITIES = b"IWEF"  # TF_CPP_MIN_LOG_LEVEL n hides the first n


def tensorflow_log_level(environ=os.environ):
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0, all lines, if unset or not a number)."""
    try:
        return int(environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_log_lines(text, level):
    """The bytes `text` without the native log lines that TF_CPP_MIN_LOG_LEVEL `level` hides
    (absl's ``I0000 time thread file.cc:line] message`` lines: I is hidden from 1,
    W from 2, E from 3, F never) and, from level 1, without absl's notice that such lines go
    to stderr. Every other line is kept as it is."""
    kept = []
    for line in text.splitlines(keepends=True):
        if level >= 1 and line.rstrip(b"\r\n") == _ABSL_NOTICE:
            continue
        match = _LOG_LINE.match(line)
        if match and _SEVERITIES.index(match.group(1)) < level:
            continue
        kept.append(line)
    return b"".join(kept)


@contextlib.contextmanager
def filtered_stderr(level):
    """Runs the block with file descriptor 2 going through `filter_log_lines` (by a pipe and a
    thread that passes each line on as it comes, so that what comes before a hang or a crash
    is seen). Restored afterwards, also when the block raises. Where descriptor 2 cannot be
    redirected, nothing is filtered."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        saved = None
    if saved is None:
        yield
        return
    read_end, write_end = os.pipe()

    def write(data):
        data = memoryview(data)
        while data:
            data = data[os.write(saved, data) :]

    def pass_on():
        pending = b""
        while True:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            pending += chunk
            end = pending.rfind(b"\n") + 1  # whole lines go on, a started one waits for its end
            if end:
                write(filter_log_lines(pending[:end], level))
                pending = pending[end:]
        write(filter_log_lines(pending, level))
        os.close(read_end)
        os.close(saved)

    thread = threading.Thread(target=pass_on, name="filtered_stderr", daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's write end: the thread reads to its end
        # A process started in the block holds a write end until it ends: the thread then
        # passes its lines on meanwhile, and ends after it.
        thread.join(timeout=2)


class _WrappedLoader(importlib.abc.Loader):
    """Loads a module with another loader, through `run(exec_module, module)`, after taking
    the finders of type `finder_type` (which found it) off `sys.meta_path`: their work is done."""

    def __init__(self, loader, finder_type, run):
        self.loader, self.finder_type, self.run = loader, finder_type, run

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # the real one, for whoever asks later
        for finder in [f for f in sys.meta_path if isinstance(f, self.finder_type)]:
            sys.meta_path.remove(finder)
        self.run(self.loader.exec_module, module)


class _WrappingFinder(importlib.abc.MetaPathFinder):
    """Finds the module `NAME` as the other finders do and wraps its loader, so that it is
    loaded through `run`; then leaves `sys.meta_path`."""

    NAME = None

    def __init__(self):
        self.finding = False

    def run(self, execute, module):
        execute(module)

    def find_spec(self, name, path=None, target=None):
        if name != self.NAME or self.finding:
            return None
        self.finding = True  # the other finders answer the question below
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _WrappedLoader(spec.loader, type(self), self.run)
        return spec


class _TensorFlowImport(_WrappingFinder):
    """Has `tensorflow` loaded inside `filtered_stderr`. It stays until TensorFlow is
    imported: Keras asks `importlib.util.find_spec("tensorflow")` whether it is installed
    long before (or without) importing it."""

    NAME = "tensorflow"

    def __init__(self, level):
        super().__init__()
        self.level = level

    def run(self, execute, module):
        with filtered_stderr(self.level):
            execute(module)


def hide_tensorflow_start_up_lines(environ=os.environ):
    """Makes the next ``import tensorflow`` (whoever imports it: Keras, tf.data) honour
    TF_CPP_MIN_LOG_LEVEL for the lines TensorFlow writes before its logging starts. Does
    nothing at level 0 or once TensorFlow is imported. `ssd-keras` calls it; so may a
    script. Python's own output during that import is kept, in order."""
    level = tensorflow_log_level(environ)
    if level < 1 or "tensorflow" in sys.modules or any(isinstance(f, _TensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TensorFlowImport(level))


# ---------------------------------------------------------------- TensorFlow left alone under JAX and PyTorch
#
# Keras asks whether TensorFlow is installed by importing it (`keras.src.utils.module_utils`'
# lazy `tensorflow` module, property `available`): `keras.utils.set_random_seed` does, to
# seed it as well, and `model.save` does, to ask whether a value is a tf.TensorShape. Under
# JAX or PyTorch on a machine that also has TensorFlow, that import costs a run 6-8 s
# (2 CPU cores) and a few hundred MB, for nothing `ssd-keras` uses there.


def _answer_only_once_imported(module_utils):
    """Gives `module_utils.tensorflow` (Keras' lazy module) a class whose `available` is
    False while TensorFlow is not imported and the backend is not TensorFlow; otherwise
    Keras' own answer. Nothing changes if Keras no longer has that object."""
    lazy = getattr(module_utils, "tensorflow", None)
    base = type(lazy)
    if (
        lazy is None
        or getattr(base, "only_once_imported", False)
        or not isinstance(getattr(base, "available", None), property)
    ):
        return

    class TensorFlowOnceImported(base):
        only_once_imported = True

        @property
        def available(self):
            if "tensorflow" not in sys.modules and current_backend() != "tensorflow":
                return False  # no TensorFlow object can exist yet: no set_random_seed of it either
            return base.available.fget(self)

    lazy.__class__ = TensorFlowOnceImported


class _KerasModuleUtilsImport(_WrappingFinder):
    """Has Keras' `module_utils` patched by `_answer_only_once_imported` once it is loaded."""

    NAME = "keras.src.utils.module_utils"

    def run(self, execute, module):
        execute(module)
        _answer_only_once_imported(module)


def leave_tensorflow_unimported():
    """Under the JAX and PyTorch backends, keeps Keras from importing TensorFlow only to find
    out whether it is installed: Keras then takes it as absent until something imports it.
    `ssd-keras` calls this before Keras is imported (it may also be called after); a
    program that seeds TensorFlow's random numbers through `keras.utils.set_random_seed`
    under another backend should not call it. Under TensorFlow nothing changes."""
    module_utils = sys.modules.get(_KerasModuleUtilsImport.NAME)
    if module_utils is not None:
        _answer_only_once_imported(module_utils)
    elif not any(isinstance(f, _KerasModuleUtilsImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasModuleUtilsImport())


# ---------------------------------------------------------------- constants on the device
#
# Under PyTorch, every conversion of host values to a tensor on a GPU (`ops.convert_to_tensor`
# of a NumPy array, a list or a Python number, which Keras also does for the number in
# ``ops.maximum(x, 0.0)``) is a blocking copy, after which PyTorch waits for all the work
# queued on the GPU: the host can no longer run ahead of the device. TensorFlow and JAX trace
# such values into the graph as constants. The two helpers below keep the layers and the
# loss free of those copies under PyTorch and change nothing on the other backends.


def device_constant(owner, key, make, like, dtype="float32"):
    """The host values ``make()`` as a tensor of `dtype` on the device of `like`.

    Under PyTorch the tensor is made once per (key, device, dtype) and kept on `owner` (in
    its ``__dict__``, so that neither Keras nor ``torch.nn.Module`` tracks it); on the
    other backends it is converted at each call, which their tracing makes a constant.

    Args:
        owner: the object the cache lives on (a layer, a loss).
        key: what identifies the values among the owner's constants (hashable).
        make: a function returning the values (NumPy array, list or number).
        like: a tensor on the device where the constant is needed.
        dtype: the tensor's dtype.
    """
    if current_backend() != "torch":
        from keras import ops

        return ops.convert_to_tensor(make(), dtype)
    import numpy as np
    import torch

    if torch.compiler.is_compiling():  # traced (torch.compile, torch.export): a constant of this graph, not cached
        return torch.as_tensor(np.asarray(make()), device=like.device).to(_torch_dtype(dtype))
    cache = owner.__dict__.setdefault("_device_constants", {})
    index = (key, str(like.device), str(dtype))
    tensor = cache.get(index)
    if tensor is None:
        tensor = torch.as_tensor(np.asarray(make()), device=like.device).to(_torch_dtype(dtype))
        cache[index] = tensor
    return tensor


def scalar_like(value, like, dtype=None):
    """`value` as an operand beside `like` in a `keras.ops` call.

    Under PyTorch a 0-d tensor filled on `like`'s device (no copy from the host); on the
    other backends the Python number itself, so that their dtype rules and graphs stay
    as they are.

    Args:
        value: a Python number or bool.
        like: a tensor; gives the device and, unless `dtype` is given, the dtype.
        dtype: the tensor's dtype under PyTorch (default: `like`'s).
    """
    if current_backend() != "torch":
        return value
    import torch

    return torch.full((), value, dtype=_torch_dtype(dtype or like.dtype), device=like.device)


def _torch_dtype(dtype):
    """A dtype name (or a torch dtype) as a torch dtype."""
    import torch

    return dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype))
