"""The original's `eval_utils.average_precision_evaluator`: re-exports of `ssd_keras.evaluation.voc`."""

from ssd_keras.evaluation.voc import (
    AP_MODES,
    DATA_GENERATOR_MODES,
    MODEL_MODES,
    Evaluator,
    average_precision,
    iterate_predictions,
    match_class_detections,
    precision_recall,
)
