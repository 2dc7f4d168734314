"""Child process for ``measure.peak_memory``: prints {"peak_bytes": ...} as JSON.

The peak resident set size (VmHWM) is reset through /proc/self/clear_refs after
imports and data creation, so the figure covers the model, its gradients, the
optimizer state and the activations of ``steps`` training steps.

Usage: python -m glassnet.apps.benchmark.memory glassnet|torch CASE DTYPE THREADS STEPS
"""
import json
import sys

from .measure import peak_since, reset_peak_memory


def main(argv):
    framework, case_name, dtype, threads, steps = argv
    from threadpoolctl import threadpool_limits

    from .cases import CASES, batch, glassnet_trainer, torch_trainer

    case = CASES[case_name]
    x, y = batch(case, dtype)
    threadpool_limits(int(threads))
    if framework == "torch":
        import torch
        torch.set_num_threads(int(threads))
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    baseline = reset_peak_memory()
    make = torch_trainer if framework == "torch" else glassnet_trainer
    _, train_step, _ = make(case, dtype)
    for _ in range(int(steps)):
        train_step(x, y)
    print(json.dumps({"peak_bytes": peak_since(baseline)}))


if __name__ == "__main__":
    main(sys.argv[1:])
