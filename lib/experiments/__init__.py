"""Experiments: the ladder (Table II), stability (Fig. 2), cases (Fig. 3), ablations, failures, calibration, efficiency."""
