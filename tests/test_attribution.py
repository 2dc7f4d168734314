"""gn.attribute against Captum on the same model (gn.to_torch), float64: gradient, input x gradient,
integrated gradients (both rules, a non-zero baseline), occlusion with strides that do not tile, Grad-CAM at
two layers, on a chain and on a graph model; integrated gradients' completeness; SmoothGrad by hand."""
import numpy as np
import pytest
import torch

import glassnet as gn

captum = pytest.importorskip("captum.attr", reason="the Captum checks need captum (the test extra installs it)")


def chain():
    """(1, 10, 10) -> 4 scores: conv, ReLU, conv, ReLU, pool, dense (Grad-CAM at layers 1 and 3)."""
    rng = np.random.default_rng(0)
    return gn.Sequential([gn.Conv2D(1, 4, 3, rng=rng), gn.ReLU(), gn.Conv2D(4, 6, 3, rng=rng), gn.ReLU(),
                          gn.MaxPool2D(2), gn.Flatten(), gn.Dense(6 * 3 * 3, 4, rng=rng)])


def graph():
    """A residual block: conv, ReLU, conv added to its input, ReLU, global pool, dense."""
    rng = np.random.default_rng(1)
    x = gn.Input((2, 8, 8))
    h = gn.ReLU()(gn.Conv2D(2, 4, 3, padding=1, rng=rng)(x))
    h = gn.ReLU()(gn.Add()([gn.Conv2D(4, 4, 3, padding=1, rng=rng)(h), h]))
    return gn.Model(x, gn.Dense(4, 3, rng=rng)(gn.GlobalAvgPool2D()(h)))


MODELS = {"chain": (chain, (1, 10, 10)), "graph": (graph, (2, 8, 8))}


def setup(name):
    make, shape = MODELS[name]
    model = make().eval()
    twin = gn.to_torch(model).eval()
    x = np.random.default_rng(2).standard_normal((3,) + shape)
    targets = np.array([0, 2, 1])
    return model, twin, x, targets


def tensor(x):
    return torch.tensor(x, dtype=torch.float64)


def assert_close(ours, theirs, rtol=1e-8):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradient_and_input_x_gradient_match_captum(name):
    model, twin, x, targets = setup(name)
    saliency = captum.Saliency(twin).attribute(tensor(x), target=targets.tolist(), abs=False)
    assert_close(gn.attribute(model, x, targets, method="gradient"), saliency)
    assert_close(gn.attribute(model, x, targets, method="input_x_gradient"),
                 captum.InputXGradient(twin).attribute(tensor(x), target=targets.tolist()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_integrated_gradients_follow_captum_point_for_point(name):
    """Captum casts its quadrature weights to float32 and its trapezoid weights are 1/steps (summing to
    (steps - 1) / steps); given those same weights the engine's path gradients agree with Captum's at 1e-10.
    glassnet's own rules use float64 weights, and a trapezoid whose weights sum to 1."""
    from glassnet.see.attribution import integrated_gradients, path_rule
    model, twin, x, targets = setup(name)
    # a non-zero baseline that is not constant: at a constant image every max-pooling window ties, and
    # which of the equal values wins (a valid subgradient either way) hangs on the last bit of the sums
    baseline = 0.3 + 0.1 * np.random.default_rng(9).standard_normal(x.shape)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)                        # Captum's trapezoid grid in float64
    try:
        for rule, steps in (("gausslegendre", 20), ("riemann_trapezoid", 25)):
            theirs = captum.IntegratedGradients(twin).attribute(tensor(x), baselines=tensor(baseline),
                                                                 target=targets.tolist(), n_steps=steps, method=rule)
            alphas, weights = path_rule(steps, rule)
            if rule == "riemann_trapezoid":
                weights = np.full(steps, 1.0 / steps)
                weights[[0, -1]] /= 2
            captum_weights = weights.astype(np.float32).astype(np.float64)
            model.eval()
            ours = integrated_gradients(model, x, targets, baseline=baseline,
                                        alphas_weights=(alphas, captum_weights))
            assert_close(ours, theirs, rtol=1e-10)
            public = gn.attribute(model, x, targets, method="integrated_gradients", steps=steps, rule=rule,
                                  baseline=baseline)
            if rule == "gausslegendre":                           # float32 weights: 1e-7 apart at most
                assert_close(public, theirs, rtol=1e-6)
            else:                                                  # (steps - 1) / steps: Captum's trapezoid
                assert_close(public * (steps - 1) / steps, theirs, rtol=1e-6)
    finally:
        torch.set_default_dtype(previous)


def test_integrated_gradients_completeness_gap_shrinks_with_steps():
    model, _, x, targets = setup("chain")
    baseline = np.zeros_like(x)
    outputs = model.predict(x)[np.arange(3), targets] - model.predict(baseline)[np.arange(3), targets]
    gaps = {}
    for steps in (20, 50, 200):
        total = gn.attribute(model, x, targets, method="integrated_gradients", steps=steps).sum(axis=(1, 2, 3))
        gaps[steps] = float(np.abs(total - outputs).max())
    print("integrated gradients completeness gap |sum - (f(x) - f(0))|:", gaps)
    assert gaps[200] <= gaps[20] and gaps[200] < 1e-2 * np.abs(outputs).max()


def test_smoothgrad_is_the_mean_gradient_at_its_noisy_points_and_repeats_with_its_seed():
    model, _, x, targets = setup("chain")
    ours = gn.attribute(model, x, targets, method="smoothgrad", samples=8, noise=0.2, seed=5)
    np.testing.assert_array_equal(ours, gn.attribute(model, x, targets, method="smoothgrad", samples=8, noise=0.2,
                                                     seed=5))
    rng = np.random.default_rng(5)
    spread = 0.2 * (x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True))
    by_hand = np.zeros_like(x)
    for _ in range(8):                                             # the gradient at each noisy point, by hand
        noisy = x + rng.standard_normal(x.shape) * spread
        by_hand += gn.attribute(model, noisy, targets, method="gradient")
    np.testing.assert_allclose(ours, by_hand / 8, rtol=1e-12, atol=1e-15)
    assert not np.allclose(ours, gn.attribute(model, x, targets, method="smoothgrad", samples=8, noise=0.2, seed=6))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("window, stride", [(3, 1), ((3, 2), 2), (4, 3)])
