"""Augmentation keeps image, edge channel and mask aligned; TTA undoes each transform."""
import numpy as np
import torch

from lib import config
from lib.inference.tta import TTA_TRANSFORMS, predict_probabilities
from lib.training.augment import Augmenter

TRAIN_CFG = config.load_config("smoke")["train"]
STILL_CFG = dict(TRAIN_CFG, elastic_p=0.0, brightness_contrast=0.0)  # flips and rotations only


def test_seven_tta_transforms_invert_exactly():
    assert len(TTA_TRANSFORMS) == 7
    x = torch.randn(2, 4, 8, 8)
    for forward, inverse in TTA_TRANSFORMS.values():
        assert torch.equal(inverse(forward(x)), x)
    assert len({tuple(forward(x).flatten()[:20].tolist()) for forward, _ in TTA_TRANSFORMS.values()}) == 7


def test_tta_of_an_equivariant_model_equals_plain_prediction():
    model = torch.nn.Conv2d(4, 1, 1)  # pointwise: commutes with every flip and rotation
    x = torch.randn(2, 4, 16, 16)
    assert torch.allclose(predict_probabilities(model, x, tta=True), predict_probabilities(model, x, tta=False),
                          atol=1e-6)


def test_geometric_transforms_move_edge_and_mask_with_the_image():
    mask = np.zeros((32, 32), np.uint8)
    mask[3:9, 20:30] = 1
    rgb = np.where(mask[..., None], 40, 220).astype(np.uint8).repeat(3, -1)
    edge = mask.astype(np.float32)
    augmenter = Augmenter(STILL_CFG, seed=0)
    for epoch in range(8):
        augmenter.reseed(epoch)
        out_rgb, out_edge, out_mask, (out_region, out_centre) = augmenter(rgb, edge, mask, [mask.copy(), edge * 0.5])
        assert out_rgb.shape == (32, 32, 3) and out_edge.shape == (32, 32)
        assert np.array_equal(out_edge > 0.5, out_mask > 0) and np.array_equal(out_region, out_mask)
        assert np.array_equal(out_centre, out_edge * 0.5)  # a float map moves with the mask, its values kept
        assert np.array_equal(out_rgb[..., 0] < 0.5, out_mask > 0)


def test_reseeding_repeats_the_same_augmentation():
    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    augmenter = Augmenter(TRAIN_CFG, seed=0)
    augmenter.reseed(5)
    first = augmenter(rgb, None, mask)[0]
    augmenter.reseed(5)
    assert np.array_equal(first, augmenter(rgb, None, mask)[0])


def augmenters_without_and_with(setting: str, epochs: int):
    """For each epoch, two augmenters reseeded alike: `setting` (a probability) off, and on for every tile."""
    without, with_it = (Augmenter(dict(STILL_CFG, **{setting: p}), seed=0) for p in (0.0, 1.0))
    for epoch in range(epochs):
        without.reseed(epoch)
        with_it.reseed(epoch)
        yield without, with_it


