"""`DecodeDetections`: Caffe's ``DetectionOutput`` as a Keras layer, for 'inference' mode."""

import keras
import tensorflow as tf

from keras_layers._decoding import DecodeLayerBase, xy_to_yx


@keras.saving.register_keras_serializable(package="ssd_keras")
class DecodeDetections(DecodeLayerBase):
    """Turns the raw SSD output into the `top_k` best detections per image.

    The rule of `ssd_encoder_decoder.ssd_output_decoder.decode_detections`: for each
    positive class, the boxes scoring strictly above `confidence_thresh` go through
    greedy NMS (suppressed when their IoU with a better kept box of that class is
    above `iou_threshold`), at most `nms_max_output_size` per class survive, and the
    `top_k` best of all classes are returned. One batched
    `tf.image.combined_non_max_suppression` does the work for every image and class
    (the original nested two `tf.map_fn`).

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

    Call arguments:
        inputs: (batch, n_boxes, n_classes + 1 + 12), the 'training'-mode output.

    Returns:
        float32 tensor (batch, top_k, 6) of ``[class_id, confidence, xmin, ymin,
        xmax, ymax]`` sorted by descending confidence; rows after the last
        detection are all zeros.

    Raises:
        ValueError: for an unknown `coords`, missing image size, or a bad `top_k`.

    Example:
    >>> decoded = DecodeDetections(confidence_thresh=0.5, img_height=300, img_width=300,
    ...                            name="decoded_predictions")(predictions)
    """

    def call(self, inputs):
        scores, boxes = self._decode(inputs)
        nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
            xy_to_yx(boxes)[:, :, None, :],
            scores[..., 1:],  # background excluded
            max_output_size_per_class=self.nms_max_output_size,
            max_total_size=self.top_k,
            iou_threshold=self.iou_threshold if self.iou_threshold else 0.0,
            score_threshold=self.confidence_thresh,
            pad_per_class=False,
            clip_boxes=False,
        )
        is_valid = tf.range(self.top_k)[None, :] < valid[:, None]
        class_ids = tf.where(is_valid, nms_classes + 1.0, 0.0)
        nms_scores = tf.where(is_valid, nms_scores, 0.0)
        nms_boxes = tf.where(is_valid[..., None], xy_to_yx(nms_boxes), 0.0)
        return tf.concat([class_ids[..., None], nms_scores[..., None], nms_boxes], axis=-1)
