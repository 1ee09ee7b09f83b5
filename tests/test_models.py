"""The three builders: golden layer lists, sizes, modes, errors, `.keras` round trips."""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import DEFAULT_MODELS, SSD300_VOC  # noqa: E402
from golden.regenerate import layer_list  # noqa: E402

from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.layers.anchor_boxes import AnchorBoxes  # noqa: E402
from ssd_keras.layers.preprocessing import InputChannelSwap, InputMeanNormalization, InputStddevNormalization  # noqa: E402
from ssd_keras.models import presets  # noqa: E402
from ssd_keras.models.ssd7 import build_model  # noqa: E402
from ssd_keras.models.ssd300 import ssd_300  # noqa: E402
from ssd_keras.models.ssd512 import ssd_512  # noqa: E402

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
SSD300_SCALES = SSD300_VOC["scales"]
SSD512_SCALES = list(presets.SSD512_SCALES["pascal"])


@pytest.fixture(scope="module")
def default_models():
    return {name: build() for name, build in DEFAULT_MODELS.items()}


@pytest.mark.parametrize("name", sorted(DEFAULT_MODELS))
def test_layer_names_and_weight_shapes_equal_the_golden_list(name, default_models):
    with open(os.path.join(GOLDEN, f"{name}.json")) as f:
        golden = json.load(f)
    assert layer_list(default_models[name]) == golden


def test_golden_lists_hold_the_published_shapes():
    # Independent of the code: the shapes of the published SSD300 VOC file (spec §2.1).
    with open(os.path.join(GOLDEN, "ssd300_voc.json")) as f:
        shapes = dict((name, shapes) for name, shapes in json.load(f))
    conf = [84, 126, 126, 126, 84, 84]  # n_boxes [4, 6, 6, 6, 4, 4] x 21 classes
    sources = ["conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2"]
    in_channels = [512, 1024, 512, 256, 256, 256]
    for source, c, n_in in zip(sources, conf, in_channels):
        assert shapes[f"{source}_mbox_conf"] == [[3, 3, n_in, c], [c]]
        assert shapes[f"{source}_mbox_loc"] == [[3, 3, n_in, c // 21 * 4], [c // 21 * 4]]
        assert shapes[f"{source}_mbox_priorbox"] == []
    assert shapes["fc6"] == [[3, 3, 512, 1024], [1024]] and shapes["fc7"] == [[1, 1, 1024, 1024], [1024]]
    assert shapes["conv4_3_norm"] == [[512]]
    assert shapes["conv6_2"] == [[3, 3, 256, 512], [512]] and shapes["conv9_2"] == [[3, 3, 128, 256], [256]]
    with open(os.path.join(GOLDEN, "ssd512_voc.json")) as f:
        shapes512 = dict((name, shapes) for name, shapes in json.load(f))
    assert shapes512["conv10_2"] == [[4, 4, 128, 256], [256]] and shapes512["conv10_2_mbox_conf"] == [
        [3, 3, 256, 84],
        [84],
    ]
    with open(os.path.join(GOLDEN, "ssd7_udacity.json")) as f:
        shapes7 = dict((name, shapes) for name, shapes in json.load(f))
    assert shapes7["conv1"] == [[5, 5, 3, 32], [32]] and shapes7["bn1"] == [[32]] * 4
    assert shapes7["classes4"] == [[3, 3, 64, 24], [24]] and shapes7["boxes7"] == [[3, 3, 32, 16], [16]]


@pytest.mark.parametrize(
    "name, anchors, sizes",
    [
        ("ssd300_voc", 8732, [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]),
        ("ssd512_voc", 24564, [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]),
        ("ssd7_udacity", 11692, [(37, 60), (18, 30), (9, 15), (4, 7)]),
    ],
)
def test_output_sizes(name, anchors, sizes, default_models):
    model = default_models[name]
    assert tuple(model.output.shape) == (None, anchors, 21 + 12 if name != "ssd7_udacity" else 6 + 12)
    confs = [
        layer
        for layer in model.layers
        if layer.name.endswith("_mbox_conf") or layer.name.startswith("classes") and layer.name[7:].isdigit()
    ]
    assert [tuple(layer.output.shape[1:3]) for layer in confs] == sizes


# The encoder configurations of the original notebooks, for the default models.
ENCODERS = {name: presets.encoder_kwargs(name) for name in DEFAULT_MODELS}


@pytest.mark.parametrize("name", sorted(DEFAULT_MODELS))
def test_model_anchors_equal_the_encoders(name, default_models):
    model = default_models[name]
    sizes = [tuple(layer.output.shape[1:3]) for layer in model.layers if isinstance(layer, AnchorBoxes)]
    encoder = SSDInputEncoder(**{**ENCODERS[name], "predictor_sizes": sizes})
    h, w = model.input.shape[1:3]
    out = model.predict(np.full((1, h, w, 3), 127.0, np.float32), verbose=0)
    np.testing.assert_allclose(out[..., -8:], encoder.generate_encoding_template(1)[..., -8:], rtol=1e-5, atol=1e-6)
    n_classes = ENCODERS[name]["n_classes"] + 1
    np.testing.assert_allclose(out[..., :n_classes].sum(-1), 1.0, rtol=1e-5)  # softmax scores


def test_return_predictor_sizes():
    _, sizes = ssd_300((300, 300, 3), 20, scales=SSD300_SCALES, return_predictor_sizes=True)
    assert sizes.tolist() == [[38, 38], [19, 19], [10, 10], [5, 5], [3, 3], [1, 1]]
    _, sizes = build_model((96, 128, 3), 3, scales=[0.1, 0.3, 0.5, 0.7, 0.9], return_predictor_sizes=True)
    assert sizes.tolist() == [[12, 16], [6, 8], [3, 4], [1, 2]]


def test_preprocessing_layers_by_hand():
    model = build_model(
        (64, 64, 3),
        1,
        scales=[0.1, 0.3, 0.5, 0.7, 0.9],
        subtract_mean=[10, 20, 30],
        divide_by_stddev=2.0,
        swap_channels=[2, 1, 0],
    )
    assert [layer.name for layer in model.layers[1:5]] == [
        "identity_layer",
        "input_mean_normalization",
        "input_stddev_normalization",
        "input_channel_swap",
    ]
    probe = keras.Model(model.input, model.get_layer("input_channel_swap").output)
    x = np.full((1, 64, 64, 3), [12.0, 24.0, 36.0], np.float32)
    # (12 - 10, 24 - 20, 36 - 30) / 2 = (1, 2, 3), then reversed.
    np.testing.assert_allclose(probe.predict(x, verbose=0), np.full((1, 64, 64, 3), [3.0, 2.0, 1.0]))


def test_channel_swap_handles_any_number_of_channels():
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(InputChannelSwap([4, 0, 3, 1, 2])(x)), [[[[4, 0, 3, 1, 2]]]]
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(InputChannelSwap([1, 0])(x[..., :2])), [[[[1, 0]]]])
    with pytest.raises(ValueError, match="names a channel the input does not have"):
        InputChannelSwap([3, 2, 1, 0])(x[..., :3])
    with pytest.raises(ValueError, match="2 values of `subtract_mean` for an input with 5 channels"):
        InputMeanNormalization([1, 2])(x)
    with pytest.raises(ValueError, match="non-zero `divide_by_stddev`"):
        InputStddevNormalization([1, 0, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scales=None), "Either `min_scale` and `max_scale` or `scales`"),
        (dict(scales=SSD300_SCALES[:-1]), "Expected `scales` to hold 7 values"),
        (dict(aspect_ratios_per_layer=None), "At least one of `aspect_ratios_global`"),
        (dict(aspect_ratios_per_layer=[[1.0]] * 5), "Expected `aspect_ratios_per_layer` to hold 6 lists"),
        (dict(variances=[0.1, 0.1, 0.2]), "Expected 4 variance values"),
        (dict(variances=[0.1, 0.1, 0.2, 0.0]), "Expected all variances to be > 0"),
        (
            dict(steps=[8, 16, 32]),
            "Expected `steps` to be None, a number, or a list with one entry per predictor layer",
        ),
        (dict(offsets=[0.5] * 5), "Expected `offsets` to be None"),
        (dict(mode="train"), "Expected `mode` to be one of"),
        (dict(coords="xywh"), "Expected `coords` to be one of"),
        (dict(n_classes=0), "Expected `n_classes`"),
        (dict(image_size=(300, 300)), "Expected `image_size`"),
    ],
)
def test_builder_errors(kwargs, message):
    args = dict(image_size=(300, 300, 3), n_classes=20, scales=SSD300_SCALES)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ssd_300(**args)


