"""Instance measures: is each nucleus found as one object? Counts per image first, scores after, like the pixel
measures (`metrics.py`), so that images pool by summing counts.

- Matching: a predicted and a true object match when their IoU exceeds 0.5; at that level a match is unique on both
  sides, so no assignment problem arises. Object precision, recall and F1 count matches (tp), unmatched predictions
  (fp) and unmatched truths (fn).
- Panoptic quality (Kirillov et al. 2019): PQ = DQ x SQ, with DQ = tp / (tp + fp/2 + fn/2) (the F1 of objects) and
  SQ = the mean IoU of the matches.
- Aggregated Jaccard index (Kumar et al. 2017): each true object is paired with the predicted object of highest IoU
  (none if it overlaps none); C sums the intersections of the pairs, U their unions plus the area of every predicted
  object left unpaired; AJI = C / U. A predicted object that covers two nuclei is counted in both unions.
- Within an area (the annotated region), pixels outside it are removed from both label images first, so an object
  is judged by its part inside the area, the same for truth and prediction.
- Touching pairs: two true nuclei within a few px of each other; a pair is split when both are matched, each by an
  object of its own (`split_pairs`), the test of a watershed's splitting against known instances; merged when one
  predicted object overlaps both most.
- Undefined is undefined: with neither true nor predicted objects every score is NaN; precision needs a prediction,
  recall a truth, SQ a match. An image with truth and no prediction scores F1, AJI and PQ 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from .metrics import ratio
from .statistics import ratio_interval

IOU_MATCH = 0.5
# True nuclei this close (source px) form a touching pair: the synthetic generator leaves gaps under 3 px between
# the cells of its dense arrangements (lib/data/synthetic.py).
TOUCHING_GAP_SOURCE_PX = 3
SPLIT_PAIRS_COLUMNS = ("touching pairs", "split", "merged")  # what split_pairs returns, per image
INSTANCE_COUNTS = ("tp", "fp", "fn", "matched_iou", "aji_intersection", "aji_union")
INSTANCE_METRICS = ("object_precision", "object_recall", "object_f1", "aji", "pq", "dq", "sq")


def _overlaps(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections (n_truth, n_pred) and the areas of every true and predicted object (labels 1..n)."""
    n_truth, n_pred = int(truth.max(initial=0)), int(pred.max(initial=0))
    pairs = truth.astype(np.int64).ravel() * (n_pred + 1) + pred.astype(np.int64).ravel()
    joint = np.bincount(pairs, minlength=(n_truth + 1) * (n_pred + 1)).reshape(n_truth + 1, n_pred + 1)
    return joint[1:, 1:], joint[1:, :].sum(1), joint[:, 1:].sum(0)


def instance_counts(truth: np.ndarray, pred: np.ndarray, within: np.ndarray | None = None) -> dict[str, float]:
    """The counts of one image (module docstring): tp, fp, fn, the summed IoU of the matches, and AJI's C and U.
    Labels are any integers, 0 the background."""
    truth, pred = np.array(truth), np.array(pred)  # copies: relabelling needs writable arrays
    if within is not None:
        truth, pred = np.where(within, truth, 0), np.where(within, pred, 0)
    truth, pred = relabel_sequential(truth)[0], relabel_sequential(pred)[0]  # labels 1..n without gaps
    intersection, truth_area, pred_area = _overlaps(truth, pred)
    union = truth_area[:, None] + pred_area[None, :] - intersection
    iou = np.divide(intersection, union, out=np.zeros(union.shape), where=union > 0)
    matched = iou > IOU_MATCH
    tp = int(matched.sum())
    pairs_c = pairs_u = 0.0
    used = np.zeros(len(pred_area), bool)
    if iou.size:
        for t in range(len(truth_area)):
            best = int(np.argmax(iou[t]))
            if intersection[t, best] > 0:
                pairs_c += intersection[t, best]
                pairs_u += union[t, best]
                used[best] = True
            else:
                pairs_u += truth_area[t]
    else:
        pairs_u = float(truth_area.sum())
    return {"tp": tp, "fp": len(pred_area) - tp, "fn": len(truth_area) - tp, "matched_iou": float(iou[matched].sum()),
            "aji_intersection": float(pairs_c), "aji_union": float(pairs_u + pred_area[~used].sum())}


