"""The model table and the boundary metrics, on hand-made numbers."""
import numpy as np
import pandas as pd
import pytest

from lib.evaluation.boundary import boundary_f1, boundary_table, hd95
from lib.experiments import ladder


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
    assert np.isnan(hd95(empty, empty)) and np.isnan(boundary_f1(empty, empty))   # nothing to measure
    assert np.isnan(hd95(empty, target)) and boundary_f1(empty, target) == 0       # cells missed
    assert np.isnan(boundary_f1(target, empty))                                    # no true boundary


def test_boundary_table_measures_only_tiles_with_a_true_boundary_in_the_area():
    target, empty = _square(), np.zeros((16, 16), bool)
    inside = np.ones((16, 16), bool)
    outside = np.zeros((16, 16), bool)
    table = boundary_table(np.stack([target, empty, target, target]), np.stack([target, target, empty, target]),
                           np.stack([inside, inside, inside, outside]))
    assert table.measured.tolist() == [True, True, False, False]
    assert table.boundary_f1[:2].tolist() == [1.0, 0.0] and table.hd95.isna().tolist() == [False, True, True, True]


def _per_tile(tp, fp, fn, sources):
    frame = pd.DataFrame({"tile_id": [f"t{i}" for i in range(len(tp))], "source": sources})
    for area in ("whole_tile", "annotated_region"):
        frame = frame.assign(**{f"{area}_tp": tp, f"{area}_fp": fp, f"{area}_fn": fn})
    return frame


def test_model_table_rows_seeds_intervals_and_holm():
    sources = ["a", "a", "b", "c", "d", "e", "f", "g"]
    weak = _per_tile([5] * 8, [5] * 8, [5] * 8, sources)
    strong = _per_tile([9] * 8, [1] * 8, [1] * 8, sources)
    slightly = _per_tile([6] * 8, [5] * 8, [4] * 8, sources)
    entries = {"unet": ladder.Entry("unet", "U-Net", [weak], [], 3, 30),
               "enhanced": ladder.Entry("enhanced", "Enhanced (paper)", [strong, strong], [], 3, 30, 120.5),
               "attention_unet": ladder.Entry("attention_unet", "Attention U-Net", [slightly], [], 3, 30)}
    table = ladder.model_table(entries)
    assert list(table.index) == ["U-Net", "Enhanced (paper)", "Attention U-Net"]
    row = table.loc["Enhanced (paper)"]
    assert row.seeds == 2 and row.Dice == pytest.approx(0.9) and row["Dice sd over seeds"] == 0
    assert row["Dice 95% CI low"] == pytest.approx(0.9) == row["Dice 95% CI high"]  # no spread between images
    assert row["paper Dice (%)"] == 95.5 and row["image Dice - U-Net"] == pytest.approx(0.4)
    assert row["p vs U-Net"] == pytest.approx(2 / 128)             # 7 images, all better: the smallest p
    assert row["Holm p vs U-Net"] == pytest.approx(2 * 2 / 128)    # two comparisons
    assert row["verdict vs U-Net"] == "supported" and row["optimizer steps"] == 30
    assert row["training seconds"] == 120.5 and np.isnan(table.loc["U-Net", "training seconds"])
    assert np.isnan(table.loc["U-Net", "Dice sd over seeds"]) and np.isnan(table.loc["U-Net", "p vs U-Net"])
    text = ladder.describe_ladder({"whole_tile": table, "annotated_region": table})
    assert "+0.400 against the U-Net" in text and "Enhanced (paper) (better)" in text


