"""The "quantum-inspired" edge channel: the Gabor bank (paper §III-D, eq. 4) and its analysis."""
