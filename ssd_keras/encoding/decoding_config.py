"""The decoding settings' defaults, in one place.

The decoding layers (`DecodeDetections`, `DecodeDetectionsFast`), the builders' inference
modes, `decode_detections`, the `Evaluator`, the COCO helpers, `add_decoding`, the demo
and the command line all take their defaults from here.

Examples:
    >>> from ssd_keras.encoding.decoding_config import DECODING, DISPLAY_DECODING
    >>> DECODING.confidence_thresh, DECODING.iou_threshold, DECODING.top_k, DECODING.nms_max_output_size
    (0.01, 0.45, 200, 400)
    >>> DISPLAY_DECODING.confidence_thresh
    0.5
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """How raw SSD predictions become detections (the original's `DecodeDetections` defaults).

    Attributes:
        confidence_thresh: the lowest class score a detection may have (strictly above it).
        iou_threshold: boxes of one class overlapping a higher-scored kept box by more than
            this are suppressed (greedy NMS).
        top_k: the detections kept per image, best first.
        nms_max_output_size: the boxes per class that NMS keeps at most (the layers' bound;
            their result equals per-class NMS followed by top-k whenever it does not bind).
    """

    confidence_thresh: float = 0.01
    iou_threshold: float = 0.45
    top_k: int = 200
    nms_max_output_size: int = 400

    def as_kwargs(self):
        """The four settings as a dict of keyword arguments."""
        return dataclasses.asdict(self)


# For evaluation, and the builders' and layers' defaults: every detection that can count.
DECODING = DecodingConfig()
# For detections people look at (the notebooks' drawings, `ssd-keras predict`, the Detector).
DISPLAY_DECODING = DecodingConfig(confidence_thresh=0.5)
