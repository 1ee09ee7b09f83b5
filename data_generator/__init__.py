"""The original's `data_generator` package: its modules re-export names of `ssd_keras`."""
