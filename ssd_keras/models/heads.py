"""What the three model builders share: argument resolution, the predictor heads and
the output modes.

An SSD model is a base network plus, for each predictor layer (a "source" feature
map), a 3x3 class convolution, a 3x3 box-offset convolution and an `AnchorBoxes`
layer; the three are reshaped to one row per anchor and concatenated over layers.
The builders describe their sources as ``[(prefix, tensor), ...]`` and a `HeadNames`
scheme derives every layer name from the prefix, so the Caffe-style names of the
original (``conv4_3_norm_mbox_conf``, ``classes4``...) and with them the published
weight files keep working.
"""

import dataclasses

import keras
import numpy as np

from ssd_keras.boxes.anchors import AnchorConfig
from ssd_keras.boxes.geometry import check_one_of
from ssd_keras.layers.anchor_boxes import AnchorBoxes
from ssd_keras.layers.decode_detections import DecodeDetections
from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast
from ssd_keras.layers.weight_decay import L2WeightDecay

MODES = ("training", "inference", "inference_fast")


@dataclasses.dataclass(frozen=True)
class HeadNames:
    """Layer names of the predictor heads. `conf`, `loc` and `priorbox` are format
    strings of the source prefix; the others are the names of the model-wide layers."""

    conf: str
    loc: str
    priorbox: str
    reshape_suffix: str
    conf_concat: str
    loc_concat: str
    priorbox_concat: str
    softmax: str


