#!/usr/bin/env bash
# Reproduce the paper's results: execute the numbered notebooks in order with papermill.
#
#   ./run_all.sh [--profile smoke|quick|paper] [--data PATH] [--only NN[,NN...]] [--force]
#
#   --profile  configs/<profile>.yaml (default: quick, the CPU profile)
#   --data     dataset folder with images/ and masks/ (default: the embedded synthetic dataset)
#   --only     run only the notebooks with these numbers, e.g. --only 01,02
#   --force    re-run notebooks whose executed copy already exists (otherwise they are skipped)
#
# Executed notebooks go to results/<dataset>/<profile>/notebooks/, figures and tables to
# figures/<dataset>/<profile>/. Stops at the first failing notebook and names it.
set -euo pipefail
cd "$(dirname "$0")"

profile=quick data="" only="" force=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see ./run_all.sh --help)" >&2; exit 2 ;;
    esac
done
config="configs/${profile}.yaml"
[[ -f "${config}" ]] || { echo "error: no profile '${profile}' (${config} does not exist)" >&2; exit 2; }
if [[ -n "${data}" ]]; then
    [[ -d "${data}" ]] || { echo "error: data folder '${data}' does not exist" >&2; exit 2; }
    data="$(cd "${data}" && pwd)"
fi

source scripts/ensure_env.sh
dataset="$(python -c 'import sys; from lib.config import dataset_name; print(dataset_name(sys.argv[1]))' "${data}")"
out="results/${dataset}/${profile}/notebooks"
mkdir -p "${out}"
echo "[run_all] profile=${profile} dataset=${dataset} -> ${out}/ and figures/${dataset}/${profile}/"

start=$(date +%s)
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
    name="$(basename "${notebook}")"
    number="${name%%_*}"
    if [[ -n "${only}" && ",${only}," != *",${number},"* ]]; then continue; fi
    target="${out}/${name}"
    if [[ -f "${target}" && ${force} -eq 0 ]]; then
        echo "[run_all] ${name}: done before, skipped (--force re-runs it)"
        continue
    fi
    echo "[run_all] ${name} ..."
    t0=$(date +%s)
    if ! papermill --no-progress-bar --kernel python3 -f "${config}" -p data_dir "${data}" \
            "${notebook}" "${target}.partial" > "${out}/${name%.ipynb}.log" 2>&1; then
        tail -n 30 "${out}/${name%.ipynb}.log" >&2
        echo "[run_all] FAILED: ${name} (full log: ${out}/${name%.ipynb}.log; executed copy: ${target}.partial)" >&2
        exit 1
    fi
    mv "${target}.partial" "${target}"
    echo "[run_all] ${name}: $(( $(date +%s) - t0 )) s"
done
echo "[run_all] finished in $(( $(date +%s) - start )) s"
