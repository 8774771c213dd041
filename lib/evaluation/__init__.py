"""Evaluation: counts and scores, boundary metrics, scoring a split, baselines, statistics."""
