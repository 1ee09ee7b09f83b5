"""Worker processes that build batches and hand their arrays back through shared memory.

Keras' own ``use_multiprocessing`` sends every batch back through a pipe: a batch of
SSD300 targets is 18 MB (16 x 8732 x 33 float32), and pickling it, writing it to the pipe
and reading it back costs more than building it. Here each worker writes the large arrays
of a batch into one of a fixed set of shared-memory slots, mapped before the workers are
forked, and sends only their layout (offset, shape, dtype) through the queue. The parent
wraps the slot in arrays without copying; the slot goes back to the workers when the last
of those arrays (and anything viewing it, a tensor that aliases it included) is freed.

Workers are forked, so they see the data set and the transformations as they were at the
moment the pool started, without pickling them. Platforms without ``fork`` (Windows,
macOS' default) use Keras' own process pool instead (see `DataGenerator.keras_dataset`).
"""

import ctypes
import mmap
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
import weakref

import numpy as np

# Arrays smaller than this travel pickled: the queue is cheaper than a slot for them.
_MIN_SHARED_BYTES = 1 << 16
_ALIGN = 64


def fork_available():
    """Whether batch workers can be forked on this platform."""
    return "fork" in multiprocessing.get_all_start_methods()


class WorkerError(RuntimeError):
    """A batch worker process died, or raised an exception that cannot be re-raised as is."""


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def shared_bytes(batch):
    """The slot size that the large arrays of `batch` (a tuple) need."""
    return sum(_aligned(x.nbytes) for x in batch if _goes_shared(x))


def _goes_shared(x):
    return isinstance(x, np.ndarray) and x.dtype != object and x.nbytes >= _MIN_SHARED_BYTES


def _pack(batch, slot):
    """Writes the large arrays of `batch` into `slot` (a mmap, or None); returns the layout:
    one ``('shared', offset, shape, dtype)`` or ``('object', value)`` entry per element."""
    layout, offset = [], 0
    for x in batch:
        if slot is not None and _goes_shared(x) and offset + x.nbytes <= len(slot):
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

    def __init__(self, build, workers, slot_bytes, n_slots):
        if not fork_available():
            raise WorkerError("Batch worker processes need the 'fork' start method, which this platform lacks.")
        context = multiprocessing.get_context("fork")
        self.slot_bytes = max(int(slot_bytes), _ALIGN)
        self._slots = [mmap.mmap(-1, self.slot_bytes) for _ in range(n_slots)]
        # These exports also keep the maps from being closed while the pool lives.
        self._exports = [ctypes.c_char.from_buffer(slot) for slot in self._slots]
        self._addresses = [ctypes.addressof(export) for export in self._exports]
        self._free = list(range(n_slots))
        self._holders = [0] * n_slots
        self._lock = threading.RLock()  # a lease can die, and release, inside a locked section
        self._tasks = context.SimpleQueue()
        self._results = context.Queue()
        self._ready = {}
        self._pending = set()
        self._discarded = set()
        self.unshared_tasks = 0  # tasks submitted while every slot was taken (their arrays are pickled)
        self._processes = []
        # OpenCV's thread pool does not survive a fork: a child that touches it (even to
        # resize it) can wait forever on threads it does not have. Forked while OpenCV is
        # single-threaded, the children never use the pool.
        cv2 = sys.modules.get("cv2")
        cv2_threads = cv2.getNumThreads() if cv2 is not None else None
        if cv2 is not None:
            cv2.setNumThreads(1)
        try:
            for worker_id in range(workers):
                process = context.Process(target=_worker_loop, args=(build, self._slots, self._tasks, self._results, worker_id),
                                          daemon=True, name=f"ssd_keras batch worker {worker_id}")
                process.start()
                self._processes.append(process)
        finally:
            if cv2 is not None:
                cv2.setNumThreads(cv2_threads)
        self._finalizer = weakref.finalize(self, _shutdown, self._processes, self._tasks)

    @property
    def free_slots(self):
        return len(self._free)

    @property
    def pending_keys(self):
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
        while key not in self._ready:
            try:
                result = self._results.get(timeout=1.0 if timeout is None else max(0.0, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                dead = [p for p in self._processes if not p.is_alive()]
                if dead:
                    self.close()
                    raise WorkerError(f"Batch worker process {dead[0].name!r} died (exit code {dead[0].exitcode}); "
                                      "the system may be out of memory.") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"Task {key!r} not done within {timeout} s.") from None
                continue
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


def _shutdown(processes, tasks):
    for _ in processes:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.terminate()
            process.join(timeout=2)


def _worker_loop(build, slots, tasks, results, worker_id):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ["SSD_KERAS_BATCH_WORKER"] = str(worker_id)
    while True:
        item = tasks.get()
        if item is None:
            return
        key, slot, task = item
        try:
            batch = build(task)
            results.put((key, slot, _pack(batch, None if slot is None else slots[slot]), None))
        except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
            results.put((key, slot, None, _portable(error)))


def _portable(error):
    """`error` if it survives pickling, else a WorkerError with its text; the worker's
    traceback goes along as a note."""
    import pickle

    note = "Raised in a batch worker process:\n" + "".join(traceback.format_exception(error))
    try:
        error.add_note(note)
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        fallback = WorkerError(f"{type(error).__name__}: {error}")
        fallback.add_note(note)
        return fallback
