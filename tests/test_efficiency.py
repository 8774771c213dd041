"""Model cost measurements: FLOPs by hand, latency rows, peak memory."""
import torch

from lib import config
from lib.experiments.efficiency import (
    forward_flops,
    latency_table,
    model_costs,
    peak_resident_bytes,
    reset_peak_memory,
    time_inference,
)


def test_flops_of_a_convolution_by_hand():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert forward_flops(conv, torch.zeros(1, 3, 16, 16)) == 2 * 3 * 8 * 9 * 16 * 16


def test_latency_repeats_and_tta_costs_more():
    model = torch.nn.Conv2d(3, 1, 3, padding=1)
    x = torch.zeros(2, 3, 32, 32)
    assert len(time_inference(model, x, tta=False, warmup=1, repeats=4)) == 4
    plain = sum(time_inference(model, x, False, 1, 5))
    with_tta = sum(time_inference(model, x, True, 1, 5))
    assert with_tta > plain


def test_latency_table_and_costs_for_two_models():
    cfg = config.load_config("smoke")
    cfg["efficiency"].update(sizes=[32], warmup=0, repeats=2)
    table = latency_table(cfg, ["unet", "pro_unext"])
    assert len(table) == 2 * 2 * 2  # models x sizes (64 and 32) x TTA
    assert (table["images per second"] > 0).all() and (table["peak memory (MB)"] > 50).all()
    costs = model_costs(cfg, ["unet", "pro_unext"])
    assert costs.loc["U-Net", "parameters (M)"] > costs.loc["Pro_UNeXt", "parameters (M)"]


def test_peak_memory_window_starts_again_after_a_reset():
    import numpy as np
    block = np.ones(300 * 2 ** 20, np.uint8)  # 300 MB, touched
    with_block = peak_resident_bytes()
    del block
    reset_peak_memory()
    assert peak_resident_bytes() < with_block - 200 * 2 ** 20  # the 300 MB no longer counts
