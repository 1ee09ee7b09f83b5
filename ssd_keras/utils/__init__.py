"""Helpers the other packages share, importing none of them: `backend` (which Keras backend,
the features that need one, TensorFlow's start-up lines, JAX's compilation cache),
`files` (atomic writes, HDF5), `rng` (random generators, per-batch reseeding),
`plotting` (the notebooks' drawings, matplotlib)."""
