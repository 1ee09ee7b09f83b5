"""The original's `ssd_encoder_decoder` package: its modules re-export names of `ssd_keras`."""
