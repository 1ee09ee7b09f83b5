"""The original's `bounding_box_utils` package: its modules re-export names of `ssd_keras`."""
