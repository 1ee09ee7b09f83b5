"""Worker processes that build batches and hand their arrays back through shared memory.

Keras' own ``use_multiprocessing`` sends every batch back through a pipe: a batch of
SSD300 targets is 18 MB (16 x 8732 x 33 float32), and pickling it, writing it to the pipe
and reading it back costs more than building it. Here each worker writes the large arrays
of a batch into one of a fixed set of shared-memory slots, mapped before the workers are
forked, and sends only their layout (offset, shape, dtype) through a pipe. The parent
wraps the slot in arrays without copying; the slot goes back to the workers when the last
of those arrays (and anything viewing it, a tensor that aliases it included) is freed.

How the workers start depends on the Keras backend (`default_start_method`):

* ``fork`` (TensorFlow; PyTorch until CUDA is initialised, as PyTorch's own DataLoader
  does): the workers see the data set and the transformations as they were when the
  pool started, without pickling them, and inherit the slots.
* ``forkserver`` (JAX; PyTorch once CUDA is initialised): JAX runs threads from its
  first computation on, and a fork copies their locks in whatever state they are
  (JAX warns that this "will likely lead to a deadlock"); a CUDA context does not
  survive a fork either. The workers are then forked from a clean server process that
  never ran the backend: the task function (the data set) is pickled to them once,
  and they map the slots through ``/proc/<pid>/fd`` (the slots are memfd files, which
  also keeps them off ``/dev/shm`` and its size limit in containers).

Platforms without either (Windows, macOS' default) use Keras' own process pool instead
(see `DataGenerator.keras_dataset`).
"""

import atexit
import contextlib
import ctypes
import gc
import io
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import types
import warnings
import weakref

import numpy as np

from ssd_keras.errors import WorkerError

# Arrays smaller than this travel pickled: the pipe is cheaper than a slot for them.
_MIN_SHARED_BYTES = 1 << 16
_ALIGN = 64


START_METHODS = ("fork", "forkserver")


def fork_available():
    """Whether batch workers can be forked on this platform."""
    return "fork" in multiprocessing.get_all_start_methods()


def default_start_method():
    """How batch workers start under the Keras backend in use (module docstring).

    'forkserver' for JAX, and for PyTorch once CUDA is initialised; 'fork' otherwise.
    The environment variable ``SSD_KERAS_START_METHOD`` overrides the choice.
    """
    chosen = os.environ.get("SSD_KERAS_START_METHOD")
    if chosen:
        return chosen
    if not _forkserver_available():
        return "fork"
    keras = sys.modules.get("keras")
    backend = keras.backend.backend() if keras is not None else os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        return "forkserver"
    torch = sys.modules.get("torch")
    if backend == "torch" and torch is not None and torch.cuda.is_initialized():
        return "forkserver"
    return "fork"


def _forkserver_available():
    return (
        "forkserver" in multiprocessing.get_all_start_methods()
        and hasattr(os, "memfd_create")
        and os.path.isdir(f"/proc/{os.getpid()}/fd")
    )


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def shared_bytes(batch):
    """The slot size that the large arrays of `batch` (a tuple) need."""
    return sum(_aligned(x.nbytes) for x in batch if _goes_shared(x))


def _goes_shared(x, min_bytes=None):
    return (
        isinstance(x, np.ndarray)
        and x.dtype != object
        and x.nbytes >= (_MIN_SHARED_BYTES if min_bytes is None else min_bytes)
    )


def _pack(batch, slot, min_bytes=None):
    """Writes the large arrays of `batch` into `slot` (a mmap, or None); returns the layout:
    one ``('shared', offset, shape, dtype)`` or ``('object', value)`` entry per element."""
    layout, offset = [], 0
    for x in batch:
        if slot is not None and _goes_shared(x, min_bytes) and offset + x.nbytes <= len(slot):
            np.frombuffer(slot, dtype=x.dtype, count=x.size, offset=offset).reshape(x.shape)[...] = x
            layout.append(("shared", offset, x.shape, x.dtype.str))
            offset += _aligned(x.nbytes)
        else:
            layout.append(("object", x))
    return layout


class _Lease:
    """The memory of one slot's array; frees its share of the slot when it dies.

    NumPy keeps a non-array base alive for as long as any view of the array exists, so
    the slot is released only when nothing refers to its memory any more.
    """

    def __init__(self, release, memory, address, shape, dtype):
        self._release = release
        self._memory = memory  # the mmap stays mapped while the array lives, even past the pool
        self.__array_interface__ = {"data": (address, False), "shape": tuple(shape), "typestr": dtype, "version": 3}

    def __del__(self):
        self._release()


