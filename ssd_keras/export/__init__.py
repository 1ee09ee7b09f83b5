"""Export for serving: `saved_model` (a TensorFlow SavedModel taking uint8 images, and TFLite)."""
