#!/usr/bin/env bash
# Makes, on this side (which reaches PyPI and Debian), the two folders bench/gpu_device.sh
# carries to a lent GPU machine (which reaches nothing), then says how to run it:
#
#   bash bench/gpu_prepare.sh [DATA_DIR]     # DATA_DIR: where tinyshakespeare.txt is (../shared/data)
#
#   .whl      the wheels autolab needs that the machine's image ('cuda', Python 3.12) lacks:
#             optuna and openai, resolved by pip with their dependencies, less those the image
#             already holds (HELD: from its package list in the device tool's KINDS.md, read
#             2026-11-17), so that its own numpy and the like stay (installed with --no-deps).
#   .gpudata  the bubblewrap .deb (the sandbox; unpacked there without root's apt) and
#             tinyshakespeare.txt (the small model's data).
#
# Both are git-ignored through .git/info/exclude, so only `carry` takes them along.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
# What the image holds of what pip resolves here (2026-12-08); the rest is carried.
HELD="numpy packaging pyyaml tqdm typing_extensions anyio h11 httpx httpcore idna certifi
      markupsafe"

for ignored in /.whl/ /.gpudata/; do
    grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
done
rm -rf .whl .gpudata
mkdir -p .whl .gpudata
python3 -m pip download -q -d .whl --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    "optuna>=4.0,<6" "openai>=1.40,<4"
for wheel in .whl/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]' '[:lower:]')
    if [[ " $(echo $HELD) " == *" $name "* ]]; then rm "$wheel"; fi
done
(cd .gpudata && apt-get download bubblewrap 2> /dev/null)
cp "$data/tinyshakespeare.txt" .gpudata/
du -sh .whl .gpudata
echo 'then: run(command="bash bench/gpu_device.sh", carry=[".whl", ".gpudata"], timeout_s=560)'