class BatchWorkers:
    """A pool of forked processes that turn tasks into batches.

    Args:
        build: ``build(task) -> tuple``, run in the workers on each submitted task.
        workers: number of processes.
        slot_bytes: size of each shared-memory slot (see `shared_bytes`).
        n_slots: number of slots, the most batches in flight or held by the caller
            without falling back to pickling.

    Tasks are keyed: `submit(key, task)`, then `get(key)` returns the batch, or raises
    in the caller the exception that `build` raised in the worker. Call `close()` (or let
    the pool be garbage-collected) to stop the workers.
    """

    def __init__(self, build, workers, slot_bytes, n_slots, start_method=None):
        start_method = start_method or default_start_method()
        if start_method not in START_METHODS:
            raise ValueError(
                f"Expected `start_method` to be one of {set(START_METHODS)}. Received: start_method={start_method!r}"
            )
        if start_method == "forkserver" and not _forkserver_available():
            raise WorkerError("The 'forkserver' start method needs Linux (memfd and /proc); use 'fork'.")
        if not fork_available():
            raise WorkerError("Batch worker processes need the 'fork' start method, which this platform lacks.")
        task = build
        if start_method == "forkserver":
            task, main_names = _payload(build)
            if main_names:
                warnings.warn(
                    f"Batch workers fork instead of starting from a fork server: the data set uses "
                    f"{', '.join(sorted(main_names))}, defined in __main__ (a notebook or a script), which a fresh "
                    "process cannot import. Define them in a module to let the workers start clean.",
                    stacklevel=3,
                )
                start_method, task = "fork", build
        self.start_method = start_method
        context = multiprocessing.get_context(start_method)
        self.slot_bytes = max(int(slot_bytes), _ALIGN)
        self._fds = (
            [os.memfd_create(f"ssd_keras_slot_{k}") for k in range(n_slots)] if hasattr(os, "memfd_create") else []
        )
        for fd in self._fds:
            os.ftruncate(fd, self.slot_bytes)
        self._slots = [mmap.mmap(fd, self.slot_bytes) for fd in self._fds] or [
            mmap.mmap(-1, self.slot_bytes) for _ in range(n_slots)
        ]
        # These exports also keep the maps from being closed while the pool lives.
        self._exports = [ctypes.c_char.from_buffer(slot) for slot in self._slots]
        self._addresses = [ctypes.addressof(export) for export in self._exports]
        self._free = list(range(n_slots))
        self._holders = [0] * n_slots
        self._lock = threading.RLock()  # a lease can die, and release, inside a locked section
        self._tasks = context.SimpleQueue()
        # One result pipe per worker, not one shared queue: a worker killed halfway through
        # sending leaves a partial message only in its own pipe, which then reads as EOF
        # (the parent keeps no copy of its writing end), instead of blocking the reader.
        self._readers = []
        self._ready = {}
        self._pending = set()
        self._discarded = set()
        self.unshared_tasks = 0  # tasks submitted while every slot was taken (their arrays are pickled)
        self._processes = []
        # Forked workers inherit the slots; forkserver ones open them through /proc.
        slots = self._slots if start_method == "fork" else _SlotFiles(os.getpid(), self._fds, self.slot_bytes)
        with _starting(start_method):
            for worker_id in range(workers):
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(
                    target=_worker_loop,
                    args=(task, slots, self._tasks, writer, worker_id, os.getpid(), _MIN_SHARED_BYTES),
                    daemon=True,
                    name=f"ssd_keras batch worker {worker_id}",
                )
                process.start()
                writer.close()  # before the next fork: only this worker may hold its writing end
                self._processes.append(process)
                self._readers.append(reader)
        self._finalizer = weakref.finalize(self, _shutdown, self._processes, self._tasks, self._fds, self._readers)
        # A pool still open when the interpreter exits: multiprocessing's exit handler would
        # join the workers after a SIGTERM that they ignore, and wait for ever. Registered
        # now, after multiprocessing's handler, this one runs before it (atexit runs the
        # newest first) and stops them.
        atexit.register(self._finalizer)

    @property
    def free_slots(self):
        """The shared-memory slots free for the next batches."""
        return len(self._free)

    @property
    def pending_keys(self):
        """The keys of the batches asked for and not yet collected."""
        return set(self._pending)

    def pending(self, key):
        """Whether `key` was submitted and not yet fetched."""
        return key in self._pending

    def submit(self, key, task):
        """Queues `task` under `key`; a free slot takes its arrays, else they are pickled."""
        with self._lock:
            slot = self._free.pop() if self._free else None
        if slot is None:
            self.unshared_tasks += 1
        self._pending.add(key)
        self._tasks.put((key, slot, task))

    def get(self, key, timeout=None):
        """The batch of `key` (submitted earlier), waiting for it as long as needed."""
        if key not in self._pending:
            raise KeyError(f"No task {key!r} was submitted.")
        deadline = None if timeout is None else time.monotonic() + timeout
        sentinels = {process.sentinel: process for process in self._processes}
        while key not in self._ready:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait(self._readers + list(sentinels), timeout=wait)
            if not ready:
                raise TimeoutError(f"Task {key!r} not done within {timeout} s.")
            for source in ready:
                if source in sentinels:  # a worker ended: the batches it held are lost
                    self._died(sentinels[source])
                try:
                    result = source.recv()
                except (EOFError, OSError):  # its worker died while sending
                    self._died(self._processes[self._readers.index(source)])
                if result[0] in self._discarded:
                    self._discarded.discard(result[0])
                    if result[1] is not None:
                        self._release(result[1])
                else:
                    self._ready[result[0]] = result[1:]
        self._pending.discard(key)
        slot, layout, error = self._ready.pop(key)
        if error is not None:
            if slot is not None:
                self._release(slot)
            raise error
        return self._unpack(slot, layout)

    def _died(self, process):
        process.join(timeout=1)
        self.close()
        raise WorkerError(
            f"Batch worker process {process.name!r} died (exit code {process.exitcode}); the system may be out "
            "of memory."
        )

    def discard(self, keys):
        """Forgets the tasks `keys`: results already here are dropped, later ones on arrival."""
        for key in list(keys):
            if key not in self._pending:
                continue
            self._pending.discard(key)
            if key in self._ready:
                slot = self._ready.pop(key)[0]
                if slot is not None:
                    self._release(slot)
            else:
                self._discarded.add(key)

    def _unpack(self, slot, layout):
        shared = [entry for entry in layout if entry[0] == "shared"]
        if slot is None or not shared:
            if slot is not None:
                self._release(slot)
            return tuple(entry[1] for entry in layout)
        self._holders[slot] = len(shared)
        out = []
        for entry in layout:
            if entry[0] == "object":
                out.append(entry[1])
                continue
            _, offset, shape, dtype = entry
            lease = _Lease(_SlotRelease(self, slot), self._slots[slot], self._addresses[slot] + offset, shape, dtype)
            out.append(np.asarray(lease))
        return tuple(out)

    def _release(self, slot):
        with self._lock:
            self._free.append(slot)

    def _release_share(self, slot):
        with self._lock:
            self._holders[slot] -= 1
            if self._holders[slot] == 0:
                self._free.append(slot)

    def close(self):
        """Stops the workers. Arrays already returned stay valid."""
        self._finalizer()
        atexit.unregister(self._finalizer)


