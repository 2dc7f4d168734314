"""Which array library a computation runs on, and the few helpers the Array API standard lacks.

glassnet's maths is written against the Python Array API standard: every layer asks its input
for its namespace (``namespace(x)``) and calls ``xp.reshape``, ``xp.matmul``, ``xp.where`` and so
on. NumPy arrays get NumPy itself (its main namespace follows the standard since NumPy 2), so
the default path has no wrapper in between; any other array (array-api-strict, PyTorch, CuPy)
gets its namespace from array-api-compat. There is no global backend: a model's arrays live
where ``model.to(xp, device)`` put them, and an input must live there too.

Random numbers are always drawn on the host by NumPy generators and moved, so a run on another
library draws exactly the numbers the NumPy run draws.
"""
import numpy as np

from .errors import GlassnetError


def _compat():
    try:
        import array_api_compat
    except ImportError:
        raise GlassnetError("arrays other than NumPy's need array-api-compat: "
                            "pip install 'glassnet[array-api]'") from None
    return array_api_compat


def _reduction(method):
    """``xp.<method>(x, axis=None, keepdims=False)`` answered by the array method of that name."""
    return staticmethod(lambda x, axis=None, keepdims=False: getattr(x, method)(axis=axis, keepdims=keepdims))


class _NumPy:
    """NumPy's own namespace, with the standard's shape and reduction functions answered by the
    array methods. NumPy's module-level ``np.reshape``, ``np.sum``, ... dispatch through Python and
    cost 0.4-1 microseconds more per call than ``x.reshape``, ``x.sum``: invisible on big batches,
    about a tenth of a batch-1 forward pass. Everything else is ``numpy`` itself."""

    __name__ = "numpy"

    def __getattr__(self, name):                 # first use of a name: take NumPy's, keep it for next time
        value = getattr(np, name)
        setattr(self, name, value)
        return value

    @staticmethod
    def reshape(x, shape, copy=None):
        return x.reshape(shape) if copy is None else np.reshape(x, shape, copy=copy)

    @staticmethod
    def permute_dims(x, axes):
        return x.transpose(axes)

    @staticmethod
    def matrix_transpose(x):
        return x.swapaxes(-1, -2)

    @staticmethod
    def astype(x, dtype, copy=True):
        return x.astype(dtype, copy=copy)

    @staticmethod
    def sum(x, axis=None, dtype=None, keepdims=False):
        return x.sum(axis=axis, dtype=dtype, keepdims=keepdims)

    mean, max, any, argmax = (_reduction(name) for name in ("mean", "max", "any", "argmax"))


NUMPY = _NumPy()


def namespace(*arrays):
    """The Array API namespace of ``arrays`` (``NUMPY``, NumPy's own, for NumPy arrays); Python scalars
    are ignored."""
    if len(arrays) == 1 and type(arrays[0]) is np.ndarray:     # the common case, answered first
        return NUMPY
    arrays = [a for a in arrays if not isinstance(a, (int, float, bool, np.generic))]
    if all(isinstance(a, np.ndarray) for a in arrays):
        return NUMPY
    return _compat().array_namespace(*arrays)


def is_numpy(xp):
    """True for NumPy's namespace (the module itself, as a user passes it to ``model.to``, or ``NUMPY``)."""
    return xp is NUMPY or xp is np


def device_of(x):
    """The device ``x`` lives on (``"cpu"`` for NumPy arrays)."""
    if type(x) is np.ndarray:
        return "cpu"
    return _compat().device(x)


def describe_place(x):
    """``x``'s library and device in words, for error messages: "numpy on cpu"."""
    xp = namespace(x)
    name = getattr(xp, "__name__", type(x).__module__).replace("array_api_compat.", "")
    return f"{name} on {device_of(x)}"


def to_numpy(x):
    """A NumPy array with ``x``'s values: ``x`` itself when it is one, else a host copy."""
    if isinstance(x, np.ndarray) or x is None or isinstance(x, (int, float, np.generic)):
        return x
    compat = _compat()
    if compat.is_torch_array(x):
        return x.detach().cpu().numpy().copy()
    if compat.is_cupy_array(x):
        return x.get()
    return np.array(np.from_dlpack(x), copy=True)


def to_namespace(array, xp, device=None):
    """A host (NumPy) array copied into namespace ``xp`` on ``device``; NumPy arrays stay as they are."""
    if is_numpy(xp):
        return np.asarray(array)
    return xp.asarray(np.ascontiguousarray(array), device=device, copy=True)


