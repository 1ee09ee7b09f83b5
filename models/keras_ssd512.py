"""SSD512 (Liu et al. 2016): SSD300's design for 512x512 input, with a fifth extra
feature layer, seven predictor layers and 24564 anchors."""

from models.ssd_heads import resolve_model_config
from models.vgg16_reduced import build_vgg_ssd

SSD512_ASPECT_RATIOS = ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),) * 4 + ((1.0, 2.0, 0.5),) * 2
# (name, 1x1 filters, filters, kernel, stride, zero padding) of conv6 .. conv10.
SSD512_EXTRA_LAYERS = (
    ("conv6", 256, 512, 3, 2, True),
    ("conv7", 128, 256, 3, 2, True),
    ("conv8", 128, 256, 3, 2, True),
    ("conv9", 128, 256, 3, 2, True),
    ("conv10", 128, 256, 4, 1, True),
)
SSD512_SOURCES = ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2", "conv10_2")


def ssd_512(
    image_size,
    n_classes,
    mode="training",
    l2_regularization=0.0005,
    min_scale=None,
    max_scale=None,
    scales=None,
    aspect_ratios_global=None,
    aspect_ratios_per_layer=SSD512_ASPECT_RATIOS,
    two_boxes_for_ar1=True,
    steps=(8, 16, 32, 64, 128, 256, 512),
    offsets=None,
    clip_boxes=False,
    variances=(0.1, 0.1, 0.2, 0.2),
    coords="centroids",
    normalize_coords=True,
    subtract_mean=(123, 117, 104),
    divide_by_stddev=None,
    swap_channels=(2, 1, 0),
    confidence_thresh=0.01,
    iou_threshold=0.45,
    top_k=200,
    nms_max_output_size=400,
    return_predictor_sizes=False,
):
    """Builds SSD512 with the layer names of the original Caffe model and ssd_keras.

    Args, returns and raises: as `models.keras_ssd300.ssd_300`, with seven predictor
    layers (conv4_3_norm, fc7, conv6_2 .. conv10_2): `scales` has 8 values,
    `aspect_ratios_per_layer`, `steps` and `offsets` 7 entries, and
    `return_predictor_sizes` gives a (7, 2) array. For 512x512 input the 'training'
    output is (batch, 24564, n_classes + 1 + 12).

    Example:
    >>> model = ssd_512((512, 512, 3), n_classes=20, scales=[0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05])
    >>> model.load_weights("VGG_VOC0712_SSD_512x512_iter_120000.h5", by_name=True)
    """
    config = resolve_model_config(
        len(SSD512_SOURCES), image_size, n_classes, mode, min_scale, max_scale, scales, aspect_ratios_global,
        aspect_ratios_per_layer, two_boxes_for_ar1, steps, offsets, clip_boxes, variances, coords, normalize_coords,
    )
    decode_args = dict(confidence_thresh=confidence_thresh, iou_threshold=iou_threshold, top_k=top_k, nms_max_output_size=nms_max_output_size)
    return build_vgg_ssd(
        config, SSD512_SOURCES, SSD512_EXTRA_LAYERS, l2_regularization, (subtract_mean, divide_by_stddev, swap_channels),
        decode_args, return_predictor_sizes,
    )
