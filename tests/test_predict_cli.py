"""predict on new images: the scale options against what a run records, large TIFFs band by band, and bad input
named in one line with nothing half-written."""
import functools
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from PIL import Image

from lib import config
from lib.data import tiles
from lib.data.reading import DatasetError
from lib.inference import __main__ as predict_cli
from lib.inference import predict as window_prediction
from lib.inference.stain import StainNormaliser
from lib.paths import REPO_ROOT
from lib.training import train
from lib.training.model_card import model_card
from lib.training.runs import read_recipe_runs, read_run
from tests.test_predict import DarkIsCell, DarkIsCellWithCentres


@pytest.fixture
def trained(tiny_dataset, tiny_config, tmp_path, monkeypatch):
    """A one-epoch U-Net on the tiny dataset, whose dataset.yaml states 0.5 µm per pixel."""
    monkeypatch.setattr(tiles, "prepare", functools.partial(tiles.prepare, root=tmp_path / "prepared"))
    (tiny_dataset / "dataset.yaml").write_text("mpp: 0.5\n")
    tiny_config["train"].update(epochs=1, max_train_tiles=None, max_eval_tiles=None)
    return train.train(tiny_config, tiny_dataset, "unet", seed=0, root=tmp_path / "results", progress=False)


@pytest.fixture
def stand_in_network(monkeypatch):
    """predict with `DarkIsCell` (a known answer) in place of the run's network, the run's records kept."""
    loaded = predict_cli.load_run_model
    monkeypatch.setattr(predict_cli, "load_run_model", lambda *a: (DarkIsCell(), *loaded(*a)[1:]))


def test_predict_takes_the_markers_from_a_centre_head(trained, monkeypatch, tmp_path):
    """An oval of nuclear stain (one convex blob: the mask's distance transform has one peak) with two darker nuclei
    in it, which the stand-in network's centre map (its darkness, averaged) finds apart."""
    yy, xx = np.mgrid[:200, :200]
    oval = ((yy - 100) / 14) ** 2 + ((xx - 100) / 26) ** 2 <= 1
    cores = ((yy - 100) ** 2 + (xx - 86) ** 2 < 64) | ((yy - 100) ** 2 + (xx - 114) ** 2 < 64)
    Image.fromarray(np.where(cores, 40, np.where(oval, 120, 230)).astype(np.uint8)[..., None].repeat(3, -1)).save(
        tmp_path / "pair.png")
    loaded = predict_cli.load_run_model
    counts = {}
    for centre_head in (False, True):
        def load(*args, centre_head=centre_head):  # the Enhanced model on RGB (no edge bounds), with the head or not
            _, _, cfg, metrics = loaded(*args)
            cfg = dict(cfg, model=dict(cfg["model"], centre_head=centre_head, input_variant="drop"))
            return (DarkIsCellWithCentres() if centre_head else DarkIsCell()), "enhanced", cfg, metrics
        monkeypatch.setattr(predict_cli, "load_run_model", load)
        out = tmp_path / f"centre_head-{centre_head}"
        counts[centre_head] = predict(trained, tmp_path / "pair.png", out, "--threshold", "0.5")["cells"]
        labels = tifffile.imread(out / "pair_labels.tif")
        assert ((labels > 0) == oval).mean() > 0.99              # the same mask either way (resized to the input)
    assert counts == {False: 1, True: 2}
    assert labels[100, 86] != labels[100, 114]


def training_diameter(run):
    return json.loads((run / "metrics.json").read_text())["scale"]["nucleus_diameter_px"]


def predict(run, image, out, *flags):
    predict_cli.main(["--run", str(run), "--input", str(image), "--output", str(out), "--force", *flags])
    return pd.read_csv(out / "cells.csv").iloc[0]