def test_stain_augmentation_changes_colours_only_when_asked():
    rng = np.random.default_rng(0)
    rgb = np.where(rng.random((32, 32, 1)) < 0.3, [90, 60, 140], [230, 180, 210]).astype(np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    changed = []
    for plain, stained in augmenters_without_and_with("stain_augmentation", 4):
        a, b = plain(rgb, None, mask)[0], stained(rgb, None, mask)[0]
        assert np.array_equal(np.sort(a.reshape(-1, 3), 0), np.sort(rgb.reshape(-1, 3) / 255, 0).astype(a.dtype))
        changed.append(np.abs(np.sort(b.reshape(-1, 3), 0) - np.sort(a.reshape(-1, 3), 0)).mean())
    assert min(changed) > 0.01                      # every tile restained, by a visible amount


def test_scale_augmentation_zooms_image_edge_and_maps_together_in_and_out_only_when_asked():
    mask = np.zeros((64, 64), np.uint8)
    mask[22:42, 22:42] = 1  # a 20 x 20 px nucleus in the middle: 400 px
    rgb = np.where(mask[..., None], 40, 220).astype(np.uint8).repeat(3, -1)
    areas = []
    for plain, zoomed in augmenters_without_and_with("scale_augmentation", 12):
        assert plain(rgb, mask.astype(np.float32), mask)[2].sum() == 400
        out_rgb, out_edge, out_mask, (out_weight,) = zoomed(rgb, mask.astype(np.float32), mask, [mask * 3.0])
        assert out_rgb.shape == (64, 64, 3) and set(np.unique(out_mask)) <= {0, 1}
        assert np.mean((out_rgb[..., 0] < 0.5) == (out_mask > 0)) > 0.98   # the image and its mask moved together
        assert np.mean((out_edge > 0.5) == (out_mask > 0)) > 0.98
        assert np.array_equal(out_weight, out_mask * 3.0)                   # a weight map too, its values kept
        areas.append(int(out_mask.sum()))
    limit = STILL_CFG["zoom_limit"]
    assert min(areas) < 400 * 0.9 and max(areas) > 400 * 1.1               # zoomed out and in
    assert 400 / limit ** 2 * 0.9 <= min(areas) and max(areas) <= 400 * limit ** 2 * 1.1   # never past the limit


def one_tile_dataset(instances: np.ndarray, regions: np.ndarray | None = None, **options):
    """A TileDataset of one grey tile whose nuclei are `instances` (1, H, W), annotated inside `regions`."""
    from types import SimpleNamespace

    from lib.training.dataset import TileDataset
    tiles = SimpleNamespace(images=np.full((*instances.shape, 3), 128, np.uint8), masks=(instances > 0).astype(np.uint8),
                            regions=np.ones(instances.shape, np.uint8) if regions is None else regions,
                            instances=instances)
    return TileDataset(tiles, np.array([0]), None, config.load_config("smoke")["model"], **options)


def test_contact_weight_takes_the_contact_lines_out_of_the_target_and_weighs_them():
    from lib.training.losses import stabilized_loss
    instances = np.zeros((1, 16, 16), np.uint16)
    instances[0, 4:10, 2:7], instances[0, 4:10, 7:12] = 1, 2
    regions = np.ones((1, 16, 16), np.uint8)
    regions[0, :, 14:] = 0
    plain = one_tile_dataset(instances, regions)[0]
    weighted = one_tile_dataset(instances, regions, with_region=True, contact_weight=10.0)[0]
    assert torch.equal(plain[0], weighted[0]) and "valid" not in plain[1]        # same input
    lost = (plain[1]["mask"] - weighted[1]["mask"])[0]
    assert lost.sum() == 12 and lost[4:10, 6:8].eq(1).all()                       # a column on each side
    valid = weighted[1]["valid"][0]
    assert valid[4:10, 6:8].eq(11).all() and valid[:, 14:].eq(0).all() and valid.sum() == 16 * 14 + 12 * 10
    logits = torch.zeros(1, 1, 16, 16)
    logits[0, 0][weighted[1]["mask"][0] > 0] = 5.0                                # right everywhere but the lines
    gap = logits.clone()
    gap[0, 0, 4:10, 6:8] = -5.0                                                   # the lines left out too
    def cost_of_filling_the_lines(weights):  # what predicting the lines as nucleus adds to the loss
        return (stabilized_loss(logits, weighted[1]["mask"][None], valid=weights[None, None])
                - stabilized_loss(gap, weighted[1]["mask"][None], valid=weights[None, None]))
    assert cost_of_filling_the_lines(valid) > cost_of_filling_the_lines((valid > 0).float()) > 0


def test_the_gap_map_weighs_the_gap_between_nuclei_that_do_not_touch():
    instances = np.zeros((1, 16, 20), np.uint16)
    instances[0, 4:10, 2:7], instances[0, 4:10, 8:13] = 1, 2      # one background column (7) between them
    lines_only = one_tile_dataset(instances, contact_weight=10.0)[0][1]
    gaps = one_tile_dataset(instances, contact_weight=10.0, gap_sigma_px=2.5)[0][1]
    assert torch.equal(lines_only["mask"], gaps["mask"])                   # no contact line: the target is the mask
    assert lines_only["valid"].eq(1).all()                                # contact lines alone miss this gap
    valid = gaps["valid"][0]
    assert torch.allclose(valid[4:10, 7], torch.tensor(1 + 10 * np.exp(-4 / (2 * 2.5**2)), dtype=torch.float32))
    assert valid[instances[0] > 0].eq(1).all() and valid[0, 19] < 1.01   # nuclei and open background: weight 1


def test_a_centre_head_model_is_given_the_true_nuclei_centre_map():
    from lib.data.geometry import centre_map
    instances = np.zeros((1, 16, 16), np.uint16)
    instances[0, 4:10, 2:7], instances[0, 4:10, 7:12] = 1, 2
    assert "centre" not in one_tile_dataset(instances)[0][1]
    centre = one_tile_dataset(instances, with_centre=True)[0][1]["centre"][0].numpy()
    assert np.array_equal(centre, centre_map(instances[0]))  # touching: still two peaks


def test_tta_averages_every_output_channel():
    model = torch.nn.Conv2d(4, 2, 1)  # two outputs, as a model with a centre head has
    x = torch.randn(2, 4, 16, 16)
    assert predict_probabilities(model, x, tta=True).shape == (2, 2, 16, 16)
    assert torch.allclose(predict_probabilities(model, x, tta=True), predict_probabilities(model, x, tta=False),
                          atol=1e-6)
