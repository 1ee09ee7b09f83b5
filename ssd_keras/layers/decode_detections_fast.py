"""`DecodeDetectionsFast`: one class per anchor and one class-agnostic NMS, for 'inference_fast' mode."""

import keras
from keras import ops

from ssd_keras.layers._decoding import DecodeLayerBase, batch_gather, first_max, select
from ssd_keras.utils.backend import scalar_like


@keras.saving.register_keras_serializable(package="ssd_keras")
class DecodeDetectionsFast(DecodeLayerBase):
    """Faster, approximate decoding of the raw SSD output.

    The rule of `ssd_keras.encoding.output_decoder.decode_detections_fast`: each
    anchor takes its argmax class, background included; anchors whose argmax is
    background are dropped even if a positive class clears `confidence_thresh`; the
    rest must score strictly above it; one greedy NMS over all classes keeps at most
    `nms_max_output_size` boxes, of which the `top_k` best are returned. An
    `iou_threshold` of 0 or None turns the NMS off, as in the NumPy decoder. The
    result equals the NumPy decoder's on every backend (`ssd_keras.layers._decoding`).

    Args, call arguments, returns and raises: as `DecodeDetections`.
    """

    def call(self, inputs):
        """Decodes the raw predictions ``(batch, n_boxes, n_classes + 13)``; see the class docstring."""
        scores, boxes = self._decode(inputs)
        class_ids = first_max(scores, axis=-1)
        confidences = ops.max(scores, axis=-1)
        keep = (class_ids != self.background_id) & (confidences > self.confidence_thresh)
        masked = ops.where(keep, confidences, scalar_like(float("-inf"), confidences))
        # IoU never exceeds 1, so a threshold of 1 suppresses nothing.
        iou_threshold = self.iou_threshold if self.iou_threshold else 1.0
        n_kept = min(self.top_k, self.nms_max_output_size)
        labels = ops.zeros_like(class_ids)  # one class-agnostic NMS
        candidates, valid = select(masked, boxes, labels, iou_threshold, n_kept)
        if n_kept < self.top_k:
            pad = ((0, 0), (0, self.top_k - n_kept))
            candidates, valid = ops.pad(candidates, pad), ops.pad(ops.cast(valid, "int32"), pad) > 0
        return self._rows(
            batch_gather(class_ids, candidates),
            batch_gather(confidences, candidates),
            batch_gather(boxes, candidates),
            valid,
        )