def beside(reference, host_array):
    """A host (NumPy) array moved into ``reference``'s library and onto its device."""
    return to_namespace(host_array, namespace(reference), device_of(reference))


def float_dtype(xp, dtype):
    """``xp``'s floating dtype with the precision of the NumPy dtype ``dtype`` (float32 or float64)."""
    return getattr(xp, np.dtype(dtype).name)


FLOAT32, FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def numpy_dtype(dtype):
    """The NumPy float dtype with the precision of any library's ``dtype`` (float32 or float64)."""
    if dtype is FLOAT32 or dtype is FLOAT64:                 # NumPy's own (its dtypes are single objects)
        return dtype
    text = str(dtype)
    if "float32" in text:
        return np.dtype(np.float32)
    if "float64" in text:
        return np.dtype(np.float64)
    raise GlassnetError(f"expected a float32 or float64 dtype. Received: {dtype}")


def contiguous(xp, x):
    """``x`` laid out in C order (NumPy: avoids a strided result feeding the next GEMM); other libraries
    choose their own layout."""
    return np.ascontiguousarray(x) if xp is NUMPY else x


def add_into(array, key, value):
    """``array[key] += value`` in place. NumPy adds through the view (no write-back copy); other
    libraries go through ``__setitem__``, which the standard guarantees."""
    if type(array) is np.ndarray:
        view = array[key]
        view += value
    else:
        array[key] += value


def pad_spatial(xp, x, pads, value=0.0):
    """Pad the last two axes of (N, C, H, W) by (top, bottom, left, right) with ``value``."""
    top, bottom, left, right = pads
    N, C, H, W = x.shape
    if xp is NUMPY:           # (np.pad does the same in many more steps: 59 against 11 us for lenet's input)
        padded = np.full((N, C, H + top + bottom, W + left + right), value, dtype=x.dtype)
    else:
        padded = xp.full((N, C, H + top + bottom, W + left + right), value, dtype=x.dtype, device=device_of(x))
    padded[:, :, top:top + H, left:left + W] = x
    return padded


def all_finite(xp, *arrays):
    """One check, one host sync: are all values of all ``arrays`` finite?"""
    if xp is NUMPY:
        return all(bool(np.isfinite(a).all()) for a in arrays)
    flags = [xp.all(xp.isfinite(a)) for a in arrays]
    return bool(xp.all(xp.stack(flags)))


def host_floats(xp, values):
    """0-d arrays of ``xp`` -> Python floats, with one device-to-host transfer for all of them."""
    if xp is NUMPY or not values:
        return [float(v) for v in values]
    return to_numpy(xp.stack([xp.astype(v, xp.float64) for v in values])).tolist()


def same_place(x, reference, what, owner):
    """Refuse ``x`` unless it lives in the same library and on the same device as ``reference``."""
    if type(x) is np.ndarray and type(reference) is np.ndarray:
        return
    if namespace(x) is not namespace(reference) or device_of(x) != device_of(reference):
        raise GlassnetError(f"{owner}: the {what} is {describe_place(x)} but the model's parameters are "
                            f"{describe_place(reference)}; move one of them (x on the model's device, or "
                            f"model.to(xp, device))")


DEVICES = {
    "cpu": "NumPy on the CPU (the default)",
    "torch": "PyTorch tensors on the CPU (needs torch)",
    "cuda": "CuPy arrays on the first GPU (needs glassnet[gpu])",
    "torch-cuda": "PyTorch tensors on the first GPU (needs a CUDA build of torch)",
}


def resolve_device(name):
    """A ``--device`` name -> (namespace module, device) for ``model.to``; see ``DEVICES``."""
    if name == "cpu":
        return np, None
    module = {"torch": "torch", "torch-cuda": "torch", "cuda": "cupy"}.get(name)
    if module is None:
        raise GlassnetError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    try:
        library = __import__(module)
    except ImportError:
        hint = "pip install 'glassnet[gpu]'" if module == "cupy" else "pip install torch"
        raise GlassnetError(f"device {name!r} needs {module}, which is not installed: {hint}") from None
    _compat()
    if name == "torch":
        return library, "cpu"
    if module == "torch":
        if not library.cuda.is_available():
            raise GlassnetError("device 'torch-cuda': this PyTorch sees no CUDA GPU")
        return library, "cuda"
    try:
        count = library.cuda.runtime.getDeviceCount()
    except Exception as error:           # CuPy installed without a usable driver or GPU
        raise GlassnetError(f"device 'cuda': CuPy finds no usable GPU ({error})") from None
    if count == 0:
        raise GlassnetError("device 'cuda': CuPy finds no GPU")
    return library, library.cuda.Device(0)
