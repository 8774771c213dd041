#!/usr/bin/env bash
# Reproduce the paper's results: execute the numbered notebooks in order with papermill.
#
#   ./run_all.sh [--profile smoke|quick|paper] [--data PATH] [--seeds N] [--models a,b] [--only NN[,NN...]] [--force]
#
#   --profile  configs/<profile>.yaml (default: quick, the CPU profile)
#   --data     dataset folder with images/ and masks/ (default: the embedded synthetic dataset)
#   --seeds    training seeds per model (default: runs.seeds of the profile)
#   --models   models to train and compare, comma-separated (default: runs.models of the profile)
#   --only     run only the notebooks with these numbers, e.g. --only 01,02 (or 1,2)
#   --force    redo work whose results exist: re-execute notebooks and retrain runs
#
# Executed notebooks go to results/<dataset>/<profile>/notebooks/ (with a log each), trained runs to
# results/<dataset>/<profile>/<model>/seed<k>/, figures and tables to figures/<dataset>/<profile>/, and each
# notebook's wall time to figures/<dataset>/<profile>/run_times.csv, beside this machine's reference step time.
# 03_train runs once per model and seed; the later notebooks read those runs. Stops at the first failing notebook.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
profile=quick data="" only="" force=0 seeds="" models=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile|--data|--only|--seeds|--models)
            [[ $# -ge 2 ]] || { echo "error: $1 needs a value (see ./run_all.sh --help)" >&2; exit 2; } ;;&
        --profile) profile="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --models) models="${2//,/ }"; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (see ./run_all.sh --help)" >&2; exit 2 ;;
    esac
done
config="configs/${profile}.yaml"
[[ -f "${config}" ]] || { echo "error: no profile '${profile}' (${config} does not exist)" >&2; exit 2; }
if [[ -n "${data}" ]]; then
    [[ -d "${data}" ]] || { echo "error: data folder '${data}' does not exist" >&2; exit 2; }
    data="$(cd "${data}" && pwd)"
fi
[[ -z "${seeds}" || "${seeds}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --seeds takes a positive number, not '${seeds}'" >&2; exit 2; }
numbers=""
for number in ${only//,/ }; do  # 3 and 03 both mean notebooks/03_*.ipynb; a number without a notebook is refused
    [[ "${number}" =~ ^[0-9]{1,2}$ ]] || { echo "error: --only takes notebook numbers such as 01,03, not '${number}'" >&2; exit 2; }
    number="$(printf '%02d' "$((10#${number}))")"
    compgen -G "notebooks/${number}_*.ipynb" > /dev/null || { echo "error: --only ${number}: there is no notebooks/${number}_*.ipynb" >&2; exit 2; }
    numbers+="${numbers:+,}${number}"
done
only="${numbers}"

source scripts/ensure_env.sh
dataset="$(python -c 'import sys; from lib.paths import dataset_name; print(dataset_name(sys.argv[1]))' "${data}")"
out="results/${dataset}/${profile}/notebooks"
figures="figures/${dataset}/${profile}"
mkdir -p "${out}" "${figures}"
echo "[run_all] profile=${profile} dataset=${dataset} -> ${out}/ and ${figures}/"

models="${models:-$(python -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["runs"]["models"]))' "${config}")}"
seeds="${seeds:-$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["runs"]["seeds"])' "${config}")}"
runs_param="runs: {models: [${models// /, }], seeds: ${seeds}}"  # overrides the profile's runs section
force_param=False
[[ ${force} -eq 1 ]] && force_param=True
step_ms="$(python -c 'from lib.experiments.efficiency import reference_step_ms; print(f"{reference_step_ms():.0f}")')"
machine="$(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
echo "[run_all] this machine: ${machine}; reference training step ${step_ms} ms (lib.experiments.efficiency)"

record_time() {  # $1: executed notebook's name, $2: seconds; one row per notebook, the latest run's
    local table="${figures}/run_times.csv" tmp
    tmp="$(mktemp "${figures}/.run_times.XXXXXX")"
    echo "notebook,seconds,finished_utc,reference_step_ms,machine" > "${tmp}"
    [[ -f "${table}" ]] && tail -n +2 "${table}" | grep -v "^${1}," >> "${tmp}" || true
    echo "${1},${2},$(date -u +%Y-%m-%dT%H:%M:%SZ),${step_ms},\"${machine}\"" >> "${tmp}"
    mv "${tmp}" "${table}"
}

execute() {  # $1: notebook, $2: executed copy's name, further arguments: papermill parameters
    local notebook="$1" name="$2" target="${out}/$2" t0
    shift 2
    if [[ -f "${target}" && ${force} -eq 0 ]]; then
        echo "[run_all] ${name}: done before, skipped (--force redoes it)"
        return
    fi
    echo "[run_all] ${name} ..."
    t0=$(date +%s)
    if ! papermill --no-progress-bar --kernel python3 -f "${config}" -p data_dir "${data}" -y "${runs_param}" -p force "${force_param}" "$@" \
            "${notebook}" "${target}.partial" > "${out}/${name%.ipynb}.log" 2>&1; then
        tail -n 30 "${out}/${name%.ipynb}.log" >&2
        echo "[run_all] FAILED: ${name} (full log: ${out}/${name%.ipynb}.log; executed copy: ${target}.partial)" >&2
        exit 1
    fi
    mv "${target}.partial" "${target}"
    record_time "${name%.ipynb}" "$(( $(date +%s) - t0 ))"
    echo "[run_all] ${name}: $(( $(date +%s) - t0 )) s"
}

start=$(date +%s)
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
    name="$(basename "${notebook}")"
    number="${name%%_*}"
    if [[ -n "${only}" && ",${only}," != *",${number},"* ]]; then continue; fi
    if [[ "${name}" == 03_train.ipynb ]]; then
        for model in ${models}; do
            for ((seed = 0; seed < seeds; seed++)); do
                execute "${notebook}" "03_train-${model}-seed${seed}.ipynb" -p model_name "${model}" -p train_seed "${seed}"
            done
        done
    else
        execute "${notebook}" "${name}"
    fi
done
echo "[run_all] finished in $(( $(date +%s) - start )) s"
