"""`ssd_keras.Detector`: images of any size in, detections in each image's own pixels out, the
same on every runtime (Keras on each backend, onnxruntime), and INT8 quantisation."""

import os

import cv2
import keras
import numpy as np
import pytest
from conftest import BACKEND, assert_same_detections, calm_heads

from ssd_keras import Detector
from ssd_keras.errors import ArgumentError, DatasetError, NotAModelError
from ssd_keras.export.onnx import export_onnx
from ssd_keras.inference.loading import load_detector
from ssd_keras.models.decoding import add_decoding
from ssd_keras.models.files import save_model
from ssd_keras.models.presets import build, builder_kwargs

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

SHAPES = ["background", "circle", "rectangle", "triangle"]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
DEMO_MODEL = os.path.join(FIXTURES, "ssd7_shapes_demo.keras")


@pytest.fixture(scope="module")
def ssd7(tmp_path_factory):
    """A calm random SSD7 (64x80) decoding at 0.01, saved as .keras (with class names) and
    exported to .onnx."""
    folder = tmp_path_factory.mktemp("detector")
    keras.utils.set_random_seed(7)
    model, _ = build("ssd7", builder_kwargs("ssd7", 3, (64, 80, 3)), mode="training")
    calm_heads(model, np.random.default_rng(7).integers(0, 256, (2, 64, 80, 3)))
    model = add_decoding(model, confidence_thresh=0.01, top_k=100)
    save_model(model, str(folder / "ssd7.keras"), SHAPES)
    export_onnx(model, str(folder / "ssd7.onnx"), class_names=SHAPES)
    return model, folder


def _images():
    """Images of other sizes than the model's, grey and RGBA among them."""
    rng = np.random.default_rng(11)
    return [
        rng.integers(0, 256, (120, 200, 3), dtype=np.uint8),
        rng.integers(0, 256, (64, 80, 3), dtype=np.uint8),
        rng.integers(0, 256, (37, 51), dtype=np.uint8),
        rng.integers(0, 256, (90, 60, 4), dtype=np.uint8),
    ]


def _expected(model, images, confidence_thresh):
    """The obvious way: each image to 3 channels, resized to the input, the model's rows
    above the threshold, coordinates scaled back to the image."""
    height, width = model.inputs[0].shape[1:3]
    found = []
    for image in images:
        rgb = image if image.ndim == 3 and image.shape[2] == 3 else None
        if image.ndim == 2:
            rgb = np.stack([image] * 3, axis=-1)
        elif image.shape[2] == 4:
            rgb = image[..., :3]
        resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        rows = model.predict(resized[None].astype(np.float32), verbose=0)[0].astype(np.float64)
        rows = rows[rows[:, 1] > confidence_thresh]
        rows[:, 2:] *= [image.shape[1] / width, image.shape[0] / height] * 2
        found.append(rows)
    return found


def _rows(detections):
    return [np.column_stack([d.class_ids, d.scores, d.boxes]) for d in detections]


def test_detections_are_in_each_images_own_pixels_on_every_runtime(ssd7):
    model, folder = ssd7
    images = _images()
    expected = _expected(model, images, 0.2)
    assert sum(len(rows) for rows in expected) >= 4
    for source in (model, str(folder / "ssd7.keras"), str(folder / "ssd7.onnx")):
        detector = Detector(source, confidence_thresh=0.2, top_k=100, batch_size=3)
        assert detector.runtime == ("onnxruntime" if str(source).endswith(".onnx") else f"keras-{BACKEND}")
        assert detector.input_size == (64, 80) and detector.n_classes == 3
        found = detector(images)
        assert len(found) == 4
        assert_same_detections(_rows(found), expected, box_atol=2e-3)
        for detections in found:
            assert detections.class_names == [
                SHAPES[i] if source is not model else f"class_{i}" for i in detections.class_ids
            ]
    # A path, a single image, and the rows of a batch at the input size
    path = str(folder / "image.png")
    cv2.imwrite(path, images[0][..., ::-1])
    detector = Detector(str(folder / "ssd7.onnx"), confidence_thresh=0.2)
    [by_path] = detector(path)
    [by_array] = detector(images[0])
    np.testing.assert_allclose(by_path.boxes, by_array.boxes, atol=1e-3)
    batch = np.stack([cv2.resize(images[0], (80, 64)), images[1]])
    rows = detector.predict_on_batch(batch)
    assert rows.shape == (2, 100, 6) and rows.dtype == np.float32


def test_an_onnx_file_keeps_its_decoding_and_takes_a_higher_threshold(ssd7):
    model, folder = ssd7
    images = _images()[:2]
    onnx = Detector(str(folder / "ssd7.onnx"), confidence_thresh=0.4, top_k=3)
    keras_detector = Detector(model, confidence_thresh=0.4, top_k=3)
    assert_same_detections(_rows(onnx(images)), _rows(keras_detector(images)), box_atol=2e-3)
    assert max(len(d) for d in onnx(images)) <= 3
    with pytest.raises(ArgumentError, match=r"decodes detections above 0.01; a lower confidence_thresh \(0.001\)"):
        Detector(str(folder / "ssd7.onnx"), confidence_thresh=0.001)


