"""A model card for every run (MODEL_CARD.md beside metrics.json), written from the run's own records: what it
was trained on, how, with what budget and weights, how well it scores (with intervals over test images), and what
it must not be used for."""
from __future__ import annotations

import shlex

import pandas as pd

from ..config import profile_changes, setting_texts
from ..evaluation.metrics import AREAS, dice_interval, per_group, pooled
from ..files import write_text_atomic
from ..models import model_spec
from .runs import ARMS, Run


def _scores(per_tile: pd.DataFrame, area: str) -> str:
    counts = per_tile[[f"{area}_{k}" for k in ("tp", "fp", "fn")]].set_axis(["tp", "fp", "fn"], axis=1)
    images = per_group(counts, per_tile.source)
    low, high = dice_interval(images)
    scores = pooled(counts)
    return (f"| {area.replace('_', ' ')} | {scores['dice']:.3f} [{low:.3f}, {high:.3f}] | "
            f"{scores['iou']:.3f} | {scores['precision']:.3f} | {scores['recall']:.3f} |")


def scale_line(metrics: dict) -> str:
    """The card's line on the training images' scale (lib/data/scale.py), which prediction rescales new images to."""
    scale = metrics.get("scale")
    if scale is None:
        return "- Scale: not recorded (a run trained before runs recorded it)."
    mpp = "unknown (the dataset states none)" if scale["mpp"] is None else f"{scale['mpp']:.3f} µm/px"
    return (f"- Scale: pixel size {mpp}; the training nuclei's median equivalent diameter is "
            f"{scale['nucleus_diameter_px']:.1f} px (`predict --mpp auto` matches new images to it).")


def nuclei_threshold_line(metrics: dict) -> str:
    """The card's line on where `python -m lib.inference` cuts nuclei and how far apart it puts their markers
    (`instances.threshold_from_validation`)."""
    arms = [(arm, metrics["arms"][arm]) for arm in (ARMS[metrics["tta"]], ARMS[not metrics["tta"]])]
    if not any("nuclei_threshold" in values for _, values in arms):
        return ("Predict cuts nuclei at the pixel threshold of its TTA setting (the run chose none for nuclei: "
                "`instances.threshold_from_validation` was off, or the run predates it).")

    def cut(values: dict) -> str:
        if "nuclei_threshold" not in values:
            return f"the pixel threshold ({values['nuclei_threshold_source']})"
        distance = values.get("nuclei_min_distance_source_px")  # runs that chose the threshold alone: the profile's
        return f"{values['nuclei_threshold']:.2f}" + ("" if distance is None else f", markers {distance:g} px apart")

    chosen = "; ".join(f"{'with' if arm == 'tta' else 'without'} TTA {cut(values)}" for arm, values in arms)
    distance = (" and splits them with the watershed's minimum marker distance (source px)"
                if any("nuclei_min_distance_source_px" in values for _, values in arms) else "")
    seconds = metrics.get("nuclei_cut_seconds")  # runs that predate its record: unknown
    return (f"Predict cuts nuclei at the threshold{distance} whose nuclei scored the best AJI on the validation tiles "
            f"predicted as new images (`instances.threshold_from_validation`): {chosen}"
            + ("." if seconds is None else f"; choosing took {seconds / 60:.1f} min."))


def augmentations_text(train: dict) -> str:
    """The stain and zoom augmentations a run trained with, each with the setting that turns it on."""
    stain = (f"H&E stain augmentation (HEStain) with probability {train['stain_augmentation']:g} per tile"
             if train["stain_augmentation"] else "no H&E stain augmentation")
    zoom = (f"zoomed in or out by up to {train['zoom_limit']:g}x with probability {train['scale_augmentation']:g} "
            "per tile" if train["scale_augmentation"] else "no zoom augmentation")
    return f"{stain} (`train.stain_augmentation`); {zoom} (`train.scale_augmentation`)"


