# Sourced by run_all.sh and run_tests.sh: create or reuse the local virtual environment `.venv`
# with the pinned dependencies of requirements.txt and this repository's `lib` (editable).
# Nothing is installed outside the repository. Re-installs only when requirements.txt or
# pyproject.toml changed since the last install.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PYTHON_FOR_VENV="${PYTHON:-$(command -v python3.11 || command -v python3)}"

stamp_now() { cat "${REPO_ROOT}/requirements.txt" "${REPO_ROOT}/pyproject.toml" | sha256sum | cut -d' ' -f1; }

if ! "${PYTHON_FOR_VENV}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is needed (found $("${PYTHON_FOR_VENV}" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "[env] creating ${VENV}"
    "${PYTHON_FOR_VENV}" -m venv "${VENV}"
fi
if [[ "$(cat "${VENV}/.installed" 2>/dev/null)" != "$(stamp_now)" ]]; then
    echo "[env] installing pinned dependencies into ${VENV} (first time: a few minutes)"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${REPO_ROOT}/requirements.txt"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "${REPO_ROOT}"
    stamp_now > "${VENV}/.installed"
fi
export PATH="${VENV}/bin:${PATH}"
# The kernel `python3` of the notebooks must be this environment's, not a user-wide one.
export JUPYTER_PREFER_ENV_PATH=1
export PYDEVD_DISABLE_FILE_VALIDATION=1