def test_class_names_given_replace_the_stored_ones(ssd7):
    model, folder = ssd7
    detector = Detector(str(folder / "ssd7.onnx"), class_names=["disc", "box", "wedge"])
    assert detector.class_names == ["background", "disc", "box", "wedge"]
    with pytest.raises(ArgumentError, match="names 2 classes, the model has 3"):
        Detector(model, class_names=["a", "b"])


def test_errors_name_the_file_or_argument_at_fault(ssd7, tmp_path):
    model, folder = ssd7
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Detector(str(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(NotAModelError, match="junk.onnx"):
        Detector(str(tmp_path / "junk.onnx"))
    with pytest.raises(ArgumentError, match="runtime"):
        Detector(model, runtime="tensorrt")
    with pytest.raises(ArgumentError, match="runs .onnx files"):
        Detector(str(folder / "ssd7.keras"), runtime="onnxruntime")
    with pytest.raises(DatasetError, match="nowhere.jpg"):
        Detector(str(folder / "ssd7.onnx"))(str(tmp_path / "nowhere.jpg"))


def _shapes_images(root, n, seed):
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    info = make_shapes_dataset(str(root), n_trainval=n, n_test=6, seed=seed, verbose=False)
    with open(info["test"]) as f:
        test = [os.path.join(info["images_dir"], f"{name.strip()}.jpg") for name in f if name.strip()]
    return info, test


def _agreement(found, reference, score=0.5):
    """How many of the reference's confident detections the other run finds too (same class,
    IoU above 0.8), and how many there were."""
    from ssd_keras.boxes.geometry import iou

    hits = total = 0
    for mine, theirs in zip(found, reference):
        for box, class_id in zip(theirs.boxes[theirs.scores > score], theirs.class_ids[theirs.scores > score]):
            total += 1
            same = mine.boxes[mine.class_ids == class_id]
            hits += bool(len(same)) and iou(same, box[None], coords="corners", mode="outer_product").max() > 0.8
    return hits, total


def test_int8_folds_the_relu_after_a_convolution_into_its_output_range(tmp_path):
    # Conv -> ReLU -> Conv by hand: the quantised file has no ReLU left, and its output is the
    # float model's within the quantisation step (a ReLU dropped without clipping at 0 would let
    # the negative half through: errors of the size of the output itself).
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from ssd_keras.export.quantize import quantize_onnx

    rng = np.random.default_rng(0)
    weights = [
        helper.make_tensor("w1", TensorProto.FLOAT, (4, 3, 3, 3), rng.normal(size=(4, 3, 3, 3)).ravel()),
        helper.make_tensor("w2", TensorProto.FLOAT, (2, 4, 1, 1), rng.normal(size=(2, 4, 1, 1)).ravel()),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_relu_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 2, 8, 8))],
        initializer=weights,
    )
    source = str(tmp_path / "float.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    images = rng.normal(size=(16, 3, 8, 8)).astype(np.float32)
    path = quantize_onnx(source, str(tmp_path / "int8.onnx"), images)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert "Relu" not in ops and ops.count("Conv") == 2 and "QuantizeLinear" in ops
    run = {f: onnxruntime.InferenceSession(f, providers=["CPUExecutionProvider"]) for f in (source, path)}
    expected, got = (run[f].run(None, {"x": images[:1]})[0] for f in (source, path))
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()


@pytest.mark.slow
def test_int8_onnx_and_tflite_find_what_the_float_model_finds(tmp_path):
    import onnx

    from ssd_keras.export import export_model
    from ssd_keras.export.quantize import calibration_images

    info, test = _shapes_images(tmp_path / "shapes", 40, seed=5)
    model = load_detector(DEMO_MODEL, confidence_thresh=0.01)
    calibration = calibration_images([info["images_dir"]], (128, 128), limit=32)
    assert calibration.shape == (32, 128, 128, 3) and calibration.dtype == np.uint8
    path = export_model(
        model, str(tmp_path / "int8.onnx"), "onnx", class_names=SHAPES, int8=True, calibration=calibration
    )
    graph = onnx.load(path).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 14  # every convolution's kernel
    reference = Detector(model)(test)
    int8 = Detector(path)
    assert int8.class_names == SHAPES
    hits, total = _agreement(int8(test), reference)
    assert total >= 6 and hits >= 0.9 * total
    if BACKEND == "tensorflow":
        from ssd_keras.export.saved_model import run_tflite, tflite_interpreter

        tflite = export_model(model, str(tmp_path / "int8.tflite"), "tflite", int8=True)  # weights only
        kinds = [t["dtype"] for t in tflite_interpreter(tflite).get_tensor_details()]
        assert kinds.count(np.int8) >= 14  # every convolution's kernel
        resized = np.stack([cv2.resize(cv2.imread(p)[..., ::-1], (128, 128)) for p in test])
        rows = np.concatenate([run_tflite(tflite, image[None]) for image in resized])
        scale = [np.array([cv2.imread(p).shape[1] / 128, cv2.imread(p).shape[0] / 128] * 2) for p in test]
        from ssd_keras.inference.detector import Detections

        found = [
            Detections(r[r[:, 1] > 0.5, 2:] * s, r[r[:, 1] > 0.5, 1], r[r[:, 1] > 0.5, 0].astype(int), [])
            for r, s in zip(rows, scale)
        ]
        hits, total = _agreement(found, reference)
        assert hits >= 0.9 * total