def training_command(run: Run, changes: dict) -> str:
    """The `python -m lib.training` command that trains this run again (its profile with `changes`)."""
    record = run.record
    words = ["--config", record["config"]["profile"], "--model", run.model, "--seed", str(run.seed)]
    words += ["--data", record["data_dir"]] if record["data_dir"] else []
    words += ["--fold", str(record["fold"])] if record.get("fold") is not None else []
    words += ["--experiment", run.experiment] if run.experiment else []
    words += [word for text in setting_texts(changes) for word in ("--set", text)]
    return "python -m lib.training " + shlex.join(words)


def model_card(run: Run) -> str:
    """The card's Markdown."""
    metrics, record, config = run.metrics, run.record, run.record["config"]
    data, train = config["data"], config["train"]
    images = run.per_tile.source.nunique()
    arm = ARMS[metrics["tta"]]
    changes = profile_changes(config)
    return "\n".join([
        f"# Model card: {model_spec(run.model).label}, seed {run.seed}",
        "",
        f"Written by the pipeline from this folder's records (`config.yaml`, `versions.json`, `metrics.json`, "
        f"`per_tile.csv`); code commit `{run.versions.get('git_commit', 'unknown')}`.",
        "",
        "## Data",
        f"- Dataset `{record['dataset']}` ({record['data_dir'] or 'the embedded synthetic dataset'}); tiles of "
        f"{data['tile_size']} px every {data['stride']} px, resized to {data['input_size']} px.",
        scale_line(metrics),
        f"- Split by {data['group_by']} (seed {config['seed']}), training pool `{train['training_pool']}`: "
        + ", ".join(f"{count} {split} tiles" for split, count in metrics["n_tiles"].items())
        + f"; the test tiles come from {images} source images.",
        "",
        "## Training",
        f"- Loss `{metrics['loss']}`; {metrics['epochs']} epochs, {metrics['optimizer_steps']} optimiser steps "
        f"(batch {train['batch_size']} x {train['accumulation_steps']} accumulated); selected epoch "
        f"{metrics['selected_epoch']} (EMA of validation Dice).",
        f"- Starting weights: {metrics['encoder_weights']}; {metrics['parameters'] / 1e6:.2f} M parameters.",
        f"- Precision `{train['precision']}`; {augmentations_text(train)}.",
        f"- {metrics['train_seconds'] / 60:.1f} min of training on {run.versions['device']} "
        f"(torch {run.versions['torch']}).",
        f"- Settings: the profile `{config['profile']}`"
        + (" with " + ", ".join(f"`{text}`" for text in setting_texts(changes)) if changes else " as it is")
        + f"; trained by `{training_command(run, changes)}`.",
        "",
        f"## Test scores ({'with' if metrics['tta'] else 'without'} test-time augmentation, threshold "
        f"{metrics['threshold']:.2f} chosen on the validation split)",
        "",
        f"Pooled over the test tiles; Dice with its 95% Fieller interval over the {images} test images.",
        "",
        "| area | Dice [95% CI] | IoU | precision | recall |",
        "|---|---|---|---|---|",
        *(_scores(run.per_tile, area) for area in AREAS),
        "",
        f"The other arm ({'without' if metrics['tta'] else 'with'} TTA, threshold "
        f"{metrics['arms'][ARMS[not metrics['tta']]]['threshold']:.2f}): whole-tile Dice "
        f"{metrics['arms'][ARMS[not metrics['tta']]]['test']['whole_tile']['pooled']['dice']:.3f} "
        f"(this arm {metrics['arms'][arm]['test']['whole_tile']['pooled']['dice']:.3f}).",
        "",
        nuclei_threshold_line(metrics),
        "",
        "## Limits",
        f"- One split and one seed: {images} test images make every interval wide; compare models only with the "
        "paired, multiple-comparison-corrected tests of notebooks 04 and 07.",
        "- On partially annotated data (UCSB annotates one region per image) whole-tile scores count correct "
        "detections of unlabeled nuclei as errors; the annotated-region row is the fairer measure.",
        "- A research reproduction: not validated for, and not to be used in, diagnosis.",
        "",
    ])


def write_model_card(run: Run) -> None:
    """Write (or rewrite) MODEL_CARD.md into the run's folder."""
    write_text_atomic(run.folder / "MODEL_CARD.md", model_card(run))

