#!/usr/bin/env bash
# The scale issue's GPU checks (section 3), as one command for a lent GPU machine (the `device` tool):
#
#   run(command="bash experiments/gpu_check.sh", timeout_s=570)
#
# From the repository root, with the machine's own python3 (its image holds PyTorch, PyG, pyarrow, pandas,
# scipy, safetensors, transformers: all graphrec needs for these two checks; graphrec itself comes from this
# tree through PYTHONPATH). Writes under $OUT (what the device tool brings back):
#   env.txt               the GPUs, torch and PyG versions
#   bench_scale_cuda.txt  python experiments/bench_scale.py --device cuda at 25M interactions (section 1 on
#                         the GPU: time, peak RSS and peak GPU memory per stage; epochs over --epoch-budget
#                         seconds are timed on 20 steps and extrapolated, marked ~); .log: its progress
#   run_cuda.txt          graphrec run of a synthetic 1M-interaction LightGCN: with NCCL over every GPU
#                         (--nproc N) where there are several, else on the one GPU
#   run_config.yaml       that run's configuration
# Then record the figures in experiments/README.md, naming the card.
#
# The same script runs on the CPU for a dry run of its logic (gloo, 2 processes):
#   DEVICE=cpu SIZES=200000 ITEMS=2000 RUN_INTERACTIONS=20000 NPROC=2 OUT=/tmp/gpu_check bash experiments/gpu_check.sh
set -uo pipefail
OUT=${OUT:-${TMPDIR:-/tmp}/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-25000000}
ITEMS=${ITEMS:-59047}
THREADS=${THREADS:-$(nproc)}
RUN_INTERACTIONS=${RUN_INTERACTIONS:-1000000}

{
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    $PY -c 'import torch, torch_geometric as g; print("torch", torch.__version__, "| PyG", g.__version__, "| CUDA GPUs", torch.cuda.device_count())'
} 2>&1 | tee "$OUT/env.txt"
gpus=$($PY -c 'import torch; print(torch.cuda.device_count())')
if [[ $DEVICE == cuda* && $gpus -lt 1 ]]; then
    echo "gpu_check.sh: DEVICE=$DEVICE but torch sees no CUDA GPU" >&2
    exit 2
fi

# 1. Section 1 on the device, at 25M by default (the log is written on the CPU first, ~100 s)
timeout "${SCALE_S:-400}" $PY experiments/bench_scale.py --device "$DEVICE" --sizes $SIZES --items "$ITEMS" \
    --threads "$THREADS" --epoch-budget "${EPOCH_BUDGET:-60}" --out "$OUT/bench_scale_cuda.txt" 2>&1 \
    | tee "$OUT/bench_scale_cuda.log"  # the stages as they end, should the timeout cut the table
echo "bench_scale.py exit ${PIPESTATUS[0]}"

# 2. A whole run: NCCL over every GPU where there are several, else one process on the one GPU
nproc_run=${NPROC:-$(( gpus > 1 ? gpus : 1 ))}
users=$(( RUN_INTERACTIONS * 162541 / 25000095 ))
users=$(( users > 1 ? users : 1 ))
cat > "$OUT/run_config.yaml" <<EOF
name: gpu-check-synthetic-lightgcn
dataset: {name: synthetic-${RUN_INTERACTIONS}, format: synthetic, users: ${users}, items: ${ITEMS}, interactions: ${RUN_INTERACTIONS}, seed: 0}
split: {method: random, ratios: [0.8, 0.1, 0.1], seed: 2020}
model: {name: lightgcn, dim: 64, num_layers: 3}
train: {epochs: ${RUN_EPOCHS:-10}, batch_size: 2048, lr: 0.001, seed: 2020, device: ${DEVICE}, patience: 0, progress: false}
eval: {ks: [20]}
EOF
args=(run "$OUT/run_config.yaml" --out "${TMPDIR:-/tmp}/gpu_check_run" --overwrite)
(( nproc_run > 1 )) && args+=(--nproc "$nproc_run")
start=$(date +%s)
timeout "${RUN_S:-120}" $PY -m graphrec "${args[@]}" 2>&1 | tee "$OUT/run_cuda.txt"
echo "graphrec run ($nproc_run process(es), device $DEVICE) exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" \
    | tee -a "$OUT/run_cuda.txt"
