"""SSD300 (Liu et al. 2016): the reduced VGG-16 base, four extra feature layers and
six predictor layers, 8732 anchors for a 300x300 input."""

from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.models.presets import SSD300_ASPECT_RATIOS, SSD300_STEPS, VARIANCES, VGG_MEAN
from ssd_keras.models.vgg16_reduced import VggSSD, vgg_ssd

# (name, 1x1 filters, filters, kernel, stride, zero padding) of conv6 .. conv9.
SSD300_EXTRA_LAYERS = (
    ("conv6", 256, 512, 3, 2, True),
    ("conv7", 128, 256, 3, 2, True),
    ("conv8", 128, 256, 3, 1, False),
    ("conv9", 128, 256, 3, 1, False),
)
SSD300_SOURCES = ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2")
# 257: the smallest height and width for which the unpadded 3x3 convolutions of conv8_2
# and conv9_2 still have a cell to work on (measured by building the model).
SSD300 = VggSSD(SSD300_EXTRA_LAYERS, SSD300_SOURCES, name="SSD300", min_size=257)


def ssd_300(
    image_size,
    n_classes,
    mode="training",
    l2_regularization=0.0005,
    min_scale=None,
    max_scale=None,
    scales=None,
    aspect_ratios_global=None,
    aspect_ratios_per_layer=SSD300_ASPECT_RATIOS,
    two_boxes_for_ar1=True,
    steps=SSD300_STEPS,
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
    """Builds SSD300 with the layer names of the original Caffe model and ssd_keras.

    Args:
        image_size: ``(height, width, channels)`` of the input, e.g. (300, 300, 3).
        n_classes: number of positive classes (20 for Pascal VOC, 80 for MS COCO).
        mode: 'training' (raw output), 'inference' (`DecodeDetections`) or
            'inference_fast' (`DecodeDetectionsFast`).
        l2_regularization: L2 weight decay of every convolution.
        min_scale, max_scale, scales: anchor scales; `scales` (7 values: one per
            predictor layer plus one) wins over the linear spacing of min/max.
            One of the two must be given (VOC: [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]).
        aspect_ratios_global, aspect_ratios_per_layer: anchor aspect ratios, one list
            for all layers or one per layer (6 lists; wins if both are given).
        two_boxes_for_ar1: add a second square anchor of scale sqrt(s_k * s_k+1).
        steps, offsets: anchor grid steps and offsets per layer (None: derived).
        clip_boxes: clip anchors to the image.
        variances: the 4 scaling factors of the offset encoding.
        coords: box format of the model, 'centroids', 'corners' or 'minmax'.
        normalize_coords: anchors in relative coordinates.
        subtract_mean, divide_by_stddev, swap_channels: input preprocessing in the
            graph (defaults: Caffe's RGB mean, then RGB -> BGR).
        confidence_thresh, iou_threshold, top_k, nms_max_output_size: decoding in
            the inference modes.
        return_predictor_sizes: also return the (6, 2) array of feature-map sizes,
            the `predictor_sizes` of `SSDInputEncoder`.

    Returns:
        a `keras.Model`, or ``(model, predictor_sizes)``. In 'training' mode the
        output is (batch, 8732, n_classes + 1 + 12) for 300x300 input:
        ``[softmax scores | 4 offsets | 4 anchors | 4 variances]``.

    Raises:
        ValueError: for missing scales or aspect ratios, lists of the wrong length,
            variances <= 0, or an unknown `mode` or `coords`.

    Examples:
        >>> model = ssd_300((300, 300, 3), n_classes=20, scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])
        >>> model.load_weights("VGG_VOC0712_SSD_300x300_iter_120000.h5", by_name=True)  # doctest: +SKIP
    """
    # The signature is SSD512's twin (`ssd_keras.models.ssd512.ssd_512`), kept for the original's callers.
    return vgg_ssd(SSD300, **locals())
