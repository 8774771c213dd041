"""Report: figures and tables per notebook, saved under figures/, and the paper's own numbers (paper.py)."""
