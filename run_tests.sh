#!/usr/bin/env bash
# The test command: the linter (ruff), the unit tests (pytest), then every numbered notebook executed in the
# smoke profile (papermill, through run_all.sh) and re-executed by nbval, which checks that the cells marked
# `# NBVAL_CHECK_OUTPUT` print the same deterministic summaries again.
#
#   ./run_tests.sh                  everything (what CI runs)
#   ./run_tests.sh --unit-only      the linter and the unit tests only
#   ./run_tests.sh --help           this text
#
# Notebooks run on the UCSB data when it is found (UCSB_DATA, default ../shared/data/ucsb_breast_cancer_cells)
# and on the synthetic dataset otherwise; the dataset notebook runs on both.
set -euo pipefail
cd "$(dirname "$0")"
unit_only=0
for argument in "$@"; do
    case "${argument}" in
        --unit-only) unit_only=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "error: unknown argument ${argument} (see ./run_tests.sh --help)" >&2; exit 2 ;;
    esac
done
source scripts/ensure_env.sh
export TQDM_MININTERVAL=30  # progress bars in logs: one line every 30 s, not a flood

ruff check lib tests benchmarks
python -m pytest tests -q -p no:cacheprovider
[[ ${unit_only} -eq 1 ]] && exit 0

ucsb="${UCSB_DATA:-../shared/data/ucsb_breast_cancer_cells}"
check_notebooks() {  # $1: dataset folder ("" = synthetic), $2: notebook numbers ("" = all)
    local data="$1" only="$2" dataset number executed=()
    dataset="$(python -c 'import sys; from lib.paths import dataset_name; print(dataset_name(sys.argv[1]))' "${data}")"
    # A clean slate instead of --force: the executed copies then hold force=False, so that nbval's
    # re-execution loads the trained runs instead of training them again.
    rm -rf "results/${dataset}/smoke"
    REPRO_PUBLISH_FIGURES=0 ./run_all.sh --profile smoke --data "${data}" ${only:+--only "${only}"}  # figures stay in results/
    for notebook in results/"${dataset}"/smoke/notebooks/[0-9][0-9]_*.ipynb; do
        number="$(basename "${notebook}")"; number="${number%%_*}"
        [[ -z "${only}" || ",${only}," == *",${number},"* ]] && executed+=("${notebook}")
    done
    python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
        --nbval-sanitize-with tests/nbval_sanitize.cfg "${executed[@]}"
    # the study's job list (lib/experiments/study.py) names exactly the runs the notebooks trained
    [[ -z "${only}" ]] && python -m lib.experiments.study --profile smoke --data "${data}" --check
    return 0
}
if [[ -d "${ucsb}" ]]; then
    check_notebooks "$(cd "${ucsb}" && pwd)" ""
    check_notebooks "" "01"
else
    echo "[run_tests] ${ucsb} not found: notebooks run on the synthetic dataset only"
    check_notebooks "" ""
fi
