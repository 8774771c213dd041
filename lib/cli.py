"""How the command-line entry points end: a problem with the dataset, the config, a run or an argument prints
one line `error: ...` naming the file and the problem and exits with status 2; the traceback is shown only with
`--debug` (or REPRO_DEBUG=1 in the environment), for reporting a bug."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .config import ConfigError
from .data.reading import DatasetError
from .training.runs import MissingRunError, StaleRunError

DEBUG_HELP = "on an error, show the traceback instead of one line (also REPRO_DEBUG=1)"
# What a user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS = (DatasetError, ConfigError, StaleRunError, MissingRunError, FileNotFoundError, ValueError)


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Call `main(argv)` (default: the command line) and turn a user error into one line; `main`'s parser
    accepts `--debug` (`DEBUG_HELP`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("REPRO_DEBUG") == "1"
    try:
        main(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: an unfinished run resumes where it stopped when started again", file=sys.stderr)
        sys.exit(130)
