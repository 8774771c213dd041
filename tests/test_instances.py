"""Nuclei as objects: the watershed split, the instance measures on hand-made cases with a known answer, and the
classic haematoxylin pipeline."""
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from lib.evaluation.instances import instance_counts, instance_scores, instance_table, pooled_instance_scores
from lib.inference.classic import classic_nuclei, haematoxylin
from lib.inference.instances import label_nuclei, split_nuclei


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def stained(shape, centres, radius=8):
    """Nuclei stained haematoxylin blue-purple on eosin-pink tissue."""
    image = np.full((*shape, 3), (235, 210, 225), np.uint8)
    for centre in centres:
        image[disc(shape, centre, radius)] = (70, 50, 140)
    return image


def scores(truth, pred, within=None):
    return instance_scores(instance_counts(truth, pred, within))


def test_two_touching_nuclei_are_split_and_a_speck_dropped():
    mask = disc((40, 60), (20, 18), 9) | disc((40, 60), (20, 35), 9)  # they overlap: one connected component
    mask |= disc((40, 60), (5, 55), 1)  # a speck of 5 px
    labels = split_nuclei(mask, min_distance_px=5, min_area_px=20)
    assert labels.dtype == np.int32 and labels.max() == 2
    assert labels[20, 18] != labels[20, 35] and labels[20, 18] > 0 and labels[20, 35] > 0
    assert labels[5, 55] == 0
    assert np.array_equal(labels > 0, mask & ~disc((40, 60), (5, 55), 1))  # split, not eroded


def test_one_round_nucleus_stays_one_and_probabilities_are_cut_at_the_threshold():
    probability = np.where(disc((30, 30), (15, 15), 8), 0.9, 0.2)
    assert label_nuclei(probability, 0.5, min_distance_px=4, min_area_px=10).max() == 1
    assert label_nuclei(probability, 0.95, min_distance_px=4, min_area_px=10).max() == 0


def cored_pair():
    """Two nuclei side by side inside one oval of probability 0.95, so that the mask is one convex blob (one distance
    peak), with the network surer (0.999) inside each nucleus than on the gap between them: (probability, oval)."""
    left, right = disc((40, 70), (20, 26), 7), disc((40, 70), (20, 44), 7)
    oval = ((np.mgrid[:40, :70][0] - 20) / 11.0) ** 2 + ((np.mgrid[:40, :70][1] - 35) / 20.0) ** 2 <= 1
    return np.where(left | right, 0.999, np.where(oval, 0.95, 0.05)), oval


def test_cores_split_a_pair_the_mask_merges_without_a_neck():
    probability, oval = cored_pair()
    assert label_nuclei(probability, 0.5, 4, 20).max() == 1                          # markers from the mask: merged
    cores = label_nuclei(probability, 0.5, 4, 20, core_share=0.01)                  # cores: p >= 0.995
    assert cores.max() == 2 and cores[20, 26] != cores[20, 44]
    assert np.array_equal(cores > 0, oval)                                          # split, not eroded
    with pytest.raises(ValueError, match="core_share"):
        label_nuclei(probability, 0.5, 4, 20, core_share=0)


def test_a_centre_map_splits_a_pair_the_mask_merges_without_a_neck():
    probability, oval = cored_pair()
    yy, xx = np.mgrid[:40, :70]
    centre = np.clip(1 - np.minimum(np.hypot(yy - 20, xx - 26), np.hypot(yy - 20, xx - 44)) / 9, 0, 1)
    labels = label_nuclei(np.where(oval, 0.95, 0.05), 0.5, 4, 20, centre=centre)  # the mask alone: one blob
    assert labels.max() == 2 and labels[20, 26] != labels[20, 44] and labels[20, 30] == labels[20, 26]
    assert np.array_equal(labels > 0, oval)                                         # split, not eroded
    assert label_nuclei(np.where(oval, 0.95, 0.05), 0.5, 4, 20).max() == 1


def test_a_perfect_prediction_scores_one():
    truth = np.zeros((20, 20), int)
    truth[2:8, 2:8], truth[10:18, 10:18] = 1, 2
    result = scores(truth, truth * 7)  # any label values
    assert result["object_f1"] == result["aji"] == result["pq"] == result["sq"] == 1.0


