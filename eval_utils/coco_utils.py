"""The original's `eval_utils.coco_utils`: re-exports of `ssd_keras.evaluation.coco`."""

from ssd_keras.evaluation.coco import COCO_METRIC_NAMES, evaluate_coco, get_coco_category_maps, predict_all_to_json
