#!/usr/bin/env bash
# Reproduce the paper's results: execute the numbered notebooks in order with papermill.
#
#   ./run_all.sh [--profile smoke|quick|paper|recommended] [--data PATH] [--seeds N] [--folds K] [--models a,b]
#                [--precision fp32|bf16|fp16|auto] [--input-size N] [--only NN[,NN...]] [--budget[-finished]]
#                [--force] [--debug]
#   ./run_all.sh --report-only
#
#   --profile  configs/<profile>.yaml (default: quick, the CPU profile; recommended: the budget sweep's best point)
#   --data     dataset folder with images/ and masks/ (default: the embedded synthetic dataset)
#   --seeds    training seeds per model (default: runs.seeds of the profile)
#   --folds    K-fold cross-validation by source image (default: data.folds of the profile, 1 = its single split);
#              every source image is tested once; runs, notebooks and figures go to <profile>-cv<K>/
#   --models   models to train and compare, comma-separated (default: runs.models of the profile)
#   --precision  what training and prediction compute in (default: train.precision of the profile, fp32 on the CPU
#              profiles; bf16 is 1.2-2.1x faster on a CPU with native bfloat16, lib/device.py); another precision
#              than the profile's is its own setting, <profile>[-cv<K>]-<precision>/
#   --input-size  px the networks see (data.input_size, a multiple of 32; the tile size = full resolution): another
#              input size than the profile's is its own setting, <profile>[-cv<K>]-in<N>[-<precision>]/
#   --only     run only the notebooks with these numbers, e.g. --only 01,02 (or 1,2)
#   --budget   also run notebook 09, the budget sweep (budget.points: every arm retrained at each input size and
#              epochs; hours on a CPU, see the report's budget section); --only 09 runs it alone
#   --budget-finished  notebook 09 on the budget points whose runs have all finished (trained earlier, or elsewhere
#              from the job list), training nothing (with --force: reading them again); the points still missing
#              are named as not trained yet
#   --force    redo work whose results exist: re-execute notebooks and retrain runs
#   --debug    on a failure, show the end of the notebook's log (the traceback) instead of one line
#   --report-only  run no notebook: rebuild the report from the figures and executed notebooks already there
#
# Executed notebooks go to results/<dataset>/<setting>/notebooks/ (with a log each), trained runs to
# results/<dataset>/<setting>/<model>/seed<k>/[fold<f>/], figures and tables to figures/<dataset>/<setting>/, and
# each notebook's wall time to figures/<dataset>/<setting>/run_times.csv, beside this machine's reference step
# time; the setting is the profile's name, or <profile>-cv<K> with K folds.
# 03_train runs once per model and seed; the later notebooks read those runs. Progress (epochs, batches, evaluation,
# ablation variants) is printed as it happens, and kept in the logs and executed copies. Stops at the first
# failing notebook: a problem with the data, config or runs is one line `error: ...` (exit status 2).
# At the end of a run that publishes its figures (not REPRO_PUBLISH_FIGURES=0, as the tests run it) the report is
# rebuilt (python -m lib.report): README.md and report/*.md from figures/, and the HTML report from them and every
# executed notebook under results/; its index is the last line printed.
set -euo pipefail
cd "$(dirname "$0")"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
profile=quick data="" only="" force=0 seeds="" folds="" models="" precision="" input_size="" debug=0 report_only=0 budget=0 budget_param=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile|--data|--only|--seeds|--folds|--models|--precision|--input-size)
            [[ $# -ge 2 ]] || { echo "error: $1 needs a value (see ./run_all.sh --help)" >&2; exit 2; } ;;&
        --profile) profile="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --folds) folds="$2"; shift 2 ;;
        --models) models="${2//,/ }"; shift 2 ;;
        --precision) precision="$2"; shift 2 ;;
        --input-size) input_size="$2"; shift 2 ;;
        --budget) budget=1; shift ;;
        --budget-finished) budget=1; budget_param=(-p train_missing False); shift ;;
        --force) force=1; shift ;;
        --debug) debug=1; shift ;;
        --report-only) report_only=1; shift ;;
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
[[ -z "${folds}" || "${folds}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --folds takes a positive number, not '${folds}'" >&2; exit 2; }
[[ -z "${input_size}" || "${input_size}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --input-size takes a positive number, not '${input_size}'" >&2; exit 2; }
[[ -z "${precision}" || "${precision}" =~ ^(fp32|bf16|fp16|auto)$ ]] || { echo "error: --precision takes fp32, bf16, fp16 or auto, not '${precision}'" >&2; exit 2; }
numbers=""
for number in ${only//,/ }; do  # 3 and 03 both mean notebooks/03_*.ipynb; a number without a notebook is refused
    [[ "${number}" =~ ^[0-9]{1,2}$ ]] || { echo "error: --only takes notebook numbers such as 01,03, not '${number}'" >&2; exit 2; }
    number="$(printf '%02d' "$((10#${number}))")"
    compgen -G "notebooks/${number}_*.ipynb" > /dev/null || { echo "error: --only ${number}: there is no notebooks/${number}_*.ipynb" >&2; exit 2; }
    numbers+="${numbers:+,}${number}"
done
only="${numbers}"

source scripts/ensure_env.sh
build_report() { if [[ ${debug} -eq 1 ]]; then python -m lib.report --debug; else python -m lib.report; fi; }
if [[ ${report_only} -eq 1 ]]; then
    build_report
    exit 0
fi
# Notebooks executed here write text progress and publish their figures to figures/ (lib/progress.py, lib/paths.py);
# REPRO_PUBLISH_FIGURES=0 (run_tests.sh) keeps figures and wall times under results/ instead.
export REPRO_PROGRESS=text REPRO_PUBLISH_FIGURES="${REPRO_PUBLISH_FIGURES:-1}" TQDM_MININTERVAL="${TQDM_MININTERVAL:-20}"
# The dataset's name, the folds, the setting and the figures folder, as lib/paths.py names them for the notebooks
# (one line each: a dataset folder's name may hold spaces). With --folds, --precision or --input-size, or a derived
# profile (recommended), the profile with those settings changed is written to results/<dataset>/<setting>/config.yaml;
# the notebooks read it with -f like a profile.
names="$(python -c 'import sys, yaml
from lib.config import ConfigError, apply_changes, load_config
from lib.files import write_text_atomic
from lib.paths import REPO_ROOT, dataset_name, figures_dir, setting_directory, setting_name
config, data, folds, precision, input_size = sys.argv[1:]
changes = {"data.folds": int(folds)} if folds else {}
changes |= {"train.precision": precision} if precision else {}
changes |= {"data.input_size": int(input_size)} if input_size else {}
try:
    cfg = apply_changes(load_config(config), changes)
except ConfigError as error:
    sys.exit(f"error: {error}")
setting = setting_name(cfg)
if setting != cfg["profile"] or "extends" in yaml.safe_load(open(config)):  # papermill reads a file of sections
    config = setting_directory(cfg, data) / "config.yaml"
    write_text_atomic(config, yaml.safe_dump(cfg, sort_keys=False))
print(dataset_name(data), cfg["data"]["folds"], setting, figures_dir(cfg, data).relative_to(REPO_ROOT), config, sep="\n")' \
    "${config}" "${data}" "${folds}" "${precision}" "${input_size}")" || exit 2
{ read -r dataset; read -r folds; read -r setting; read -r figures; read -r config; } <<< "${names}"
out="results/${dataset}/${setting}/notebooks"
mkdir -p "${out}"
echo "[run_all] profile=${profile} dataset=${dataset} folds=${folds} setting=${setting} -> ${out}/ and ${figures}/"

models="${models:-$(python -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["runs"]["models"]))' "${config}")}"
seeds="${seeds:-$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["runs"]["seeds"])' "${config}")}"
runs_param="runs: {models: [${models// /, }], seeds: ${seeds}}"  # overrides the profile's runs section
force_param=False
[[ ${force} -eq 1 ]] && force_param=True
step_ms="$(python -c 'from lib.experiments.efficiency import reference_step_ms; print(f"{reference_step_ms():.0f}")')"
machine="$(python -c 'from lib.device import machine_description; print(machine_description())')"
echo "[run_all] this machine: ${machine}; reference training step ${step_ms} ms (lib.experiments.efficiency)"

record_time() {  # $1: executed notebook's name, $2: seconds; one row per notebook, the latest run's
    local table="${figures}/run_times.csv" tmp
    exec 9> "${out}/.run_times.lock" && flock 9  # two invocations on one setting (--only lanes) take turns
    tmp="$(mktemp "${figures}/.run_times.XXXXXX")"
    echo "notebook,seconds,finished_utc,reference_step_ms,machine" > "${tmp}"
    [[ -f "${table}" ]] && tail -n +2 "${table}" | grep -v "^${1}," >> "${tmp}" || true
    echo "${1},${2},$(date -u +%Y-%m-%dT%H:%M:%SZ),${step_ms},\"${machine}\"" >> "${tmp}"
    mv "${tmp}" "${table}"
    exec 9>&-
}

failed() {  # $1: executed notebook's name, $2: its log. A user's problem is one line (exit 2), a bug its traceback.
    local found
    found="$(sed 's/\x1b\[[0-9;]*m//g' "$2" | grep -E '^[A-Za-z_.]*(Error|Exception): ' | tail -n 1)"
    if [[ ${debug} -eq 0 && "${found}" =~ ^(lib\.[a-z_.]+\.)?(DatasetError|ConfigError|StaleRunError|MissingRunError|WeightsUnavailableError|FileNotFoundError|ValueError):\ (.*)$ ]]; then
        echo "error: ${BASH_REMATCH[3]} (in ${1}; full log: $2, --debug shows the traceback)" >&2
        exit 2
    fi
    tail -n 40 "$2" >&2
    echo "[run_all] FAILED: $1 (full log: $2; executed copy: ${out}/$1.partial)" >&2
    exit 1
}

execute() {  # $1: notebook, $2: executed copy's name, further arguments: papermill parameters
    local notebook="$1" name="$2" target="${out}/$2" t0
    shift 2
    if [[ -f "${target}" && ${force} -eq 0 ]]; then
        echo "[run_all] ${name}: done before, skipped (--force redoes it)"
        skipped=1
        return
    fi
    echo "[run_all] ${name} ..."
    t0=$(date +%s)
    local log="${out}/${name%.ipynb}.log" status
    set +e  # the log keeps everything; the terminal shows the progress lines
    papermill --log-output --no-progress-bar --kernel python3 -f "${config}" -p data_dir "${data}" -y "${runs_param}" \
            -p force "${force_param}" "$@" "${notebook}" "${target}.partial" 2>&1 | tee "${log}" \
        | sed -u 's/\r/\n/g' | grep --line-buffered -E '(epoch [0-9]+/[0-9]+:|[0-9]+%\|)' | sed -u 's/^/    /'
    status=${PIPESTATUS[0]}
    set -e
    [[ ${status} -eq 0 ]] || failed "${name}" "${log}"
    mv "${target}.partial" "${target}"
    record_time "${name%.ipynb}" "$(( $(date +%s) - t0 ))"
    echo "[run_all] ${name}: $(( $(date +%s) - t0 )) s"
}

start=$(date +%s) skipped=0
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
    name="$(basename "${notebook}")"
    number="${name%%_*}"
    if [[ -n "${only}" && ",${only}," != *",${number},"* ]]; then continue; fi
    if [[ "${name}" == 09_budget.ipynb && ${budget} -eq 0 && -z "${only}" ]]; then
        echo "[run_all] 09_budget: the budget sweep is not part of the main job (--budget or --only 09 runs it)"
        continue
    fi
    if [[ "${name}" == 03_train.ipynb ]]; then
        for model in ${models}; do
            for ((seed = 0; seed < seeds; seed++)); do
                if [[ ${folds} -eq 1 ]]; then
                    execute "${notebook}" "03_train-${model}-seed${seed}.ipynb" -p model_name "${model}" -p train_seed "${seed}"
                else
                    for ((fold = 0; fold < folds; fold++)); do
                        execute "${notebook}" "03_train-${model}-seed${seed}-fold${fold}.ipynb" -p model_name "${model}" \
                            -p train_seed "${seed}" -p train_fold "${fold}"
                    done
                fi
            done
        done
    elif [[ "${name}" == 09_budget.ipynb ]]; then
        execute "${notebook}" "${name}" "${budget_param[@]}"
    else
        execute "${notebook}" "${name}"
    fi
done
# The whole job's wall time is recorded only when this one invocation ran every notebook (nothing skipped or left out).
[[ -z "${only}" && ${skipped} -eq 0 ]] && record_time "run_all_end_to_end" "$(( $(date +%s) - start ))"
echo "[run_all] finished in $(( $(date +%s) - start )) s"
[[ "${REPRO_PUBLISH_FIGURES}" != 1 ]] || build_report  # the report shows figures/, which only a publishing run changes