def test_several_runs_are_averaged_and_cut_at_their_mean_threshold(trained, tiny_config, tiny_dataset, tmp_path):
    second = train.train(tiny_config, tiny_dataset, "unet", seed=1, root=tmp_path / "results", progress=False)
    distance = json.loads((trained / "metrics.json").read_text())["arms"]["no_tta"]["nuclei_min_distance_source_px"]
    record = json.loads((second / "metrics.json").read_text())       # the second run chose markers 2 px further apart
    record["arms"]["no_tta"]["nuclei_min_distance_source_px"] = distance + 2
    (second / "metrics.json").write_text(json.dumps(record))
    image = tiny_dataset / "images" / "core0_malignant0.png"
    outputs = {}
    for name, runs in {"first": [trained], "second": [second], "both": [trained, second]}.items():
        predict_cli.main(["--run", *map(str, runs), "--input", str(image), "--output", str(tmp_path / name)])
        cells = pd.read_csv(tmp_path / name / "cells.csv").iloc[0]
        outputs[name] = (cells.threshold, cells["min marker distance (px)"],
                         np.asarray(Image.open(tmp_path / name / "core0_malignant0_probability.png"), float))
    (t1, d1, p1), (t2, d2, p2), (t, d, p) = outputs["first"], outputs["second"], outputs["both"]
    assert np.abs(p1 - p2).max() > 10                              # the seeds' runs disagree somewhere
    assert np.abs(p - (p1 + p2) / 2).max() <= 1                    # 0-255 PNGs: one level of rounding apart
    assert t == pytest.approx((t1 + t2) / 2)
    assert (d1, d2, d) == (distance, distance + 2, distance + 1)   # split with their mean marker distance (zoom 1)
    assert [run.seed for run in read_recipe_runs([trained, second])] == [0, 1]   # one recipe's seeds, measured averaged
    other = tmp_path / "other_recipe" / "seed0"                                     # the same run, its epochs changed
    shutil.copytree(trained, other)
    record = yaml.safe_load((other / "config.yaml").read_text())
    record["config"]["train"]["epochs"] += 1
    (other / "config.yaml").write_text(yaml.safe_dump(record))
    with pytest.raises(ValueError, match="differ in their model or training recipe"):
        read_recipe_runs([trained, other])


def test_a_run_records_its_scale_and_predict_rescales_to_it(trained, tiny_dataset, tmp_path, capsys):
    scale = json.loads((trained / "metrics.json").read_text())["scale"]
    assert scale["mpp"] == 0.5 and 10 < scale["nucleus_diameter_px"] < 20   # discs of radius 8 px, some cut
    card = (trained / "MODEL_CARD.md").read_text()
    assert "pixel size 0.500 µm/px" in card
    assert ("Precision `fp32`; no H&E stain augmentation (`train.stain_augmentation`); no zoom augmentation "
            "(`train.scale_augmentation`)." in card)                               # the smoke profile's recipe
    command = shlex.split(card.split("trained by `")[1].split("`")[0])             # the card's command trains it again
    assert command[command.index("--data") + 1] == str(tiny_dataset) and "--experiment" not in command
    settings = dict(config.parse_setting(command[i + 1]) for i, word in enumerate(command) if word == "--set")
    recorded = yaml.safe_load((trained / "config.yaml").read_text())["config"]
    retrained = config.apply_changes(config.load_config(command[command.index("--config") + 1]), settings)
    assert {section: retrained[section] for section in recorded} == recorded     # a run records the sections it uses
    in_experiment = trained.parent.parent / "lines" / "unet" / "seed0"             # <setting>/<experiment>/<model>/seed0
    shutil.copytree(trained, in_experiment)
    assert read_run(in_experiment).experiment == "lines" and read_run(trained).experiment == ""
    assert "--experiment lines" in (model_card(read_run(in_experiment)))
    image = tiny_dataset / "images" / "core0_malignant0.png"
    out = tmp_path / "out"
    assert predict(trained, image, out, "--mpp", "0.25")["zoom"] == 0.5          # input pixels half the size
    row = predict(trained, image, out, "--magnification", "20")                  # 20x = 0.5 µm/px: as trained
    assert row["zoom"] == 1 and row["pixel size (µm)"] == 0.5
    assert row["cells per mm²"] == pytest.approx(row["cells"] / (96 * 128 * 0.25 / 1e6))
    capsys.readouterr()
    predict(trained, image, out)
    assert "warning: no --mpp or --magnification given" in capsys.readouterr().err
    row = predict(trained, image, out, "--mpp", "auto")
    assert "zoom" in capsys.readouterr().err and 0.25 <= row["zoom"] <= 4
    for flags, message in ((["--mpp", "-1"], "--mpp must be a positive number, not '-1'"),
                           (["--mpp", "fast"], "--mpp must be a positive number, not 'fast'"),
                           (["--magnification", "0"], "--magnification must be a positive number")):
        with pytest.raises(ValueError, match=message):
            predict(trained, image, out, *flags)


