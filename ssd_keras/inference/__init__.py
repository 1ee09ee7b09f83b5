"""Inference: `loading` (a saved model or published weights as a decoding model, drawing
boxes) and `prediction` (image files to drawn PNGs and ``detections.json``)."""
