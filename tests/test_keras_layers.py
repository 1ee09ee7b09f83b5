import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import SSD300_VOC  # noqa: E402

from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.layers.anchor_boxes import AnchorBoxes  # noqa: E402
from ssd_keras.layers.l2_normalization import L2Normalization  # noqa: E402

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch


def _round_trip(model, tmp_path, x):
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    return reloaded


def test_anchor_boxes_equal_the_encoders_for_ssd300():
    encoder = SSDInputEncoder(**SSD300_VOC)
    for i, size in enumerate(SSD300_VOC["predictor_sizes"]):
        layer = AnchorBoxes(
            300,
            300,
            encoder.scales[i],
            encoder.scales[i + 1],
            encoder.aspect_ratios[i],
            True,
            encoder.steps[i],
            encoder.offsets[i],
            False,
            encoder.variances,
            "centroids",
            True,
        )
        out = keras.ops.convert_to_numpy(layer(np.zeros((2,) + tuple(size) + (3,), np.float32)))
        assert out.shape == (2,) + tuple(size) + (layer.n_boxes, 8)
        np.testing.assert_allclose(out[1, ..., :4], encoder.boxes_list[i], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            out[0, ..., 4:], np.broadcast_to(encoder.variances, out.shape[1:-1] + (4,)), rtol=1e-6
        )


def test_anchor_boxes_config_keeps_steps_and_offsets(tmp_path):
    layer = AnchorBoxes(
        300, 300, 0.1, 0.2, [1.0, 2.0, 0.5], this_steps=8, this_offsets=(0.5, 0.25), normalize_coords=True, name="a"
    )
    config = layer.get_config()
    assert config["this_steps"] == 8.0 and config["this_offsets"] == [0.5, 0.25]
    clone = AnchorBoxes.from_config(config)
    x = np.zeros((1, 38, 38, 4), np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(layer(x)))
    inputs = keras.Input((38, 38, 4))
    model = keras.Model(
        inputs, AnchorBoxes(300, 300, 0.1, 0.2, this_steps=8, this_offsets=0.5, normalize_coords=True)(inputs)
    )
    reloaded = _round_trip(model, tmp_path, x)
    assert reloaded.layers[1].this_steps == 8.0  # not silently 300 / 38


def test_anchor_boxes_errors():
    with pytest.raises(ValueError, match="0 <= this_scale <= 1"):
        AnchorBoxes(300, 300, 1.2, 1.3)
    with pytest.raises(ValueError, match="4 variance values"):
        AnchorBoxes(300, 300, 0.1, 0.2, variances=[0.1])
    with pytest.raises(ValueError, match="Expected `coords` to be one of"):
        AnchorBoxes(300, 300, 0.1, 0.2, coords="xywh")


def test_l2_normalization_by_hand(tmp_path):
    # (3, 4) has norm 5: (0.6, 0.8) * 20 = (12, 16).
    x = np.array([[[[3.0, 4.0]], [[0.0, 0.0]]]], np.float32)
    inputs = keras.Input((2, 1, 2))
    layer = L2Normalization(gamma_init=20, name="conv4_3_norm")
    model = keras.Model(inputs, layer(inputs))
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out[0, 0, 0], [12.0, 16.0], rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1, 0], [0.0, 0.0])  # the epsilon keeps zeros finite
    assert [w.shape for w in layer.weights] == [(2,)] and layer.trainable_weights == layer.weights
    layer.gamma.assign([1.0, 2.0])
    np.testing.assert_allclose(model.predict(x, verbose=0)[0, 0, 0], [0.6, 1.6], rtol=1e-6)
    reloaded = _round_trip(model, tmp_path, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded.get_layer("conv4_3_norm").gamma), [1.0, 2.0])
