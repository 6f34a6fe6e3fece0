#!/usr/bin/env bash
# Download, here, the wheels that a lent GPU machine's image lacks, for `benchmarks/gpu_check.sh` to install there.
#
#   bash benchmarks/gpu_wheels.sh [DIR]      # default DIR: .whl (ignored by git; name it in the device call's carry)
#
# The H200 image of 2026-11-29 ran Python 3.12 with torch, transformers, numpy, scipy, OpenCV, onnxruntime, rich,
# filelock, psutil, requests, httpx and huggingface_hub, but not these. Versions are the ones installed here, so
# that the GPU runs what the tests run. rapidocr's recognition model (21 MB, never used: only its detector runs)
# is left out of its wheel, which keeps the working tree and the wheels under the device's 64 MiB.
set -eu
DIR=${1:-.whl}
mkdir -p "$DIR"
PACKAGES="pydantic pydantic-core annotated-types typing-inspection natsort soundfile cffi pycparser pyloudnorm mutagen
pypdfium2 platformdirs pretty_midi mido importlib_metadata importlib_resources diffusers torchsde trampoline openai
distro jiter sniffio httpx2 httpcore2 truststore rapidocr pyclipper shapely omegaconf antlr4-python3-runtime colorlog
typer"
for package in $PACKAGES; do
    version=$(python3 -m pip show "$package" 2>/dev/null | awk '/^Version:/ {print $2}')
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$DIR" "$package${version:+==$version}" 2>&1 | grep -v "^WARNING: Location" || true
done
python3 - "$DIR" <<'PY'
import sys, zipfile
from pathlib import Path

for wheel in Path(sys.argv[1]).glob("rapidocr-*.whl"):
    drop = "PP-OCRv6_rec_small.onnx"
    with zipfile.ZipFile(wheel) as zin:
        if not any(name.endswith(drop) for name in zin.namelist()):
            continue
        trimmed = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename.endswith(drop):
                    continue
                data = zin.read(info)
                if info.filename.endswith("RECORD"):
                    data = b"\n".join(line for line in data.split(b"\n") if drop.encode() not in line)
                zout.writestr(info, data)
    trimmed.replace(wheel)
PY
du -sh "$DIR"
