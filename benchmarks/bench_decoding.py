"""The decoding layers on the current Keras backend against the NumPy decoders.

SSD300 (Pascal VOC, 8732 anchors, 21 classes), batch 8, the model-like predictions of
`bench_core.random_predictions`: at ``confidence_thresh=0.01`` almost every class of
every anchor is a candidate (the evaluation setting, the worst case), at 0.5 a few
dozen per image. The layers run inside a Keras model through ``predict_on_batch``
(compiled by `tf.function` on TensorFlow, `jax.jit` on JAX, eager on PyTorch), after
a warm-up; the NumPy decoders on the same arrays. Medians (and quartiles) in ms.

    KERAS_BACKEND=jax python benchmarks/bench_decoding.py [--repeats 20] [--json FILE]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import results  # noqa: E402
from benchmarks.bench_core import SSD300_VOC, random_predictions, run_times  # noqa: E402


def decoding_rows(repeats, batch_size=8, seed=0):
    """[(name, [p25, p50, p75] in ms)] for the layers and the NumPy decoders."""
    import keras

    from ssd_keras.encoding.input_encoder import SSDInputEncoder
    from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast
    from ssd_keras.layers.decode_detections import DecodeDetections
    from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast

    rng = np.random.default_rng(seed)
    y = random_predictions(rng, SSDInputEncoder(**SSD300_VOC), batch_size)
    size = dict(img_height=300, img_width=300)
    cases = []
    for conf in (0.01, 0.5):
        for name, layer_class, numpy_fn, numpy_args in (
            ("DecodeDetections", DecodeDetections, decode_detections, dict(top_k=200)),
            ("DecodeDetectionsFast", DecodeDetectionsFast, decode_detections_fast, dict(top_k=200)),
        ):
            inputs = keras.Input(y.shape[1:])
            model = keras.Model(
                inputs, layer_class(confidence_thresh=conf, iou_threshold=0.45, top_k=200, **size)(inputs)
            )
            cases.append((f"{name} layer, conf {conf}", lambda m=model: m.predict_on_batch(y)))
            cases.append(
                (
                    f"{numpy_fn.__name__} (NumPy), conf {conf}",
                    lambda f=numpy_fn, c=conf, a=numpy_args: f(y, confidence_thresh=c, iou_threshold=0.45, **a, **size),
                )
            )
    return [(name, np.percentile(run_times(fn, repeats, warmup=2) * 1e3, [25, 50, 75]).tolist()) for name, fn in cases]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (default 20)")
    results.add_argument(parser)
    args = parser.parse_args()
    import keras

    rows = decoding_rows(args.repeats)
    print(f"backend: {keras.backend.backend()}, SSD300, batch 8")
    print(f"{'case':48s} {'median ms':>10s} {'p25':>8s} {'p75':>8s}")
    for name, (p25, p50, p75) in rows:
        print(f"{name:48s} {p50:10.2f} {p25:8.2f} {p75:8.2f}")
    backend = keras.backend.backend()
    results.save(
        args,
        f"bench_decoding_{backend}",
        f"Decoding SSD300's raw output, batch 8, on {backend}",
        ["case", "median ms", "p25 ms", "p75 ms"],
        [[name, round(p50, 2), round(p25, 2), round(p75, 2)] for name, (p25, p50, p75) in rows],
        f"medians of {args.repeats} runs; the layers through predict_on_batch, compiled as the backend does",
    )


if __name__ == "__main__":
    main()