def test_boundary_metrics_average_every_model_over_the_same_tiles():
    from types import SimpleNamespace
    target = _square()
    masks = np.stack([target, target, np.zeros_like(target)])
    tile_set = SimpleNamespace(masks=masks, regions=np.ones_like(masks))
    perfect = ladder.Entry("a", "A", [], [masks.copy()])
    misses_one = ladder.Entry("b", "B", [], [np.stack([target, np.zeros_like(target), target])])
    table = ladder.boundary_metrics({"a": perfect, "b": misses_one}, tile_set, np.arange(3), "annotated_region")
    assert table["tiles measured"].tolist() == [2, 2] and table["tiles in the HD95 mean"].tolist() == [1, 1]
    assert table.loc["A", "boundary F1 @2px"] == 1.0 and table.loc["B", "boundary F1 @2px"] == 0.5
    assert table.loc["B", "tiles without a predicted boundary (mean over seeds)"] == 1


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def test_instance_ladder_scores_objects_and_compares_with_the_unet_and_the_classic_pipeline():
    from types import SimpleNamespace

    from lib import config

    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, input_size=64)
    # eight tiles of eight images, each with two overlapping nuclei: one mask component, two true nuclei
    truth = np.zeros((8, 64, 64), np.uint16)
    for tile in truth:
        tile[_disc((64, 64), (32, 20), 9)] = 1
        tile[_disc((64, 64), (32, 36), 9)] = 2
    tile_set = SimpleNamespace(instances=truth, masks=truth > 0, regions=np.ones_like(truth, bool),
                               table=pd.DataFrame({"source": list("abcdefgh")}))
    merged = [truth > 0]                               # the right pixels, but as one object: split by the watershed
    missing_one = [(truth == 1)]                       # one nucleus of each pair found
    one_object = [(truth > 0).astype(np.int32)]        # the pair as one object: it matches the larger nucleus only
    entries = {"unet": ladder.Entry("unet", "U-Net", [], missing_one),
               "enhanced": ladder.Entry("enhanced", "Enhanced", [], merged),
               "classic": ladder.Entry("classic", ladder.CLASSIC_LABEL, [], [truth > 0], baseline=True,
                                       instances=one_object)}
    table = ladder.instance_ladder(entries, tile_set, np.arange(8), cfg)
    assert table.loc["Enhanced", "object_f1"] == 1 and table.loc["Enhanced", "aji"] > 0.9       # split, each matched
    assert table.loc["U-Net", "object_recall"] == 0.5 and table.loc["U-Net", "object_precision"] == 1
    assert table.loc[ladder.CLASSIC_LABEL, "object_f1"] == pytest.approx(2 / 3) and table.loc["U-Net", "true nuclei"] == 16
    assert 0.4 < table.loc["Enhanced", "aji - U-Net"] < 0.5
    assert table.loc["Enhanced", "aji - Haematoxylin + watershed"] > 0.3
    assert table.loc["Enhanced", "object_f1 - Haematoxylin + watershed verdict"] == "supported"  # 8 of 8 images
    assert np.isnan(table.loc[ladder.CLASSIC_LABEL, "aji - U-Net"])                        # a baseline is not tested
    text = ladder.describe_instances({"whole_tile": table})
    assert "the highest AJI is Enhanced's" in text and "On object F1, 1 of the 2 trained models are better" in text


def test_instance_ladder_labels_a_runs_probabilities_as_prediction_does_cores_and_centres_included():
    from types import SimpleNamespace

    from lib import config
    from tests.test_instances import cored_pair

    probability, oval = cored_pair()       # two nuclei in one oval of probability: the mask merges them
    truth = np.where(oval, np.where(np.mgrid[:40, :70][1] < 35, 1, 2), 0).astype(np.uint16)[None].repeat(8, 0)
    tile_set = SimpleNamespace(instances=truth, masks=truth > 0, regions=np.ones_like(truth, bool),
                               table=pd.DataFrame({"source": list("abcdefgh")}))
    yy, xx = np.mgrid[:40, :70]
    centre = np.clip(1 - np.minimum(np.hypot(yy - 20, xx - 26), np.hypot(yy - 20, xx - 44)) / 9, 0, 1)
    def run(centres):  # a run's stand-in; with a centre head, its test tiles' centre maps
        return SimpleNamespace(test_probabilities=lambda: np.repeat(probability[None], 8, 0).astype(np.float32),
                               tile_thresholds=lambda: np.full(8, 0.5),
                               test_centres=lambda: None if centres is None else np.repeat(centres[None], 8, 0))
    cfg = config.load_config("smoke")
    cfg["data"].update(tile_size=64, input_size=64)
    f1 = {}
    for share, centres in ((1.0, None), (0.01, None), (1.0, centre)):  # markers from the mask, the cores
        cfg["instances"]["core_share"] = share                          # (p >= 0.995), then the centre head
        entries = {"enhanced": ladder.Entry("enhanced", "Enhanced", [], [probability[None] >= 0.5], runs=[run(centres)])}
        f1[share, centres is not None] = ladder.instance_ladder(entries, tile_set, np.arange(8), cfg).loc["Enhanced",
                                                                                                          "object_f1"]
    assert f1[0.01, False] == f1[1.0, True] == 1 and f1[1.0, False] < 0.7
