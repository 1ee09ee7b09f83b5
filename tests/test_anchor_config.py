"""One anchor configuration: the encoder reads it from the model (`SSDInputEncoder.from_model`),
the builders and the encoder resolve it with one function (`anchor_utils.AnchorConfig`),
and the notebook presets live in one module (`ssd_keras.models.presets`)."""

import numpy as np
import pytest
from conftest import DEFAULT_MODELS

from ssd_keras.boxes.anchors import AnchorConfig
from ssd_keras.boxes.layout import ANCHORS, VARIANCES
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.models import presets
from ssd_keras.models.presets import builder, make_encoder


def _model_anchors(model):
    h, w = model.input.shape[1:3]
    out = model.predict(np.full((1, h, w, 3), 127.0, np.float32), verbose=0)
    return out[0, :, ANCHORS], out[0, :, VARIANCES]


@pytest.mark.parametrize("name, coords", [(name, "minmax") for name in DEFAULT_MODELS] + [("ssd7_udacity", "corners")])
def test_the_encoder_of_a_model_has_its_anchors(name, coords):
    kwargs = dict(presets.model_kwargs(name), coords=coords)
    model = builder(presets.get(name).architecture)(**kwargs)
    encoder = SSDInputEncoder.from_model(model, neg_iou_limit=0.4)
    assert encoder.coords == coords and encoder.neg_iou_limit == 0.4
    assert encoder.predictor_sizes.tolist() == [list(size) for size in presets.get(name).predictor_sizes]
    anchors, variances = _model_anchors(model)
    template = encoder.generate_encoding_template(1)[0]
    np.testing.assert_allclose(template[:, ANCHORS], anchors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(template[:, VARIANCES], variances, rtol=1e-6)
    # The notebooks' encoder, through the command line's helper: it used to drop `coords`.
    assert make_encoder(presets.get(name).architecture, model).coords == coords


def test_the_encoder_reads_every_anchor_setting_of_the_model():
    # Non-default everything, on SSD7 (fast to build).
    settings = dict(
        scales=[0.15, 0.3, 0.5, 0.7, 0.9],
        aspect_ratios_per_layer=[[1.0, 2.0], [0.5, 1.0], [1.0], [3.0, 1.0]],
        two_boxes_for_ar1=False,
        steps=[8, (16, 12), 32, 64],
        offsets=[0.5, 0.25, (0.0, 0.5), 0.5],
        clip_boxes=True,
        variances=[0.1, 0.1, 0.2, 0.2],
        coords="corners",
        normalize_coords=False,
    )
    model = builder("ssd7")((96, 128, 3), 3, **settings)
    encoder = SSDInputEncoder.from_model(model)
    direct = SSDInputEncoder(96, 128, 3, encoder.predictor_sizes, **settings)
    np.testing.assert_array_equal(encoder.generate_encoding_template(1), direct.generate_encoding_template(1))
    anchors, _ = _model_anchors(model)
    np.testing.assert_allclose(encoder.generate_encoding_template(1)[0, :, ANCHORS], anchors, rtol=1e-5, atol=1e-4)
    config, sizes = AnchorConfig.from_model(model)
    assert config.steps == (8.0, (16.0, 12.0), 32.0, 64.0) or config.steps[1] == (16, 12)
    assert config == direct.anchor_config


def test_from_model_errors():
    import keras

    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="has none"):
        SSDInputEncoder.from_model(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
    model = builder("ssd7")((64, 64, 3), 2, scales=[0.2, 0.4, 0.6, 0.8, 0.95])
    with pytest.raises(ValueError, match="anchor settings come from the model"):
        SSDInputEncoder.from_model(model, scales=[0.1] * 5)


def test_presets_are_the_notebooks_configurations():
    # The values the original notebooks pass (spec), written out once more here on purpose.
    voc = presets.model_kwargs("ssd300_voc")
    assert voc["scales"] == [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05] and voc["steps"] == [8, 16, 32, 64, 100, 300]
    assert voc["aspect_ratios_per_layer"][1] == [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0] and voc["subtract_mean"] == [
        123,
        117,
        104,
    ]
    assert presets.model_kwargs("ssd300_coco")["scales"] == [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
    assert presets.model_kwargs("ssd512_voc")["steps"] == [8, 16, 32, 64, 128, 256, 512]
    assert presets.model_kwargs("ssd512_coco", n_classes=80)["scales"][-1] == 1.06
    udacity = presets.model_kwargs("ssd7_udacity")
    assert udacity["image_size"] == (300, 480, 3) and udacity["variances"] == [1.0] * 4 and udacity["n_classes"] == 5
    assert presets.get("ssd7_udacity").matching["neg_iou_limit"] == 0.3
    voc["scales"].append(9)  # a copy each time
    assert len(presets.model_kwargs("ssd300_voc")["scales"]) == 7
    with pytest.raises(ValueError, match="Expected a preset"):
        presets.get("ssd9000")
