"""Inference: model inputs, test-time augmentation, the CRF, prediction of tiles and whole images."""