def dumbbells(path, radius):
    """An image of six dumbbells, two discs of `radius` joined at a neck; returns its components' diameter."""
    yy, xx = np.mgrid[:400, :400]
    mask = np.zeros((400, 400), bool)
    for cy in (60, 200, 340):
        for cx in (70, 270):
            mask |= ((yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2) | ((yy - cy) ** 2 + (xx - cx - 1.6 * radius) ** 2
                                                                       < radius ** 2)
    Image.fromarray(np.where(mask[..., None], [90, 60, 140], [230, 180, 210]).astype(np.uint8)).save(path)
    return np.sqrt(4 * mask.sum() / 6 / np.pi)


def test_mpp_auto_measures_whole_components_as_the_training_nuclei_were(trained, stand_in_network, tmp_path, capsys):
    # the watershed cuts each dumbbell in two, its connected component counts once, as a training mask's component
    # did; the zoom must follow the components
    diameter = training_diameter(trained)
    component = dumbbells(tmp_path / "dumbbells.png", diameter / 2)  # each disc the training diameter across
    zoom = predict(trained, tmp_path / "dumbbells.png", tmp_path / "out", "--mpp", "auto", "--threshold", "0.5")["zoom"]
    # within 10%: the stand-in network's edges erode a little where its windows are resampled; pieces would say 1
    assert zoom == pytest.approx(diameter / component, rel=0.1) and zoom < 0.85
    assert "predicted nuclei reach the training nuclei" in capsys.readouterr().err


def test_mpp_auto_scans_without_tta_at_the_runs_threshold_for_it(trained, stand_in_network, tmp_path, monkeypatch):
    # the scan measures sizes only: it predicts without TTA (a seventh of the passes) and cuts at the run's no-TTA
    # nuclei threshold; the prediction itself keeps --tta and its own threshold
    loaded = predict_cli.load_run_model

    def load(*args):  # the TTA arm's threshold finds no nuclei: a scan cut there could not reach the training size
        model, name, cfg, metrics = loaded(*args)
        arms = {"no_tta": dict(metrics["arms"]["no_tta"], nuclei_threshold=0.5),
                "tta": dict(metrics["arms"]["tta"], nuclei_threshold=0.999)}
        return model, name, cfg, dict(metrics, arms=arms)

    monkeypatch.setattr(predict_cli, "load_run_model", load)
    calls = []
    batch = window_prediction.predict_batch
    monkeypatch.setattr(window_prediction, "predict_batch",
                        lambda model, x, tta, *rest: calls.append(tta) or batch(model, x, tta, *rest))
    dumbbells(tmp_path / "dumbbells.png", training_diameter(trained) / 2)
    plain = predict(trained, tmp_path / "dumbbells.png", tmp_path / "out", "--mpp", "auto")
    assert calls and not any(calls)
    calls.clear()
    row = predict(trained, tmp_path / "dumbbells.png", tmp_path / "out", "--mpp", "auto", "--tta")
    scan = calls[:calls.index(True)]
    assert len(scan) >= 2 and all(calls[len(scan):])  # the scan's passes, then the prediction's, with TTA
    assert row["zoom"] == pytest.approx(plain["zoom"]) and row["zoom"] < 0.85 and row["threshold"] == 0.999


def test_the_watershed_settings_given_replace_the_profiles(trained, stand_in_network, tmp_path):
    dumbbells(tmp_path / "dumbbells.png", 20)  # six dumbbells of two discs 40 px across, their centres 32 px apart

    def count(*flags):
        return predict(trained, tmp_path / "dumbbells.png", tmp_path / "out", "--threshold", "0.5", *flags)["cells"]

    assert count() == 12                                    # the profile's distance splits each dumbbell
    assert count("--min-distance", "40") == 6               # markers 40 px apart cannot split discs 32 px apart
    assert count("--min-area", "5000") == 0                 # every nucleus under the area is dropped
    for flags, message in ((["--min-distance", "0"], "--min-distance must be a positive number, not '0'"),
                           (["--min-area", "big"], "--min-area must be a positive number, not 'big'")):
        with pytest.raises(ValueError, match=message):
            count(*flags)


def test_the_generalisation_benchmark_refuses_bad_watershed_settings_before_predicting(tmp_path):
    benchmark = REPO_ROOT / "benchmarks" / "generalisation.py"
    done = subprocess.run([sys.executable, str(benchmark), "--run", str(tmp_path / "no-run"), "--data", str(tmp_path),
                           "--min-area", "big"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 2  # before it looks for the run, the data or its truth
    assert done.stderr.strip().splitlines()[-1].endswith("error: --min-area must be a positive number, not 'big'")


def test_mpp_auto_gives_the_images_of_one_call_the_median_of_their_zooms(trained, stand_in_network, tmp_path, capsys):
    diameter = training_diameter(trained)
    folder = tmp_path / "scanner"
    folder.mkdir()
    alone = {}
    for name, radius in (("a", 0.4), ("b", 0.5), ("c", 0.7)):
        dumbbells(folder / f"{name}.png", diameter * radius)
        alone[name] = predict(trained, folder / f"{name}.png", tmp_path / name, "--mpp", "auto", "--threshold", "0.5")["zoom"]
    assert alone["a"] > alone["b"] > alone["c"]
    predict_cli.main(["--run", str(trained), "--input", str(folder), "--output", str(tmp_path / "all"), "--mpp", "auto",
                      "--threshold", "0.5"])
    together = pd.read_csv(tmp_path / "all" / "cells.csv")
    assert list(together.zoom) == pytest.approx([alone["b"]] * 3)
    assert f"zoom {alone['b']:.2f} for the 3 image(s), the median" in capsys.readouterr().err


def test_a_large_tiff_is_predicted_band_by_band_like_the_same_image_whole(trained, stand_in_network, tmp_path,
                                                                            monkeypatch):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:700, :300]
    mask = np.zeros((700, 300), bool)
    for cy, cx in rng.uniform(10, 690, (60, 2)) * [1, 300 / 700]:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 8 ** 2
    image = np.where(mask[..., None], [90, 60, 140], [230, 180, 210]).astype(np.uint8)
    folder = tmp_path / "slides"
    folder.mkdir()
    tifffile.imwrite(folder / "large.tif", image, tile=(128, 128))
    whole = predict(trained, folder / "large.tif", tmp_path / "whole", "--threshold", "0.5")
    profile = config.load_config("smoke")
    profile["instances"].update(whole_image_max_megapixels=0.1, band_rows=256)
    monkeypatch.setattr(predict_cli, "load_config", lambda name: profile)
    banded = predict(trained, folder / "large.tif", tmp_path / "banded", "--threshold", "0.5")
    assert not (tmp_path / "banded" / "large_overlay.png").exists()  # band by band: labels, GeoJSON, table only
    assert 40 < whole["cells"] < 60 and banded["cells"] == whole["cells"] and banded["cell pixels"] == whole["cell pixels"]
    labels = tifffile.imread(tmp_path / "banded" / "large_labels.tif")
    assert np.array_equal(labels > 0, tifffile.imread(tmp_path / "whole" / "large_labels.tif") > 0)


def test_bad_images_are_named_in_one_line_or_converted(trained, tmp_path):
    pixels = np.full((96, 128, 3), 220, np.uint8)
    cases = {"gray.png": Image.fromarray(pixels[..., 0]), "broken.png": None,
             "alpha.png": Image.fromarray(np.dstack([pixels, np.full((96, 128), 0, np.uint8)]))}
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, picture in cases.items():
        if picture is None:
            (folder / name).write_bytes(b"\x89PNG not really")
        else:
            picture.save(folder / name)
    with pytest.raises(DatasetError, match="gray.png is a grayscale image"):
        predict(trained, folder / "gray.png", tmp_path / "out")
    with pytest.raises(DatasetError, match="broken.png cannot be read as an image"):
        predict(trained, folder / "broken.png", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert predict(trained, folder / "alpha.png", tmp_path / "out")["cells"] == 0   # transparent = white glass
    sixteen = folder / "sixteen.tif"
    tifffile.imwrite(sixteen, np.full((96, 128), 40000, np.uint16))
    with pytest.raises(DatasetError, match="sixteen.tif has pixel mode 'I;16'"):
        predict(trained, sixteen, tmp_path / "out2")


def _stained(stains: np.ndarray, seed: int = 0) -> np.ndarray:
    """An H&E-like image by Beer-Lambert: discs of haematoxylin on eosin-stained tissue (each stain's amount varying
    on its own, as Macenko's estimate needs), glass in one corner,
    rendered with the given stain vectors (3 x 2, optical density per unit of H and E)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    nuclei = np.zeros((128, 128), bool)
    for cy, cx in rng.uniform(12, 116, (12, 2)):
        nuclei |= (yy - cy) ** 2 + (xx - cx) ** 2 < 7 ** 2
    haematoxylin = rng.uniform(0, 0.3, (128, 128)) + 1.2 * nuclei       # the two stains vary independently
    eosin = rng.uniform(0.1, 0.8, (128, 128)) * np.where(nuclei, 0.2, 1.0)
    haematoxylin[:24, :24] = eosin[:24, :24] = 0  # glass
    density = np.stack([haematoxylin, eosin], -1) @ stains.T
    return np.clip(240 * np.exp(-density), 0, 255).astype(np.uint8)


def test_stain_normalisation_maps_another_labs_staining_onto_the_reference(tmp_path):
    reference_stains = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])
    other_stains = np.array([[0.45, 0.20], [0.85, 0.75], [0.25, 0.60]])   # another lab: bluer H, pinker E
    reference, other = _stained(reference_stains), _stained(other_stains)
    Image.fromarray(reference).save(tmp_path / "reference.png")
    normalised = StainNormaliser(tmp_path / "reference.png")(other, tmp_path / "other.png")
    before = np.abs(other.astype(float) - reference).mean()
    assert np.abs(normalised.astype(float) - reference).mean() < 0.6 * before   # measured: about half
    Image.fromarray(_stained(reference_stains, seed=1)).save(tmp_path / "reference2.png")
    (tmp_path / "training").mkdir()
    for name in ("reference.png", "reference2.png"):
        (tmp_path / name).rename(tmp_path / "training" / name)
    pooled = StainNormaliser(tmp_path / "training")(other, tmp_path / "other.png")   # a folder: its pixels pooled
    assert np.abs(pooled.astype(float) - reference).mean() < 0.6 * before
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty holds no images"):
        StainNormaliser(tmp_path / "empty")
    with pytest.raises(DatasetError, match="glass.png: its H&E stain cannot be estimated"):
        StainNormaliser(tmp_path / "training")(np.full((64, 64, 3), 240, np.uint8), tmp_path / "glass.png")


def test_predict_normalises_stain_when_asked_and_names_the_reference(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(_stained(np.array([[0.45, 0.20], [0.85, 0.75], [0.25, 0.60]]))).save(folder / "other.png")
    Image.fromarray(_stained(np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]]), seed=1)).save(tmp_path / "ref.png")
    predict_cli.main(["--classic", "--input", str(folder), "--output", str(tmp_path / "out"),
                      "--stain-reference", str(tmp_path / "ref.png")])
    row = pd.read_csv(tmp_path / "out" / "cells.csv").iloc[0]
    assert row["stain reference"] == "ref.png" and 8 <= row["cells"] <= 14     # the 12 discs, some may touch
    with pytest.raises(DatasetError, match="missing.png"):
        predict_cli.main(["--classic", "--input", str(folder), "--output", str(tmp_path / "out2"),
                          "--stain-reference", str(tmp_path / "missing.png")])


def load_benchmark(name: str):
    """A script of benchmarks/ as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO_ROOT / "benchmarks" / f"{name}.py")
    benchmark = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = benchmark  # its dataclasses look their module up there
    spec.loader.exec_module(benchmark)
    return benchmark


def test_the_instances_benchmark_measures_a_run_and_writes_its_three_tables(trained, tmp_path, monkeypatch):
    from lib.experiments import efficiency
    from lib.report import output

    benchmark = load_benchmark("instances")
    monkeypatch.setattr(output, "FIGURES_ROOT", tmp_path / "figures")  # not the repository's figures
    monkeypatch.setattr(efficiency, "reference_step_ms", lambda: 1.0)
    monkeypatch.setattr(sys, "argv", ["instances.py", "--run", str(trained)])
    benchmark.main()
    benchmarks = tmp_path / "figures" / "benchmarks"
    written = sorted(path.name for path in benchmarks.glob("instances-*.csv"))
    assert [name.split("-unet")[-1] for name in written] == ["-grid.csv", "-pairs.csv", ".csv"]
    table = pd.read_csv(next(benchmarks.glob("instances-*unet.csv")))
    assert set(table.method) == {"unet", "classic"} and len(table) == 5
    assert table.aji.between(0, 1).all() and table.object_f1.between(0, 1).all()
    grid = pd.read_csv(next(benchmarks.glob("instances-*-grid.csv")))
    assert set(grid.tiles) == {"validation", "training"}


def test_seeds_of_one_recipe_get_a_mean_share_with_an_interval_over_seeds_and_one_over_tiles():
    from types import SimpleNamespace

    benchmark = load_benchmark("pairs_split")
    recipe = Path("results/synthetic/quick/x/enhanced")

    def run(seed, epochs=8):
        return SimpleNamespace(folder=recipe / f"seed{seed}", record={"seed": seed, "config": {
            "seed": 0, "train": {"epochs": epochs}}})

    assert benchmark.one_recipe([run(0), run(1)]) and not benchmark.one_recipe([run(0), run(1, epochs=24)])
    totals = np.array([4, 2, 2, 2])  # 10 pairs on four tiles
    pairs = [pd.DataFrame({"touching pairs": totals, "split": split})
             for split in ([4, 2, 1, 1], [3, 2, 1, 1], [4, 1, 2, 1])]  # 8, 7 and 8 of 10
    row = benchmark.recipe_share([run(0), run(1), run(2)], pairs).iloc[0]
    assert row["touching pairs split (mean)"] == pytest.approx(23 / 30) and row["seeds"] == "0, 1, 2"
    assert (row["lowest seed"], row["highest seed"], row["touching pairs"]) == (0.7, 0.8, 10)
    half_width = 4.302653 * np.std([0.8, 0.7, 0.8], ddof=1) / np.sqrt(3)  # Student's t on 2 degrees of freedom
    assert row["seeds CI low"] == pytest.approx(23 / 30 - half_width)
    assert row["seeds CI high"] == pytest.approx(23 / 30 + half_width)
    assert row["tiles CI low"] < 23 / 30 < row["tiles CI high"] and row["entry"] == str(recipe)
    near_all = [pd.DataFrame({"touching pairs": totals, "split": split}) for split in ([4, 2, 2, 2], [4, 2, 2, 1])]
    assert benchmark.recipe_share([run(0), run(1)], near_all).iloc[0]["seeds CI high"] == 1  # a share, at most 1


def test_a_comparison_of_other_recipes_removes_the_recipe_table_an_earlier_call_wrote(tmp_path, monkeypatch):
    benchmark = load_benchmark("pairs_split")
    monkeypatch.setattr(benchmark, "FIGURES_ROOT", tmp_path)
    (tmp_path / "benchmarks").mkdir()
    for name in ("pairs_split-x-recipe.csv", "pairs_split-x-recipe.md", "pairs_split-x.csv", "pairs_split-xy-recipe.md"):
        (tmp_path / "benchmarks" / name).write_text("table")
    removed = benchmark.remove_recipe_table("pairs_split-x")
    assert [path.name for path in removed] == ["pairs_split-x-recipe.csv", "pairs_split-x-recipe.md"]
    assert sorted(path.name for path in (tmp_path / "benchmarks").iterdir()) == [
        "pairs_split-x.csv", "pairs_split-xy-recipe.md"]                        # its own table and others' stay
