"""The studio's Why view: an attribution map of the drawn or dropped image for a chosen class, the numbers
behind one pixel of it, and the dataset's misclassified test images with their Grad-CAM.

Every number comes from ``gn.attribute`` and the engine's forward and backward; a pixel's detail recomputes
its share the method's way (the path's gradients for integrated gradients, the outputs with and without
each window for occlusion, the channel weights and maps for Grad-CAM) and its ``sum`` equals the map's
value there.
"""
import numpy as np

from ...data import datasets
from ...errors import GlassnetError
from ...see.attribution import attribute, default_gradcam_step, gradients, occlusion_windows, path_rule
from ...see.trace import trace
from .arrays import encode, scalars

METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "occlusion", "gradcam")
OPTIONS = {"integrated_gradients": {"steps": 32}, "smoothgrad": {"samples": 16, "noise": 0.15, "seed": 0},
           "occlusion": {"window": 4, "stride": 2}}
MISTAKES = 12              # misclassified test images shown in the mistakes panel


def _method(method):
    if method not in METHODS:
        raise GlassnetError(f"method must be one of {', '.join(METHODS)}. Received: {method!r}")
    return method


def _options(method, layer):
    options = dict(OPTIONS.get(method, {}))
    if method == "gradcam" and layer is not None:
        if type(layer) is not int:
            raise GlassnetError(f"layer must be a layer index. Received: {layer!r}")
        options["layer"] = layer
    return options


def why_map(model, x, target, method, layer=None):
    """The map of ``method`` for class ``target`` on x (1, C, H, W): values, the input, the method's options."""
    values = attribute(model, x, target, method=_method(method), **_options(method, layer))
    answer = {"method": method, "target": int(target), "map": encode(np.asarray(values)[0]), "input": encode(x[0]),
              "options": _options(method, layer), "sum": float(np.asarray(values).sum())}
    if method == "integrated_gradients":          # completeness: the map's sum against f(x) - f(0)
        outputs = model.predict(np.concatenate([x, np.zeros_like(x)]))[:, target]
        answer["change"] = float(outputs[0] - outputs[1])
    return answer


def _pixel(position, shape):
    if not isinstance(position, list) or len(position) != len(shape) or any(
            type(p) is not int or not 0 <= p < size for p, size in zip(position, shape)):
        raise GlassnetError(f"position must be {len(shape)} indices inside {tuple(shape)}. Received: {position!r}")
    return tuple(position)


def why_pixel(model, x, target, method, position, layer=None):
    """The numbers behind one value of the map: ``sum`` equals it."""
    method = _method(method)
    value_map = np.asarray(attribute(model, x, target, method=method, **_options(method, layer)))[0]
    where = _pixel(position, value_map.shape)
    value = float(value_map[where])
    detail = {"method": method, "position": list(where), "value": value}
    targets = np.array([target])
    if method in ("gradient", "input_x_gradient"):
        grad = float(gradients(model, x, targets)[0][where])
        pixel = float(x[0][where])
        if method == "gradient":
            detail.update(formula=f"d out[{target}] / dx{list(where)} = {grad:.8g}", sum=grad)
        else:
            detail.update(formula=f"x * d out[{target}] / dx = {pixel:.6g} * {grad:.6g} = {pixel * grad:.8g}",
                          sum=pixel * grad)
    elif method == "integrated_gradients":
        alphas, weights = path_rule(OPTIONS[method]["steps"], "gausslegendre")
        points = np.concatenate([a * x for a in alphas])                       # the path from 0 to x
        path = gradients(model, points, np.repeat(target, len(alphas)))[(slice(None),) + where]
        pixel = float(x[0][where])
        total = pixel * float(np.dot(weights, path))
        detail.update(formula=f"(x - 0) * sum_k w_k g_k = {pixel:.6g} * {float(np.dot(weights, path)):.6g} = "
                              f"{total:.8g} ({len(alphas)} Gauss-Legendre points along 0 -> x)",
                      alphas=scalars(alphas), weights=scalars(weights), path_gradients=scalars(path), sum=total)
    elif method == "smoothgrad":
        rng = np.random.default_rng(OPTIONS[method]["seed"])
        spread = (x.max() - x.min()) * OPTIONS[method]["noise"]
        samples = [float(gradients(model, (x + rng.standard_normal(x.shape) * spread).astype(x.dtype),
                                   targets)[0][where]) for _ in range(OPTIONS[method]["samples"])]
        detail.update(formula=f"mean of the gradient at {len(samples)} noisy copies = {np.mean(samples):.8g}",
                      samples=samples, sum=float(np.mean(samples)))
    elif method == "occlusion":
        detail.update(_occlusion_detail(model, x, target, where))
    else:
        detail.update(_gradcam_detail(model, x, target, where, layer))
    return detail