def test_a_split_nucleus_is_one_match_and_one_false_object():
    truth = np.zeros((10, 20), int)
    truth[:, :10] = 1  # 100 px
    pred = np.zeros_like(truth)
    pred[:, :7], pred[:, 7:10] = 1, 2  # 70 px (IoU 0.7) and 30 px (IoU 0.3)
    counts = instance_counts(truth, pred)
    assert (counts["tp"], counts["fp"], counts["fn"]) == (1, 1, 0)
    result = instance_scores(counts)
    assert result["object_f1"] == pytest.approx(1 / 1.5)
    assert result["sq"] == pytest.approx(0.7) and result["pq"] == pytest.approx(0.7 / 1.5)
    assert result["aji"] == pytest.approx(70 / (100 + 30))  # the unpaired half joins the union


def test_a_merged_pair_matches_nothing_and_counts_twice_in_aji():
    truth = np.zeros((10, 20), int)
    truth[:, :10], truth[:, 10:] = 1, 2
    pred = (truth > 0).astype(int)  # one object over both: IoU 0.5 with each, not above it
    counts = instance_counts(truth, pred)
    assert (counts["tp"], counts["fp"], counts["fn"]) == (0, 1, 2)
    result = instance_scores(counts)
    assert result["object_f1"] == 0 and result["pq"] == 0 and math.isnan(result["sq"])
    assert result["aji"] == pytest.approx(200 / 400)


def test_empty_prediction_empty_truth_and_both_empty():
    truth = np.zeros((10, 10), int)
    truth[2:6, 2:6] = 1
    nothing = np.zeros_like(truth)
    missed = scores(truth, nothing)
    assert missed["object_f1"] == 0 and missed["aji"] == 0 and missed["pq"] == 0 and missed["object_recall"] == 0
    assert math.isnan(missed["object_precision"])
    invented = scores(nothing, truth)
    assert invented["object_f1"] == 0 and invented["aji"] == 0 and math.isnan(invented["object_recall"])
    assert all(math.isnan(value) for value in scores(nothing, nothing).values())


def test_an_area_judges_objects_by_their_part_inside_it_and_images_pool_by_counts():
    truth = np.zeros((10, 20), int)
    truth[2:8, 2:8], truth[2:8, 12:18] = 1, 2
    pred = np.zeros_like(truth)
    pred[2:8, 2:8] = 5  # the second nucleus is missed, but it lies outside the area
    within = np.zeros(truth.shape, bool)
    within[:, :10] = True
    assert scores(truth, pred, within)["object_f1"] == 1.0 and scores(truth, pred)["object_f1"] == pytest.approx(2 / 3)
    table = instance_table([truth, truth], [pred, truth], names=["a", "b"])
    assert list(table.index) == ["a", "b"] and table.loc["b", "object_f1"] == 1.0
    assert pooled_instance_scores(table)["object_f1"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))


def test_the_classic_pipeline_finds_stained_nuclei_without_training():
    image = stained((60, 80), [(20, 20), (20, 36), (45, 60)])  # two touching nuclei and one apart
    assert haematoxylin(image)[20, 20] > haematoxylin(image)[5, 5]
    labels = classic_nuclei(image, sigma_px=1.0, min_distance_px=5, min_area_px=30)
    assert labels.max() == 3
    assert len({labels[20, 20], labels[20, 36], labels[45, 60]} - {0}) == 3
    blank = classic_nuclei(np.full((30, 30, 3), 200, np.uint8), 1.0, 5, 30)
    assert blank.max() == 0


