"""Exported detectors give the Keras model's detections: ONNX from every backend (and, under
TensorFlow, SavedModel and TFLite) against the decoding Keras model and the NumPy decoders,
for SSD7 (random and demo-trained weights) and SSD300, with both decoding layers.

Same rows, scores within 1e-5, coordinates within 1e-3 pixels; rows are matched by content,
so detections whose scores tie may come in either order (`conftest.assert_same_detections`)."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, assert_same_detections, calm_heads, pile_and_spread

from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast
from ssd_keras.export import export_model
from ssd_keras.export.onnx import METADATA_KEY, export_onnx
from ssd_keras.models.decoding import DECODED_LAYER, add_decoding
from ssd_keras.models.presets import build, builder_kwargs

onnxruntime = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
DEMO_MODEL = os.path.join(FIXTURES, "ssd7_shapes_demo.keras")
SHAPES = ["background", "circle", "rectangle", "triangle"]


def _random_ssd(name, n_classes, image_size, seed):
    """A training-mode SSD with calm random heads, and the images it is tested on."""
    keras.utils.set_random_seed(seed)
    model, _ = build(name, builder_kwargs(name, n_classes, image_size), mode="training")
    height, width = model.inputs[0].shape[1:3]
    images = np.random.default_rng(seed).integers(0, 256, (3, height, width, 3)).astype(np.uint8)
    calm_heads(model, images)
    return model, images


def _demo_ssd():
    """The demo-trained SSD7 (training mode: its raw predictions) and synthetic test images."""
    from ssd_keras.data.synthetic_shapes import make_image
    from ssd_keras.inference.loading import load_detector

    saved = load_detector(DEMO_MODEL)
    model = keras.Model(saved.inputs[0], saved.get_layer(DECODED_LAYER).input)
    rng = np.random.default_rng(3)
    images = [make_image(rng, SHAPES, size_range=((128, 128), (128, 128)))[0][..., ::-1] for _ in range(3)]
    return model, np.ascontiguousarray(np.stack(images))  # RGB


def _numpy_decoded(model, decoder, raw):
    """`decode_detections` (or `_fast`) of raw predictions, with the layer's own settings."""
    config = model.get_layer(DECODED_LAYER).get_config()
    numpy_decoder = decode_detections_fast if decoder == "fast" else decode_detections
    return numpy_decoder(
        raw,
        confidence_thresh=config["confidence_thresh"],
        iou_threshold=config["iou_threshold"],
        top_k=config["top_k"],
        input_coords=config["coords"],
        normalize_coords=config["normalize_coords"],
        img_height=config["img_height"],
        img_width=config["img_width"],
    )


CASES = {
    "ssd7-random": (lambda: _random_ssd("ssd7", 3, (96, 128, 3), 1), dict(confidence_thresh=0.3, top_k=50)),
    "ssd7-demo": (_demo_ssd, dict(confidence_thresh=0.01, top_k=200)),
    "ssd300-random": (lambda: _random_ssd("ssd300", 20, None, 2), dict(confidence_thresh=0.2, top_k=40)),
}


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["per-class", "fast"])
@pytest.mark.parametrize("case", list(CASES))
def test_exports_detect_what_keras_and_numpy_detect(case, decoder, tmp_path):
    make, decoding = CASES[case]
    raw_model, images = make()
    model = add_decoding(raw_model, **decoding, fast=decoder == "fast")
    expected = keras.ops.convert_to_numpy(model(images.astype(np.float32), training=False))
    numpy_rows = _numpy_decoded(model, decoder, raw_model.predict(images.astype(np.float32), verbose=0))
    assert sum(len(rows) for rows in numpy_rows) >= len(images)  # enough detections to compare
    assert_same_detections(expected, numpy_rows)

    path = export_onnx(model, str(tmp_path / "model.onnx"), class_names=SHAPES if "ssd7" in case else None)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] not in (1, 2, 3)  # a dynamic batch
    found = session.run(None, {"images": images})[0]
    assert found.shape == expected.shape
    assert_same_detections(found, expected)
    assert_same_detections(found, numpy_rows)
    np.testing.assert_array_equal(found[found[..., 1] == 0], 0)  # zero rows after the last detection
    one = session.run(None, {"images": images[1:2]})[0]  # another batch size, the same graph
    assert_same_detections(one, expected[1:2])

    if BACKEND == "tensorflow":
        import tensorflow as tf

        from ssd_keras.export.saved_model import run_tflite

        saved = export_model(model, str(tmp_path / "saved_model"), "saved_model")
        loaded = tf.saved_model.load(saved)  # kept: its function refers to its variables
        assert_same_detections(loaded.serve(tf.constant(images)).numpy(), expected)
        tflite = export_model(model, str(tmp_path / "model.tflite"), "tflite")
        served = np.concatenate([run_tflite(tflite, image[None]) for image in images])
        assert_same_detections(served, expected)


