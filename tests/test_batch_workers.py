"""Forked batch workers with shared-memory slots (`keras_dataset(use_multiprocessing=True)`)."""

import os
import pickle

import cv2
import numpy as np
import pytest

from ssd_keras.data import batch_workers
from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
from ssd_keras.data.batch_workers import BatchWorkers, shared_bytes
from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import Resize
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.errors import DatasetError, WorkerError

pytestmark = pytest.mark.skipif(not batch_workers.fork_available(), reason="batch workers need fork")

SCALES = [0.2, 0.4, 0.6, 0.8, 0.95]
SIZES = [(8, 8), (4, 4), (2, 2), (1, 1)]


def _dataset(tmp_path, n=10, seed=0):
    rng = np.random.default_rng(seed)
    filenames, labels = [], []
    for i in range(n):
        image = rng.integers(0, 256, (48 + 4 * i, 64, 3), dtype=np.uint8)
        path = str(tmp_path / f"img{i}.png")
        cv2.imwrite(path, image)
        filenames.append(path)
        labels.append(np.array([[1 + i % 2, 4, 5, 30 + i, 40], [2, 20, 10, 60, 30]], float))
    return DataGenerator(filenames=filenames, labels=labels, verbose=False)


def _encoder(sizes=SIZES):
    return SSDInputEncoder(64, 64, 2, sizes, scales=SCALES, variances=[0.1, 0.1, 0.2, 0.2], normalize_coords=True)


def _data(dataset, workers=2, seed=3, encoder=None):
    return dataset.keras_dataset(
        batch_size=3,
        transformations=[SSDDataAugmentation(64, 64, rng=0)],
        label_encoder=encoder or _encoder(),
        workers=workers,
        use_multiprocessing=True,
        seed=seed,
    )


def test_worker_batches_equal_batches_built_here_with_the_same_seeds(tmp_path):
    # The parent's OpenCV thread pool is running when the workers fork (that used to hang them).
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    cv2.resize(np.zeros((400, 400, 3), np.uint8), (100, 100), interpolation=cv2.INTER_AREA)
    try:
        dataset = _dataset(tmp_path)
        data = _data(dataset)
        got = []
        for _ in range(2):  # two epochs: the workers prefetch across the end of the first
            got += [tuple(np.array(a) for a in data[i]) for i in range(len(data))]
            data.on_epoch_end()
        assert cv2.getNumThreads() == 2  # restored in the parent after the fork
        assert data._pool.unshared_tasks == 0
        data.close()
    finally:
        cv2.setNumThreads(threads)
    reference = _data(dataset, workers=1)
    expected = [reference._build((step, reference._batch_indices(step))) for step in range(2 * len(reference))]
    assert len(got) == len(expected) == 8  # 10 images, batch 3: 4 batches an epoch
    for (x, y), (x_ref, y_ref) in zip(got, expected):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
    # Every image once per epoch; the two epochs in different orders; augmentations differ per batch.
    first, second = [reference._batch_indices(s) for s in range(4)], [reference._batch_indices(s) for s in range(4, 8)]
    assert sorted(np.concatenate(first)) == sorted(np.concatenate(second)) == list(range(10))
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert not np.array_equal(got[0][0], got[4][0])


def test_worker_batches_do_not_depend_on_the_number_of_workers(tmp_path):
    dataset = _dataset(tmp_path)
    one, three = _data(dataset, workers=1), _data(dataset, workers=3)
    for i in (0, 2, 3, 1):  # out of order too
        np.testing.assert_array_equal(one[i][1], three[i][1])
    one.close()
    three.close()


def test_returned_arrays_live_in_the_slots_and_free_them_when_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(batch_workers, "_MIN_SHARED_BYTES", 40_000)  # these targets are 61 kB, the images 37 kB
    dataset = _dataset(tmp_path)
    data = _data(dataset, workers=1)
    data[0]
    pool = data._pool
    x, y = data[1]
    assert isinstance(y.base, batch_workers._Lease)  # the targets: no copy
    assert not isinstance(x.base, batch_workers._Lease)  # small arrays travel pickled
    held = pool.free_slots
    view = y[:, :5]
    del x, y
    assert pool.free_slots == held  # the view still holds the slot
    del view
    assert pool.free_slots == held + 1
    # Holding more batches than there are slots: the rest travel pickled, with the same values.
    kept = [data[i % 4] for i in range(len(pool._slots) + 3)]
    assert pool.unshared_tasks > 0
    for i, (_, y) in enumerate(kept):
        np.testing.assert_array_equal(y, kept[i % 4][1])
    data.close()


