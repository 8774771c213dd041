"""The command lines: one-line errors with exit status 2, tracebacks only when asked, help everywhere."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from lib.config import load_config
from lib.paths import REPO_ROOT, RESULTS_ROOT


def _run(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(arguments), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_a_bad_config_is_one_line_and_exit_status_2(tmp_path):
    result = _run(sys.executable, "-m", "lib.training", "--config", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: config file {tmp_path / 'nowhere.yaml'} does not exist (profiles: smoke, quick, paper, recommended) "
        "(--debug shows the traceback)"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("profile: quick\nseed: 0\n")
    result = _run(sys.executable, "-m", "lib.training", "--config", str(broken))
    assert result.returncode == 2 and "missing key" in result.stderr and "Traceback" not in result.stderr
    debug = _run(sys.executable, "-m", "lib.training", "--config", str(broken), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_a_missing_run_or_dataset_is_one_line(tmp_path):
    result = _run(sys.executable, "-m", "lib.inference", "--run", str(tmp_path / "run"), "--input", str(tmp_path),
                  "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "holds no images" in result.stderr
    (tmp_path / "a.png").write_bytes(b"")
    result = _run(sys.executable, "-m", "lib.inference", "--run", str(tmp_path / "run"), "--input", str(tmp_path),
                  "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "is not a finished run (config.yaml is missing)" in result.stderr
    result = _run(sys.executable, "-m", "lib.training", "--config", "smoke", "--data", str(tmp_path / "missing"))
    assert result.returncode == 2 and "does not exist" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [[sys.executable, "-m", "lib.training"], [sys.executable, "-m", "lib.inference"],
                                     ["./run_all.sh"], ["./run_tests.sh"]])
def test_help_prints_the_usage_and_runs_nothing(command):
    result = _run(*command, "--help")
    assert result.returncode == 0 and ("usage" in result.stdout.lower() or "./run_" in result.stdout)
    assert "passed" not in result.stdout and "[run_all]" not in result.stdout


@pytest.mark.parametrize("arguments,message", [(["--bogus"], "unknown argument --bogus"),
                                               (["--only", "42"], "there is no notebooks/42_*.ipynb"),
                                               (["--seeds", "zero"], "--seeds takes a positive number"),
                                               (["--profile", "fast"], "no profile 'fast'"),
                                               (["--precision", "fp8"], "--precision takes fp32, bf16, fp16 or auto"),
                                               (["--input-size", "0"], "--input-size takes a positive number"),
                                               (["--input-size", "100"], "data.input_size must be a multiple of 32")])
def test_run_all_refuses_bad_arguments(arguments, message):
    result = _run("./run_all.sh", *arguments)
    assert result.returncode == 2 and message in result.stderr


def test_run_tests_refuses_an_unknown_argument():
    result = _run("./run_tests.sh", "--fast")
    assert result.returncode == 2 and "unknown argument --fast" in result.stderr


@pytest.mark.slow
def test_run_all_trains_another_precision_in_its_own_setting():
    setting = RESULTS_ROOT / "synthetic" / "smoke-bf16"
    existed = setting.exists()
    try:  # notebook 04 finds no bf16 run: the one-line error names the setting's runs and how to train them
        result = _run("./run_all.sh", "--profile", "smoke", "--precision", "bf16", "--only", "4",
                      env=dict(os.environ, REPRO_PUBLISH_FIGURES="0"))
        assert result.returncode == 2 and "setting=smoke-bf16" in result.stdout
        assert "no finished run for unet seed 0, " in result.stderr and f"under {setting};" in result.stderr
        assert "(./run_all.sh --profile smoke --precision bf16 --only 03," in result.stderr
        assert yaml.safe_load((setting / "config.yaml").read_text())["train"]["precision"] == "bf16"
        # notebook 09 reading the finished budget points only, where none is: one line, nothing trained
        result = _run("./run_all.sh", "--profile", "smoke", "--precision", "bf16", "--only", "9", "--budget-finished",
                      env=dict(os.environ, REPRO_PUBLISH_FIGURES="0"))
        assert result.returncode == 2 and f"no budget point has all its runs finished under {setting} " in result.stderr
        assert not any(setting.rglob("*.pt"))
    finally:
        if not existed:
            shutil.rmtree(setting, ignore_errors=True)


@pytest.mark.slow
def test_run_all_runs_the_derived_recommended_profile_from_its_resolved_config():
    setting = RESULTS_ROOT / "synthetic" / "recommended"
    existed = setting.exists()
    try:  # papermill reads the profile resolved (every section), not its extends/changes; notebook 04 finds no run
        result = _run("./run_all.sh", "--profile", "recommended", "--only", "4", env=dict(os.environ, REPRO_PUBLISH_FIGURES="0"))
        assert result.returncode == 2 and "setting=recommended" in result.stdout
        assert "no finished run for enhanced_region seed 0 under " in result.stderr, result.stderr
        written = yaml.safe_load((setting / "config.yaml").read_text())
        assert written == load_config("recommended") and "extends" not in written
    finally:
        if not existed:
            shutil.rmtree(setting, ignore_errors=True)
