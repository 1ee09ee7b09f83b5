"""`DecodeDetectionsFast`: one class per anchor and one class-agnostic NMS, for 'inference_fast' mode."""

import keras
import tensorflow as tf

from keras_layers._decoding import DecodeLayerBase, xy_to_yx


@keras.saving.register_keras_serializable(package="ssd_keras")
class DecodeDetectionsFast(DecodeLayerBase):
    """Faster, approximate decoding of the raw SSD output.

    The rule of `ssd_encoder_decoder.ssd_output_decoder.decode_detections_fast`: each
    anchor takes its argmax class, background included; anchors whose argmax is
    background are dropped even if a positive class clears `confidence_thresh`; the
    rest must score strictly above it; one greedy NMS over all classes keeps at most
    `nms_max_output_size` boxes, of which the `top_k` best are returned. An
    `iou_threshold` of 0 or None turns the NMS off, as in the NumPy decoder.

    TensorFlow has no batched class-agnostic NMS that returns indices and is exact
    (`non_max_suppression_padded` suppresses at ``IoU >= threshold`` and stops its
    in-tile iteration on a heuristic), so one `tf.map_fn` over the images runs
    `tf.image.non_max_suppression` on each.

    Args, call arguments, returns and raises: as `DecodeDetections`.
    """

    def call(self, inputs):
        scores, boxes = self._decode(inputs)
        class_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        confidences = tf.reduce_max(scores, axis=-1)
        keep = (class_ids > 0) & (confidences > self.confidence_thresh)
        masked = tf.where(keep, confidences, float("-inf"))
        rows = tf.concat([tf.cast(class_ids, tf.float32)[..., None], confidences[..., None], boxes], axis=-1)
        # IoU never exceeds 1, so a threshold of 1 suppresses nothing.
        iou_threshold = self.iou_threshold if self.iou_threshold else 1.0
        top_k = self.top_k
        max_output = self.nms_max_output_size

        def one_image(args):
            image_rows, image_boxes, image_scores = args
            selected = tf.image.non_max_suppression(
                xy_to_yx(image_boxes), image_scores, max_output, iou_threshold=iou_threshold, score_threshold=float("-inf")
            )
            # The NMS ignores no score by itself: drop the masked (-inf) candidates here.
            selected = tf.boolean_mask(selected, tf.gather(image_scores, selected) > float("-inf"))[:top_k]
            chosen = tf.gather(image_rows, selected)
            return tf.pad(chosen, [[0, top_k - tf.shape(chosen)[0]], [0, 0]])

        return tf.map_fn(
            one_image, (rows, boxes, masked), fn_output_signature=tf.TensorSpec((top_k, 6), tf.float32)
        )