def test_an_error_in_a_worker_is_raised_by_getitem_naming_the_file(tmp_path):
    dataset = _dataset(tmp_path, n=4)
    data = dataset.keras_dataset(
        batch_size=1,
        shuffle=False,
        transformations=[Resize(64, 64)],
        label_encoder=_encoder(),
        workers=2,
        use_multiprocessing=True,
    )
    os.remove(dataset.filenames[3])
    data[0]  # starts the workers, whose copy of the data set still lists img3
    with pytest.raises(DatasetError, match="img3.png") as info:
        for i in range(1, 4):
            data[i]
    assert any("batch worker process" in note for note in info.value.__notes__)
    data.close()


def _build(task):
    if task == "exit":
        os._exit(3)
    if task == "unpicklable":
        error = ValueError("bad lambda")
        error.payload = lambda: None
        raise error
    if task == "threads":
        return (cv2.getNumThreads(),)
    if task == "resize":
        return (cv2.resize(np.ones((600, 800, 3), np.uint8), (300, 300), interpolation=cv2.INTER_AREA),)
    if task == "large":
        return (np.arange(100_000, dtype=np.float64), "tag")
    if task == "huge":  # larger than a slot and than a pipe's buffer: sent pickled, in many writes
        return (np.ones(8_000_000, np.float32),)
    return (np.full((64, 1024), task, np.float32), np.arange(3), task)


def test_worker_pool_round_trip_large_arrays_and_errors():
    pool = BatchWorkers(_build, 2, shared_bytes(_build(0)), 3)
    for k in range(5):
        pool.submit(k, k)
    for k in range(5):
        big, small, tag = pool.get(k, timeout=30)
        assert tag == k and big[0, 0] == k and big.shape == (64, 1024)
        np.testing.assert_array_equal(small, [0, 1, 2])
    pool.submit("large", "large")  # larger than a slot: pickled
    big, tag = pool.get("large", timeout=30)
    np.testing.assert_array_equal(big, np.arange(100_000))
    pool.submit("u", "unpicklable")
    with pytest.raises(WorkerError, match="ValueError: bad lambda"):
        pool.get("u", timeout=30)
    pool.submit(7, 7)
    pool.discard([7])
    assert not pool.pending(7)
    with pytest.raises(KeyError, match="No task"):
        pool.get(7)
    pool.submit("x", "exit")
    with pytest.raises(WorkerError, match="died \\(exit code 3\\)"):
        pool.get("x")
    assert not any(p.is_alive() for p in pool._processes)  # the pool closed itself


