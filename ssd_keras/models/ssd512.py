"""SSD512 (Liu et al. 2016): SSD300's design for 512x512 input, with a fifth extra
feature layer, seven predictor layers and 24564 anchors."""

from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.models.presets import SSD512_ASPECT_RATIOS, SSD512_STEPS, VARIANCES, VGG_MEAN
from ssd_keras.models.vgg16_reduced import VggSSD, vgg_ssd

# (name, 1x1 filters, filters, kernel, stride, zero padding) of conv6 .. conv10.
SSD512_EXTRA_LAYERS = (
    ("conv6", 256, 512, 3, 2, True),
    ("conv7", 128, 256, 3, 2, True),
    ("conv8", 128, 256, 3, 2, True),
    ("conv9", 128, 256, 3, 2, True),
    ("conv10", 128, 256, 4, 1, True),
)
SSD512_SOURCES = ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2", "conv10_2")
# 257: the smallest height and width for which the five stride-2 extra layers leave conv10's
# 4x4 convolution a cell (measured by building the model).
SSD512 = VggSSD(SSD512_EXTRA_LAYERS, SSD512_SOURCES, name="SSD512", min_size=257)


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
    steps=SSD512_STEPS,
    offsets=None,
    clip_boxes=False,
    variances=VARIANCES,
    coords="centroids",
    normalize_coords=True,
    subtract_mean=VGG_MEAN,
    divide_by_stddev=None,
    swap_channels=(2, 1, 0),
    confidence_thresh=DECODING.confidence_thresh,
    iou_threshold=DECODING.iou_threshold,
    top_k=DECODING.top_k,
    nms_max_output_size=DECODING.nms_max_output_size,
    return_predictor_sizes=False,
):
    """Builds SSD512 with the layer names of the original Caffe model and ssd_keras.

    Args, returns and raises: as `ssd_keras.models.ssd300.ssd_300`, with seven predictor
    layers (conv4_3_norm, fc7, conv6_2 .. conv10_2): `scales` has 8 values,
    `aspect_ratios_per_layer`, `steps` and `offsets` 7 entries, and
    `return_predictor_sizes` gives a (7, 2) array. For 512x512 input the 'training'
    output is (batch, 24564, n_classes + 1 + 12).

    Examples:
        >>> model = ssd_512((512, 512, 3), n_classes=20, scales=[0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05])
        >>> model.load_weights("VGG_VOC0712_SSD_512x512_iter_120000.h5", by_name=True)  # doctest: +SKIP
    """
    # The signature is SSD300's twin (`ssd_keras.models.ssd300.ssd_300`), kept for the original's callers.
    return vgg_ssd(SSD512, **locals())
