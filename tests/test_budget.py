"""The budget sweep (notebook 09): its points, their folders, the job list, and the sweep end to end."""
import functools
import shutil
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lib import config
from lib.data import tiles
from lib.data.geometry import source_area_to_input
from lib.experiments import budget, ladder, records, study
from lib.paths import REPO_ROOT
from lib.report import budget_plots, pages
from lib.report.output import save_figure, save_table
from lib.report.published import Published
from lib.training.recipe import model_epochs
from lib.training.runs import StaleRunError, read_run

matplotlib.use("Agg")


def _quick(**changes):
    return config.apply_changes(config.load_config("quick"), {"data.folds": 5} | changes)


@pytest.mark.parametrize("points, message", [
    ([[512, 8]], "input 512 px is larger than data.tile_size 256"),
    ([[100, 8]], "data.input_size must be a multiple of 32, not 100"),
    ([[128, 8], [128, 8]], r"\[128, 8\] is listed twice"),
    ([[128]], r"a point is \[input px, epochs\]"),
    ([[128, 0]], r"a point is \[input px, epochs\]"),
])
def test_a_wrong_budget_point_is_refused_before_anything_trains(points, message):
    with pytest.raises(config.ConfigError, match=message):
        budget.budget_points(_quick(**{"budget.points": points}))


def test_every_point_and_arm_trains_in_a_folder_of_its_own(monkeypatch):
    monkeypatch.setattr(study, "check_pool", lambda variant, data_dir: None)  # the ablations' pools: not this test's
    cfg = _quick()
    jobs = [job for job in study.study_jobs(cfg, None, with_budget=True) if budget.in_sweep(job.experiment)]
    points = budget.budget_points(cfg)
    assert len(jobs) == (len(points) * len(budget.CORE_ARMS) + 1) * cfg["budget"]["seeds"] * 5   # FgFEU-Net at one
    fgfeu = [job.config(cfg) for job in jobs if job.model == "fgfeu_net_region"]
    assert {(at["data"]["input_size"], at["train"]["epochs"]) for at in fgfeu} == {
        tuple(point) for point in cfg["budget"]["fgfeu_points"]}
    assert all(model_epochs(at, "fgfeu_net_region") == at["train"]["epochs"] for at in fgfeu)   # not ladder.epochs
    with pytest.raises(config.ConfigError, match=r"budget.fgfeu_points: \[\[64, 8\]\] must be points of"):
        budget.sweep(_quick(**{"budget.fgfeu_points": [[64, 8]]}))
    folders = [study.run_folder(job, cfg, None) for job in jobs]
    assert len(set(folders)) == len(folders)                          # runs never mix
    settings = {folder.relative_to(REPO_ROOT / "results" / "synthetic").parts[0] for folder in folders}
    assert settings == {"quick-cv5", "quick-cv5-in256"}              # full resolution is a setting of its own
    assert not any(budget.in_sweep(job.experiment) for job in study.study_jobs(cfg, None))  # only with --budget
    full = next(job for job in jobs if job.changes.get("data.input_size") == 256 and job.model == "unet_region")
    assert full.config(cfg)["data"]["input_size"] == full.config(cfg)["data"]["tile_size"]
    long = next(job for job in jobs if job.experiment == "budget-e32-drop" and job.fold == 3)
    assert long.changes == {"data.folds": 5, "train.epochs": 32, "model.input_variant": "drop"}
    assert long.config(cfg) == budget.BudgetPoint(128, 32).config(cfg, "drop")   # what notebook 09 trains


def test_arms_differ_from_the_enhanced_arm_by_their_one_change_only():
    point = budget.BudgetPoint(256, 8)
    cfg = _quick()
    enhanced = point.config(cfg, "enhanced")
    for arm, (_, variant) in budget.ARMS.items():
        changed = {f"{section}.{key}" for section in enhanced if isinstance(enhanced[section], dict)
                   for key in enhanced[section] if point.config(cfg, arm)[section][key] != enhanced[section][key]}
        expected = {f"{section}.{key}" for section, keys in
                    (budget.ablations.ABLATIONS[variant][1] if variant else {}).items() for key in keys}
        assert changed == expected, arm
    assert {claim[2] for claim in budget.CLAIMS} == set(budget.CORE_ARMS) - {"enhanced"}   # each claim's reference arm


