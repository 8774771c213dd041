"""The embedded synthetic dataset: deterministic, Table I statistics, and not trivial."""
import numpy as np
import pytest

from lib import config
from lib.data import statistics, synthetic, tiles
from lib.evaluation import baselines

COUNTS, POSITIVE, SHARES = [599, 130, 100], 0.4, [0.044, 0.043, 0.045]


def test_plan_counts_are_exact_and_every_fig3_configuration_is_in_every_split():
    plans = synthetic.plan_tiles(COUNTS, POSITIVE, SHARES, seed=0)
    assert len(plans) == 829
    for split, count, n_pos, share in zip(("train", "val", "test"), COUNTS, (240, 52, 40), SHARES):
        part = [p for p in plans if p.split == split]
        positive = [p for p in part if p.cell_share > 0]
        assert len(part) == count and len(positive) == n_pos
        assert np.mean([p.cell_share for p in positive]) == pytest.approx(share, rel=1e-3)
        assert min(p.cell_share for p in positive) >= 0.001 and max(p.cell_share for p in positive) <= 0.2
        assert set(synthetic.FIG3_CELLS) <= {p.configuration for p in positive}


def test_tiles_are_deterministic_per_seed():
    plan = next(p for p in synthetic.plan_tiles(COUNTS, POSITIVE, SHARES, 0) if p.configuration == "compact_dense")
    image, labels, cells = synthetic.render_tile(plan, 128, seed=0, jitter=1.5)
    again, labels_again, _ = synthetic.render_tile(plan, 128, seed=0, jitter=1.5)
    other, _, _ = synthetic.render_tile(plan, 128, seed=1, jitter=1.5)
    assert np.array_equal(image, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(image, other)
    assert cells == synthetic.FIG3_CELLS["compact_dense"] == labels.max() == len(np.unique(labels)) - 1
    assert image.dtype == np.uint8 and image.shape == (128, 128, 3)


def test_cells_are_darker_than_stroma_but_so_are_distractors():
    plans = synthetic.plan_tiles(COUNTS, POSITIVE, SHARES, 0)
    positive = next(p for p in plans if p.configuration == "scatter" and p.cell_share > 0.05)
    image, labels, _ = synthetic.render_tile(positive, 256, 0, 1.5)
    mask = labels > 0
    gray = image.mean(-1)
    assert gray[mask].mean() < gray[~mask].mean() - 30
    negative = next(p for p in plans if p.configuration == "none")
    image, labels, _ = synthetic.render_tile(negative, 256, 0, 1.5)
    assert not labels.any() and (image.mean(-1) < 150).sum() > 100  # dark unannotated nuclei everywhere


@pytest.mark.slow
def test_full_dataset_matches_table1_and_otsu_stays_below_0_6(tmp_path):
    tile_set = tiles.prepare(config.load_config("smoke"), None, root=tmp_path)
    ours, paper = statistics.table1(tile_set), statistics.TABLE1
    counts = ["images", "with cells", "without cells"]
    assert (ours.loc[counts] == paper.loc[counts]).all().all()
    assert ((ours - paper).abs() / paper).max().max() <= 0.10
    otsu = baselines.otsu_table(tile_set, "test")
    assert otsu["dice"].max() < 0.6