class _SlotRelease:
    """Releases one share of a slot; holds the pool weakly so that arrays do not keep it alive."""

    __slots__ = ("_pool", "_slot")

    def __init__(self, pool, slot):
        self._pool = weakref.ref(pool)
        self._slot = slot

    def __call__(self):
        pool = self._pool()
        if pool is not None:
            pool._release_share(self._slot)


@contextlib.contextmanager
def _starting(start_method):
    """What starting workers takes besides `Process.start`.

    fork: OpenCV's thread pool does not survive a fork (a child that touches it, even to
    resize it, can wait forever on threads it does not have), so OpenCV is made
    single-threaded around the fork; and the parent's objects are collected and frozen
    first, so that no child ever runs the finaliser of an inherited object (a backend's
    tensor, say, whose runtime the child does not have).

    forkserver: the main module is hidden, so that neither the fork server nor the
    workers import it again (re-running a script that lacks an ``if __name__ ==
    "__main__"`` guard); the task never refers to it (see `_payload`).
    """
    if start_method == "forkserver":
        main = sys.modules.get("__main__")
        saved = dict(main.__dict__) if main is not None else {}
        if main is not None:
            main.__spec__ = None
            main.__dict__.pop("__file__", None)
        try:
            yield
        finally:
            if main is not None:
                main.__spec__ = saved.get("__spec__")
                if "__file__" in saved:
                    main.__file__ = saved["__file__"]
        return
    cv2 = sys.modules.get("cv2")
    cv2_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if cv2 is not None:
            cv2.setNumThreads(cv2_threads)