def _occlusion_detail(model, x, target, where):
    """Each window covering the pixel: the output with the image whole and with the window grey."""
    window, stride = OPTIONS["occlusion"]["window"], OPTIONS["occlusion"]["stride"]
    _, i, j = where
    H, W = x.shape[2:]
    reference = float(model.predict(x)[0, target])
    windows = []
    for top, left in occlusion_windows((H, W), (window, window), (stride, stride)):
        if top <= i < top + window and left <= j < left + window:
            occluded = x.copy()
            occluded[:, :, top:top + window, left:left + window] = 0.0
            windows.append({"top": top, "left": left, "occluded": float(model.predict(occluded)[0, target])})
    drops = [reference - w["occluded"] for w in windows]
    mean = float(np.mean(drops))
    return {"formula": f"mean over the {len(windows)} windows covering the pixel of out(x) - out(x with the "
                       f"window at 0) = {mean:.8g}", "output": reference, "windows": windows, "sum": mean}


def _gradcam_detail(model, x, target, where, layer):
    """The channel weights (mean gradients) and each channel's map at this place."""
    record = trace(model, x, np.array([target]), _selected_loss())
    step = next(s for s in record.steps if s.layer_index == layer) if layer is not None else \
        default_gradcam_step(record.steps)
    maps, grads = np.asarray(step.output)[0], np.asarray(step.grad_output)[0]
    weights = grads.mean(axis=(1, 2))
    i, j = where
    terms = weights * maps[:, i, j]
    total = float(max(terms.sum(), 0.0))
    return {"formula": f"ReLU(sum_c w_c A_c[{i}, {j}]) = ReLU({terms.sum():.6g}) = {total:.8g} at layer "
                       f"{step.layer_index} ({step.layer.split('(')[0]}), w_c the mean of d out / dA_c",
            "weights": scalars(weights), "activations": scalars(maps[:, i, j]), "sum": total}


def _selected_loss():
    from ...see.attribution import _Selected
    return _Selected()


def mistakes(model, limit=MISTAKES):
    """The model's dataset's misclassified test images (up to ``limit``), each with its Grad-CAM."""
    name = model.metadata.get("dataset")
    if name not in datasets.LOADERS:
        raise GlassnetError("the mistakes panel needs a model trained on one of glassnet's datasets "
                            f"(this one's is {name!r})")
    data = datasets.load(name)
    x_test, y_test = data.x_test[:2000], data.y_test[:2000]
    predicted = model.predict(x_test).argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_test)[:limit]
    names = model.metadata.get("class_names") or [str(k) for k in range(int(predicted.max()) + 1)]
    cams = attribute(model, x_test[wrong], predicted[wrong], method="gradcam") if len(wrong) else []
    return {"dataset": name, "checked": int(len(y_test)), "wrong": int((predicted != y_test).sum()),
            "items": [{"index": int(k), "label": names[int(y_test[k])], "predicted": names[int(predicted[k])],
                       "input": encode(x_test[k]), "gradcam": encode(np.asarray(cam))}
                      for k, cam in zip(wrong, cams)]}
