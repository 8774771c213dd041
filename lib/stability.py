"""The stabilization claim (paper §IV: without stabilization validation Dice fell from 92% to 13.66% at epoch 34;
with it, no such drops), tested by training both arms on the same data, tiles, budget and seeds:

- stabilized: the Enhanced model as the paper trains it (`enhanced`);
- unstabilized: the same network with no logit clamps, batch-level Dice and Tversky, an unclamped positive weight,
  a constant high learning rate instead of OneCycle, no gradient clipping and the last epoch instead of EMA
  selection (`enhanced_unstabilized`; the non-finite guard stays, so that such steps are counted, not fatal).
A catastrophic drop is a fall of more than `stability.drop_points` of validation Dice between two epochs.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .config import with_budget
from .models import MODELS
from .train import load_run, run_directory, train

ARMS = {"stabilized": "enhanced", "unstabilized": "enhanced_unstabilized"}
EXPERIMENT = "stability"


def experiment_config(cfg: dict[str, Any], learning_rate: float | None = None) -> dict[str, Any]:
    """The profile's config with the experiment's budget (training subset, epochs) and another unstabilized
    learning rate if given."""
    cfg = with_budget(cfg, "stability")
    if learning_rate is not None:
        cfg["stability"]["learning_rate"] = learning_rate
    return cfg


def drops(history: pd.DataFrame, points: float) -> pd.DataFrame:
    """Epochs whose validation Dice fell by more than `points` since the epoch before."""
    fall = -history.val_dice.diff()
    return pd.DataFrame({"epoch": history.epoch[fall > points], "from": history.val_dice.shift()[fall > points],
                         "to": history.val_dice[fall > points]})


def run_statistics(run: dict, points: float) -> dict[str, float]:
    history = run["history"]
    return {"catastrophic drops": len(drops(history, points)), "largest drop": float(max(0, (-history.val_dice.diff()).max())),
            "non-finite steps": int(history.skipped_steps.sum()), "final val Dice": float(history.val_dice.iloc[-1]),
            "test Dice": run["metrics"]["test"]["whole_tile"]["pooled"]["dice"]}


def train_arms(cfg: dict[str, Any], data_dir, force: bool = False, progress: bool = True) -> dict[str, list[dict]]:
    """Both arms for every seed of the experiment (trained, or loaded when they exist)."""
    runs = {}
    for arm, model in ARMS.items():
        runs[arm] = [load_run(train(experiment_config(cfg), data_dir, model, seed, force=force, progress=progress,
                                    experiment=EXPERIMENT)) for seed in range(cfg["stability"]["seeds"])]
    return runs


def summary(runs: dict[str, list[dict]], points: float) -> pd.DataFrame:
    """Per arm: drops (total over seeds), largest drop, non-finite steps, and final/test Dice mean and spread."""
    rows = []
    for arm, arm_runs in runs.items():
        table = pd.DataFrame([run_statistics(run, points) for run in arm_runs])
        rows.append({"arm": arm, "seeds": len(table), "catastrophic drops": int(table["catastrophic drops"].sum()),
                     "largest drop": table["largest drop"].max(), "non-finite steps": int(table["non-finite steps"].sum()),
                     "final val Dice mean": table["final val Dice"].mean(), "final val Dice std": table["final val Dice"].std(),
                     "test Dice mean": table["test Dice"].mean(), "test Dice std": table["test Dice"].std()})
    return pd.DataFrame(rows).set_index("arm")


def learning_rate_sweep(cfg: dict[str, Any], data_dir, force: bool = False, progress: bool = True) -> pd.DataFrame:
    """The unstabilized arm (seed 0) at each rate of stability.lr_sweep, stopping at the first with a drop."""
    points, rows = cfg["stability"]["drop_points"], []
    for rate in cfg["stability"]["lr_sweep"]:
        run = load_run(train(experiment_config(cfg, rate), data_dir, ARMS["unstabilized"], 0, force=force,
                             progress=progress, experiment=f"{EXPERIMENT}-lr{rate:g}"))
        rows.append({"learning rate": rate, **run_statistics(run, points)})
        if rows[-1]["catastrophic drops"]:
            break
    return pd.DataFrame(rows)


def describe(table: pd.DataFrame, sweep: pd.DataFrame | None, cfg: dict[str, Any]) -> str:
    """The outcome in words, from the numbers."""
    points, rate = cfg["stability"]["drop_points"], cfg["stability"]["learning_rate"]
    s, u = table.loc["stabilized"], table.loc["unstabilized"]
    text = (f"Over {int(s.seeds)} seeds per arm, the stabilized training had {int(s['catastrophic drops'])} catastrophic "
            f"drop(s) (> {points:.0%} of Dice between epochs; largest fall {s['largest drop']:.3f}) and "
            f"{int(s['non-finite steps'])} non-finite step(s); the unstabilized training at a constant learning rate "
            f"{rate:g} had {int(u['catastrophic drops'])} drop(s) (largest {u['largest drop']:.3f}) and "
            f"{int(u['non-finite steps'])} non-finite step(s). Test Dice: {s['test Dice mean']:.3f} ± "
            f"{s['test Dice std']:.3f} stabilized vs {u['test Dice mean']:.3f} ± {u['test Dice std']:.3f} unstabilized. ")
    if u["catastrophic drops"] > s["catastrophic drops"]:
        text += "On this data the stabilization removes collapses, as the paper claims."
    elif sweep is None or sweep.empty:
        text += "No instability appeared at this learning rate, and no sweep was run."
    elif sweep["catastrophic drops"].any():
        first = sweep[sweep["catastrophic drops"] > 0].iloc[0]
        text += (f"Instability did not appear at {rate:g}; without stabilization it first appears at a learning rate "
                 f"of {first['learning rate']:g} ({int(first['catastrophic drops'])} drop(s), largest "
                 f"{first['largest drop']:.3f}).")
    else:
        text += (f"Instability did not appear at {rate:g}, nor at any rate of the sweep "
                 f"({', '.join(f'{r:g}' for r in sweep['learning rate'])}): on this data and budget the claim is "
                 "not reproduced.")
    return text


def ladder_histories(cfg: dict[str, Any], data_dir, models: list[str], seed: int = 0) -> dict[str, pd.DataFrame]:
    """Training histories of the ladder's models whose runs exist (for one figure)."""
    found = {}
    for model in models:
        folder = run_directory(cfg, data_dir, model, seed)
        if (folder / "metrics.json").is_file():
            found[MODELS[model].label] = load_run(folder)["history"]
    return found


def seed_spread(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """Long table of every arm's validation Dice per epoch and seed (for plots)."""
    return pd.concat([run["history"][["epoch", "val_dice", "skipped_steps"]].assign(arm=arm, seed=run["record"]["seed"])
                      for arm, arm_runs in runs.items() for run in arm_runs], ignore_index=True)

