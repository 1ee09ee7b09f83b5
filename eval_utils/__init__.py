"""The original's `eval_utils` package: its modules re-export names of `ssd_keras`."""
