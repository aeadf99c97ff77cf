#!/usr/bin/env bash
# One-shot GPU check of the nightly path, run from the repository root on a CUDA machine
# without installing (PYTHONPATH=.; the plugin is loaded with -p harness.plugin).
#   1. CIFAR-10/100 in torchvision's format (fixtures/cifar.py) and a random-init ViT-S/16 file
#      named "pretrained" (the seed's mistake);
#   2. pytest suites/baseline --profile nightly on them: the engine's CUDA path (bf16, compile,
#      on-device resize to 224) must run end to end, and the mislabelled init must be caught;
#   3. the gpu-marked tests.
# Writes everything under ${OUT:-/tmp/gpu_check}.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
# the pytest11 entry point loads the plugin where the package is installed; else load it by name
PLUGIN=$(python3 -c "import importlib.metadata as m; print('' if any(e.name == 'harness' for e in m.entry_points(group='pytest11')) else '-p harness.plugin')")
DATA=$(mktemp -d)
python3 -m fixtures.cifar "$DATA" --per-class-train 100 --per-class-test 50 > /dev/null
python3 - "$DATA/vit_small_cifar10_pretrained_init.safetensors" <<'PY'
import sys, torch
from safetensors.torch import save_file
from harness.models import create_model
torch.manual_seed(0)
m = create_model("vit_small_patch16_224", 1000)
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[1])
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pytest $PLUGIN -p no:cacheprovider suites/baseline --profile nightly \
  --data-root "$DATA" --init "$DATA/vit_small_cifar10_pretrained_init.safetensors" \
  --reports-dir "$OUT/reports" --no-progress -q 2>&1 | tee "$OUT/nightly.txt"
echo "nightly exit: ${PIPESTATUS[0]}" | tee -a "$OUT/nightly.txt"
cp "$OUT/reports/latest/report.md" "$OUT/nightly_report.md" 2>/dev/null
cp "$OUT/reports/latest/report.json" "$OUT/nightly_report.json" 2>/dev/null
python3 -m pytest $PLUGIN -p no:cacheprovider -m gpu tests/test_batches.py tests/test_train.py -q 2>&1 | tail -5 | tee "$OUT/gpu_tests.txt"
rm -rf "$OUT/reports"
