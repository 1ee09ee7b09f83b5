"""The original's `misc_utils` package: its modules re-export names of `ssd_keras`."""