def test_labels_geojson_and_table_describe_the_same_nuclei(tmp_path):
    import json

    import pandas as pd
    import tifffile
    from shapely.geometry import Point, shape

    from lib.inference.outputs import write_nuclei

    labels = split_nuclei(disc((60, 80), (20, 20), 8) | disc((60, 80), (20, 35), 8) | disc((60, 80), (45, 60), 8), 5, 20)
    labels[2, 78] = labels.max() + 1  # a one-pixel nucleus still gets a polygon
    probability = np.where(labels > 0, 0.8, 0.1)
    table = write_nuclei(tmp_path, "img", labels, probability, mpp=0.5)
    read_back = tifffile.imread(tmp_path / "img_labels.tif")
    assert read_back.dtype == np.int32 and np.array_equal(read_back, labels)
    assert pd.read_csv(tmp_path / "img_nuclei.csv")["id"].tolist() == table["id"].tolist() == [1, 2, 3, 4]
    collection = json.loads((tmp_path / "img_nuclei.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 4
    for feature, row in zip(collection["features"], table.to_dict("records")):
        polygon = shape(feature["geometry"])
        assert feature["properties"]["objectType"] == "detection" and feature["id"] == str(row["id"])
        assert polygon.is_valid and polygon.contains(Point(row["centroid x (px)"], row["centroid y (px)"]))
        assert feature["properties"]["measurements"]["Area px"] == row["area (px)"]
        assert feature["properties"]["measurements"]["Area µm^2"] == pytest.approx(row["area (px)"] * 0.25)
        assert row["mean probability"] == pytest.approx(0.8)
        if row["area (px)"] > 1:  # through the boundary pixels' centres: a little under the pixel count
            assert 0.7 * row["area (px)"] < polygon.area <= row["area (px)"]


def test_predict_classic_writes_every_output_and_keeps_earlier_results(tmp_path):
    import pandas as pd

    from lib.inference import __main__ as predict_cli

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(stained((60, 80), [(20, 20), (20, 36), (45, 60)])).save(images / "a.png")
    out = tmp_path / "out"
    predict_cli.main(["--classic", "--input", str(images), "--output", str(out)])
    cells = pd.read_csv(out / "cells.csv")
    assert cells.loc[0, "cells"] == 3
    assert {p.name for p in out.iterdir()} == {"cells.csv", "a_mask.png", "a_overlay.png", "a_labels.tif",
                                               "a_nuclei.geojson", "a_nuclei.csv"}
    with pytest.raises(ValueError, match="already holds the results of a prediction"):
        predict_cli.main(["--classic", "--input", str(images), "--output", str(out)])
    predict_cli.main(["--classic", "--input", str(images), "--output", str(out), "--force"])


def test_touching_pairs_are_found_and_counted_split_only_when_both_are_matched():
    from lib.evaluation.instances import split_pairs, touching_pairs

    truth = disc((40, 60), (20, 15), 7) + 2 * disc((40, 60), (20, 31), 7) + 3 * disc((40, 60), (20, 52), 5)
    assert touching_pairs(truth, 3) == [(1, 2)]          # 2 px apart; the third lies 9 px from the second
    assert split_pairs(truth, truth, 3) == (1, 1, 0)
    merged = (truth > 0).astype(int)
    merged[truth == 3] = 2
    assert split_pairs(truth, merged, 3) == (1, 0, 1)
    assert split_pairs(truth, np.zeros_like(truth), 3) == (1, 0, 0)
    shrunk = np.where(truth == 2, 0, truth)                # the second nucleus missed: neither split nor merged
    shrunk[20, 31] = 2
    assert split_pairs(truth, shrunk, 3) == (1, 0, 0)


def test_the_watershed_splits_the_synthetic_generators_touching_nuclei():
    from lib.data import synthetic
    from lib.evaluation.instances import split_pairs

    plans = synthetic.plan_tiles([599, 130, 100], 0.4, [0.044, 0.043, 0.045], 0)
    dense = [p for p in plans if p.configuration in ("compact_dense", "dense_large")][:6]
    pairs = split = 0
    tables = []
    for plan in dense:
        _, truth, _ = synthetic.render_tile(plan, 256, 0, 1.5)
        assert np.array_equal(np.unique(truth), np.arange(truth.max() + 1))  # one label per annotated nucleus
        pred = split_nuclei(truth > 0, 6, 30)                                 # the merged mask, split again
        n, k, _ = split_pairs(truth, pred, 3)
        pairs, split = pairs + n, split + k
        tables.append(instance_counts(truth, pred))
    scores = instance_scores(pd.DataFrame(tables).sum())
    assert pairs > 20 and split / pairs >= 0.9 and scores["object_f1"] >= 0.95 and scores["aji"] >= 0.9


def test_the_watershed_settings_are_chosen_on_validation_tiles_by_aji():
    from lib.evaluation.scoring import choose_split_settings

    truth = np.stack([disc((48, 64), (24, 20), 9) + 2 * disc((48, 64), (24, 38), 9) * ~disc((48, 64), (24, 20), 9)
                      + 3 * disc((48, 64), (8, 56), 1)] * 3)
    chosen, grid = choose_split_settings((truth > 0) * 0.9, 0.5, truth, None, (30, 4), (1, 6))
    assert chosen == {"min_distance_px": 4, "min_area_px": 1, "core_share": 1}  # 30 px merges the pair; 6 px drops the speck
    assert len(grid) == 4 and grid.aji.max() == grid.aji[(grid.min_distance_px == 4) & (grid.min_area_px == 1)].item()
    with pytest.raises(ValueError, match="no true nucleus"):
        choose_split_settings((truth > 5) * 0.9, 0.5, np.zeros_like(truth), None, (4,), (1,))


def test_the_nuclei_threshold_and_marker_distance_are_chosen_together_on_validation_tiles_by_aji():
    from lib.evaluation.scoring import choose_nuclei_cut

    truth = np.stack([disc((48, 64), (24, 18), 8) + 2 * disc((48, 64), (24, 33), 8) * ~disc((48, 64), (24, 18), 8)] * 2)
    rims = (truth > 0) & ~np.stack([ndimage.binary_erosion(t > 0, iterations=2) for t in truth])
    probability = np.where(rims, 0.6, np.where(truth > 0, 0.9, 0.3))  # a sure core, a less sure outline, glass
    settings = {"min_area_px": 5, "core_share": 1.0}
    threshold, distance, grid = choose_nuclei_cut(probability, (0.8, 0.5, 0.2), (30, 4), truth, None, settings)
    assert (threshold, distance) == (0.5, 4)  # 0.8 keeps only the cores, 0.2 the whole tile; 30 px merges the pair
    assert list(grid.threshold) == [0.8, 0.8, 0.5, 0.5, 0.2, 0.2] and list(grid.min_distance_px) == [30, 4] * 3
    assert grid.aji.max() > 0.9 > grid.aji[(grid.threshold == 0.5) & (grid.min_distance_px == 30)].item()
    with pytest.raises(ValueError, match="no true nucleus"):
        choose_nuclei_cut(probability * 0, (0.5,), (4,), np.zeros_like(truth), None, settings)


def test_the_core_share_is_chosen_when_the_cores_split_what_the_mask_merges():
    from lib.evaluation.scoring import choose_split_settings

    probability, oval = cored_pair()
    truth = np.where(oval & (np.mgrid[:40, :70][1] < 35), 1, np.where(oval, 2, 0))
    chosen, grid = choose_split_settings(probability[None], 0.5, truth[None], None, (4,), (20,), (1.0, 0.01))
    assert chosen["core_share"] == 0.01 and grid.aji.iloc[1] > grid.aji.iloc[0]


def test_one_relief_per_tile_scores_every_split_as_labelling_with_that_split_alone():
    from lib.evaluation.scoring import pooled_nuclei_scores

    rng = np.random.default_rng(0)
    truth = np.stack([disc((48, 64), (24, 18), 8) + 2 * disc((48, 64), (24, 33), 8) * ~disc((48, 64), (24, 18), 8)
                      + 3 * disc((48, 64), (8, 56), 2)] * 2)
    probability = np.clip(ndimage.gaussian_filter((truth > 0) * 1.0, (0, 2, 2)) + rng.normal(0, 0.1, truth.shape), 0, 1)
    splits = [(30, 5), (4, 5), (4, 20), (2, 5)]
    shared = pooled_nuclei_scores(probability, 0.5, truth, None, splits, 1.0)
    alone = [pooled_instance_scores(pd.DataFrame([instance_counts(t, label_nuclei(p, 0.5, distance, area))
                                                  for t, p in zip(truth, probability)])) for distance, area in splits]
    pd.testing.assert_frame_equal(pd.DataFrame(shared), pd.DataFrame(alone))  # NaN where a score is undefined
    assert len({scores["aji"] for scores in shared}) > 1                        # the splits differ, each in its place


def test_a_prediction_folder_is_scored_against_its_datasets_masks_and_instances(tiny_dataset, tmp_path):
    from lib.evaluation.predicted import score_predictions
    from lib.inference import __main__ as predict_cli

    out = tmp_path / "out"
    predict_cli.main(["--classic", "--input", str(tiny_dataset / "images"), "--output", str(out)])
    scores = score_predictions(tiny_dataset, out)
    assert scores["images"] == scores["images scored as objects"] == 10
    assert scores["pixel Dice"] > 0.8 and scores["object_f1"] > 0.8       # dark discs on pink: the classic finds them
    (tiny_dataset / "instances").mkdir()                                  # object truth for one image only
    mask = np.asarray(Image.open(tiny_dataset / "masks" / "core0_malignant0.png")) > 0
    Image.fromarray(mask.astype(np.uint16)).save(tiny_dataset / "instances" / "core0_malignant0.png")
    assert score_predictions(tiny_dataset, out, region_dilation=4)["images scored as objects"] == 1
    (out / "core1_benign1_labels.tif").unlink()
    with pytest.raises(FileNotFoundError, match="core1_benign1_labels.tif is missing"):
        score_predictions(tiny_dataset, out)


def test_two_prediction_folders_are_compared_image_by_image(tiny_dataset, tmp_path):
    import tifffile

    from lib.evaluation.predicted import image_counts, image_scores, paired_to, pooled_scores
    from lib.inference import __main__ as predict_cli

    out, empty = tmp_path / "out", tmp_path / "empty"
    predict_cli.main(["--classic", "--input", str(tiny_dataset / "images"), "--output", str(out)])
    pixels, objects = image_counts(tiny_dataset, out)
    scores = pooled_scores(pixels, objects)
    for key in ("pixel Dice", "object_f1", "aji", "pq"):                 # each pooled score inside its interval
        assert scores[f"{key} 95% CI low"] < scores[key] < scores[f"{key} 95% CI high"]
    found = image_scores(pixels, objects)
    assert len(found) == 10 and found["pixel Dice"].between(0.5, 1).all()
    empty.mkdir()                                                         # a method that finds nothing
    for labels in out.glob("*_labels.tif"):
        tifffile.imwrite(empty / labels.name, np.zeros_like(tifffile.imread(labels)))
    nothing = image_scores(*image_counts(tiny_dataset, empty))
    assert (nothing[["pixel Dice", "object_f1", "aji"]] == 0).all().all()  # truth and no prediction: 0, not NaN
    worse = paired_to(found, nothing, "classic")
    for measure in ("pixel Dice", "aji", "object_f1"):                    # 10 images all worse: exact p 2/1024, x3
        assert worse[f"{measure} - classic"] < 0 and worse[f"{measure} - classic images"] == 10
        assert worse[f"{measure} - classic Holm p"] == pytest.approx(3 * 2 / 1024)
        assert worse[f"{measure} - classic verdict"] == "contradicted"
    same = paired_to(found, found, "classic")
    assert same["aji - classic"] == 0 and same["aji - classic verdict"] == "inconclusive"


@pytest.mark.parametrize("min_distance", [1, 2, 3, 6])
@pytest.mark.parametrize("max_pixels", [2**22, 0])  # 0: every map is a slide's band, left to skimage
def test_component_peaks_are_skimages_peaks_in_skimages_order(min_distance, max_pixels, monkeypatch):
    from skimage.feature import peak_local_max

    from lib.inference import instances
    from lib.inference.instances import component_peaks, watershed_relief

    monkeypatch.setattr(instances, "FILTERED_PEAKS_MAX_PIXELS", max_pixels)
    rng = np.random.default_rng(min_distance)
    for case in range(60):
        field = ndimage.gaussian_filter(rng.normal(size=rng.integers(16, 90, 2)), rng.uniform(1, 4))
        flooded = watershed_relief(field > rng.uniform(0, 0.3) * field.std(),
                                   cores=field > field.std() if case % 3 == 1 else None)
        # every third relief rounded: plateaus (specks, flat tops, where skimage keeps what an opening removes) and ties
        relief = np.round(flooded.relief * 2) / 2 if case % 3 == 2 else flooded.relief
        expected = peak_local_max(relief, min_distance=min_distance, labels=flooded.components, exclude_border=False)
        np.testing.assert_array_equal(component_peaks(relief, flooded.components, min_distance), expected)
