"""Augmentation during ``fit``: random shifts, flips, rotations and scale, per batch, vectorised.

``fit(..., augment="shift,flip,rotate")`` (or an ``Augment``) changes each training batch
before the forward pass, drawing from ``fit``'s own seeded generator, so a run is reproducible
and a resumed checkpoint carries on with the same draws. Geometry is one affine warp per
sample, sampled bilinearly with the border pixels repeated outside the image (so a digit's
background stays background); a shift alone moves by whole pixels and copies them exactly.
"""
import numpy as np

from ..errors import GlassnetError

OPERATIONS = ("shift", "flip", "rotate", "scale")


class Augment:
    """Random changes to (N, C, H, W) batches.

    shift : largest move as a fraction of the height/width (0.125: 4 pixels of 32), whole pixels
    flip : mirror left-right with probability 1/2 (leave off for digits)
    rotate : largest rotation in degrees, either way
    scale : largest relative zoom, in or out (0.1: 0.9x to 1.1x)
    """

    def __init__(self, shift=0.0, flip=False, rotate=0.0, scale=0.0):
        for name, value, high in (("shift", shift, 0.5), ("rotate", rotate, 180.0), ("scale", scale, 0.5)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
                raise GlassnetError(f"Augment: {name} must be a number in [0, {high}]. Received: {name}={value!r}")
        self.shift, self.flip, self.rotate, self.scale = float(shift), bool(flip), float(rotate), float(scale)

    @classmethod
    def parse(cls, spec):
        """"shift,flip,rotate" (any of shift, flip, rotate, scale) -> Augment with the default amounts."""
        if isinstance(spec, Augment):
            return spec
        words = [w.strip().lower() for w in (spec.split(",") if isinstance(spec, str) else spec) if w.strip()]
        unknown = [w for w in words if w not in OPERATIONS]
        if unknown or not words:
            raise GlassnetError(f"augment must name some of {', '.join(OPERATIONS)} (comma-separated). "
                                f"Received: {spec!r}")
        return cls(shift=0.125 if "shift" in words else 0.0, flip="flip" in words,
                   rotate=15.0 if "rotate" in words else 0.0, scale=0.1 if "scale" in words else 0.0)

    def describe(self):
        """The amounts in words.

        >>> gn.Augment.parse("shift,flip,rotate").describe()
        'shift 0.125, flip, rotate 15 degrees'
        """
        parts = [f"shift {self.shift:g}"] if self.shift else []
        parts += ["flip"] if self.flip else []
        parts += [f"rotate {self.rotate:g} degrees"] if self.rotate else []
        parts += [f"scale {self.scale:g}"] if self.scale else []
        return ", ".join(parts)

    def __call__(self, x, rng):
        """x: (N, C, H, W) -> a changed copy of the same shape and dtype; draws from ``rng``."""
        N, C, H, W = x.shape
        out = x
        if self.shift or self.rotate or self.scale:
            dy = rng.integers(-round(self.shift * H), round(self.shift * H) + 1, size=N)
            dx = rng.integers(-round(self.shift * W), round(self.shift * W) + 1, size=N)
            angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate, size=N)) if self.rotate else np.zeros(N)
            zoom = rng.uniform(1 - self.scale, 1 + self.scale, size=N) if self.scale else np.ones(N)
            out = warp(x, angle, zoom, dy, dx)
        if self.flip:
            mirrored = rng.random(N) < 0.5
            out = out.copy() if out is x else out
            out[mirrored] = out[mirrored][..., ::-1]
        return out


def warp(x, angle, zoom, dy, dx):
    """Each image n rotated by angle[n] (radians, clockwise as displayed, rows down), zoomed by zoom[n]
    about its centre, then moved by (dy[n], dx[n]) pixels; bilinear, border pixels repeated.

    x : (N, C, H, W); angle, zoom, dy, dx : (N,). Returns (N, C, H, W) of x's dtype.
    """
    N, C, H, W = x.shape
    centre_y, centre_x = (H - 1) / 2, (W - 1) / 2
    rows, cols = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    # output pixel p comes from source q = R(-angle) (p - centre - shift) / zoom + centre
    out_y = rows[None] - centre_y - np.asarray(dy, dtype=np.float64)[:, None, None]     # (N, H, W)
    out_x = cols[None] - centre_x - np.asarray(dx, dtype=np.float64)[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    zoom = np.asarray(zoom, dtype=np.float64)[:, None, None]
    src_y = np.clip((cos * out_y - sin * out_x) / zoom + centre_y, 0, H - 1)
    src_x = np.clip((sin * out_y + cos * out_x) / zoom + centre_x, 0, W - 1)
    top, left = np.floor(src_y).astype(np.int64), np.floor(src_x).astype(np.int64)
    bottom, right = np.minimum(top + 1, H - 1), np.minimum(left + 1, W - 1)
    wy, wx = (src_y - top)[:, None], (src_x - left)[:, None]                         # (N, 1, H, W)
    n = np.arange(N)[:, None, None]
    pick = lambda r, c: x[n, :, r, c].transpose(0, 3, 1, 2)   # gather (N, H, W, C) -> (N, C, H, W)  # noqa: E731
    upper = pick(top, left) * (1 - wx) + pick(top, right) * wx
    lower = pick(bottom, left) * (1 - wx) + pick(bottom, right) * wx
    return (upper * (1 - wy) + lower * wy).astype(x.dtype)
