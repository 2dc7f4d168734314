"""glassnet on other Array API libraries: moving a model, training with fit, checkpoints, trace,
gradcheck, saving, mixed devices, the CLI's --device, and the GPU tests kept ready.

The float64 exactness suite itself (every layer, loss and optimizer against PyTorch, the conv and
pooling grids, 20 training steps) runs on every library through the ``backend`` fixture: see
tests/backends.py, test_conv.py, test_pooling.py, test_layers.py, test_losses.py, test_optim.py,
test_network.py.
"""
import importlib.util
import subprocess
import sys

import array_api_strict
import numpy as np
import pytest
import torch

import glassnet as gn
from backends import Backend, same_as_numpy
from glassnet.backend import describe_place, namespace, to_numpy

DEVICE1 = array_api_strict.Device("device1")


def small_net(seed=0):
    # no conv bias before BatchNorm: its gradient is zero up to round-off, which Adam would then amplify
    return gn.Sequential([gn.Conv2D(1, 4, 3, padding=1, bias=False, rng=seed), gn.BatchNorm2D(4), gn.ReLU(),
                          gn.MaxPool2D(2),
                          gn.Flatten(), gn.Dropout(0.25, rng=seed + 1), gn.Dense(4 * 4 * 4, 3, rng=seed + 2)])


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 3, n)


def test_model_to_moves_parameters_buffers_and_back():
    model = small_net()
    before = {name: value.copy() for name, value in model.parameters().items()}
    model.to(array_api_strict, DEVICE1)
    for layer in model.layers:
        for value in list(layer.params.values()) + list(layer.buffers.values()):
            assert namespace(value) is array_api_strict and value.device == DEVICE1
    assert model.place() == (array_api_strict, DEVICE1)
    model.to(np)
    for name, value in model.parameters().items():
        assert type(value) is np.ndarray
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("name", ["array_api_strict", "torch"])
def test_fit_on_another_library_gives_the_numpy_run(name):
    """Data on the host, one batch at a time moved to the model: the same history and weights as NumPy
    (Dropout masks and shuffling come from the same host generators)."""
    backend = Backend(name)
    x, y = data()
    runs = {}
    for label, where in (("numpy", Backend("numpy")), (name, backend)):
        model = where.move(small_net())
        history = model.fit(x, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01, seed=0, verbose=False,
                            validation_data=data(32, seed=1), augment="shift")
        runs[label] = (history, {k: to_numpy(v) for k, v in model.parameters().items()}, model.predict(x))
        where.check_place(model.parameters()["0.weight"])
    (h_np, w_np, p_np), (h, w, p) = runs["numpy"], runs[name]
    # 18 Adam steps through BatchNorm: round-off of differently laid-out matrix products grows a little
    for key in ("loss", "val_loss"):
        same_as_numpy(np.array(h[key]), np.array(h_np[key]), key, rtol=1e-10)
    assert h["accuracy"] == h_np["accuracy"] and h["val_accuracy"] == h_np["val_accuracy"]
    for key in h_np["grad_norms"]:
        same_as_numpy(np.array(h["grad_norms"][key]), np.array(h_np["grad_norms"][key]), f"grad norm {key}",
                      rtol=1e-10)
    assert h["dead_relu"] == h_np["dead_relu"]
    for key in w_np:
        same_as_numpy(w[key], w_np[key], key, rtol=1e-10)
    assert type(p) is np.ndarray
    same_as_numpy(p, p_np, "predictions", rtol=1e-10)


def test_a_checkpointed_run_on_another_library_resumes_to_the_uninterrupted_weights(tmp_path):
    x, y = data()
    backend = Backend("array_api_strict")
    whole = backend.move(small_net())
    whole.fit(x, y, epochs=2, batch_size=16, optimizer="momentum", lr=0.05, seed=0, verbose=False)

    class StopAfter(gn.Callback):
        def on_batch_end(self, event):
            if event.epoch == 1 and event.batch == 4:
                raise gn.StopTraining

    first = backend.move(small_net())
    first.fit(x, y, epochs=2, batch_size=16, optimizer="momentum", lr=0.05, seed=0, verbose=False,
              checkpoint=tmp_path / "run.ckpt", checkpoint_every=2, callbacks=[StopAfter()])
    resumed = backend.move(small_net(seed=9))          # other weights: all of them come from the checkpoint
    resumed.fit(x, y, epochs=2, batch_size=16, optimizer="momentum", lr=0.05, seed=0, verbose=False,
                checkpoint=tmp_path / "run.ckpt", resume=True, log=lambda line: None)
    for name, value in whole.parameters().items():
        np.testing.assert_array_equal(to_numpy(resumed.parameters()[name]), to_numpy(value))


def test_save_load_trace_and_gradcheck_on_another_library(tmp_path):
    model = Backend("torch").move(small_net()).eval()
    x, y = data(2)
    gn.save(model, tmp_path / "m.glassnet")
    loaded = gn.load(tmp_path / "m.glassnet").eval()   # a host model
    same_as_numpy(model.predict(x), loaded.predict(x), "predictions after save and load")
    record = gn.trace(model, x, y, gn.SoftmaxCrossEntropy())
    assert all(type(step.output) is np.ndarray for step in record.steps)     # host copies for display
    reference = gn.trace(loaded, x, y, gn.SoftmaxCrossEntropy())
    same_as_numpy(record.steps[0].param_grads["weight"], reference.steps[0].param_grads["weight"], "trace")
    errors = gn.gradcheck(model, x, y, gn.SoftmaxCrossEntropy())
    assert max(errors.values()) < 1e-6, errors


