#!/usr/bin/env bash
# The GPU check, in one call of the device tool, from the repository root on a lent GPU machine:
#
#   here, once:  python -m pip download --no-deps array-api-compat==1.16.0 array-api-strict==2.6.1 -d .wheels
#                (.wheels is git-ignored; tests/test_backends.py imports array_api_strict)
#   device run:  command="bash benchmarks/gpu_check.sh", carry=[".wheels"], timeout_s=540
#
# That machine's image holds CuPy (cupy-cuda13x), PyTorch with CUDA, NumPy and pytest, and cannot fetch
# anything: glassnet runs from src/ (PYTHONPATH), the two array-api packages from the carried wheels. Then the
# gpu-marked tests (CuPy against NumPy) and benchmarks/gpu_check.py (CuPy vs NumPy vs PyTorch-CUDA).
# Logs go to $OUT (the device tool brings them back).
set -uo pipefail
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src"
python3 -m pip install --quiet --no-deps --no-index --find-links .wheels array-api-compat array-api-strict 2>&1 | tail -2
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c "import cupy, torch, glassnet; print('cupy', cupy.__version__, 'torch', torch.__version__, \
'cuda', torch.cuda.is_available())" 2>&1 | tee "$out/versions.txt"
timeout 240 python3 -m pytest -m gpu -p no:cacheprovider -rs tests/test_backends.py 2>&1 | tee "$out/pytest-gpu.log"
timeout 240 python3 benchmarks/gpu_check.py 2>&1 | tee "$out/timing.log"