def test_the_study_checks_sweep_runs_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(study, "check_pool", lambda variant, data_dir: None)
    cfg = _quick(**{"runs.models": ["unet_region"], "runs.seeds": 1, "budget.points": [[128, 2], [256, 2]],
                    "budget.fgfeu_points": [[256, 2]]})
    for job in study.study_jobs(cfg, None, with_budget=True):
        folder = study.run_folder(job, cfg, None, tmp_path)
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")
    study.check(cfg, None, tmp_path, with_budget=True)
    study.check(cfg, None, tmp_path)                                  # the sweep's runs are not "not listed"
    capsys.readouterr()
    missing = study.run_folder(study.study_jobs(cfg, None, with_budget=True)[-1], cfg, None, tmp_path)
    (missing / "metrics.json").unlink()
    with pytest.raises(ValueError, match="1 listed but not finished"):
        study.check(cfg, None, tmp_path, with_budget=True)


def test_verdict_changes_and_the_recommended_point_come_from_validation():
    claims = pd.DataFrame({"point": ["128 px, 8 epochs"] * 2 + ["256 px, 8 epochs"] * 2, "claim": ["a", "b", "a", "b"],
                           "verdict": ["inconclusive", "supported", "contradicted", "supported"]})
    changes = budget.verdict_changes(claims)
    assert changes["changes with the budget"].to_dict() == {"a": "yes", "b": "no"}
    assert list(changes.columns[:2]) == ["128 px, 8 epochs", "256 px, 8 epochs"]       # the points in sweep order
    one = budget.verdict_changes(claims.head(2))                      # one point: a change is not measured
    assert set(one["changes with the budget"]) == {"one point only"}
    quality = pd.DataFrame({"validation Dice": [0.7, 0.8, 0.75, 0.9], "Dice": [0.9, 0.5, 0.6, 0.7],
                            "arm": ["enhanced", "unet", "enhanced", "fgfeu"]})
    assert budget.recommended(quality)["Dice"] == 0.5   # the best on validation, not on test, of the arms every point has


def test_the_validation_gain_says_whether_the_curve_still_rose_when_training_stopped():
    def run(*curves):
        folds = [SimpleNamespace(history=pd.DataFrame({"val_dice": curve})) for curve in curves]
        return SimpleNamespace(fold_runs=folds)
    rising, flat = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    assert budget.validation_gain(run(rising)) == pytest.approx(0.2)      # last 2 epochs against the 2 before
    assert budget.validation_gain(run(flat)) == pytest.approx(0.0)
    assert budget.validation_gain(run(rising, flat)) == pytest.approx(0.1)   # averaged over the folds
    assert np.isnan(budget.validation_gain(run([0.5])))                   # one epoch: undefined, not 0


def test_full_resolution_is_compared_with_the_shrunk_input_at_equal_seconds():
    quality = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 2, "point": ["s8", "s32", "full8", "s8", "full8"],
                            "full resolution": [False, False, True, False, True],
                            "training seconds": [100.0, 300.0, 250.0, 100.0, 250.0], "Dice": [0.6, 0.8, 0.7, 0.6, 0.7]})
    table = budget.resolution_at_equal_seconds(quality).set_index("model")
    assert table.loc["a", "shrunk input at the same seconds"] == pytest.approx(0.75)   # 3/4 of the way to 300 s
    assert table.loc["a", "full resolution - shrunk input"] == pytest.approx(-0.05)
    assert np.isnan(table.loc["b", "shrunk input at the same seconds"])   # one shrunk point: no curve, undefined
    beyond = quality.assign(**{"training seconds": [100.0, 300.0, 400.0, 100.0, 250.0]})
    assert budget.resolution_at_equal_seconds(beyond)["shrunk input at the same seconds"].isna().all()   # no extrapolation


def test_reading_a_sweep_with_no_finished_point_is_one_error_and_trains_nothing(tmp_path):
    cfg = _quick(**{"budget.points": [[128, 2]], "budget.fgfeu_points": []})
    with pytest.raises(budget.MissingRunError, match="no budget point has all its runs finished under .*quick-cv5"):
        budget.train_budget(cfg, None, root=tmp_path, train_missing=False, records=[tmp_path / "figures"])
    assert not any(tmp_path.rglob("*.pt"))


