"""Every number the paper reports (SPEC §1-6), in one place. Tables and figures show them only in columns or
captions labelled as the paper's; the pipeline never uses them as results."""
from __future__ import annotations

import pandas as pd

# Table I: tiles per split, with and without cells, mean cell share of a positive tile (%), cell pixels (%).
TABLE1 = pd.DataFrame(
    {"train": [599, 240, 359, 4.4, 1.76], "val": [130, 52, 78, 4.3, 1.72], "test": [100, 40, 60, 4.5, 1.80]},
    index=["images", "with cells", "without cells", "avg cell size (% of a positive tile)",
           "cell pixels (% of all pixels)"])

# Table II, Dice in percent. FgFEU-Net and Pro_UNeXt report on other datasets: no entry.
TABLE2_DICE = {"unet": 78.2, "attention_unet": 82.4, "attention_unet_hybrid": 87.1, "attention_unet_al": 85.3,
               "multiscale_attention_unet": 89.2, "enhanced": 95.5}

# Fig. 2 (b): the horizontal target lines of the validation Dice panel.
FIG2_DICE_TARGETS = (0.94, 0.95)

# §IV: without stabilization, validation Dice fell from 92% to 13.66% at epoch 34.
COLLAPSE = {"from": 0.92, "to": 0.1366, "epoch": 34}

# Fig. 3: the four cases, their cell counts and Dice.
FIG3_CASES = {"distributed_cluster": {"cells": 25, "dice": 0.9189}, "dense_large": {"cells": 12, "dice": 0.9659},
              "compact_dense": {"cells": 13, "dice": 0.9084}, "sparse_ring": {"cells": 11, "dice": 0.9398}}

# §IV claims, as the paper states each effect (text, for the claims table's "paper" column).
CLAIM_EFFECTS = {"gabor_boundary": "+2.1% boundary accuracy", "projection_vs_drop": "+2.3% Dice",
                 "sampling_small_lesions": "+3.8% small-lesion detection"}

# §IV error breakdown: share of errors (%) from lesions < 50 px, within 3 px of boundaries, in low-contrast
# regions, near artifacts.
ERROR_SHARES = {"small objects": 15, "boundary": 40, "low contrast": 25, "artifacts": 20}

# §IV-C: 67% of the high-uncertainty regions of active learning lay on background.
AL_BACKGROUND_SHARE = 0.67

# §IV: inference on one RTX 3090 (EfficientNet-B7 at 512 px).
VRAM_GB, FPS = 4.2, 28
