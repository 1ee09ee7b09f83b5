"""The training engine: `TrainingConfig` (every setting, each default once) and `train`.

Modules: `config` (the settings and their checks), `engine` (`train`, step by step),
`batches` (augmentation choices, class-id checks, an epoch's arrays), `optimization`
(optimizer, schedule, dtype policy), `distribution` (tf.distribute and Keras'
DataParallel), `checkpointing` (a run's files, resume points, signals; no Keras),
`recorder` (the callback that writes resume points and watches for faults), `progress`
(the bars). Importing this package imports no Keras.
"""

from ssd_keras.training.config import TrainingConfig
from ssd_keras.training.engine import train

__all__ = ["TrainingConfig", "train"]
