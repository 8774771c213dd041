"""Progress bars for long work: a widget in JupyterLab, text lines in a log. run_all.sh sets REPRO_PROGRESS=text,
so that a notebook executed by papermill writes its progress as text (into its log, its executed copy and the
terminal), one line every TQDM_MININTERVAL seconds; a widget would leave nothing there."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm as auto_tqdm
from tqdm.std import tqdm as text_tqdm


def progress(iterable: Iterable | None = None, **kwargs: Any) -> text_tqdm:
    """tqdm over `iterable` (the same keywords), as text where REPRO_PROGRESS=text, else tqdm.auto's choice."""
    bar = text_tqdm if os.environ.get("REPRO_PROGRESS") == "text" else auto_tqdm
    return bar(iterable, **kwargs)
