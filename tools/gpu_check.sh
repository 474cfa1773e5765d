#!/usr/bin/env bash
# Checks the CUDA path on a GPU machine in a few minutes: prints the GPU and versions, runs every
# test marked `cuda` (one line per test) and a short benchmark (JSON lines: fp32/bf16/fp16 train
# and inference of Mask R-CNN R50-FPN, with peak_cuda_mb). Writes only under $OUT (if set) or a
# temporary folder; exits non-zero when a test or the benchmark fails.
#     bash tools/gpu_check.sh            (from the repository root; PY=python to choose the interpreter)
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
WORK=${OUT:-$(mktemp -d -t gpu_check.XXXXXX)}
mkdir -p "$WORK"
export SEG_DATASETS="$WORK/datasets" SEG_SHAPES_TRAIN=12 SEG_SHAPES_VAL=6 SEG_SHAPES_SIZE=64
status=0
echo "== GPU"; nvidia-smi || { echo "nvidia-smi failed: no GPU?"; status=1; }
echo "== versions"
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'torchvision', torchvision.__version__); print('cuda available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())" || status=1
echo "== cuda tests"
timeout 300 "$PY" -m pytest -m cuda -rA -v -p no:cacheprovider tests/cuda \
    --basetemp "$WORK/pytest" 2>&1 | tee "$WORK/tests.log" | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|error" || true
grep -qE "[0-9]+ passed" "$WORK/tests.log" && ! grep -qE "[0-9]+ (failed|error)" "$WORK/tests.log" || { echo "cuda tests FAILED (log: $WORK/tests.log)"; tail -40 "$WORK/tests.log"; status=1; }
echo "== benchmark (JSON lines)"
CONFIG=configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml
for task in train inference; do
    timeout 150 "$PY" tools/benchmark.py --config-file "$CONFIG" --task "$task" --iters 5 --warmup 2 \
        --precision fp32 bf16 fp16 --json "$WORK/benchmark.jsonl" MODEL.DEVICE cuda SOLVER.IMS_PER_BATCH 2 \
        OUTPUT_DIR "$WORK/bench" 2>"$WORK/benchmark_$task.err" \
        || { echo "benchmark $task FAILED:"; tail -20 "$WORK/benchmark_$task.err"; status=1; }
done
[ -f "$WORK/benchmark.jsonl" ] && "$PY" - "$WORK/benchmark.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['task']:9s} {r['precision']:4s} median {r['median_s']:.4f} {r['unit']}  peak_cuda_mb {r.get('peak_cuda_mb')}")
PYEOF
echo "== summary: $([ $status -eq 0 ] && echo OK || echo FAILED) (files in $WORK)"
exit $status
