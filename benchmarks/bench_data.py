"""Benchmark of the input pipeline: images per second through the SSD300 training chain.

SSDDataAugmentation (photometric distortions, expand, IoU-constrained crop, flip,
resize to 300x300) plus the SSD300 Pascal VOC `SSDInputEncoder`, batches of 16, from
JPEG files of Pascal VOC size (500x375, 1-4 boxes each) written to a temporary
directory. Measured four ways: `generate()` in one thread; the Keras adapter
(`keras_dataset`) read by Keras' own iterator with 2 worker threads and with 2 worker
processes (forked, shared-memory slots); and the latter through the `tf.data` pipeline
that `model.fit` reads, tensors included. Prints the median of repeated runs.

    python benchmarks/bench_data.py [--images 320] [--repeats 3]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import results  # noqa: E402
from benchmarks.bench_core import SSD300_VOC  # noqa: E402
from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation  # noqa: E402
from ssd_keras.data.generator import DataGenerator  # noqa: E402
from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402


def write_dataset(directory, n_images, rng):
    filenames, labels = [], []
    for i in range(n_images):
        image = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(image, (9, 9), 3)  # JPEG-friendly texture
        boxes = []
        for _ in range(rng.integers(1, 5)):
            w, h = rng.uniform(40, 300), rng.uniform(40, 250)
            x, y = rng.uniform(0, 500 - w), rng.uniform(0, 375 - h)
            boxes.append([rng.integers(1, 21), x, y, x + w, y + h])
        path = os.path.join(directory, f"{i:05d}.jpg")
        cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        filenames.append(path)
        labels.append(np.array(boxes))
    return DataGenerator(filenames=filenames, labels=labels, verbose=False)


# `bench_gpu.py`'s pipeline case uses these two. They live here, in a module its fork-server
# children import by name: defined in bench_gpu.py, run as a script, they would belong to
# `__main__`, which the worker start hides from the children (`batch_workers._starting`).
def _build_alone(data, batches, barrier, results):
    """One independent builder: a batch to warm up, then `batches` more, timed from the
    moment every builder is ready. OpenCV runs one thread, as in the pool's workers."""
    cv2.setNumThreads(1)
    try:
        data._build((0, data._batch_indices(0)))
        barrier.wait()
        start = time.perf_counter()
        for step in range(1, batches + 1):
            data._build((step, data._batch_indices(step)))
        results.put(time.perf_counter() - start)
    except BaseException as error:  # noqa: BLE001 - the others stop waiting, the parent hears why
        barrier.abort()
        results.put(f"{type(error).__name__}: {error}")


def independent_builders(data, processes, batches):
    """Images/s of `processes` processes that each build `batches` batches of the
    `keras_dataset` `data` on their own, all at once (started as its worker processes
    would be: forked, or from a fork server under JAX)."""
    import multiprocessing

    from ssd_keras.data.batch_workers import _starting, default_start_method

    start_method = default_start_method()
    context = multiprocessing.get_context(start_method)
    barrier, results = context.Barrier(processes), context.SimpleQueue()
    builders = [
        context.Process(target=_build_alone, args=(data, batches, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    with _starting(start_method):  # as the pool starts its workers (OpenCV's threads, the main module)
        for builder in builders:
            builder.start()
    seconds = [results.get() for _ in builders]
    for builder in builders:
        builder.join()
    errors = [value for value in seconds if isinstance(value, str)]
    if errors:
        raise RuntimeError(f"An independent builder failed: {errors[0]}")
    return processes * batches * data.batch_size / max(seconds)


def images_per_second(run, n_images, repeats):
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(n_images / (time.perf_counter() - start))
    return float(np.median(rates))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=320, help="images per measured pass (default 320)")
    parser.add_argument("--repeats", type=int, default=3, help="measured passes (default 3)")
    results.add_argument(parser)
    args = parser.parse_args()
    encoder = SSDInputEncoder(**SSD300_VOC)
    batch_size = 16
    n_batches = args.images // batch_size
    with tempfile.TemporaryDirectory() as directory:
        dataset = write_dataset(directory, args.images, np.random.default_rng(0))
        chain = SSDDataAugmentation(300, 300, rng=0)

        def serial():
            batches = dataset.generate(batch_size, transformations=[chain], label_encoder=encoder)
            for _ in range(n_batches):
                next(batches)

        def adapter(use_multiprocessing, tf_data=False):
            train = dataset.keras_dataset(
                batch_size,
                transformations=[chain],
                label_encoder=encoder,
                workers=2,
                use_multiprocessing=use_multiprocessing,
                seed=0,
            )
            from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

            state = {}

            def run():
                if tf_data:  # one adapter for all passes, as fit keeps one
                    if not state:
                        state["adapter"] = PyDatasetAdapter(train, shuffle=False)
                        state["dataset"] = state["adapter"].get_tf_dataset()
                    batches = iter(state["dataset"])
                else:
                    state["adapter"] = PyDatasetAdapter(train, shuffle=False)
                    batches = state["adapter"].get_numpy_iterator()
                for _ in zip(range(n_batches), batches):
                    pass
                state["adapter"].on_epoch_end()

            return run

        serial()  # warm-up
        rows = [
            ("generate(), 1 thread", images_per_second(serial, args.images, args.repeats)),
            ("keras_dataset(workers=2), threads", images_per_second(adapter(False), args.images, args.repeats)),
            (
                "keras_dataset(workers=2, use_multiprocessing=True)",
                images_per_second(adapter(True), args.images, args.repeats),
            ),
            (
                "  the same, through tf.data as fit reads it",
                images_per_second(adapter(True, tf_data=True), args.images, args.repeats),
            ),
        ]
    print(f"SSDDataAugmentation + SSD300 encoder, batch {batch_size}, 500x375 JPEG -> 300x300, {os.cpu_count()} CPUs")
    for name, rate in rows:
        print(f"{name:56s} {rate:8.0f} images/s")
    results.save(
        args,
        "bench_data",
        "The SSD300 input pipeline: SSDDataAugmentation and the encoder, batches of 16",
        ["input pipeline", "images/s"],
        [[name.strip(), round(rate)] for name, rate in rows],
        f"500x375 JPEG files to 300x300 targets, medians of {args.repeats} passes of {args.images} images",
    )


if __name__ == "__main__":
    main()
