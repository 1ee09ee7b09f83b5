"""Encoding ground truth into training targets, and decoding predictions into boxes (NumPy).

Modules: `input_encoder` (`SSDInputEncoder`: anchors matched to boxes, offsets encoded,
the targets of `SSDLoss`), `output_decoder` (`decode_detections` and
`decode_detections_fast`, the NumPy twins of the decoding layers), `decoding_config` (the
decoding settings' defaults). Nothing here imports Keras.
"""

from ssd_keras.encoding.decoding_config import DECODING, DISPLAY_DECODING, DecodingConfig
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast

__all__ = [
    "DECODING",
    "DISPLAY_DECODING",
    "DecodingConfig",
    "SSDInputEncoder",
    "decode_detections",
    "decode_detections_fast",
]
