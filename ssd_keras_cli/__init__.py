"""The ``ssd-keras`` command line, the demo, and the notebook configurations behind them.

Modules: `configs` (the notebooks' model and encoder settings), `data` (VOC/COCO/CSV/HDF5
into a `DataGenerator`), `training` (`train`), `evaluation`, `inference` (decoding a
saved model, drawing boxes), `prediction`, `demo` (`run_demo`), `cli` (`main`).
"""
