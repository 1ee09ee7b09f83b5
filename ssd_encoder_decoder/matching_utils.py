"""The original's `ssd_encoder_decoder.matching_utils`: re-exports of `ssd_keras.boxes.matching`."""

from ssd_keras.boxes.matching import (
    greedy_bipartite_from_best,
    match_bipartite_greedy,
    match_bipartite_greedy_batch,
    match_multi,
)
