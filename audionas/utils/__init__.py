"""Small shared helpers: atomic writes, JSON reading, checkpoints, RNG state, distributed set-up."""
