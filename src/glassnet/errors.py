"""Errors raised by glassnet.

Every error a user can cause is a ``GlassnetError``, which is a ``ValueError``,
so ``except ValueError`` keeps working for code written against NumPy habits.
"""


class GlassnetError(ValueError):
    """Bad argument, bad shape, bad dtype or bad file: the message says which."""


class ShapeError(GlassnetError):
    """An array arrived with a shape the receiving layer or loss cannot take."""


class GradcheckError(GlassnetError):
    """Analytic and finite-difference gradients disagree beyond the tolerance."""


class TrainingDivergedError(GlassnetError):
    """Training met a NaN or Inf loss, gradient or weight; the message names where."""
