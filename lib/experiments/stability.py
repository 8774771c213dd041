"""The stabilization claim (paper §IV: without stabilization validation Dice collapsed, `report.paper.COLLAPSE`;
with it, no such drops), tested by training both arms on the same data, tiles, budget and seeds:

- stabilized: the Enhanced model as the paper trains it (`enhanced`);
- unstabilized: the same network with no logit clamps, batch-level Dice and Tversky, an unclamped positive weight,
  a constant high learning rate instead of OneCycle, no gradient clipping and the last epoch instead of EMA
  selection (`enhanced_unstabilized`; the non-finite guard stays, so that such steps are counted, not fatal).
A catastrophic drop is a fall of more than `stability.drop_points` of validation Dice between two epochs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..config import with_budget
from ..models import MODELS
from ..paths import RESULTS_ROOT
from ..training.runs import MissingRunError, Run, open_run
from ..training.train import train

ARMS = {"stabilized": "enhanced", "unstabilized": "enhanced_unstabilized"}
EXPERIMENT = "stability"


def experiment_config(cfg: dict[str, Any], learning_rate: float | None = None) -> dict[str, Any]:
    """The profile's config with the experiment's budget (training subset, epochs) on the single split (not the
    folds of a cross-validation: collapses show in the curves of single runs), and another unstabilized learning
    rate if given."""
    cfg = with_budget(cfg, "stability")
    cfg["data"]["folds"] = 1
    if learning_rate is not None:
        cfg["stability"]["learning_rate"] = learning_rate
    return cfg


def sweep_experiment(rate: float) -> str:
    """The folder of the unstabilized arm's run at another learning rate."""
    return f"{EXPERIMENT}-lr{rate:g}"


def drops(history: pd.DataFrame, points: float) -> pd.DataFrame:
    """Epochs whose validation Dice fell by more than `points` since the epoch before."""
    fall = -history.val_dice.diff()
    return pd.DataFrame({"epoch": history.epoch[fall > points], "from": history.val_dice.shift()[fall > points],
                         "to": history.val_dice[fall > points]})


def run_statistics(run: Run, points: float) -> dict[str, float]:
    """Drops, the largest fall, non-finite steps, the final validation Dice and the test Dice of one run."""
    history = run.history
    return {"catastrophic drops": len(drops(history, points)), "largest drop": float(max(0, (-history.val_dice.diff()).max())),
            "non-finite steps": int(history.skipped_steps.sum()), "final val Dice": float(history.val_dice.iloc[-1]),
            "test Dice": run.pooled_scores("whole_tile")["dice"]}


def _train_and_open(cfg: dict[str, Any], data_dir: str | Path | None, model: str, seed: int, force: bool,
                    progress: bool, experiment: str) -> Run:
    train(cfg, data_dir, model, seed, force=force, progress=progress, experiment=experiment)
    return open_run(cfg, data_dir, model, seed, experiment)


def train_arms(cfg: dict[str, Any], data_dir: str | Path | None, force: bool = False,
               progress: bool = True) -> dict[str, list[Run]]:
    """Both arms for every seed of the experiment (trained, or loaded when they exist)."""
    return {arm: [_train_and_open(experiment_config(cfg), data_dir, model, seed, force, progress, EXPERIMENT)
                  for seed in range(cfg["stability"]["seeds"])] for arm, model in ARMS.items()}


def summary(runs: dict[str, list[Run]], points: float) -> pd.DataFrame:
    """Per arm: drops (total over seeds), largest drop, non-finite steps, and final/test Dice mean and spread."""
    rows = []
    for arm, arm_runs in runs.items():
        table = pd.DataFrame([run_statistics(run, points) for run in arm_runs])
        rows.append({"arm": arm, "seeds": len(table), "catastrophic drops": int(table["catastrophic drops"].sum()),
                     "largest drop": table["largest drop"].max(), "non-finite steps": int(table["non-finite steps"].sum()),
                     "final val Dice mean": table["final val Dice"].mean(), "final val Dice std": table["final val Dice"].std(),
                     "test Dice mean": table["test Dice"].mean(), "test Dice std": table["test Dice"].std()})
    return pd.DataFrame(rows).set_index("arm")


def learning_rate_sweep(cfg: dict[str, Any], data_dir: str | Path | None, force: bool = False,
                        progress: bool = True) -> pd.DataFrame:
    """The unstabilized arm (seed 0) at each rate of stability.lr_sweep: where does it collapse? Every rate is
    trained, whatever the others show, so that the runs are known in advance (lib/experiments/study.py)."""
    points = cfg["stability"]["drop_points"]
    return pd.DataFrame([{"learning rate": rate, **run_statistics(
        _train_and_open(experiment_config(cfg, rate), data_dir, ARMS["unstabilized"], 0, force, progress,
                        sweep_experiment(rate)), points)} for rate in cfg["stability"]["lr_sweep"]])


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


def ladder_histories(cfg: dict[str, Any], data_dir: str | Path | None, models: list[str], seed: int = 0,
                     root: Path = RESULTS_ROOT) -> dict[str, pd.DataFrame]:
    """Training histories of the ladder's models that have been trained (a stale run is refused)."""
    found = {}
    for model in models:
        try:
            found[MODELS[model].label] = open_run(cfg, data_dir, model, seed, root=root).history
        except MissingRunError:
            continue
    return found


def seed_spread(runs: dict[str, list[Run]]) -> pd.DataFrame:
    """Long table of every arm's validation Dice per epoch and seed (for plots)."""
    return pd.concat([run.history[["epoch", "val_dice", "skipped_steps"]].assign(arm=arm, seed=run.seed)
                      for arm, arm_runs in runs.items() for run in arm_runs], ignore_index=True)

