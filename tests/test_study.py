"""Past one machine: the study as a job list, two jobs on one run, data-parallel training with gloo."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from lib import config
from lib.experiments import ablations, stability, study
from lib.files import exclusive_lock
from lib.paths import REPO_ROOT, run_directory


def test_the_job_list_is_every_run_run_all_makes():
    cfg = config.apply_changes(config.load_config("quick"), {"data.folds": 5, "runs.seeds": 2})
    jobs = study.study_jobs(cfg, None)
    ladder = [job for job in jobs if not job.experiment]
    assert len(ladder) == len(cfg["runs"]["models"]) * 2 * 5                 # notebook 03: models x seeds x folds
    assert {(job.model, job.seed, job.fold) for job in ladder} == {
        (model, seed, fold) for model in cfg["runs"]["models"] for seed in range(2) for fold in range(5)}
    assert all(job.changes == {"data.folds": 5} for job in ladder)
    arms = [job for job in jobs if job.experiment == stability.EXPERIMENT]   # notebook 05, on the single split
    assert {(job.model, job.seed) for job in arms} == {(model, seed) for model in stability.ARMS.values()
                                                       for seed in range(cfg["stability"]["seeds"])}
    assert all(job.fold is None and "data.folds" not in job.changes for job in arms)
    assert {job.config(cfg)["data"]["folds"] for job in arms} == {1}          # their folder: the single split's
    sweep = [job for job in jobs if job.experiment.startswith(f"{stability.EXPERIMENT}-lr")]
    assert [job.changes["stability.learning_rate"] for job in sweep] == cfg["stability"]["lr_sweep"]
    variants = [job for job in jobs if job.experiment.startswith("ablation-")]  # notebook 07, every fold
    assert len(variants) == len(ablations.ABLATIONS) * cfg["ablations"]["seeds"] * 5
    drop = next(job for job in variants if job.experiment == "ablation-drop")
    assert drop.changes == {"data.folds": 5, "model.input_variant": "drop", "train.max_train_tiles": 150}
    assert study.Job("unet", 1, 2, "", {"data.folds": 5}).command("quick", "/d").endswith(
        "--model unet --seed 1 --data /d --fold 2 --set data.folds=5")


def check_all_finished(jobs, cfg, root, capsys):
    """Mark every job's run finished under `root`; the study's check must then accept exactly them."""
    for job in jobs:
        folder = study.run_folder(job, cfg, None, root)
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")
    study.check(cfg, None, root)
    assert f"the {len(jobs)} runs of the job list are the finished runs" in capsys.readouterr().out


def test_a_precision_study_lists_its_own_runs_and_checks_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(study, "check_pool", lambda variant, data_dir: None)  # pools are another test's subject
    cfg = config.apply_changes(config.load_config("quick"), {"data.folds": 5, "train.precision": "bf16",
                                                              "runs.models": ["unet"], "runs.seeds": 1})
    jobs = study.study_jobs(cfg, None)
    assert all(job.changes["train.precision"] == "bf16" for job in jobs)     # every command trains in bf16
    folders = {study.run_folder(job, cfg, None).relative_to(REPO_ROOT / "results" / "synthetic").parts[0]
               for job in jobs}
    assert folders == {"quick-cv5-bf16", "quick-bf16"}                       # the folds', the stability runs' split
    check_all_finished(jobs, cfg, tmp_path, capsys)


def test_a_budget_point_is_a_setting_of_its_own_and_its_study_checks(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(study, "check_pool", lambda variant, data_dir: None)  # pools are another test's subject
    cfg = config.apply_changes(config.load_config("quick"), {"data.folds": 5, "data.input_size": 256,
                                                              "runs.models": ["unet_region"], "runs.seeds": 1})
    jobs = study.study_jobs(cfg, None)
    ladder = [job for job in jobs if not job.experiment]
    assert len(ladder) == 5 and all(job.changes["data.input_size"] == 256 for job in jobs)
    folders = {study.run_folder(job, cfg, None).relative_to(REPO_ROOT / "results" / "synthetic").parts[0] for job in jobs}
    assert folders == {"quick-cv5-in256", "quick-in256"}  # the folds', the stability runs' single split
    check_all_finished(jobs, cfg, tmp_path, capsys)
    stray = tmp_path / "synthetic" / "quick-in256" / "unet" / "seed0"  # the single split's ladder: not this study's
    stray.mkdir(parents=True)
    (stray / "metrics.json").write_text("{}")
    study.check(cfg, None, tmp_path)
    (tmp_path / "synthetic" / "quick-cv5-in256" / "unet" / "seed0" / "fold0").mkdir(parents=True)
    (tmp_path / "synthetic" / "quick-cv5-in256" / "unet" / "seed0" / "fold0" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="1 finished but not listed"):
        study.check(cfg, None, tmp_path)


def test_each_command_rebuilds_the_config_its_notebook_trains_with(monkeypatch):
    monkeypatch.setattr(study, "check_pool", lambda variant, data_dir: None)  # pools are another test's subject
    cfg = config.load_config("quick")
    jobs = study.study_jobs(cfg, None)
    for name in ablations.ABLATIONS:
        job = next(j for j in jobs if j.experiment == ablations.experiment_name(name))
        assert job.config(cfg) == ablations.ablation_config(cfg, name)
    job = next(j for j in jobs if j.experiment == stability.EXPERIMENT)
    assert job.config(cfg) == stability.experiment_config(cfg)


def test_a_variant_whose_pool_cannot_meet_the_budget_is_not_listed(monkeypatch, capsys):
    def short_pool(variant, data_dir):
        if variant["train"]["training_pool"] == "without_test_slides":
            raise study.PoolTooSmallError("only 132 training tiles in fold 1 lie on slides without a test image")
    monkeypatch.setattr(study, "check_pool", short_pool)
    cfg = config.apply_changes(config.load_config("quick"), {"data.folds": 5})
    experiments = {job.experiment for job in study.study_jobs(cfg, None)}
    assert ablations.experiment_name("no_test_slides") not in experiments      # no fold of it, not even fold 0
    assert experiments >= {ablations.experiment_name(name) for name in ablations.ABLATIONS if name != "no_test_slides"}
    assert "ablation no_test_slides: not measured: only 132 training tiles" in capsys.readouterr().err


def _tiny_config_file(tiny_config, tmp_path) -> str:
    tiny_config["train"].update(epochs=2, max_train_tiles=None, max_eval_tiles=None, augment=False)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config, sort_keys=False))
    return str(path)


def _train(*arguments: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.Popen([sys.executable, *arguments], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_second_job_on_a_held_run_waits_then_finds_it_finished(tiny_dataset, tiny_config, tmp_path):
    cfg = _tiny_config_file(tiny_config, tmp_path)
    command = ["-m", "lib.training", "--config", cfg, "--model", "unet", "--data", str(tiny_dataset),
               "--results", str(tmp_path / "results")]
    run = run_directory(config.load_config(cfg), tiny_dataset, "unet", 0, tmp_path / "results")
    with exclusive_lock(run.with_name(f".{run.name}.lock")):  # this test plays the first job, holding the run
        waiting = _train(*command)
        lines = iter(waiting.stdout.readline, "")               # until it says it waits, or ends without
        assert any(line.startswith("waiting: another process is training") for line in lines)
        assert waiting.poll() is None
    assert waiting.wait(timeout=600) == 0, waiting.stdout.read()
    assert len(pd.read_csv(run / "history.csv")) == 2 and not list(run.glob("*.tmp"))
    again = _train(*command)                                  # a job that starts after it finds the run done
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "waiting" not in output and "epoch 1/2" not in output, output


@pytest.mark.slow
def test_torchrun_with_gloo_trains_resumes_and_matches_one_process(tiny_dataset, tiny_config, tmp_path):
    cfg = _tiny_config_file(tiny_config, tmp_path)
    common = ["--config", cfg, "--model", "unet", "--data", str(tiny_dataset)]
    single = _train("-m", "lib.training", *common, "--results", str(tmp_path / "single"))
    assert single.wait(timeout=600) == 0, single.stdout.read()
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lib.training", *common,
                "--results", str(tmp_path / "ddp")]
    stopped = _train(*torchrun, "--stop-after-epochs", "1")
    assert stopped.wait(timeout=600) == 0, stopped.stdout.read()
    resumed = _train(*torchrun)
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()
    runs = {name: next((tmp_path / name).rglob("metrics.json")).parent for name in ("single", "ddp")}
    history = {name: pd.read_csv(run / "history.csv") for name, run in runs.items()}
    metrics = {name: json.loads((run / "metrics.json").read_text()) for name, run in runs.items()}
    assert len(history["ddp"]) == 2 and json.loads((runs["ddp"] / "versions.json").read_text())["processes"] == 2
    assert history["ddp"].optimizer_steps.tolist() == history["single"].optimizer_steps.tolist()  # same budget
    # the same tiles per step, grouped differently into batches (batch norm, per-batch positive weight): close
    assert np.allclose(history["ddp"].train_loss, history["single"].train_loss, rtol=0.1)
    dice = {name: m["arms"]["no_tta"]["test"]["whole_tile"]["pooled"]["dice"] for name, m in metrics.items()}
    assert abs(dice["ddp"] - dice["single"]) < 0.15