def instance_scores(counts: dict[str, float] | pd.Series) -> dict[str, float]:
    """Object precision, recall, F1, AJI, PQ, DQ and SQ from counts (one image's, or summed over images)."""
    tp, fp, fn = (float(counts[name]) for name in ("tp", "fp", "fn"))
    dq = float(ratio(tp, tp + fp / 2 + fn / 2))
    sq = float(ratio(float(counts["matched_iou"]), tp))
    pq = 0.0 if tp == 0 and tp + fp + fn > 0 else dq * sq
    return {"object_precision": float(ratio(tp, tp + fp)), "object_recall": float(ratio(tp, tp + fn)), "object_f1": dq,
            "aji": float(ratio(float(counts["aji_intersection"]), float(counts["aji_union"]))), "pq": pq, "dq": dq,
            "sq": sq}


def instance_table(truths: list[np.ndarray], preds: list[np.ndarray], within: list[np.ndarray] | None = None,
                   names: list[str] | None = None) -> pd.DataFrame:
    """Per image: the counts and the scores (one row per image, named by `names`)."""
    rows = []
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        counts = instance_counts(truth, pred, None if within is None else within[i])
        rows.append(counts | instance_scores(counts))
    return pd.DataFrame(rows, index=names)


def pooled_instance_scores(table: pd.DataFrame) -> dict[str, float]:
    """The pooled reduction: counts summed over the images, then the scores."""
    return instance_scores(table[list(INSTANCE_COUNTS)].sum())


def instance_intervals(table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Fieller's 95% interval over the images (rows of counts) of each pooled score that is a ratio of sums: object
    F1, AJI and PQ (whose denominator is object F1's), each within [0, 1]."""
    detected = table.tp + (table.fp + table.fn) / 2  # the denominator of object F1 and of PQ
    ratios = {"object_f1": (table.tp, detected), "aji": (table.aji_intersection, table.aji_union),
              "pq": (table.matched_iou, detected)}
    intervals = {metric: ratio_interval(numerator, denominator) for metric, (numerator, denominator) in ratios.items()}
    return {metric: (max(low, 0.0), min(high, 1.0)) for metric, (low, high) in intervals.items()}


def touching_pairs(truth: np.ndarray, gap_px: float) -> list[tuple[int, int]]:
    """Pairs of true nuclei (labels a < b) that come within `gap_px` of each other: the pairs a segmentation has
    to split."""
    truth = np.asarray(truth)
    pairs = set()
    reach = int(np.ceil(gap_px))
    disk = np.hypot(*np.mgrid[-reach:reach + 1, -reach:reach + 1]) <= gap_px
    for label, box in enumerate(ndimage.find_objects(truth), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(0, s.start - reach), s.stop + reach) for s in box)
        near = ndimage.binary_dilation(truth[grown] == label, structure=disk)
        pairs.update((label, int(other)) for other in np.unique(truth[grown][near]) if other > label)
    return sorted(pairs)


def split_pairs(truth: np.ndarray, pred: np.ndarray, gap_px: float) -> tuple[int, int, int]:
    """(touching pairs, pairs split, pairs merged): a pair is split when each of its two nuclei is matched
    (IoU > 0.5) by a predicted object of its own (a merged pair matches at most one of them); it is merged when the
    predicted object that overlaps each nucleus most is one and the same. A pair neither split nor merged has a
    nucleus found with the wrong outline, or not at all."""
    truth, pred = relabel_sequential(np.array(truth))[0], relabel_sequential(np.array(pred))[0]
    pairs = touching_pairs(truth, gap_px)
    if not pairs:
        return 0, 0, 0
    intersection, truth_area, pred_area = _overlaps(truth, pred)
    union = truth_area[:, None] + pred_area[None, :] - intersection
    matched = (np.divide(intersection, union, out=np.zeros(union.shape), where=union > 0) > IOU_MATCH).any(1)
    best = np.full(len(truth_area), -1)  # the predicted object overlapping each nucleus most (-1: none)
    if pred_area.size:
        overlapped = intersection.max(1) > 0
        best[overlapped] = intersection.argmax(1)[overlapped]
    return (len(pairs), sum(bool(matched[a - 1] and matched[b - 1]) for a, b in pairs),
            sum(bool(best[a - 1] >= 0 and best[a - 1] == best[b - 1]) for a, b in pairs))