@pytest.mark.parametrize(
    "builder, name, smallest, scales",
    [
        (ssd_300, "SSD300", 257, SSD300_SCALES),
        (ssd_512, "SSD512", 257, SSD512_SCALES),
        (build_model, "SSD7", 64, [0.2, 0.4, 0.6, 0.8, 0.95]),
    ],
)
def test_an_image_too_small_for_the_model_is_named_and_the_smallest_builds(builder, name, smallest, scales):
    # Keras failed deep inside ("MaxPooling2D ... zero or negative output size").
    for size in [(smallest - 1, smallest, 3), (smallest, smallest - 1, 3)]:
        with pytest.raises(
            ValueError,
            match=rf"{name} needs an `image_size` of at least {smallest}x{smallest} .* "
            rf"Received: image_size=\({size[0]}, {size[1]}, 3\)",
        ):
            builder(size, n_classes=2, scales=scales)
    model = builder((smallest, smallest, 3), n_classes=2, scales=scales)
    assert model.output.shape[1] > 0


def _round_trip(model, x, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
    return expected


MODES = ["training", "inference", "inference_fast"]


# Near-mean inputs keep a randomly initialised network's offsets small enough to decode.
# SSD512 holds no layer type that SSD300 lacks: one of its modes is enough.
@pytest.mark.parametrize(
    "builder, size, scales, mode",
    [
        *(
            pytest.param(ssd_300, 300, SSD300_SCALES, mode, id=f"ssd300-{mode}", marks=pytest.mark.slow)
            for mode in MODES
        ),
        pytest.param(ssd_512, 512, SSD512_SCALES, "inference", id="ssd512-inference", marks=pytest.mark.slow),
        *(pytest.param(build_model, 64, [0.2, 0.4, 0.6, 0.8, 0.95], mode, id=f"ssd7-{mode}") for mode in MODES),
    ],
)
def test_keras_round_trip_in_every_mode(builder, size, scales, mode, tmp_path):
    model = builder(
        (size, size, 3), 2, mode=mode, scales=scales, confidence_thresh=0.3, top_k=20, normalize_coords=True
    )
    x = np.random.default_rng(0).uniform(115, 125, (1, size, size, 3)).astype(np.float32)
    out = _round_trip(model, x, tmp_path)
    if mode != "training":
        assert out.shape == (1, 20, 6)
        decoder = model.get_layer("decoded_predictions")
        assert decoder.top_k == 20 and decoder.confidence_thresh == 0.3 and decoder.img_height == size