class _MainProbe(pickle.Pickler):
    """Pickles, and notes every class or function that lives in ``__main__``."""

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.main_names = set()

    def reducer_override(self, obj):
        if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == "__main__":
            self.main_names.add(getattr(obj, "__qualname__", repr(obj)))
        return NotImplemented


def _payload(build):
    """(`build` pickled once for every forkserver worker, the names it uses from ``__main__``)."""
    buffer = io.BytesIO()
    probe = _MainProbe(buffer)
    probe.dump(build)
    return _Pickled(buffer.getvalue()), probe.main_names


class _Pickled:
    """A task function sent pickled (one serialisation for all workers)."""

    def __init__(self, data):
        self.data = data

    def load(self):
        return pickle.loads(self.data)


class _SlotFiles:
    """What a forkserver worker needs to map the parent's slots: its pid, the memfds, the size."""

    def __init__(self, pid, fds, size):
        self.pid, self.fds, self.size = pid, list(fds), size

    def open(self):
        slots = []
        for fd in self.fds:
            own = os.open(f"/proc/{self.pid}/fd/{fd}", os.O_RDWR)
            try:
                slots.append(mmap.mmap(own, self.size))
            finally:
                os.close(own)
        return slots


def _shutdown(processes, tasks, fds=(), readers=()):
    for _ in processes:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()  # they ignore SIGTERM
            process.join(timeout=2)
    for reader in readers:
        reader.close()
    for fd in fds:  # the mappings (ours, and arrays still in use) keep the memory alive
        try:
            os.close(fd)
        except OSError:
            pass


def _exit_with(trainer, interval=1.0):
    """Ends this worker process once the training process `trainer` (a pid) has ended: killed
    by SIGKILL or the out-of-memory killer, it cannot shut its workers down, and they would
    wait for tasks, holding their memory, for ever. A pidfd tells at once (Linux); else the
    worker looks every `interval` seconds whether it was reparented (a forked worker) or the
    trainer is gone. (A fork-server worker's parent, the fork server, lives as long as its
    workers do, so the trainer is watched, not the parent.)"""
    parent = os.getppid()
    try:
        pidfd = os.pidfd_open(trainer)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):
        pidfd = None

    def alive():
        if trainer == parent:
            return os.getppid() == parent
        try:
            os.kill(trainer, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def watch():
        if pidfd is not None:
            select.select([pidfd], [], [])  # readable once the process has ended
        else:
            while alive():
                time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="ssd_keras trainer watch", daemon=True).start()


def _worker_loop(build, slots, tasks, results, worker_id, trainer, min_shared_bytes=_MIN_SHARED_BYTES):
    # Ctrl-C and a SIGTERM sent to the whole process group (a cluster's preemption) are the
    # parent's to handle: it stops after its batch in progress, then shuts the workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # `trainer`: the pid as the trainer gave it. A worker slow to start, whose trainer was
    # killed meanwhile, would read its new parent (init) from os.getppid() and watch that.
    _exit_with(trainer)
    os.environ["SSD_KERAS_BATCH_WORKER"] = str(worker_id)
    if isinstance(slots, _SlotFiles):
        # A fresh process from the fork server, whose OpenCV never started its thread
        # pool: one thread each, as the forked workers have.
        slots = slots.open()
        build = build.load()
        cv2 = sys.modules.get("cv2")
        if cv2 is not None:
            cv2.setNumThreads(1)
    while True:
        item = tasks.get()
        if item is None:
            return
        key, slot, task = item
        try:
            batch = build(task)
            results.send((key, slot, _pack(batch, None if slot is None else slots[slot], min_shared_bytes), None))
        except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
            results.send((key, slot, None, _portable(error)))


def _portable(error):
    """`error` if it survives pickling, else a WorkerError with its text; the worker's
    traceback goes along as a note."""
    note = "Raised in a batch worker process:\n" + "".join(traceback.format_exception(error))
    try:
        error.add_note(note)
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        fallback = WorkerError(f"{type(error).__name__}: {error}")
        fallback.add_note(note)
        return fallback
