#!/usr/bin/env bash
# The GPU measurements of issues 12 and 15 as one prepared session (first, every method's CUDA path
# on tiny data: tests/test_generic.py on the device): a lent GPU is short (minutes), so
# everything runs from one command, in priority order, and each step writes under OUT as soon as it
# ends. A step gets at most the time left of BUDGET_SECONDS and is skipped when less than it needs is
# left; OUT/steps.tsv lists every step with its exit code (124: cut by the budget) and seconds.
# Rerunning with the same OUT resumes the trainings from their checkpoints.
#
#   benchmarks/gpu_session.sh DATA_DIR OUT [BUDGET_SECONDS]
#
# DATA_DIR holds medmnist/pneumoniamnist.npz and medmnist/vesselmnist3d.npz (the layout of
# ../shared/data). SMOKE=1 runs every step at toy size on the CPU, to check the script itself
# (tests/engine/test_gpu_session.py). What the results are for: docs/speed.md, "GPU".
set -uo pipefail
usage="usage: benchmarks/gpu_session.sh DATA_DIR OUT [BUDGET_SECONDS]"
data=${1:?$usage}
out=${2:?$usage}
budget=${3:-540}
deadline=$(( $(date +%s) + budget ))
mkdir -p "$out" || exit 2

if [[ "${SMOKE:-0}" == 1 ]]; then
  device=cpu
  speed_args=(--cases 2d-28 --steps 1 --repeats 1 --warmup 0 --width 0.125 --size 8 --batch-size 4 --workers 0)
  suite_args=(--datasets pneumoniamnist --methods bce --seeds 0 --epochs 1)
  full_args=(--epochs 1 --max-train-samples 64 --width 0.125)
  validation_args=(--dry-run)
  generic_args=(-k "synthetic2d-bce or synthetic3d_mc-ce")
else
  device=cuda
  speed_args=()  # every case: 2d-28, 3d-28, 3d-64
  suite_args=(--datasets pneumoniamnist,vesselmnist3d)  # the quick suite's runs whose data is carried
  full_args=(--epochs 100)  # the MedMNIST v2 recipe
  validation_args=(--runs-per-device 3)
  generic_args=(-k train_and_score)  # every method on the synthetic pair of its framing, every dataset's stand-in
fi

step() {  # step NAME NEEDED_SECONDS COMMAND...
  local name=$1 needed=$2 left start code
  shift 2
  left=$(( deadline - $(date +%s) ))
  if (( left < needed )); then
    printf '%s\tskipped\t0\t%s s left, %s s needed\n' "$name" "$left" "$needed" >> "$out/steps.tsv"
    return
  fi
  start=$(date +%s)
  timeout "$left" "$@" > "$out/$name.out" 2> "$out/$name.err"
  code=$?
  printf '%s\t%s\t%s\n' "$name" "$code" "$(( $(date +%s) - start ))" >> "$out/steps.tsv"
}

step env 0 bash -c 'nvidia-smi || echo "no nvidia-smi"; python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"'
step every-method 60 timeout 240 env CRITBENCH_TEST_DEVICE="$device" python -m pytest -q -p no:cacheprovider tests/test_generic.py \
  "${generic_args[@]}" --junitxml "$out/every-method.xml"
step speed 60 python -m benchmarks.speed --device "$device" "${speed_args[@]}" --json "$out/speed.json"
for n in 1 2 4; do
  step "suite-quick-n$n" 30 python -m benchmarks.speed --suite quick "${suite_args[@]}" --runs-per-device "$n" \
    --data-dir "$data" --device "$device" --json "$out/suite-quick-n$n.json"
done
step full-pneumoniamnist-bce 60 python -m benchmarks.run --dataset pneumoniamnist --method bce --patience 0 --seed 0 \
  "${full_args[@]}" --data-dir "$data" --device "$device" --quiet --out "$out/full"
step validation-vesselmnist3d 60 python -m benchmarks.leaderboard --suite validation --datasets vesselmnist3d \
  --methods bce --seeds 0-2 "${validation_args[@]}" --data-dir "$data" --device "$device" --out "$out/validation" --no-report
cat "$out/steps.tsv"
