"""The model table's statistics and the boundary metrics, on hand-made numbers."""
import numpy as np
import pandas as pd
import pytest

from lib import comparison
from lib.boundary import boundary_f1, boundary_table, hd95


def _square(size=16, lo=4, hi=12):
    mask = np.zeros((size, size), bool)
    mask[lo:hi, lo:hi] = True
    return mask


def test_hd95_and_boundary_f1_by_hand():
    target = _square()
    assert hd95(target, target) == 0 and boundary_f1(target, target) == 1
    shifted = np.roll(target, 3, axis=1)  # every boundary pixel moves 3 px: matched at 3 px, not at 2 px
    assert hd95(shifted, target) == pytest.approx(3.0)
    assert boundary_f1(shifted, target, tolerance=3) == 1 and boundary_f1(shifted, target, tolerance=2) < 0.7
    empty = np.zeros_like(target)
    assert hd95(empty, empty) == 0 and boundary_f1(empty, empty) == 1
    assert np.isnan(hd95(empty, target)) and boundary_f1(target, empty) == 0
    table = boundary_table(np.stack([target, empty]), np.stack([target, target]))
    assert table.hd95.isna().tolist() == [False, True]


def _per_image(tp, fp, fn, sources):
    return pd.DataFrame({"tile_id": [f"t{i}" for i in range(len(tp))], "source": sources,
                         "whole_tile_tp": tp, "whole_tile_fp": fp, "whole_tile_fn": fn,
                         "whole_tile_dice": 0.0, "annotated_region_tp": tp, "annotated_region_fp": fp,
                         "annotated_region_fn": fn})


def test_bootstrap_ci_resamples_images_and_brackets_the_pooled_dice():
    counts = pd.DataFrame({"tp": [90, 10, 50], "fp": [10, 40, 5], "fn": [0, 50, 5]})
    low, high = comparison.bootstrap_ci(counts, draws=500)
    pooled = 2 * 150 / (2 * 150 + 55 + 55)
    assert low < pooled < high and 0 <= low and high <= 1
    same = pd.DataFrame({"tp": [10, 10], "fp": [2, 2], "fn": [2, 2]})
    assert comparison.bootstrap_ci(same, draws=100) == pytest.approx((10 / 12, 10 / 12))


def _run(model, seed, dice, per_image):
    scores = {"dice": dice, "iou": dice / (2 - dice), "precision": dice, "recall": dice}
    test = {area: {"pooled": scores} for area in comparison.AREAS}
    return {"metrics": {"test": test, "epochs": 3}, "per_image": per_image, "record": {"seed": seed}}


def test_model_table_rows_seeds_and_paired_test():
    sources = ["a", "a", "b", "c", "d", "e", "f"]
    weak = _per_image([5] * 7, [5] * 7, [5] * 7, sources)
    strong = _per_image([9] * 7, [1] * 7, [1] * 7, sources)
    runs = {"unet": [_run("unet", 0, 0.5, weak)],
            "enhanced": [_run("enhanced", 0, 0.9, strong), _run("enhanced", 1, 0.8, strong)]}
    table = comparison.model_table(runs, draws=200)
    assert list(table.index) == ["U-Net", "Enhanced (paper)"]
    row = table.loc["Enhanced (paper)"]
    assert row.seeds == 2 and row.Dice == pytest.approx(0.85) and row["Dice std (seeds)"] == pytest.approx(0.0707, abs=1e-3)
    assert row["paper Dice (%)"] == 95.5 and row["mean image Dice - U-Net"] == pytest.approx(0.4)
    assert row["Wilcoxon p vs U-Net"] == pytest.approx(0.03125)  # 6 images, all better: 2 / 2^6
    assert np.isnan(table.loc["U-Net", "Dice std (seeds)"])
    text = comparison.describe_ladder(table, table)
    assert "Enhanced model is 0.350 Dice above the U-Net" in text and "p = 0.0312" in text


def test_missing_runs_are_named(tmp_path):
    from lib import config
    cfg = config.load_config("smoke")
    with pytest.raises(FileNotFoundError, match="no finished run for unet seed 0, unet seed 1"):
        comparison.find_runs(cfg, None, ["unet"], 2, root=tmp_path)


def test_a_run_is_stale_only_for_changes_it_depends_on():
    from lib import config, train
    cfg = config.load_config("smoke")
    same = train.model_run_config(cfg, "unet")
    other_model_epochs = {**cfg, "ladder": {**cfg["ladder"], "epochs": {"fgfeu_net": 1}}}
    assert train.model_run_config(other_model_epochs, "unet") == same
    assert train.model_run_config(other_model_epochs, "fgfeu_net")["train"]["epochs"] == 1
    own_epochs = {**cfg, "ladder": {**cfg["ladder"], "epochs": {"unet": cfg["train"]["epochs"] + 1}}}
    assert train.model_run_config(own_epochs, "unet") != same
    assert train.model_run_config({**cfg, "runs": {"models": ["unet"], "seeds": 3}}, "unet") == same
    faster = {**cfg, "stability": {**cfg["stability"], "learning_rate": 0.1, "epochs": 40}}
    assert train.changed_settings(cfg, faster, "unet") == []
    assert train.changed_settings(cfg, faster, "enhanced_unstabilized") == ["stability.learning_rate"]
    assert train.changed_settings(cfg, own_epochs, "unet") == ["train.epochs"]
