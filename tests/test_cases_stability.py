"""Fig. 3 case rules and the stability experiment's statistics, on hand-made data."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lib import config
from lib.experiments import cases, stability
from lib.inference.instances import label_tiles

SPLIT = {"min_distance_px": 1, "min_area_px": 1, "core_share": 1.0}  # every component, split where it narrows


def _disc_mask(centres, size=64, radius=2):
    yy, xx = np.mgrid[:size, :size]
    return np.any([(yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2 for y, x in centres], axis=0)


def test_ring_score_prefers_a_circle():
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    ring = np.stack([32 + 20 * np.sin(angles), 32 + 20 * np.cos(angles)], 1)
    blob = np.random.default_rng(0).normal(32, 8, size=(10, 2))
    assert cases.ring_score(ring) > 0.99 > cases.ring_score(blob)
    assert np.isnan(cases.ring_score(ring[:2]))
    square = np.array([[0, 0], [0, 10], [10, 0], [10, 10]])
    assert cases.density(square) == pytest.approx(4 / 100 * 1000)


def test_cases_follow_the_rules_and_are_distinct():
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ring = [(int(32 + 20 * np.sin(a)), int(32 + 20 * np.cos(a))) for a in angles]
    dense = [(26 + 6 * i, 26 + 6 * j) for i in range(3) for j in range(3)]
    line = [(10, 10), (10, 25), (10, 40), (10, 55)]  # neither dense (no hull) nor ring-like
    masks = np.stack([_disc_mask(ring), _disc_mask(dense), _disc_mask(line), _disc_mask(line), _disc_mask(dense)])
    probabilities = masks.astype(np.float32)
    probabilities[0][56:] = probabilities[1][56:] = 1.0  # ring and dense tiles over-call a band
    probabilities[3] = 0.0                                # every cell of the fourth tile is missed
    regions = np.ones_like(masks)
    regions[4, :, 40:] = False                            # the last tile is mostly outside the annotated region
    probabilities[4] = 0.0                                # (it would be the worst, but it is not eligible)
    nuclei = label_tiles(probabilities, np.full(5, 0.5), SPLIT, regions)
    table = cases.case_table(probabilities >= 0.5, masks, regions, ["ring", "dense", "perfect", "missed", "partial"],
                             nuclei)
    assert table.cells.tolist() == [8, 9, 4, 4, 9] and table["region share"][4] == pytest.approx(40 / 64)
    assert table["predicted nuclei"].tolist()[2:4] == [4, 0]             # every cell found; every cell missed
    chosen = cases.choose_cases(table, min_cells=3, min_region_share=0.7)
    assert chosen.tile_id.to_dict() == {"best": "perfect", "worst": "missed", "dense": "dense", "ring": "ring"}
    assert "lowest Dice" in chosen.loc["worst", "why"] and "covers at least 70%" in chosen.loc["worst", "why"]
    caption = cases.describe("worst", chosen.loc["worst"], 0.35)
    assert "Dice 0.000" in caption and "threshold 0.35" in caption and "4 cells (0 predicted)" in caption
    with pytest.raises(ValueError, match="no test tile has 20 or more cells"):
        cases.choose_cases(table, min_cells=20, min_region_share=0.5)


def test_false_positives_outside_the_annotated_region_are_not_errors():
    mask = _disc_mask([(20, 20)])
    probability = mask.astype(np.float32)
    probability[50:, 50:] = 1.0                          # an unannotated nucleus found outside the region
    region = np.zeros_like(mask)
    region[:40, :40] = True
    nuclei = label_tiles(probability[None], [0.5], SPLIT, region[None])
    table = cases.case_table(probability[None] >= 0.5, mask[None], region[None], ["t"], nuclei)
    assert table.Dice[0] == 1.0 and table["false positive px"][0] == 0
    assert table["predicted nuclei"][0] == 1 and label_tiles(probability[None], [0.5], SPLIT)[0].max() == 2


def _history(val_dice, skipped=0):
    return pd.DataFrame({"epoch": range(1, len(val_dice) + 1), "val_dice": val_dice, "skipped_steps": skipped})


def test_drops_and_summary_by_hand():
    history = _history([0.5, 0.9, 0.4, 0.85, 0.80])
    found = stability.drops(history, 0.30)
    assert found.epoch.tolist() == [3] and found["from"].tolist() == [0.9] and found.to.tolist() == [0.4]
    def run(history: pd.DataFrame) -> SimpleNamespace:
        return SimpleNamespace(history=history, pooled_scores=lambda area: {"dice": 0.7})
    runs = {"stabilized": [run(_history([0.5, 0.6, 0.7]))] * 2,
            "unstabilized": [run(history.assign(skipped_steps=1)), run(_history([0.5, 0.6, 0.7]))]}
    table = stability.summary(runs, 0.30)
    assert table.loc["unstabilized", "catastrophic drops"] == 1 and table.loc["stabilized", "catastrophic drops"] == 0
    assert table.loc["unstabilized", "largest drop"] == pytest.approx(0.5)
    assert table.loc["unstabilized", "non-finite steps"] == 5
    cfg = config.load_config("smoke")
    assert "removes collapses" in stability.describe(table, None, cfg)
    calm = table.copy()
    calm.loc["unstabilized", "catastrophic drops"] = 0
    sweep = pd.DataFrame({"learning rate": [0.01, 0.03], "catastrophic drops": [0, 2], "largest drop": [0.1, 0.6]})
    assert "first appears at a learning rate of 0.03" in stability.describe(calm, sweep, cfg)
    assert "not reproduced" in stability.describe(calm, sweep.assign(**{"catastrophic drops": 0}), cfg)
