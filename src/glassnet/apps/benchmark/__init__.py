"""Side-by-side speed and memory benchmark of glassnet and PyTorch (``glassnet bench``)."""
from .run import main, run

__all__ = ["main", "run"]
