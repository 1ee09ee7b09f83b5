"""`background_id` is honoured by every component that reads class columns: the encoder
(tested in test_ssd_input_encoder), the loss, the NumPy decoders and the decoding layers.
Each is checked on the same data with the background moved from column 0 to column 2:
the results must be those of column 0, with the class ids moved the same way."""

import keras
import numpy as np
import pytest

from ssd_keras.boxes.layout import CLASSES, OFFSETS
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_debug, decode_detections_fast
from ssd_keras.layers.decode_detections import DecodeDetections
from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast
from ssd_keras.losses.ssd_loss import SSDLoss

pytestmark = pytest.mark.backends
ORDER = [1, 2, 0, 3]  # new column k holds old column ORDER[k]: the background (old 0) moves to column 2
OLD_TO_NEW = np.argsort(ORDER)  # old class id -> new class id


def _moved(y):
    y = np.array(y)
    y[..., CLASSES] = y[..., CLASSES][..., ORDER]
    return y


def _predictions(seed=0, n_images=2):
    rng = np.random.default_rng(seed)
    encoder = SSDInputEncoder(60, 80, 3, [(6, 8), (3, 4)], scales=[0.2, 0.5, 0.9], variances=[0.1, 0.1, 0.2, 0.2])
    labels = [np.array([[1, 5, 5, 40, 30], [3, 30, 20, 75, 55]], float), np.array([[2, 10, 12, 50, 50]], float)]
    y_true = encoder(labels)
    logits = rng.normal(0, 2, y_true[..., CLASSES].shape)
    y_pred = y_true.copy()
    y_pred[..., CLASSES] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y_pred[..., OFFSETS] += rng.normal(0, 0.5, y_pred[..., OFFSETS].shape)
    return y_true, y_pred.astype(np.float32), encoder


def _renumbered(rows):
    rows = np.array(rows, dtype=np.float64).reshape(-1, 6)
    rows[:, 0] = OLD_TO_NEW[rows[:, 0].astype(int)]
    return rows


def test_the_encoder_and_the_loss_agree_on_a_moved_background():
    y_true, y_pred, encoder = _predictions()
    moved = SSDInputEncoder(
        60, 80, 3, [(6, 8), (3, 4)], scales=[0.2, 0.5, 0.9], variances=[0.1, 0.1, 0.2, 0.2], background_id=2
    )
    labels = [
        np.array([[OLD_TO_NEW[1], 5, 5, 40, 30], [OLD_TO_NEW[3], 30, 20, 75, 55]], float),
        np.array([[OLD_TO_NEW[2], 10, 12, 50, 50]], float),
    ]
    np.testing.assert_array_equal(moved(labels), _moved(y_true))  # the encoder (its own test has more)
    expected = keras.ops.convert_to_numpy(SSDLoss().compute_loss(y_true, y_pred))
    got = keras.ops.convert_to_numpy(SSDLoss(background_id=2).compute_loss(_moved(y_true), _moved(y_pred)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # The background's column is what mining reads: the loss differs if it is not given.
    assert not np.allclose(
        keras.ops.convert_to_numpy(SSDLoss().compute_loss(_moved(y_true), _moved(y_pred))), expected, rtol=1e-3
    )
    assert SSDLoss(background_id=2).compute_loss.get_config()["background_id"] == 2
    with pytest.raises(ValueError, match="background_id"):
        SSDLoss(background_id=-1)
    with pytest.raises(ValueError, match="is not one of the 4 class columns"):
        SSDLoss(background_id=4).compute_loss(y_true, y_pred)


@pytest.mark.parametrize("decoder", [decode_detections, decode_detections_fast])
def test_the_numpy_decoders_honour_a_moved_background(decoder):
    _, y_pred, _ = _predictions(1)
    args = dict(confidence_thresh=0.3, iou_threshold=0.45, top_k=20, img_height=60, img_width=80)
    for expected, got in zip(decoder(y_pred, **args), decoder(_moved(y_pred), background_id=2, **args)):
        assert len(expected) > 0
        np.testing.assert_allclose(got, _renumbered(expected), rtol=1e-6)
    debug = decode_detections_debug(_moved(y_pred), background_id=2, **args)
    np.testing.assert_allclose(debug[0][:, 1:], _renumbered(decode_detections(y_pred, **args)[0]), rtol=1e-6)
    with pytest.raises(ValueError, match="is not one of the 4 class columns"):
        decoder(y_pred, background_id=4, **args)


@pytest.mark.parametrize(
    "layer_class, decoder", [(DecodeDetections, decode_detections), (DecodeDetectionsFast, decode_detections_fast)]
)
def test_the_decoding_layers_honour_a_moved_background(layer_class, decoder):
    _, y_pred, _ = _predictions(2)
    args = dict(confidence_thresh=0.3, iou_threshold=0.45, top_k=20, img_height=60, img_width=80)
    layer = layer_class(background_id=2, **args)
    out = keras.ops.convert_to_numpy(layer(_moved(y_pred)))
    for image, expected in zip(out, decoder(y_pred, **args)):
        n = len(expected)
        assert n > 0
        np.testing.assert_allclose(image[:n], _renumbered(expected), rtol=1e-5, atol=1e-3)
    assert layer_class.from_config(layer.get_config()).background_id == 2
    with pytest.raises(ValueError, match="is not one of the 4 class columns"):
        layer_class(background_id=4, **args)(y_pred)
