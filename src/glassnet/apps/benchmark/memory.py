"""Child process for ``measure.peak_memory``: prints {"peak_bytes": ...} as JSON.

The peak resident set size (VmHWM) is reset through /proc/self/clear_refs after
imports and data creation, so the figure covers the model, its gradients, the
optimizer state and the activations of ``steps`` training steps.

Usage: python -m glassnet.apps.benchmark.memory glassnet|torch CASE DTYPE THREADS STEPS
"""
import json
import sys


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


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
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak RSS to the current RSS
    baseline = _status_kib("VmRSS")
    make = torch_trainer if framework == "torch" else glassnet_trainer
    _, train_step, _ = make(case, dtype)
    for _ in range(int(steps)):
        train_step(x, y)
    print(json.dumps({"peak_bytes": (_status_kib("VmHWM") - baseline) * 1024}))


if __name__ == "__main__":
    main(sys.argv[1:])
