"""DARTS (Liu et al.) differentiable cell search, as used by the KWS paper (Mo et al.)."""
