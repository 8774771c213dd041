"""Benchmark (not a test): a training step and a TTA prediction of every model, in fp32 and in bf16 with
channels-last memory (`train.precision`, lib/device.py), on this machine's CPU (or GPU).

    .venv/bin/python benchmarks/precision_speed.py [--profile quick] [--repeats 5] [--models unet,enhanced]

A step is forward, loss, backward and an AdamW update of a batch of `train.batch_size` random tiles at the
profile's input size; a prediction is the 7-transform TTA of one tile. Reports the median of `--repeats` after one
warm-up, and the speed-up of bf16. Writes figures/benchmarks/precision_speed.csv and .md.
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import pandas as pd
import torch

from lib import config, paths
from lib.device import cpu_has_fast_bf16, select_device, select_precision
from lib.experiments.efficiency import timed_ms
from lib.files import write_text_atomic
from lib.inference.predict import predict_batch
from lib.models import MODELS, build_untrained, input_channels
from lib.training.losses import loss_function


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated; default: runs.models of the profile")
    args = parser.parse_args()
    cfg = config.load_config(args.profile)
    device = select_device(cfg["train"]["device"])
    size, batch = cfg["data"]["input_size"], cfg["train"]["batch_size"]
    rows = []
    for name in args.models.split(",") if args.models else cfg["runs"]["models"]:
        for setting in ("fp32", "bf16"):
            precision = select_precision(setting, device)
            torch.manual_seed(0)
            model = precision.prepare(build_untrained(name, cfg).to(device))
            optimizer = torch.optim.AdamW(model.parameters())
            x = torch.randn(batch, input_channels(name, cfg), size, size, device=device)
            target = (torch.rand(batch, 1, size, size, device=device) > 0.9).float()
            loss_fn = loss_function("dice")

            def step(model=model, optimizer=optimizer, x=x, target=target, precision=precision, loss_fn=loss_fn):
                model.train()
                with precision.autocast():
                    logits = model(precision.prepare(x))
                loss_fn(logits.float(), target, None, None).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            def predict(model=model, x=x, precision=precision):
                model.eval()
                predict_batch(model, x[:1], True, None, precision)

            rows.append({"model": MODELS[name].label, "precision": setting,
                         "training step (ms)": np.median(timed_ms(step, args.repeats)),
                         "TTA prediction of one tile (ms)": np.median(timed_ms(predict, args.repeats))})
    table = pd.DataFrame(rows)
    wide = table.pivot(index="model", columns="precision").reindex([MODELS[n].label for n in dict.fromkeys(
        args.models.split(",") if args.models else cfg["runs"]["models"])])
    for measure in ("training step (ms)", "TTA prediction of one tile (ms)"):
        wide[(measure, "bf16 speed-up")] = wide[(measure, "fp32")] / wide[(measure, "bf16")]
    wide.columns = [f"{measure}, {what}" for measure, what in wide.columns]
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
               f"{torch.__version__}, device {device.type}, native bf16: {cpu_has_fast_bf16()}; profile "
               f"{args.profile}: {size}-px tiles, batch {batch}; median of {args.repeats} after a warm-up")
    print(machine)
    print(wide.round(2).to_string())
    folder = paths.FIGURES_ROOT / "benchmarks"
    write_text_atomic(folder / "precision_speed.csv", wide.to_csv())
    write_text_atomic(folder / "precision_speed.md", f"{machine}\n\n{wide.round(2).to_markdown()}\n")


if __name__ == "__main__":
    main()
