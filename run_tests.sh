#!/usr/bin/env bash
# The test command: the linter (ruff), source notebooks free of outputs (nbstripout), the unit tests (pytest, which
# check that README.md and report/ are up to date with figures/), then every numbered notebook executed in the
# smoke profile (papermill, through run_all.sh in two lanes) and re-executed by nbval, which checks that the cells marked
# `# NBVAL_CHECK_OUTPUT` print the same deterministic summaries again; then the HTML report is built with those
# notebooks (warnings are errors), its links and images checked, and its first page opened in headless Chromium
# (installed with apt-get when missing and run as root). Tests, lanes and nbval use every core, one torch thread each.
#
#   ./run_tests.sh                  everything (what CI runs)
#   ./run_tests.sh --unit-only      the linter and the unit tests only
#   ./run_tests.sh --record-time    everything, then its wall time (and that of its smoke notebooks on UCSB, budget
#                                   sweep included, in two lanes) to figures/benchmarks/run_tests.csv, and the README and
#                                   report rendered again with them (how the README's times are measured)
#   ./run_tests.sh --help           this text
#
# Notebooks run on the UCSB data when it is found (UCSB_DATA, default ../shared/data/ucsb_breast_cancer_cells)
# and on the synthetic dataset otherwise; the dataset notebook runs on both.
set -euo pipefail
cd "$(dirname "$0")"
unit_only=0 record_time=0
for argument in "$@"; do
    case "${argument}" in
        --unit-only) unit_only=1 ;;
        --record-time) record_time=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "error: unknown argument ${argument} (see ./run_tests.sh --help)" >&2; exit 2 ;;
    esac
done
source scripts/ensure_env.sh
export TQDM_MININTERVAL=30  # progress bars in logs: one line every 30 s, not a flood
start=$(date +%s)
# the report's browser checks (a unit test and the last step) open pages in the system's Chromium
if ! command -v chromium > /dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; then
        echo "[run_tests] installing Chromium (Debian's package) for the report's browser check"
        apt-get update -qq > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
    else
        echo "error: the report's browser check needs Chromium at /usr/bin/chromium (apt-get install chromium)" >&2
        exit 1
    fi
fi

ruff check lib tests benchmarks
# notebooks are stored without outputs; executed copies live in results/ and report/notebooks/ only
nbstripout --verify --keep-id notebooks/*.ipynb || { echo "error: notebooks above hold outputs: run nbstripout --keep-id on them" >&2; exit 1; }
# One pytest worker per core (pytest-xdist), each test file in one worker, one torch thread each: small models
# gain little from a second thread, while two processes use both cores
export OMP_NUM_THREADS=1
python -m pytest tests -q -p no:cacheprovider -n auto --dist loadfile --durations=15
[[ ${unit_only} -eq 1 ]] && exit 0

ucsb="${UCSB_DATA:-../shared/data/ucsb_breast_cancer_cells}"
smoke_ucsb_seconds=""
# Every notebook in the smoke profile as two run_all.sh --only lanes at once, one per core: notebooks 04-06 read
# notebook 03's runs and stay in its lane; 07 and 09 train runs of their own and 08 times random inputs (its smoke
# timings are not published). Runs, prepared tiles and the run_times table are safe to share between processes.
LANES=("01,02,03,04,05,06" "07,08,09")
run_lanes() {  # $1: dataset folder ("" = synthetic); each lane's lines carry its notebooks' numbers
    local data="$1" lane pids=() failed=0
    for lane in "${LANES[@]}"; do
        ( REPRO_PUBLISH_FIGURES=0 ./run_all.sh --profile smoke --data "${data}" --budget --only "${lane}" 2>&1 \
              | sed -u "s/^/[${lane}] /"; exit "${PIPESTATUS[0]}" ) &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "${pid}" || failed=1; done
    return ${failed}
}
check_notebooks() {  # $1: dataset folder ("" = synthetic), $2: notebook numbers ("" = all)
    local data="$1" only="$2" dataset number executed=()
    dataset="$(python -c 'import sys; from lib.paths import dataset_name; print(dataset_name(sys.argv[1]))' "${data}")"
    # A clean slate instead of --force: the executed copies then hold force=False, so that nbval's
    # re-execution loads the trained runs instead of training them again.
    rm -rf "results/${dataset}/smoke" "results/${dataset}"/smoke-in*  # the budget sweep trains full resolution in smoke-in<N>
    local t0=$(date +%s)
    if [[ -n "${only}" ]]; then
        REPRO_PUBLISH_FIGURES=0 ./run_all.sh --profile smoke --data "${data}" --only "${only}"  # figures stay in results/
    else
        run_lanes "${data}"
    fi
    [[ -n "${data}" && -z "${only}" ]] && smoke_ucsb_seconds=$(( $(date +%s) - t0 ))  # shown in the README
    for notebook in results/"${dataset}"/smoke/notebooks/[0-9][0-9]_*.ipynb; do
        number="$(basename "${notebook}")"; number="${number%%_*}"
        [[ -z "${only}" || ",${only}," == *",${number},"* ]] && executed+=("${notebook}")
    done
    python -m pytest -q -p no:cacheprovider -n auto --dist loadfile --nbval-lax --nbval-current-env \
        --nbval-sanitize-with tests/nbval_sanitize.cfg "${executed[@]}"
    # the study's job list (lib/experiments/study.py) names exactly the runs the notebooks trained
    [[ -z "${only}" ]] && python -m lib.experiments.study --profile smoke --data "${data}" --budget --check
    return 0
}
if [[ -d "${ucsb}" ]]; then
    check_notebooks "$(cd "${ucsb}" && pwd)" ""
    check_notebooks "" "01"
else
    echo "[run_tests] ${ucsb} not found: notebooks run on the synthetic dataset only"
    check_notebooks "" ""
fi

# The HTML report of the committed results and the notebooks just executed, then what a reader's browser shows.
python -m lib.report --html-only
python -m lib.report --check-site
[[ ${record_time} -eq 1 ]] || exit 0
machine="$(python -c 'from lib.device import machine_description; print(machine_description())')"
times="figures/benchmarks/run_tests.csv"
finished="$(date -u +%Y-%m-%dT%H:%M:%SZ)" seconds="$(( $(date +%s) - start ))"
step_ms="$(python -c 'from lib.experiments.efficiency import reference_step_ms; print(f"{reference_step_ms():.0f}")')"
{
    echo "command,seconds,finished_utc,reference_step_ms,machine"
    echo "./run_tests.sh,${seconds},${finished},${step_ms},\"${machine}\""
    [[ -z "${smoke_ucsb_seconds}" ]] || echo "smoke notebooks on ucsb_breast_cancer_cells with the budget sweep in two lanes,${smoke_ucsb_seconds},${finished},${step_ms},\"${machine}\""
} > "${times}.tmp" && mv "${times}.tmp" "${times}"
python -m lib.report --no-html
echo "[run_tests] passed in $(( $(date +%s) - start )) s (${times})"
