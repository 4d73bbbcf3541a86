"""audionas: neural architecture search for audio classification (keyword spotting, acoustic scenes)."""

__version__ = "0.1.0"
