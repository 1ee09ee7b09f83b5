"""SSD7: a small 7-layer SSD for quick experiments (the original's template for
custom base networks). Four predictor layers on conv4 .. conv7; 11692 anchors for
the 300x480 Udacity configuration."""

import keras

from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.layers.preprocessing import input_preprocessing
from ssd_keras.models.heads import SSD7_NAMES, conv2d, finish_model, predictor_heads, resolve_model_config

# Filters and kernel size of conv1 .. conv7; each is followed by BN and ELU, the
# first six by a 2x2 max pooling.
SSD7_LAYERS = ((32, 5), (48, 3), (64, 3), (64, 3), (48, 3), (48, 3), (32, 3))
SSD7_SOURCE_LAYERS = (4, 5, 6, 7)
SSD7_MIN_SIZE = 2**6  # six 2x2 poolings without padding, each halving (rounding down)


# The anchor arguments below are twins of those of `SSDInputEncoder`, `AnchorBoxes` and
# `anchor_utils.AnchorConfig.resolve` (the original's public signatures, kept); they all
# go through `AnchorConfig.resolve`.
def build_model(
    image_size,
    n_classes,
    mode="training",
    l2_regularization=0.0,
    min_scale=0.1,
    max_scale=0.9,
    scales=None,
    aspect_ratios_global=(0.5, 1.0, 2.0),
    aspect_ratios_per_layer=None,
    two_boxes_for_ar1=True,
    steps=None,
    offsets=None,
    clip_boxes=False,
    variances=(1.0, 1.0, 1.0, 1.0),
    coords="centroids",
    normalize_coords=False,
    subtract_mean=None,
    divide_by_stddev=None,
    swap_channels=False,
    confidence_thresh=DECODING.confidence_thresh,
    iou_threshold=DECODING.iou_threshold,
    top_k=DECODING.top_k,
    nms_max_output_size=DECODING.nms_max_output_size,
    return_predictor_sizes=False,
):
    """Builds SSD7 with the original's layer names.

    Args: as `ssd_keras.models.ssd300.ssd_300`, with 4 predictor layers (so `scales` has
    5 values and `aspect_ratios_per_layer` 4 lists) and these defaults: no weight
    decay, scales from 0.1 to 0.9, aspect ratios [0.5, 1, 2] for every layer,
    variances of 1, absolute coordinates and no preprocessing.

    Returns:
        a `keras.Model`, or ``(model, predictor_sizes)`` with `predictor_sizes` (4, 2).

    Raises:
        ValueError: as `ssd_300`.

    Examples:
        >>> model = build_model((300, 480, 3), n_classes=5, scales=[0.08, 0.16, 0.32, 0.64, 0.96],
        ...                     normalize_coords=True, subtract_mean=127.5, divide_by_stddev=127.5)
    """
    config = resolve_model_config(
        len(SSD7_SOURCE_LAYERS),
        image_size,
        n_classes,
        mode,
        min_size=("SSD7", SSD7_MIN_SIZE),
        min_scale=min_scale,
        max_scale=max_scale,
        scales=scales,
        aspect_ratios_global=aspect_ratios_global,
        aspect_ratios_per_layer=aspect_ratios_per_layer,
        two_boxes_for_ar1=two_boxes_for_ar1,
        steps=steps,
        offsets=offsets,
        clip_boxes=clip_boxes,
        variances=variances,
        coords=coords,
        normalize_coords=normalize_coords,
    )
    inputs = keras.Input(shape=(config.img_height, config.img_width, config.img_channels))
    x = input_preprocessing(inputs, subtract_mean, divide_by_stddev, swap_channels)
    sources = []
    for i, (filters, kernel) in enumerate(SSD7_LAYERS, start=1):
        x = conv2d(filters, (kernel, kernel), f"conv{i}", l2_regularization)(x)
        x = keras.layers.BatchNormalization(axis=3, momentum=0.99, name=f"bn{i}")(x)
        x = keras.layers.ELU(name=f"elu{i}")(x)
        if i in SSD7_SOURCE_LAYERS:
            sources.append((str(i), x))
        if i < len(SSD7_LAYERS):
            x = keras.layers.MaxPooling2D(pool_size=(2, 2), name=f"pool{i}")(x)
    predictions, conf_outputs = predictor_heads(sources, config, SSD7_NAMES, l2_regularization)
    decode_args = dict(
        confidence_thresh=confidence_thresh,
        iou_threshold=iou_threshold,
        top_k=top_k,
        nms_max_output_size=nms_max_output_size,
    )
    return finish_model(inputs, predictions, conf_outputs, config, return_predictor_sizes, decode_args)
