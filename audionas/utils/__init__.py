"""Small shared helpers: checkpoints, RNG state, distributed set-up."""
