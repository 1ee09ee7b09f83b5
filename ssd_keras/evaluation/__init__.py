"""Evaluation: Pascal VOC mAP (`voc`: `Evaluator`, the devkit's matching rules), COCO
results and metrics (`coco`), and both as dicts for ``metrics.json`` (`metrics`)."""

from ssd_keras.evaluation.voc import Evaluator

__all__ = ["Evaluator"]
