#!/usr/bin/env bash
# Launches `python -m experiments.run` on one machine, a SLURM allocation or a TPU pod slice.
#
#   ./launch.sh local [--processes N] [--] RUN_ARGS...
#       One process using all local devices (default), or N processes on
#       localhost (coordinator localhost:$JAXSIM_PORT, default 12355) to exercise
#       the multi-process path on one machine (CPU collectives use gloo).
#   ./launch.sh slurm [--srun "SRUN OPTIONS"] [--] RUN_ARGS...
#       srun, one task per node by default (pass e.g. --srun "--ntasks-per-node=8
#       --gpus-per-task=1" for one process per GPU). JAX reads the coordinator,
#       process count and id from SLURM's environment.
#   ./launch.sh tpu --tpu NAME --zone ZONE [--project P] [--dir REMOTE_REPO] [--] RUN_ARGS...
#       gcloud compute tpus tpu-vm ssh --worker=all: the same command on every
#       host of the slice (the repository must already be at REMOTE_REPO on each
#       host, default ~/jaxsim). JAX detects the TPU pod topology itself.
#
# Multi-process modes set JAXSIM_DISTRIBUTED=1, which makes experiments.run call
# jax.distributed.initialize() before touching a device. RUN_ARGS go to the entry
# point unchanged, e.g. ./launch.sh slurm -- --config=face_fp --workdir=/scratch/run1
# Environment: PYTHON (default python), JAXSIM_MODULE (default experiments.run),
# GLIBC_TUNABLES (default glibc.malloc.hugetlb=1: huge pages for large buffers, see below).
set -euo pipefail
# glibc (>= 2.35) backs large allocations with transparent huge pages: XLA:CPU's buffers
# above 32 MB are mmapped afresh every step, and 4 KB page faults cost a ResNet-18 step
# at 64 px about a fifth of its time (README, Performance). Harmless where unsupported.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 ]] || usage
mode=$1; shift
python=${PYTHON:-python}
module=${JAXSIM_MODULE:-experiments.run}

case "$mode" in
  local)
    processes=1
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --processes) processes=$2; shift 2 ;;
        --processes=*) processes=${1#*=}; shift ;;
        --) shift; break ;;
        *) break ;;
      esac
    done
    if [[ "$processes" -eq 1 ]]; then
      exec "$python" -m "$module" "$@"
    fi
    port=${JAXSIM_PORT:-12355}
    pids=()
    for ((i = 0; i < processes; i++)); do
      JAXSIM_DISTRIBUTED=1 JAX_COORDINATOR_ADDRESS="localhost:$port" \
        JAXSIM_NUM_PROCESSES="$processes" JAXSIM_PROCESS_ID="$i" \
        "$python" -m "$module" "$@" &
      pids+=("$!")
    done
    status=0
    remaining=("${pids[@]}")
    while [[ ${#remaining[@]} -gt 0 ]]; do
      rc=0
      wait -n -p finished "${remaining[@]}" || rc=$?
      left=()
      for pid in "${remaining[@]}"; do [[ "$pid" == "$finished" ]] || left+=("$pid"); done
      remaining=("${left[@]}")
      if [[ $rc -ne 0 ]]; then
        # One process failed: stop the others, which would wait at a barrier forever.
        status=$rc
        for pid in "${remaining[@]}"; do kill "$pid" 2>/dev/null || true; done
        wait "${remaining[@]}" 2>/dev/null || true
        break
      fi
    done
    exit "$status"
    ;;
  slurm)
    srun_args=""
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --srun) srun_args=$2; shift 2 ;;
        --srun=*) srun_args=${1#*=}; shift ;;
        --) shift; break ;;
        *) break ;;
      esac
    done
    # shellcheck disable=SC2086  # srun options are meant to split into words
    exec srun ${srun_args:---ntasks-per-node=1} env JAXSIM_DISTRIBUTED=1 "$python" -m "$module" "$@"
    ;;
  tpu)
    tpu="" zone="" project="" dir="~/jaxsim"
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --tpu) tpu=$2; shift 2 ;;
        --zone) zone=$2; shift 2 ;;
        --project) project=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
      esac
    done
    [[ -n "$tpu" && -n "$zone" ]] || { echo "tpu mode needs --tpu NAME and --zone ZONE" >&2; exit 2; }
    remote="cd $dir && JAXSIM_DISTRIBUTED=1 $python -m $module$(printf ' %q' "$@")"
    exec gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" ${project:+--project="$project"} \
      --worker=all --command="$remote"
    ;;
  -h|--help) usage ;;
  *) echo "unknown mode '$mode'; expected local, slurm or tpu" >&2; exit 2 ;;
esac