def test_the_onnx_file_says_its_classes_input_and_decoding_and_runs_in_one_layout(tmp_path):
    import onnx

    model, _ = build("ssd7", builder_kwargs("ssd7", 3, (64, 80, 3)), mode="inference_fast", confidence_thresh=0.2)
    path = export_onnx(model, str(tmp_path / "m.onnx"), input_dtype="float32", class_names=SHAPES)
    proto = onnx.load(path)
    info = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert info["class_names"] == SHAPES and info["n_classes"] == 3 and info["input_size"] == [64, 80]
    assert info["decoding"] == dict(
        confidence_thresh=0.2, iou_threshold=0.45, top_k=200, nms_max_output_size=400, fast=True
    )
    [graph_input] = proto.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim][1:] == [64, 80, 3]

    # Keras computes channels-last, ONNX's Conv and MaxPool channels-first: each exporter
    # wraps them in transposes, which onnxruntime cancels when nothing opaque stands between
    # them. Max pooling must be a MaxPool on every backend (not slices and gathers).
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("MaxPool") == sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) == 6
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    optimized = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert optimized.count("Transpose") <= 2  # of 15 convolutions and 6 poolings


def test_export_refuses_what_it_cannot_make(tmp_path):
    from ssd_keras.errors import ArgumentError

    training, _ = build("ssd7", builder_kwargs("ssd7", 3, (64, 64, 3)), mode="training")
    with pytest.raises(ArgumentError, match=r"decoded output.*add_decoding"):
        export_onnx(training, str(tmp_path / "m.onnx"))
    model = add_decoding(training)
    with pytest.raises(ArgumentError, match="input_dtype"):
        export_onnx(model, str(tmp_path / "m.onnx"), input_dtype="float16")
    with pytest.raises(ArgumentError, match="format"):
        export_model(model, str(tmp_path / "m.pb"), "pb")
    with pytest.raises(ArgumentError, match="calibration"):
        export_model(model, str(tmp_path / "m.onnx"), int8=True)
    with pytest.raises(ArgumentError, match="SavedModel"):
        export_model(model, str(tmp_path / "m"), "saved_model", int8=True, calibration=np.zeros((1, 64, 64, 3)))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("fast", [False, True])
def test_the_exported_nms_takes_the_best_candidates_first_and_all_when_needed(fast, tmp_path):
    # 1500 candidates of one class; the NMS first runs on the best 1024. With a pile of one
    # box on top, those give one detection and the pass runs again on every candidate; with
    # the disjoint boxes on top, the best 1024 are enough. One file, both branches.
    import onnx

    from ssd_keras.layers import DecodeDetections, DecodeDetectionsFast

    settings = dict(confidence_thresh=0.01, iou_threshold=0.45, top_k=50, normalize_coords=False)
    inputs = keras.Input((1500, 14, 1))
    layer = (DecodeDetectionsFast if fast else DecodeDetections)(coords="corners", name=DECODED_LAYER, **settings)
    model = keras.Model(inputs, layer(keras.layers.Reshape((1500, 14))(inputs)))
    path = export_onnx(model, str(tmp_path / "nms.onnx"), input_dtype="float32")
    assert "If" in {node.op_type for node in onnx.load(path).graph.node}  # the choice is in the graph

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    numpy_decoder = decode_detections_fast if fast else decode_detections
    for pile_first, second_score in ((True, 0.8), (False, 0.9 - 1e-4)):
        y = pile_and_spread(pile_first=pile_first)
        expected = numpy_decoder(y, input_coords="corners", **settings)[0]
        assert len(expected) == 50 and expected[1, 1] == pytest.approx(second_score)
        found = session.run(None, {"images": y[..., None]})[0]
        assert_same_detections(found, [expected], score_atol=1e-6, box_atol=1e-4)
