"""The device and precision rules: what each setting means, and a bf16 step that trains."""
import warnings

import pytest
import torch

from lib import config
from lib.device import cpu_has_fast_bf16, select_device, select_precision
from lib.models import build_untrained
from lib.paths import run_directory, setting_name
from lib.training.losses import loss_function
from lib.training.runs import training_command

CPU = torch.device("cpu")


def test_each_precision_setting_means_one_thing():
    assert select_precision("fp32", CPU).dtype is None and not select_precision("fp32", CPU).channels_last
    bf16 = select_precision("bf16", CPU)
    assert bf16.dtype is torch.bfloat16 and bf16.channels_last and not bf16.scaler
    assert select_precision("auto", CPU).name == ("bf16" if cpu_has_fast_bf16() else "fp32")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        select_precision("fp16", CPU)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        select_precision("fp8", CPU)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        select_device("tpu")
    assert select_device("cpu") == CPU


def test_bf16_on_a_cpu_that_emulates_it_warns_and_is_still_given(monkeypatch):
    monkeypatch.setattr("lib.device.cpu_has_fast_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulated, many times slower than fp32"):
        assert select_precision("bf16", CPU).dtype is torch.bfloat16
    assert select_precision("auto", CPU).name == "fp32"
    monkeypatch.setattr("lib.device.cpu_has_fast_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_precision("bf16", CPU).name == select_precision("auto", CPU).name == "bf16"


def test_another_precision_than_the_profiles_trains_into_its_own_setting():
    quick = config.load_config("quick")
    assert setting_name(quick) == "quick" and quick["train"]["precision"] == "fp32"
    bf16 = config.apply_changes(quick, {"train.precision": "bf16", "data.folds": 5})
    assert setting_name(bf16) == "quick-cv5-bf16"
    assert run_directory(bf16, None, "unet", 0, fold=1).parts[-5:] == ("synthetic", "quick-cv5-bf16", "unet", "seed0",
                                                                       "fold1")
    assert training_command(bf16) == "./run_all.sh --profile quick --folds 5 --precision bf16"  # a missing run's hint
    point = config.apply_changes(bf16, {"data.input_size": 256})  # full resolution: a budget point
    assert setting_name(point) == "quick-cv5-in256-bf16"
    assert setting_name(config.apply_changes(quick, {"data.input_size": 128})) == "quick"  # the profile's own value
    assert setting_name(config.apply_changes(quick, {"train.epochs": 12})) == "quick"  # an experiment's own budget
    assert training_command(point) == "./run_all.sh --profile quick --folds 5 --input-size 256 --precision bf16"
    paper = config.load_config("paper")                                      # auto is the paper profile's own
    assert setting_name(paper) == "paper"
    assert setting_name(config.apply_changes(paper, {"train.precision": "fp32"})) == "paper-fp32"


def test_a_bf16_channels_last_step_trains_and_keeps_fp32_weights():
    cfg = config.load_config("smoke")
    bf16 = select_precision("bf16", CPU)
    torch.manual_seed(0)
    model = bf16.prepare(build_untrained("unet", cfg))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, target = torch.randn(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.8).float()
    with bf16.autocast():
        logits = model(bf16.prepare(x))
    assert logits.dtype == torch.bfloat16
    loss = loss_function("dice")(logits.float(), target, None, None)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
