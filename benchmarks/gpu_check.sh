#!/usr/bin/env bash
# One short GPU check, run as a single command on a lent CUDA machine that cannot reach the internet.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [WHEELS_DIR]
#
# WHEELS_DIR holds wheels (Python 3.12, manylinux x86_64) of the project's dependencies that the machine's
# image lacks (pydantic, soundfile, diffusers, rapidocr, ...); they are installed into /tmp/site with --no-deps
# and the repository itself is put on PYTHONPATH, so the image's torch and transformers are the ones tested.
# What it runs, most important first, each step under its own time limit so one slow step cannot eat the rest:
#   1. versions, nvidia-smi and `manga2music doctor --offline` (does auto see the GPU, which tier does it pick);
#   2. the first compose call in a process against later ones, with cuDNN attention left out (ours) and allowed;
#   3. the composer and describer tests with the device left at auto and M2M_TEST_GPU=1, so they run on CUDA;
#   4. `benchmarks/run.py --gpu` (musicgen-small/medium/large, bf16 and fp32, batch 1 and 8, 10 s);
#   5. the whole `manga2music run samples/` on musicgen-small's real architecture (random weights), device auto.
# At most about 9 minutes: each step has its own limit (550 s in all; call the device with timeout_s 580).
# The results of 2026-11-29 (H200) are in benchmarks/results/gpu-h200-2026-11-29.md.
set -u
OUT=${1:?usage: gpu_check.sh OUT_DIR [WHEELS_DIR]}
WHEELS=${2:-.whl}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 M2M_BENCH_CACHE=/tmp/m2m-bench
if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
        || { echo "wheel install failed"; exit 3; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
    python3 -c "import sys, torch, transformers, diffusers; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'diffusers', diffusers.__version__, 'bf16', torch.cuda.is_bf16_supported())"
    nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== imports"  # a missing dependency shows here in one line, not as a failed build later
python3 - <<'PY' 2>&1 | tee -a "$OUT/env.txt"
import importlib
names = ["pydantic", "soundfile", "pyloudnorm", "mutagen", "pypdfium2", "natsort", "platformdirs", "pretty_midi",
         "filelock", "charset_normalizer", "diffusers", "torchsde", "openai", "rapidocr", "onnxruntime", "cv2", "typer",
         "rich", "transformers.models.musicgen.modeling_musicgen", "transformers.models.encodec.feature_extraction_encodec"]
bad = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        bad.append(f"{name}: {type(exc).__name__}: {exc}")
print("missing:", bad if bad else "none")
PY

echo "== doctor"
timeout 20 python3 -m manga2music doctor --offline > "$OUT/doctor.txt" 2>&1
cat "$OUT/doctor.txt"

echo "== first call vs later calls (musicgen-small shape, bf16, 5 s): cuDNN attention left out (default), then allowed"
# On the H200 on 2026-11-29 the first 10 s compose in a process took 38.6 s and the second 11.0 s. The suspect:
# cuDNN attention builds a plan for every new shape, and decoding makes one at every step. Since then decoding on
# CUDA leaves cuDNN out (devices.decoding_attention); MANGA2MUSIC_CUDNN_ATTENTION=1 gives torch its own choice back.
for flag in 0 1; do
    MANGA2MUSIC_CUDNN_ATTENTION=$flag timeout 75 python3 benchmarks/musicgen_arch.py small --device cuda --dtype bf16 \
        --seconds 5 --repeat 3 --folder "$M2M_BENCH_CACHE/musicgen-small-realcfg-random" 2>&1 | grep -v "Loading weights" \
        | sed "s/^/cudnn-attention-allowed=$flag: /" | tee -a "$OUT/firstcall.txt"
done

echo "== tests on CUDA (one file at a time, so each reaches its summary)"
: > "$OUT/pytest.txt"
for spec in "tests/test_musicgen.py:70" "tests/test_musicgen_melody.py:25" "tests/test_diffusion_composers.py:70" \
            "tests/test_transformers_vlm.py:45"; do
    file=${spec%%:*}; limit=${spec##*:}
    M2M_TEST_GPU=1 timeout "$limit" python3 -m pytest -q -p no:cacheprovider -rfE --tb=short "$file" >> "$OUT/pytest.txt" 2>&1
    echo "$file rc=$? (limit $limit s)" | tee -a "$OUT/pytest.txt"
done
grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -30

echo "== benchmarks"
timeout "${BENCH_LIMIT:-110}" python3 benchmarks/run.py --gpu --budget "${BENCH_BUDGET:-70}" --out "$OUT" \
    > "$OUT/bench.txt" 2>&1
echo "bench rc=$?" >> "$OUT/bench.txt"
tail -30 "$OUT/bench.txt"

echo "== whole command"
MODEL=$M2M_BENCH_CACHE/musicgen-small-realcfg-random
{
    if [ -d "$MODEL" ]; then
        rm -rf /tmp/e2e
        start=$(date +%s.%N)
        timeout 60 python3 -m manga2music run samples/ -o /tmp/e2e --vision-model builtin --music-model "$MODEL" \
            --duration 10 --seed 7 --offline
        echo "run rc=$? wall $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
        python3 - <<'EOF'
import glob, json, hashlib
for rec in sorted(glob.glob("/tmp/e2e/*.json")):
    data = json.load(open(rec))
    if isinstance(data, dict) and "compose" in data:
        c = data["compose"]
        print(rec.split("/")[-1], c.get("model_id"), c.get("settings"), [t.get("seed") for t in c.get("takes", [])])
for audio in sorted(glob.glob("/tmp/e2e/*.wav")):
    print(audio.split("/")[-1], hashlib.sha256(open(audio, "rb").read()).hexdigest()[:16])
EOF
    else
        echo "no musicgen-small folder (the benchmark did not build it)"
    fi
} > "$OUT/e2e.txt" 2>&1
cat "$OUT/e2e.txt"
