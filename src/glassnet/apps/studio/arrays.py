"""NumPy arrays to JSON and back, exactly.

An array travels as ``{"shape": [...], "data": base64 of its float64 values in little-endian
order}``: compact, and every value arrives in the page to the last bit (JavaScript numbers
are IEEE float64). The page decodes it with ``Float64Array`` (``static/api.js``).
"""
import base64

import numpy as np


def encode(array):
    """array of any shape -> {"shape": [...], "data": base64 float64 little-endian}."""
    values = np.ascontiguousarray(array, dtype="<f8")
    return {"shape": list(values.shape), "data": base64.b64encode(values.tobytes()).decode("ascii")}


def decode(message):
    """The inverse of ``encode`` (used by tests and by Python clients)."""
    values = np.frombuffer(base64.b64decode(message["data"]), dtype="<f8")
    return values.reshape(message["shape"])


def scalars(array):
    """A small array as a nested list of Python floats (exact: JSON keeps float64 round trips)."""
    return np.asarray(array, dtype=np.float64).tolist()
