"""China–ASEAN strategic-mineral industrial-chain synergy: a reproducible pipeline.

Stages (one module each): fetch -> clean -> indices -> models -> robustness -> report; every
stage is ``python -m analysis.<stage>``. For notebooks: ``from analysis import api``.
"""

import signal as _signal
import sys as _sys
import threading as _threading

__version__ = "0.1.0"


def _stage_name() -> str | None:
    """``indices`` when this process is ``python -m analysis.indices``, else None."""
    argv = getattr(_sys, "orig_argv", [])
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        if module.startswith("analysis."):
            return module.removeprefix("analysis.")
    return None


def _interrupted_while_starting(signum, frame):
    print(f"[{_stage_name()}] interrupted (Ctrl-C) while starting; nothing was written",
          file=_sys.stderr, flush=True)
    raise SystemExit(130)


# Ctrl-C while a stage is still importing its libraries: one line, no traceback. The stage's
# entry point (analysis.io.run_stage) takes over once it runs.
if _stage_name() and _threading.current_thread() is _threading.main_thread():
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
