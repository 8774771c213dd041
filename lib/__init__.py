"""The reproduction's library; its folders are the pipeline's stages, in the order data flows through them:

    data/         reading and validating a dataset, mask geometry, tiling and splits, the synthetic dataset,
                  prepared tiles on disk, Table I statistics
    edges/        the Gabor edge channel (paper §III-D) and what it carries
    models/       the model ladder by name (Table II and the other papers' systems)
    training/     dataset, augmentation, sampling, losses, the optimisation recipe, the epoch loop, active
                  learning, runs and their records, the training command (python -m lib.training)
    inference/    model inputs, test-time augmentation, CRF, prediction (python -m lib.inference)
    evaluation/   overlap and boundary metrics, scoring a split, baselines, statistics
    experiments/  the ladder table, stability, Fig. 3 cases, ablations, failure analysis, calibration, efficiency
    report/       figures and tables per notebook, and every number the paper reports (report/paper.py)

plus paths.py (where things live), config.py (profiles and their schema), files.py (atomic writes) and
device.py (the device rule).
"""
