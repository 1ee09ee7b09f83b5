"""The arithmetic of benchmarks/bench_export.py's float32 floor (the timings themselves are not tested)."""

import keras
import pytest

from benchmarks.bench_export import _fp32_floor, conv_gflop


def test_convolutions_are_counted_by_hand():
    inputs = keras.Input((8, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8 x 10 x 4 outputs, 3 x 3 x 3 each
    x = keras.layers.MaxPooling2D()(x)  # not a convolution: not counted
    x = keras.layers.Conv2D(5, (1, 2), strides=2, padding="valid")(x)  # 2 x 2 x 5 outputs, 1 x 2 x 4 each
    model = keras.Model(inputs, x)
    multiply_adds = 8 * 10 * 4 * (3 * 3 * 3) + 2 * 2 * 5 * (1 * 2 * 4)
    assert conv_gflop(model) == pytest.approx(2 * multiply_adds / 1e9, rel=1e-12)


def test_the_floor_uses_the_fastest_keras_and_onnxruntime_rows_of_ssd300_at_batch_1():
    rows = [
        ["ssd300", 1, "Keras predict_on_batch (jax)", 200.0],
        ["ssd300", 1, "Keras predict_on_batch (tensorflow)", 150.0],
        ["ssd300", 8, "Keras predict_on_batch (tensorflow)", 30.0],
        ["ssd7", 1, "Keras predict_on_batch (tensorflow)", 3.0],
        ["ssd300", 1, "onnxruntime fp32 (exported from jax)", 140.0],
        ["ssd300", 1, "onnxruntime fp32 (exported from tensorflow)", 130.0],
        ["ssd300", 1, "onnxruntime int8 (exported from tensorflow)", 50.0],
    ]
    assert _fp32_floor(rows, 60.0, 400.0) == [
        ["SSD300 convolutions, one image (GFLOP)", 60.0],
        ["float32 matrix product in onnxruntime on this CPU (GFLOP/s)", 400],
        ["those convolutions at that rate (ms)", 150.0],
        ["onnxruntime float32, whole model with decoding (ms)", 130.0],
        ["the goal: the fastest Keras predict / 1.5 (ms)", 100.0],
    ]
