"""The original's `ssd_encoder_decoder.ssd_output_decoder`: re-exports of `ssd_keras.encoding.output_decoder`."""

from ssd_keras.encoding.output_decoder import (
    decode_box_predictions,
    decode_detections,
    decode_detections_debug,
    decode_detections_fast,
    get_num_boxes_per_pred_layer,
    get_pred_layers,
    greedy_nms,
    positive_classes,
)