def test_a_worker_killed_while_sending_a_batch_is_reported_not_waited_for():
    # The worker blocks halfway through sending 32 MB nobody reads yet; killed there, it
    # leaves a partial message. A queue shared by all workers then blocked the parent forever.
    import signal
    import time

    def hung(*_):
        raise TimeoutError("the parent hung on the dead worker's pipe")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(90)
    try:
        pool = BatchWorkers(_build, 1, 1 << 16, 2)
        pool.submit("h", "huge")
        time.sleep(3)  # built and stuck in the middle of sending
        os.kill(pool._processes[0].pid, signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(WorkerError, match="died \\(exit code -9\\)"):
            pool.get("h", timeout=60)
        assert time.monotonic() - start < 30
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _gone(pid):
    """Whether process `pid` has ended (a zombie nobody reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("start_method,when", [("fork", "running"), ("forkserver", "running"), ("fork", "starting")])
def test_workers_end_when_the_training_process_is_killed(start_method, when):
    # kill -9 or the out-of-memory killer leaves the parent no chance to shut its workers
    # down: they used to wait for tasks, holding their memory, for ever. "starting": each
    # worker's loop begins only after the kill (a loaded machine); such a worker read its
    # new parent's pid, init's, and watched that for ever.
    import subprocess
    import sys
    import time

    if start_method == "forkserver" and not batch_workers._forkserver_available():
        pytest.skip("no fork server here")
    script = (
        "import sys, time\n"
        "from ssd_keras.data import batch_workers\n"
        "if sys.argv[2] == 'starting':\n"
        "    loop = batch_workers._worker_loop\n"
        "    batch_workers._worker_loop = lambda *args: (time.sleep(3), loop(*args))\n"
        "pool = batch_workers.BatchWorkers(tuple, 2, 1 << 16, 2, start_method=sys.argv[1])\n"
        "if sys.argv[2] == 'running':\n"
        "    pool.submit(0, [1, 2])\n"
        "    assert pool.get(0, timeout=60) == (1, 2)\n"
        "print(' '.join(str(p.pid) for p in pool._processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trainer = subprocess.Popen(
        [sys.executable, "-c", script, start_method, when],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env=dict(os.environ, PYTHONPATH=root),
    )
    try:
        pids = [int(pid) for pid in trainer.stdout.readline().split()]
        assert len(pids) == 2 and not any(map(_gone, pids))
    finally:
        trainer.kill()
        trainer.wait()
    deadline = time.monotonic() + 20
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(map(_gone, pids)), [pid for pid in pids if not _gone(pid)]


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_a_script_that_never_closes_its_workers_still_exits(start_method):
    # multiprocessing's exit handler terminates daemon children with SIGTERM, which the
    # workers ignore (a SIGTERM to the process group is the trainer's to handle), then joins
    # them: a script that did not close its pool used to hang there for ever.
    import subprocess
    import sys

    if start_method == "forkserver" and not batch_workers._forkserver_available():
        pytest.skip("no fork server here")
    # A `weakref.finalize` made before multiprocessing is imported (as TensorFlow's import
    # makes one) puts finalizers' exit hook after multiprocessing's, as in a Keras process.
    script = (
        "import sys, weakref\n"
        "early = type('Early', (), {})()\n"
        "weakref.finalize(early, lambda: None)\n"
        "from ssd_keras.data import batch_workers\n"
        "pool = batch_workers.BatchWorkers(tuple, 2, 1 << 16, 2, start_method=sys.argv[1])\n"
        "pool.submit(0, [1, 2])\n"
        "assert pool.get(0, timeout=60) == (1, 2)\n"
        "print('done', flush=True)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", script, start_method],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env=dict(os.environ, PYTHONPATH=root),
    )
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]


def test_workers_run_opencv_after_the_parent_used_its_thread_pool():
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        cv2.resize(np.zeros((600, 800, 3), np.uint8), (300, 300), interpolation=cv2.INTER_AREA)
        pool = BatchWorkers(_build, 2, 1 << 20, 2)
        assert cv2.getNumThreads() == 2
        for k in range(4):
            pool.submit(k, "resize")
        for k in range(4):
            np.testing.assert_array_equal(pool.get(k, timeout=60)[0], 1)  # a hang shows as a TimeoutError
        pool.submit("t", "threads")
        assert pool.get("t", timeout=60) == (1,)  # one OpenCV thread per worker: the workers are the parallelism
        pool.close()
    finally:
        cv2.setNumThreads(threads)


@pytest.mark.slow
def test_close_stops_the_workers_and_the_data_set_restarts_them(tmp_path):
    dataset = _dataset(tmp_path, n=4)
    data = _data(dataset, workers=2)
    y0 = np.array(data[1][1])
    processes = data._pool._processes
    assert all(p.is_alive() for p in processes)
    data.close()
    assert not any(p.is_alive() for p in processes)
    np.testing.assert_array_equal(data[1][1], y0)
    data.close()
    clone = pickle.loads(pickle.dumps(data))  # Keras' spawn-based pool pickles the data set
    assert clone._pool is None
    np.testing.assert_array_equal(clone[1][1], y0)
    clone.close()


def test_dropping_the_data_set_stops_its_workers(tmp_path, monkeypatch):
    import gc

    monkeypatch.setattr(batch_workers, "_MIN_SHARED_BYTES", 40_000)
    data = _data(_dataset(tmp_path), workers=2)
    data[0]  # built here; the workers build the rest
    x, y = data[1]
    assert isinstance(y.base, batch_workers._Lease)
    y_copy = y.copy()
    processes = data._pool._processes
    del data
    gc.collect()
    for p in processes:
        p.join(timeout=10)
    assert not any(p.is_alive() for p in processes)
    np.testing.assert_array_equal(y, y_copy)  # arrays already returned stay mapped and readable


def test_index_out_of_range(tmp_path):
    data = _data(_dataset(tmp_path, n=4), workers=1)
    with pytest.raises(IndexError, match="Batch index 2 out of range"):
        data[2]


@pytest.mark.backends
@pytest.mark.slow
def test_model_fit_from_worker_processes(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from ssd_keras.losses.ssd_loss import SSDLoss
    from ssd_keras.models.ssd7 import build_model

    model, sizes = build_model(
        (64, 64, 3),
        2,
        scales=SCALES,
        normalize_coords=True,
        variances=[0.1, 0.1, 0.2, 0.2],
        return_predictor_sizes=True,
    )
    # 9 images, 3 batches of 3: a last batch of another size would compile the step again under JAX.
    data = _data(_dataset(tmp_path, n=9), workers=2, encoder=_encoder(sizes))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss().compute_loss)
    history = model.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    assert data.epoch >= 2 and data._pool.unshared_tasks == 0  # (Keras also ends an "epoch" when fit starts)
    data.close()
