"""`DecodeDetections`: Caffe's ``DetectionOutput`` as a Keras layer, for 'inference' mode."""

import keras
import numpy as np
from keras import ops

from ssd_keras.layers._decoding import DecodeLayerBase, batch_gather, select
from ssd_keras.utils.backend import device_constant, scalar_like


@keras.saving.register_keras_serializable(package="ssd_keras")
class DecodeDetections(DecodeLayerBase):
    """Turns the raw SSD output into the `top_k` best detections per image.

    The rule of `ssd_keras.encoding.output_decoder.decode_detections`: for each
    positive class, the boxes scoring strictly above `confidence_thresh` go through
    greedy NMS (suppressed when their IoU with a better kept box of that class is
    above `iou_threshold`), at most `nms_max_output_size` per class survive, and the
    `top_k` best of all classes are returned. The result equals the NumPy decoder's
    (ties included), on every Keras backend: one greedy loop over the (anchor, class)
    candidates of the whole batch at once, in `keras.ops` (see `ssd_keras.layers._decoding`).

    Args:
        confidence_thresh: minimum class score, exclusive.
        iou_threshold: NMS threshold.
        top_k: number of detections returned per image.
        nms_max_output_size: most boxes kept per class by the NMS.
        coords: the model's box format ('centroids', 'corners' or 'minmax'; the
            original accepted only 'centroids').
        normalize_coords: the model predicts relative coordinates; the output is
            in pixels, so `img_height` and `img_width` are then required.
        img_height, img_width: model input size.
        background_id: the class column of the background (as the encoder's).

    Call arguments:
        inputs: (batch, n_boxes, n_classes + 1 + 12), the 'training'-mode output.

    Returns:
        float32 tensor (batch, top_k, 6) of ``[class_id, confidence, xmin, ymin,
        xmax, ymax]`` sorted by descending confidence; rows after the last
        detection are all zeros.

    Raises:
        ValueError: for an unknown `coords`, missing image size, or a bad `top_k`.

    Examples:
        >>> import keras
        >>> predictions = keras.Input((8732, 33))  # SSD300's raw output for 20 classes
        >>> decoded = DecodeDetections(confidence_thresh=0.5, img_height=300, img_width=300,
        ...                            name="decoded_predictions")(predictions)
        >>> decoded.shape
        (None, 200, 6)
    """

    def call(self, inputs):
        """Decodes the raw predictions ``(batch, n_boxes, n_classes + 13)``; see the class docstring."""
        scores, boxes = self._decode(inputs)
        class_ids = [c for c in range(scores.shape[-1]) if c != self.background_id]
        n_anchors, n_classes = scores.shape[1], len(class_ids)  # background excluded
        batch = ops.shape(scores)[0]
        # Candidate a * n_classes + c is anchor a with the c-th positive class, as numbered by the
        # NumPy decoder. Its anchor and class come from tables, not from `//` and `%` (which the
        # ONNX exporters do not all lower for a dynamic batch).
        class_id_tensor = device_constant(
            self, ("class_ids", scores.shape[-1]), lambda: class_ids, like=scores, dtype="int32"
        )
        anchor_of = device_constant(
            self,
            ("anchor_of", n_anchors, n_classes),
            lambda: np.repeat(np.arange(n_anchors), n_classes),
            like=scores,
            dtype="int32",
        )
        class_of = device_constant(
            self,
            ("class_of", n_anchors, tuple(class_ids)),
            lambda: np.tile(class_ids, n_anchors),
            like=scores,
            dtype="int32",
        )
        flat = ops.reshape(ops.take(scores, class_id_tensor, axis=-1), (batch, n_anchors * n_classes))
        flat = ops.where(flat > self.confidence_thresh, flat, scalar_like(float("-inf"), flat))
        labels = ops.broadcast_to(
            ops.tile(ops.arange(0, n_classes, dtype="int32"), (n_anchors,))[None, :], ops.shape(flat)
        )
        candidates, valid = select(
            flat,
            boxes,
            labels,
            self.iou_threshold,
            self.top_k,
            self.nms_max_output_size,
            n_classes,
            box_of=lambda numbers: ops.take(anchor_of, numbers, axis=0),
        )
        confidences = batch_gather(flat, candidates)
        kept_boxes = batch_gather(boxes, ops.take(anchor_of, candidates, axis=0))
        return self._rows(ops.take(class_of, candidates, axis=0), confidences, kept_boxes, valid)
