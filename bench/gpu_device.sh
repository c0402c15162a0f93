#!/usr/bin/env bash
# bench/gpu.py on a lent GPU machine (the `device` tool's `run`), set up and run in one call:
#
#   run(command="bash bench/gpu_device.sh", carry=[".whl", ".gpudata"], timeout_s=560)
#
# Both folders are git-ignored (.git/info/exclude) and made on this side beforehand by
# `bash bench/gpu_prepare.sh` (~10 s, 12 MB):
#   .whl      wheels the machine's image lacks (optuna, openai and theirs): installed --no-deps
#   .gpudata  the bubblewrap .deb, tinyshakespeare.txt, and optionally probe.py (which warm-up
#             step of the zygote would poison forks for CUDA)
# Extra arguments go to bench/gpu.py (e.g. --small-variants '[{"DEPTH": 4}]'). The report is
# $OUT/gpu.json, written after each part, so a run cut short still brings back what it did.
set -u
out="${OUT:-/tmp}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps .whl/*.whl
fi
deb=$(compgen -G ".gpudata/bubblewrap_*.deb" | head -1)
if [ -n "$deb" ] && ! command -v bwrap > /dev/null; then
    dpkg -x "$deb" /tmp/bw && export PATH="/tmp/bw/usr/bin:$PATH"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
if [ -f .gpudata/probe.py ]; then
    PYTORCH_NVML_BASED_CUDA_CHECK=0 timeout 120 python3 .gpudata/probe.py > "$out/probe.txt" 2>&1
fi
python3 bench/gpu.py --data .gpudata --out "$out/gpu.json" "$@"