@pytest.mark.slow
def test_the_sweep_end_to_end_with_a_full_resolution_point(tiny_dataset, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(tiles, "prepare", functools.partial(tiles.prepare, root=tmp_path / "prepared"))
    cfg = config.apply_changes(tiny_config, {"train.epochs": 1, "train.max_train_tiles": None, "train.tta": False,
                                             "train.max_eval_tiles": None, "budget.points": [[32, 1], [64, 1]],
                                             "budget.seeds": 1})
    results, figures = tmp_path / "results", tmp_path / "figures"
    runs = budget.train_budget(cfg, tiny_dataset, root=results, records=[figures])
    points = budget.budget_points(cfg)
    assert set(runs) == set(points) and all(set(runs[point]) == set(budget.point_arms(cfg, point)) for point in points)
    assert "fgfeu" in runs[budget.BudgetPoint(64, 1)] and "fgfeu" not in runs[budget.BudgetPoint(32, 1)]
    full, shrunk = (read_run(results / runs[budget.BudgetPoint(size, 1)]["enhanced"][0].folder.relative_to(figures))
                    for size in (64, 32))                             # a record lives where its run does
    assert np.load(full.folder / "test_probabilities-no_tta.npy").shape[1:] == (64, 64)   # tile px, full resolution
    assert np.load(shrunk.folder / "test_probabilities-no_tta.npy").shape[1:] == (32, 32)
    assert full.folder != shrunk.folder and "smoke-in32" in str(shrunk.folder) and "budget-e1" in str(full.folder)
    assert {path.suffix for path in figures.rglob("*.*")} == {".yaml", ".json", ".csv"}   # no checkpoint, no arrays
    tile_sets = budget.point_tiles(cfg, tiny_dataset, points)

    # a record's measures are those the probabilities give (notebook 07's and notebook 04's functions)
    point = budget.BudgetPoint(64, 1)
    record, config_at = runs[point]["enhanced"][0], point.config(cfg, "enhanced")
    small_px = source_area_to_input(config_at["train"]["small_object_source_px"], config_at["data"])
    from_probabilities = budget.ablations.per_image_measures(full, tile_sets[point], small_px, counts=True)
    from_record = records.image_measures(record)
    pd.testing.assert_frame_equal(from_record.drop(columns="Dice"), from_probabilities.drop(columns=["Dice", "boundary F1"]),
                                  check_dtype=False, check_names=False)
    # Dice from per_tile.csv, counted on the float32 probabilities before they were stored as float16
    assert np.allclose(from_record.Dice, from_probabilities.Dice, atol=0.005)
    entry = ladder.run_entries({"enhanced_region": [full]})["enhanced_region"]
    index = full.test_index(tile_sets[point])
    pd.testing.assert_frame_equal(records.image_instance_counts(record),
                                  ladder._instance_counts(entry, tile_sets[point], index, config_at, budget.AREA)[0],
                                  check_dtype=False, check_names=False)
    classics = budget.classic_by_budget(runs, tile_sets, cfg)
    quality = budget.quality_by_budget(runs, classics, cfg)
    assert len(quality) == 2 * len(points) + 1 and quality["full resolution"].sum() == 3   # FgFEU-Net at 64 px
    assert quality["training seconds"].gt(0).all() and quality["trained on"].str.contains("cores|GPU").all()
    core = quality[quality.arm.isin(budget.CORE_ARMS)]
    assert quality.loc[quality["recommended"], "validation Dice"].tolist() == [core["validation Dice"].max()]
    assert set(quality["starting weights"]) >= {"random initialisation (trained from scratch)"}   # the U-Net's
    claims = budget.claims_by_budget(runs)
    assert len(claims) == len(budget.CLAIMS) * len(points)
    assert (claims["Holm p"].ge(claims["p"]) | claims["p"].isna()).all()   # no small objects here: recall undefined
    assert (claims.loc[claims["p"].isna(), "verdict"] == "no data").all()
    nuclei = budget.instances_by_budget(runs, tile_sets, classics, quality, cfg)
    assert len(nuclei) == 3 * len(points) + 1 and set(nuclei.point) == {point.label for point in points}
    best = quality[quality.recommended].iloc[0]   # the same choice marked in both tables
    assert nuclei.loc[nuclei.recommended, ["point", "model"]].values.tolist() == [[best["point"], best["model"]]]
    assert nuclei.groupby("point").model.apply(set).map(len).to_dict() == {"32 px, 1 epoch": 3, "64 px, 1 epoch": 4}
    classic = nuclei.model.str.startswith("Haematoxylin")
    assert nuclei.loc[~classic, "aji - Haematoxylin + watershed verdict"].isin(
        ["supported", "contradicted", "inconclusive", "no data"]).all()
    cost = budget.cost_by_budget(runs, [], cfg)
    text = budget.describe(claims, quality, nuclei, cost)
    assert "As nuclei at that point: AJI" in text and "FgFEU-Net (region-trained) with the same epochs at 64 px" in text
    assert quality["validation gain, last quarter"].isna().all() and "Its validation curve" not in text   # 1 epoch
    assert "Above the classic pipeline in region Dice (per image, Holm within the point): " in text
    assert cost.loc["whole sweep", "runs"] == len(points) * len(budget.CORE_ARMS) + 1
    assert cost["estimated training seconds"].isna().all()   # nothing left to plan
    steps = cost["reference step"].str.removesuffix(" ms").str.split("-").map(lambda ends: [int(end) for end in ends])
    assert all(0 < step < 60_000 for ends in steps for step in ends)   # every run recorded the machine's speed (CPU)

    # trained elsewhere: with the runs gone, the records alone give the same tables
    shutil.rmtree(results)
    again = budget.train_budget(cfg, tiny_dataset, root=results, train_missing=False, records=[figures])
    pd.testing.assert_frame_equal(budget.claims_by_budget(again), claims)
    pd.testing.assert_frame_equal(budget.instances_by_budget(again, tile_sets, classics, quality, cfg), nuclei)
    # a record taken at other evaluation settings is refused, not mixed in
    other = config.apply_changes(cfg, {"instances.min_area_source_px": cfg["instances"]["min_area_source_px"] + 1})
    assert not budget.is_recorded_point(point, other, tiny_dataset, [figures])
    with pytest.raises(StaleRunError, match=r"record of another config \(changed: evaluation \(min_area_px\)\)"):
        records.read_record(record.folder, point.config(other, "enhanced"), tiny_dataset, "enhanced_region")

    # a point with one run unrecorded is left out when reading without training, and named as not trained yet
    unet = runs[point]["unet"][0].folder
    (unet / "metrics.json").rename(tmp_path / "metrics.json")
    assert not budget.is_recorded_point(point, cfg, tiny_dataset, [figures])
    found = budget.train_budget(cfg, tiny_dataset, root=results, train_missing=False, records=[figures])
    assert list(found) == [budget.BudgetPoint(32, 1)]
    progress = budget.recorded_runs(point, cfg, tiny_dataset, [figures])
    assert progress == (len(budget.ARMS) - 1, len(budget.ARMS))    # the sweep so far, for the points in progress
    partial = budget.cost_by_budget(found, [point], cfg, {point: progress})
    assert partial.loc["64 px, 1 epoch", "trained on"] == budget.NOT_TRAINED
    assert partial.loc["64 px, 1 epoch", "runs recorded so far"] == "5 of 6"
    assert partial.loc["whole sweep", "runs"] == len(budget.CORE_ARMS)
    planned = partial.loc["64 px, 1 epoch", "estimated training seconds"]   # timed steps at 32 and 64 px
    assert planned > 0 and partial.loc["whole sweep", "estimated training seconds"] == planned
    assert "Not trained yet: 64 px, 1 epoch (about" in budget.describe(claims, quality, nuclei, partial)
    # the plan, by hand: seconds measured at 32 px, 1 epoch, scaled by the epochs and the steps' time ratio
    measured = partial.loc["32 px, 1 epoch", "training seconds"]
    assert budget.estimated_seconds(found, budget.BudgetPoint(32, 3), cfg) == pytest.approx(3 * measured)
    quadruple = {(model, channels, size): {32: 1.0, 64: 4.0}[size] for model, _ in budget.ARMS.values()
                 for channels in (3, 4) for size in (32, 64)}
    assert budget.estimated_seconds(found, budget.BudgetPoint(64, 2), cfg, quadruple) == pytest.approx(8 * measured)
    (tmp_path / "metrics.json").rename(unet / "metrics.json")
    # the extra arm unrecorded: the point still counts, without it, and says so
    fgfeu = runs[point]["fgfeu"][0].folder
    (fgfeu / "metrics.json").rename(tmp_path / "metrics.json")
    found = budget.train_budget(cfg, tiny_dataset, root=results, train_missing=False, records=[figures])
    assert set(found) == set(points) and "fgfeu" not in found[point] and "unet" in found[point]
    waiting = budget.cost_by_budget(found, [], cfg, {point: budget.recorded_runs(point, cfg, tiny_dataset, [figures])})
    assert waiting.loc["64 px, 1 epoch", "runs recorded so far"] == "5 of 6"
    assert "At 64 px, 1 epoch, an extra arm (FgFEU-Net (region-trained)) is not recorded whole yet" in budget.describe(
        claims, quality, nuclei, waiting)
    (tmp_path / "metrics.json").rename(fgfeu / "metrics.json")
    folder = figures / "tiny" / "smoke"                              # as notebook 09 publishes them (records in it)
    save_table(cost, folder, "09_budget-cost", digits=0)
    save_table(quality.set_index(["input px", "epochs", "model"]), folder, "09_budget-quality", digits=4)
    equal_seconds = budget.resolution_at_equal_seconds(quality)   # one shrunk point per model: no curve to read
    assert len(equal_seconds) == 3 and equal_seconds["shrunk input at the same seconds"].isna().all()   # FgFEU: none
    save_table(equal_seconds.set_index(["model", "point"]), folder, "09_budget-equal_seconds", digits=4)
    save_table(claims.set_index(["input px", "epochs", "claim"]), folder, "09_budget-claims", digits=4)
    save_table(budget.verdict_changes(claims), folder, "09_budget-verdicts")
    save_table(nuclei.set_index(["input px", "epochs", "model"]), folder, "09_budget-instances", digits=4)
    save_figure(budget_plots.claims_across_budgets(claims), folder, "09_budget-claims")
    save_figure(budget_plots.quality_against_cost(quality), folder, "09_budget-quality_cost")
    (folder / "run_times.csv").write_text("notebook,seconds\n09_budget,1\n")
    page = pages._environment().get_template("results.md").render(
        dataset="tiny", setting="smoke", notebooks={}, has_runs_page=lambda *_: False, sphinx=False,
        results=lambda name: Published(name, tmp_path / "page.md", figures, root=figures))
    best = budget.recommended(quality)
    assert "## Do the verdicts survive a bigger budget?" in page and f"*{best['model']}* at" in page
    assert "As nuclei (the same tiles" in page and "AJI undefined" not in page
    assert "no full-resolution point lies within the seconds that the shrunk-input points span" in page
    assert "FgFEU-Net (another paper's system), region-trained with the same epochs at 64 px, 1 epoch" in page
    assert page.count("a larger budget does not change the verdict") + page.count("changes with the budget") >= 4


def test_the_recommended_profile_is_the_published_sweeps_choice_on_validation():
    sweep = REPO_ROOT / "figures" / "ucsb_breast_cancer_cells" / "quick-cv5-bf16"  # the sweep the README reports
    best = budget.recommended(pd.read_csv(sweep / "09_budget-quality.csv"))
    spec, expected = config._read(config.CONFIG_DIR / "recommended.yaml"), budget.recommended_changes(best, "bf16")
    assert spec["extends"] == "quick" and spec["changes"] == expected, f"the sweep now recommends changes: {expected}"
    recommended = config.load_config("recommended")
    assert (recommended["data"]["input_size"], recommended["train"]["epochs"]) == (best["input px"], best["epochs"])
    point = [int(best["input px"]), int(best["epochs"])]   # FgFEU-Net trains there with the same epochs (item 6)
    assert point in config.load_config("quick")["budget"]["fgfeu_points"], f"quick's budget.fgfeu_points lacks {point}"
