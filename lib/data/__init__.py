"""Data: reading and validation, mask geometry, tiling and splits, synthetic data, prepared tiles, Table I."""