def test_mixing_devices_is_refused_naming_both():
    model = small_net().to(array_api_strict, DEVICE1)
    x_elsewhere = array_api_strict.asarray(data(2)[0])             # the default device, CPU_DEVICE
    with pytest.raises(gn.GlassnetError) as caught:
        model.forward(x_elsewhere)
    message = str(caught.value)
    assert "device1" in message and "CPU_DEVICE" in message, message
    assert describe_place(x_elsewhere) in message and describe_place(model.parameters()["0.weight"]) in message
    torch_input = torch.asarray(data(2)[0])
    with pytest.raises(gn.GlassnetError, match="torch on cpu.*array_api_strict on"):
        model.forward(torch_input)
    with pytest.raises(gn.GlassnetError, match="the input is torch on cpu but the model's parameters are numpy"):
        small_net().forward(torch_input)


def test_the_strict_library_refuses_what_glassnet_must_not_use():
    """The flags tests/backends.py sets: boolean masks and data-dependent shapes fail, so the
    suite would catch them in glassnet's code."""
    backend = Backend("array_api_strict")
    x = backend.array(np.arange(4.0))
    with pytest.raises(Exception):
        x[x > 1]


def test_train_on_torch_from_the_command_line(tmp_path):
    out = tmp_path / "digits.glassnet"
    run = subprocess.run([sys.executable, "-m", "glassnet.apps.cli", "train", "--dataset", "digits", "--epochs", "2",
                          "--device", "torch", "--quiet", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "test accuracy" in run.stdout
    assert type(gn.load(out).parameters()["0.weight"]) is np.ndarray


def test_an_unavailable_device_is_one_clear_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "glassnet.apps.cli", "train", "--dataset", "digits", "--device", "cuda",
                          "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "cuda" in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


# -- on a GPU (CuPy); skipped with the reason where there is none -------------------------------------

def cupy_or_skip():
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("no GPU test here: CuPy is not installed (pip install 'glassnet[gpu]' on a machine with CUDA)")
    import cupy
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no GPU test here: CuPy finds no GPU")
    except Exception as error:
        pytest.skip(f"no GPU test here: CuPy finds no usable GPU ({error})")
    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (5, 2, 0), ((2, 3), (1, 2), "valid")])
def test_conv_and_pool_on_cupy_equal_numpy(kernel, stride, padding):
    cupy = cupy_or_skip()
    rng = np.random.default_rng(0)
    for layer in (gn.Conv2D(3, 4, kernel, stride=stride, padding=padding, rng=1), gn.MaxPool2D(2, stride=1),
                  gn.AvgPool2D(3, padding=1)):
        x = rng.standard_normal((2, 3, 9, 8))
        expected_out = layer.forward(x)                 # first on NumPy ...
        dy = rng.standard_normal(expected_out.shape)
        expected_dx = layer.backward(dy)
        expected_grads = {k: v.copy() for k, v in layer.grads.items()}
        layer.to(cupy)                                  # ... then the same layer on the GPU
        same_as_numpy(to_numpy(layer.forward(cupy.asarray(x))), expected_out, "output")
        same_as_numpy(to_numpy(layer.backward(cupy.asarray(dy))), expected_dx, "dL/dx")
        for key, grad in expected_grads.items():
            same_as_numpy(to_numpy(layer.grads[key]), grad, key)


@pytest.mark.gpu
def test_fit_on_cupy_equals_numpy():
    cupy = cupy_or_skip()
    x, y = data()
    gpu, cpu = small_net().to(cupy), small_net()
    h_gpu = gpu.fit(x, y, epochs=2, batch_size=16, optimizer="adam", lr=0.01, seed=0, verbose=False)
    h_cpu = cpu.fit(x, y, epochs=2, batch_size=16, optimizer="adam", lr=0.01, seed=0, verbose=False)
    same_as_numpy(np.array(h_gpu["loss"]), np.array(h_cpu["loss"]), "loss", rtol=1e-10)


def test_a_graph_model_runs_on_every_library_as_on_numpy(backend):
    """Merges, both global poolings, a fan-out and a shared layer, moved with model.to(xp, device)."""
    import copy

    from backends import same_as_numpy
    from fuzzing import graph_model
    from glassnet.backend import to_numpy
    model = graph_model()
    twin = copy.deepcopy(model)
    backend.move(model)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 6))
    out = model.forward(backend.array(x))
    backend.check_place(out)
    dy = rng.standard_normal(tuple(out.shape))
    dx = model.backward(backend.array(dy))
    backend.check_place(dx)
    same_as_numpy(to_numpy(out), twin.forward(x), "output")
    same_as_numpy(to_numpy(dx), twin.backward(dy), "dL/dx")
    theirs = twin.gradients()
    for name, grad in model.gradients().items():
        backend.check_place(grad)
        same_as_numpy(to_numpy(grad), theirs[name], name)
    assert len(theirs) == 6                      # the shared convolution, BatchNorm and Dense: weight and bias