# ssd_300 / ssd_512: conv4_3_norm_mbox_conf, conv4_3_norm_mbox_conf_reshape, ..., mbox_conf.
CAFFE_NAMES = HeadNames(
    "{}_mbox_conf",
    "{}_mbox_loc",
    "{}_mbox_priorbox",
    "_reshape",
    "mbox_conf",
    "mbox_loc",
    "mbox_priorbox",
    "mbox_conf_softmax",
)
# build_model (SSD7): classes4, classes4_reshape, ..., classes_concat.
SSD7_NAMES = HeadNames(
    "classes{}",
    "boxes{}",
    "anchors{}",
    "_reshape",
    "classes_concat",
    "boxes_concat",
    "anchors_concat",
    "classes_softmax",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The resolved, validated arguments of a builder: the input, the classes, the mode,
    and the anchor settings (`anchor_utils.AnchorConfig`, which `SSDInputEncoder.from_model`
    reads back from the model's `AnchorBoxes` layers)."""

    img_height: int
    img_width: int
    img_channels: int
    n_classes: int  # positive classes plus background
    mode: str
    anchors: AnchorConfig

    @property
    def n_boxes(self):
        """The anchors per feature-map position of each predictor layer."""
        return self.anchors.n_boxes


def resolve_model_config(n_predictor_layers, image_size, n_classes, mode, min_size=("SSD", 1), **anchor_args):
    """Checks a builder's arguments as the original did and resolves the per-layer lists.

    `min_size` is (model name, the smallest height and width the model can take).

    `anchor_args` are those of `anchor_utils.AnchorConfig.resolve` (scales, aspect
    ratios, steps, offsets, clipping, variances, coords, normalize_coords).

    Raises:
        ValueError: for a bad image size or class count, an unknown `mode` or `coords`,
            missing scales or aspect ratios, or lists of the wrong length, as in
            `ssd_keras.boxes.anchors`.
    """
    check_one_of("mode", mode, MODES)
    if len(image_size) != 3 or any(int(v) != v or v < 1 for v in image_size):
        raise ValueError(f"Expected `image_size` to be (height, width, channels). Received: image_size={image_size!r}")
    name, smallest = min_size
    if min(image_size[:2]) < smallest:
        # Keras would fail deep inside, in a pooling or convolution "with zero or negative output size".
        raise ValueError(
            f"{name} needs an `image_size` of at least {smallest}x{smallest} (height and width): its last layers "
            f"would have no cell left. Received: image_size={tuple(image_size)!r}"
        )
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(
            f"Expected `n_classes` to be the number of positive classes (>= 1). Received: n_classes={n_classes!r}"
        )
    anchors = AnchorConfig.resolve(n_predictor_layers, int(image_size[0]), int(image_size[1]), **anchor_args)
    return ModelConfig(
        img_height=int(image_size[0]),
        img_width=int(image_size[1]),
        img_channels=int(image_size[2]),
        n_classes=int(n_classes) + 1,
        mode=mode,
        anchors=anchors,
    )


def conv2d(filters, kernel_size, name, l2_regularization, **kwargs):
    """A Conv2D as the original made them: he_normal kernel, L2 weight decay, zero bias."""
    kwargs.setdefault("padding", "same")
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        kernel_initializer="he_normal",
        kernel_regularizer=L2WeightDecay(l2_regularization) if l2_regularization else None,
        name=name,
        **kwargs,
    )


def predictor_heads(sources, config, names, l2_regularization):
    """Builds the heads on `sources` and returns (predictions, conf layer outputs).

    Args:
        sources: list of ``(prefix, tensor)``, one per predictor layer.
        config: the `ModelConfig`.
        names: a `HeadNames`.
        l2_regularization: weight decay of the head convolutions.

    Returns:
        the 'predictions' tensor (batch, n_boxes_total, n_classes + 12) and the list of
        class-convolution outputs (for `return_predictor_sizes`).
    """
    # Everything after the convolutions runs in float32, also under mixed precision:
    # the softmax feeds a log loss and the anchors need more than float16's 11 bits.
    f32 = dict(dtype="float32")
    confs, locs, priors, conf_outputs = [], [], [], []
    for i, (prefix, tensor) in enumerate(sources):
        n = config.n_boxes[i]
        conf = conv2d(n * config.n_classes, (3, 3), names.conf.format(prefix), l2_regularization)(tensor)
        loc = conv2d(n * 4, (3, 3), names.loc.format(prefix), l2_regularization)(tensor)
        prior = AnchorBoxes(**config.anchors.layer_args(i), name=names.priorbox.format(prefix))(loc)
        conf_outputs.append(conf)
        suffix = names.reshape_suffix
        confs.append(keras.layers.Reshape((-1, config.n_classes), name=names.conf.format(prefix) + suffix, **f32)(conf))
        locs.append(keras.layers.Reshape((-1, 4), name=names.loc.format(prefix) + suffix, **f32)(loc))
        priors.append(keras.layers.Reshape((-1, 8), name=names.priorbox.format(prefix) + suffix, **f32)(prior))
    conf = keras.layers.Concatenate(axis=1, name=names.conf_concat, **f32)(confs)
    loc = keras.layers.Concatenate(axis=1, name=names.loc_concat, **f32)(locs)
    prior = keras.layers.Concatenate(axis=1, name=names.priorbox_concat, **f32)(priors)
    conf = keras.layers.Activation("softmax", name=names.softmax, **f32)(conf)
    predictions = keras.layers.Concatenate(axis=2, name="predictions", **f32)([conf, loc, prior])
    return predictions, conf_outputs


def finish_model(inputs, predictions, conf_outputs, config, return_predictor_sizes, decode_args):
    """The model of `config.mode`, with ``predictor_sizes`` if asked for.

    'training' outputs the raw predictions; 'inference' and 'inference_fast' add a
    `DecodeDetections` / `DecodeDetectionsFast` layer named 'decoded_predictions'.
    """
    if config.mode == "training":
        outputs = predictions
    else:
        layer = DecodeDetections if config.mode == "inference" else DecodeDetectionsFast
        anchors = config.anchors
        outputs = layer(
            coords=anchors.coords,
            normalize_coords=anchors.normalize_coords,
            img_height=anchors.img_height,
            img_width=anchors.img_width,
            name="decoded_predictions",
            **decode_args,
        )(predictions)
    model = keras.Model(inputs=inputs, outputs=outputs)
    if return_predictor_sizes:
        return model, np.array([tuple(conf.shape[1:3]) for conf in conf_outputs])
    return model
