"""Benchmark (not a test): a trained run on images no model here has seen, predicted as a user would.

    .venv/bin/python benchmarks/generalisation.py --run results/<dataset>/<setting>/<model>/seed<k> \
        --data ../shared/data/monuseg_other_organs [--tta] [--mpp 0.25] [--stain-reference REF] [--compare RUN ...] \
        [--scales none mpp auto] [--stained-only] [--min-distance PX] [--min-area PX] [--suffix NAME]
    .venv/bin/python benchmarks/generalisation.py --run RUN_SEED0 RUN_SEED1 ...   # runs of one recipe, averaged

Predicts every image of `--data` with `python -m lib.inference` (the run, once per scale handling: none, the given
`--mpp` when the run knows its own pixel size, and `--mpp auto`), and with `--classic` (no training, the images' own
pixels); with `--stain-reference` (the run's training images) the run (with no scale option and with `--mpp auto`)
and the classic pipeline once more on stain-normalised inputs (lib/inference/stain.py). Then it scores the outputs
against the dataset's truth: pixel Dice pooled over every image (`masks/`), and object precision, recall and F1 at
IoU 0.5, AJI and PQ pooled over the images with instance labels (`instances/<id>.png`, 0 = background). Nothing is
tuned here: the external set is for reporting only. Writes figures/benchmarks/generalisation-<dataset>.csv (model,
scale handling, stain handling, each measure with Fieller's interval over the images, the images, the wall seconds,
the median zoom they were predicted at; the run's training recipe, minutes and its training machine's reference step;
each run row's paired per-image difference to the classic pipeline with the same stain handling in pixel Dice, AJI
and object F1, Holm-adjusted over the three) with this machine's reference step, each image's scores
(generalisation-<dataset>-per_image.csv), and beside it the run's model card
(generalisation-<dataset>-model_card.md: what the measured model is). `--compare` runs (for example the same fold of
two models, trained on the same images) are predicted at their training scale, no stain handling, into
generalisation-<dataset>-compared.csv: models compared like for like (`--run` may then be left out). `--run` with
several runs of one recipe (other seeds) measures them averaged, as `python -m lib.inference` predicts with them
(their training minutes summed; each one's card). `--min-distance` and `--min-area` pass the watershed's settings
(source px, chosen elsewhere on the run's validation tiles, e.g. by benchmarks/instances.py) to the run's
predictions instead of its profile's; the table records the settings each run row used (the classic pipeline keeps
its profile's). `--suffix NAME` appends `-NAME` to the tables' names (and the model card's), so that another run's
measurements stand beside the published ones instead of replacing them. `--cards-only` writes the `--run`'s model card
alone, from the run's records, under the name the same flags give a measurement (a card written again by a newer
lib/training/model_card.py), and predicts nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from lib import config
from lib.data.scale import positive_number
from lib.evaluation.predicted import paired_to, predict_and_score
from lib.files import write_text_atomic
from lib.models import model_spec
from lib.paths import FIGURES_ROOT
from lib.report.output import save_benchmark
from lib.training.model_card import model_card
from lib.training.runs import prediction_instances, prediction_threshold, read_recipe_runs, read_run

SCALES = ("none", "mpp", "auto")  # the run's scale handlings: its training scale, the given --mpp, --mpp auto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, nargs="+",
                        help="the run measured every way (scale and stain handling), or runs of one recipe averaged")
    parser.add_argument("--compare", nargs="+", type=Path, default=[], help="runs measured like for like")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--mpp", help="the images' pixel size, tried when the run knows its own")
    parser.add_argument("--stain-reference", type=Path, help="training images: also predict normalised to their stain")
    parser.add_argument("--scales", nargs="+", choices=SCALES, default=list(SCALES),
                        help="the run's scale handlings measured: none, the given --mpp, --mpp auto (default: all)")
    parser.add_argument("--stained-only", action="store_true",
                        help="with --stain-reference: the run on stain-normalised images only")
    parser.add_argument("--min-distance", help="the run's watershed marker distance (source px), not its profile's")
    parser.add_argument("--min-area", help="the run's watershed minimum area (source px), not its profile's")
    parser.add_argument("--suffix", help="appended to the tables' names: generalisation-<dataset>[-compared]-<suffix>")
    parser.add_argument("--cards-only", action="store_true",
                        help="write the --run's model card only (as the measurement with these flags names it), "
                             "predicting nothing: a card written again from the run's records")
    args = parser.parse_args()
    if not args.run and not args.compare:
        parser.error("give --run, --compare or both")
    if args.cards_only and (args.compare or not args.run):
        parser.error("--cards-only writes the cards of --run runs, not of --compare ones")
    if args.stained_only and not args.stain_reference:
        parser.error("--stained-only needs --stain-reference")
    try:  # parsed once, before any prediction, with predict's own rule
        args.min_distance, args.min_area = (None if value is None else positive_number(value, flag) for flag, value in
                                            (("--min-distance", args.min_distance), ("--min-area", args.min_area)))
    except ValueError as error:
        parser.error(str(error))
    if args.compare:
        compare(args.compare, args.data, args.tta, table_name(args.data, "compared", args.suffix))
    if args.run:
        measure(args)


def table_name(data: Path, *parts: str | None) -> str:
    return "-".join(["generalisation", data.name, *filter(None, parts)])


def against_classic(table: pd.DataFrame, images: list[pd.DataFrame]) -> pd.DataFrame:
    """Each run row of `table` against the classic pipeline's row with the same stain handling, image by image
    (`lib.evaluation.predicted.paired_to`; `images`: each row's per-image scores); empty for the classic rows."""
    classic = {stain: images[i] for i, (model, stain) in enumerate(zip(table.model, table["stain handling"],
                                                                       strict=True)) if model == "classic pipeline"}
    return pd.DataFrame([paired_to(classic[stain], per_image, "classic") if model != "classic pipeline" else {}
                         for model, stain, per_image in zip(table.model, table["stain handling"], images, strict=True)],
                        index=table.index)


def compare(runs: list[Path], data: Path, tta: bool, name: str) -> None:
    """Each run at its training scale, no stain handling: one row per run, named by its model, seed and fold."""
    entries = []
    for path in runs:  # named before predicting: a clash stops the benchmark before minutes of work
        run = read_run(path)
        fold = run.record.get("fold")
        entries.append(f"{model_spec(run.model).label}, seed {run.seed}" + ("" if fold is None else f", fold {fold}"))
    if len(set(entries)) < len(entries):
        raise SystemExit(f"error: --compare names one model, seed and fold twice: {', '.join(map(str, runs))}")
    rows = []
    for entry, path in zip(entries, runs, strict=True):
        scores, _ = predict_and_score(["--run", str(path), *(["--tta"] if tta else [])], data)
        rows.append({"entry": entry, "run": str(path), "TTA": tta, **scores})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    save_benchmark(table, name, caption=(
        f"Runs compared like for like on the {table.images.iloc[0]} images of `{data.name}` (never trained or tuned on), "
        "each at its training scale without stain handling: pixel Dice pooled over every image; object scores at IoU "
        "0.5, AJI and PQ pooled over the images with instance labels. `benchmarks/generalisation.py --compare`."))


def measure(args: argparse.Namespace) -> None:
    """The run every way: at its training scale, at the given `--mpp`, with `--mpp auto`, stain-normalised; and the
    classic pipeline beside it; with the run's model card."""
    try:  # before minutes of prediction: a missing run, or runs of other recipes, stop here
        runs = read_recipe_runs(args.run)
    except ValueError as error:
        raise SystemExit(f"error: --run: {error}") from None
    run, named = runs[0], " + ".join(map(str, args.run))
    name = table_name(args.data, args.suffix)
    card = FIGURES_ROOT / "benchmarks" / f"{name}-model_card.md"
    if args.cards_only:
        write_text_atomic(card, "\n".join(map(model_card, runs)))
        return
    run_mpp = (run.metrics.get("scale") or {}).get("mpp")
    scales = {"none": ("none (taken as the training scale)", []),
              "mpp": (f"--mpp {args.mpp}", ["--mpp", args.mpp]) if args.mpp and run_mpp else None,
              "auto": ("--mpp auto", ["--mpp", "auto"])}
    variants = [("trained run", *scales[key], None) for key in args.scales if scales[key]]
    variants.append(("classic pipeline", "none (own pixels)", None, None))
    if args.stain_reference:
        stained = [(model, scale, flags, args.stain_reference) for model, scale, flags, _ in variants
                   if scale.startswith("none") or scale == "--mpp auto"]
        if args.stained_only:  # the run on normalised images only; the classic pipeline on both, to compare
            variants = [variant for variant in variants if variant[0] == "classic pipeline"]
        variants += stained
    train = run.record["config"]["train"]
    split_flags = [*([] if args.min_distance is None else ["--min-distance", str(args.min_distance)]),
                   *([] if args.min_area is None else ["--min-area", str(args.min_area)])]
    profile_split = prediction_instances([other.metrics for other in runs], args.tta,
                                         config.load_config(run.record["config"]["profile"])["instances"])
    recipe = {"training input px": run.record["config"]["data"]["input_size"], "training epochs": train["epochs"],
              "training precision": train["precision"], "training stain augmentation": train["stain_augmentation"],
              "training scale augmentation": train["scale_augmentation"],
              "training zoom limit": train["zoom_limit"], "training contact weight": train["contact_weight"],
              "training seeds": " + ".join(str(other.seed) for other in runs),
              "training minutes": sum(other.metrics["train_seconds"] for other in runs) / 60,
              "training reference_step_ms": run.versions.get("reference_step_ms") if len(runs) == 1 else
              " + ".join(str(other.versions.get("reference_step_ms")) for other in runs),  # the recipe the report names
              "min distance (source px)": float(args.min_distance or profile_split["min_distance_source_px"]),
              "min area (source px)": float(args.min_area or profile_split["min_area_source_px"])}
    rows, images = [], []
    for model, scale, flags, reference in variants:
        method = (["--classic"] if flags is None else
                  ["--run", *map(str, args.run), *flags, *(["--tta"] if args.tta else []), *split_flags])
        stain = ["--stain-reference", str(reference)] if reference else []
        scores, per_image = predict_and_score([*method, *stain], args.data)
        rows.append({"model": model if flags is None else f"{model} ({named})", "scale handling": scale,
                     "stain handling": "Macenko" if reference else "none", "stain reference": reference or "",
                     "TTA": bool(args.tta and flags is not None), **({} if flags is None else recipe), **scores})
        images.append(per_image)
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.insert(0, "entry", table.model.str.split(" \\(").str[0] + ", scale: " + table["scale handling"]
                 + table["stain handling"].map(lambda stain: "" if stain == "none" else f", stain: {stain}"))
    table = table.join(against_classic(table, images))
    write_text_atomic(FIGURES_ROOT / "benchmarks" / f"{name}-per_image.csv",
                      pd.concat(dict(zip(table.entry, images, strict=True)), names=["entry", "image"]).to_csv())
    split_caption = (f"; the run's nuclei split with a marker distance of {recipe['min distance (source px)']:g} and a "
                     f"minimum area of {recipe['min area (source px)']:g} source px, given instead of its profile's"
                     if split_flags else "")
    cut, whose = (("the run cut at its threshold", "its") if len(runs) == 1 else
                  ("the runs averaged cut at the mean of their thresholds", "their"))
    save_benchmark(table, name, caption=(
        f"`{named}` and the classic pipeline on the {table.images.iloc[0]} images of `{args.data.name}` (never "
        f"trained or tuned on); {cut} for {'' if args.tta else 'no '}test-time augmentation, "
        f"{prediction_threshold([other.metrics for other in runs], args.tta, nuclei=True):.2f}, where predict cuts "
        f"nuclei, chosen on {whose} validation split "
        "(the classic pipeline: Otsu's on the haematoxylin "
        "channel): pixel Dice pooled over every image; object scores at IoU 0.5, AJI and PQ pooled over the images with "
        f"instance labels{split_caption}; each with Fieller's 95% interval over those images. Each run row against the "
        "classic pipeline with the same stain handling, image by image (`<measure> - classic`: the mean per-image "
        "difference, its sign-flip 95% interval, the images where both are defined, the p-value Holm-adjusted over "
        f"the three measures, the verdict); each image's scores in `{name}-per_image.csv`. "
        "`benchmarks/generalisation.py`."))
    write_text_atomic(card, "\n".join(map(model_card, runs)))


if __name__ == "__main__":
    main()
