"""Training: inputs and targets, augmentation, sampling, losses, recipe, epoch loop, active learning, runs."""
