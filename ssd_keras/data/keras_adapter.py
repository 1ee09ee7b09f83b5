"""The Keras side of the data pipeline: `DataGeneratorDataset`, the `keras.utils.PyDataset`
that `DataGenerator.keras_dataset` returns, and its scheduling of batches on worker
processes. Imported only when a Keras dataset is asked for, so that the rest of the data
pipeline needs neither Keras nor a backend."""

import copy
import math
import threading

import cv2
import keras
import numpy as np

from ssd_keras.data.batch_workers import BatchWorkers, fork_available, shared_bytes
from ssd_keras.errors import DatasetError, DegenerateBatchError
from ssd_keras.utils.rng import reseed_generators


class DataGeneratorDataset(keras.utils.PyDataset):
    """`DataGenerator` batches for Keras 3: what `DataGenerator.keras_dataset` returns.

    ``len()`` is the number of batches of an epoch (of those left in a resumed epoch when
    `first_batch` is set); ``dataset[i]`` builds batch `i` of the epoch `epoch`, in this
    thread, in Keras' threads, or in this class's own worker processes
    (``use_multiprocessing=True``; `ssd_keras.data.batch_workers`).
    """

    def __init__(
        self,
        data_generator,
        batch_size,
        shuffle,
        transformations,
        label_encoder,
        returns,
        keep_images_without_gt,
        degenerate_box_handling,
        seed=None,
        steps_per_epoch=None,
        start_method=None,
        full_batches=False,
        shard=None,
        **kwargs,
    ):
        self.steps_per_epoch = steps_per_epoch
        self.full_batches = full_batches
        self.shard = tuple(shard) if shard is not None else (0, 1)
        if batch_size % self.shard[1]:
            raise ValueError(
                f"Expected `batch_size` to be divisible by the shard count. Received: batch_size={batch_size}, "
                f"shard={shard}"
            )
        self.start_method = start_method
        self.epoch = 0
        self.first_batch = 0  # a resumed epoch starts here (see ssd_keras.training.checkpointing)
        self.batch_error = None  # what stopped a batch: the data's error, or a batch worker's WorkerError
        self.data_generator = data_generator
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transformations = transformations
        self.label_encoder = label_encoder
        self.returns = returns
        self.keep_images_without_gt = keep_images_without_gt
        self.degenerate_box_handling = degenerate_box_handling
        self.rng = np.random.default_rng(seed)
        self._pass_seed = int(self.rng.integers(2**63))
        self._pass_cache = (None, None)
        self.indices = data_generator.usable_indices(keep_images_without_gt)
        self._process_workers = 0
        self._pool = None
        self._pool_lock = threading.Lock()
        if kwargs.get("use_multiprocessing") and fork_available():
            # Our own forked workers with shared-memory slots; Keras sees a plain, serial PyDataset.
            self._process_workers = max(1, kwargs.get("workers", 1))
            self._prefetch_depth = max(
                self._process_workers, min(kwargs.get("max_queue_size", 10), 2 * self._process_workers + 2)
            )
            kwargs.update(workers=1, use_multiprocessing=False)
        elif kwargs.get("workers", 1) > 1:
            # The workers already use the cores; OpenCV's own thread pool would compete with them.
            cv2.setNumThreads(1)
        super().__init__(**kwargs)

    def __len__(self):
        return self.epoch_length - self.first_batch

    @property
    def epoch_length(self):
        """Batches in a whole epoch (`len` counts those left when `first_batch` is set)."""
        return self.steps_per_epoch or self._batches_per_pass()

    def _batches_per_pass(self):
        if self.full_batches:
            if len(self.indices) < self.batch_size:
                raise DatasetError(
                    f"The data set has {len(self.indices)} usable images, fewer than one batch of {self.batch_size}"
                )
            return len(self.indices) // self.batch_size
        return math.ceil(len(self.indices) / self.batch_size)

    def _pass_order(self, n):
        """The image order of pass `n` over the data."""
        cached_pass, order = self._pass_cache
        if cached_pass != n:
            order = (
                np.random.default_rng([self._pass_seed, n]).permutation(self.indices) if self.shuffle else self.indices
            )
            self._pass_cache = (n, order)
        return order

    @property
    def order(self):
        """The image order of the current epoch's pass over the data."""
        return self._pass_order(divmod(self.epoch * self.epoch_length, self._batches_per_pass())[0])

    def _batch_indices(self, step):
        """The image indices of batch number `step`, counted from the first batch of epoch 0.

        Pass `n` over the data has its own order (a permutation seeded by the data set's
        seed and `n`), so every batch is known in advance and the worker processes can
        build batches of the next epoch before it begins.
        """
        n_pass, k = divmod(step, self._batches_per_pass())
        return self._pass_order(n_pass)[k * self.batch_size : (k + 1) * self.batch_size]

    def _build(self, task):
        """Batch `task` = (step, indices), or this shard's part of it. Each image gets its own
        random stream, seeded by the data set's seed, `step` and the image's place in the
        batch: a batch does not depend on which thread or process builds it, nor on the
        batches built before it (a resumed run gets exactly the batches of an uninterrupted
        one), and each shard of a batch is the part of the whole batch it stands for."""
        step, indices = task
        transformations = copy.deepcopy(self.transformations)
        index, count = self.shard
        share = len(indices) // count if count > 1 else len(indices)
        start = index * share

        def reseed(k):
            reseed_generators(transformations, (self._pass_seed, step, start + k))

        batch = self.data_generator.make_batch(
            indices[start : start + share],
            transformations,
            self.label_encoder,
            self.returns,
            self.keep_images_without_gt or self.full_batches,
            self.degenerate_box_handling,
            reseed=reseed,
        )
        if self.full_batches and len(batch[0]) != share:
            raise DegenerateBatchError(
                f"A transformation dropped {share - len(batch[0])} image(s) of batch {step}; training on several "
                "devices needs full batches: use transformations that keep every image"
            )
        return batch

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} out of range for a data set of {len(self)} batches per epoch.")
        step = self.epoch * self.epoch_length + self.first_batch + index
        try:
            if self._process_workers:
                with self._pool_lock:
                    return self._from_workers(step)
            return self._build((step, self._batch_indices(step)))
        except Exception as error:
            # Kept for the caller: Keras may hand it on wrapped in a backend's error
            # (TensorFlow's input pipeline makes it an UnknownError holding the traceback as text).
            self.batch_error = error
            raise

    def _from_workers(self, step):
        if self._pool is None:
            batch = self._build((step, self._batch_indices(step)))  # sizes the shared-memory slots
            self._pool = BatchWorkers(
                self._build,
                self._process_workers,
                shared_bytes(batch),
                self._prefetch_depth + 4,
                start_method=self.start_method,
            )
            self._prefetch(step + 1)
            return batch
        pool = self._pool
        if not pool.pending(step):
            # Not the batch the workers expected (a jump): drop what they were building ahead.
            pool.discard(k for k in pool.pending_keys if k < step or k > step + self._prefetch_depth)
            pool.submit(step, (step, self._batch_indices(step)))
        self._prefetch(step + 1)
        return pool.get(step)

    def _prefetch(self, start):
        pool = self._pool
        for step in range(start, start + self._prefetch_depth):
            if not pool.free_slots:
                break
            if not pool.pending(step):
                pool.submit(step, (step, self._batch_indices(step)))

    def close(self):
        """Stops the worker processes (``use_multiprocessing=True``); they start again when needed."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def on_epoch_end(self):
        """Keras calls this after each epoch; the next pass has an order of its own (see `epoch`)."""
        self.epoch += 1

    def __getstate__(self):  # Keras' own process pool (without fork) pickles the data set
        state = dict(self.__dict__)
        state.update(_pool=None, _pool_lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pool_lock = threading.Lock()