def test_occlusion_matches_captum_with_strides_that_do_not_tile(name, window, stride):
    """Captum divides by the window counts in float32 (its format_result casts), so 2e-7."""
    model, twin, x, targets = setup(name)
    C = x.shape[1]
    wh, ww = (window, window) if isinstance(window, int) else window
    theirs = captum.Occlusion(twin).attribute(tensor(x), sliding_window_shapes=(C, wh, ww), strides=(C, stride, stride),
                                              baselines=0.5, target=targets.tolist())
    ours = gn.attribute(model, x, targets, method="occlusion", window=window, stride=stride, baseline=0.5)
    assert_close(ours, theirs, rtol=2e-7)


@pytest.mark.parametrize("name, layers", [("chain", (1, 3)), ("graph", (1, 4))])
def test_gradcam_matches_captum_layer_gradcam_at_two_layers(name, layers):
    model, twin, x, targets = setup(name)
    modules = dict(twin.named_modules())
    for index in layers:
        module = modules[str(index)] if name == "chain" else modules[f"layer{index}"]
        theirs = captum.LayerGradCam(twin, module).attribute(tensor(x), target=targets.tolist(),
                                                              relu_attributions=True)
        ours = gn.attribute(model, x, targets, method="gradcam", layer=index)
        assert ours.shape == tuple(theirs.shape[:1] + theirs.shape[2:])
        assert_close(ours, theirs[:, 0])
        assert ours.max() > 0
    np.testing.assert_array_equal(gn.attribute(model, x, targets, method="gradcam", layer=model.layers[layers[0]]),
                                  gn.attribute(model, x, targets, method="gradcam", layer=layers[0]))
    last = max(k for k, layer in enumerate(model.layers) if type(layer).__name__ in ("ReLU", "MaxPool2D"))
    np.testing.assert_array_equal(gn.attribute(model, x, targets, method="gradcam"),       # the default layer:
                                  gn.attribute(model, x, targets, method="gradcam", layer=last))   # last 4-D one


def test_bad_arguments_name_what_was_expected():
    model, _, x, targets = setup("chain")
    cases = [(dict(method="lime"), "method must be one of gradient, input_x_gradient"),
             (dict(method="gradient", steps=5), "method 'gradient' takes no options. Received: steps"),
             (dict(method="integrated_gradients", steps=1, rule="riemann_trapezoid"),
              "steps must be an int of at least 2"),
             (dict(method="integrated_gradients", rule="simpson"), "rule must be one of gausslegendre"),
             (dict(method="occlusion", window=20), "occlusion window (20, 20) must fit the image"),
             (dict(method="gradcam", layer=6), "gradcam needs a layer with (N, C, H, W) output"),
             (dict(method="smoothgrad", samples=0), "samples must be an int of at least 1")]
    for kwargs, message in cases:
        with pytest.raises(gn.GlassnetError, match=f"attribute: {__import__('re').escape(message)}"):
            gn.attribute(model, x, targets, **kwargs)
    with pytest.raises(gn.GlassnetError, match=r"target must be an output index in \[0, 3\]"):
        gn.attribute(model, x, 4)
    with pytest.raises(gn.GlassnetError, match="x contains NaN"):
        gn.attribute(model, np.full_like(x, np.nan), 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_method_gives_the_same_map_on_array_api_strict(name):
    """The model on another array library (array-api-strict, a stand-in for a GPU's): the same maps."""
    import copy
    xp = pytest.importorskip("array_api_strict")
    model, _, x, targets = setup(name)
    other = copy.deepcopy(model).to(xp)
    for method in ("gradient", "integrated_gradients", "smoothgrad", "occlusion", "gradcam"):
        np.testing.assert_allclose(np.asarray(gn.attribute(other, x, targets, method=method)),
                                   np.asarray(gn.attribute(model, x, targets, method=method)), rtol=1e-12, atol=1e-15)
