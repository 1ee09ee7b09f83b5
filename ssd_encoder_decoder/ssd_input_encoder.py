"""The original's `ssd_encoder_decoder.ssd_input_encoder`: re-exports of `ssd_keras.encoding.input_encoder`."""

from ssd_keras.encoding.input_encoder import MATCHING_TYPES, DegenerateBoxError, SSDInputEncoder
