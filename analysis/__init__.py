"""China–ASEAN strategic-mineral industrial-chain synergy: a reproducible pipeline.

Two layers. ``analysis/stages/``: the pipeline stages, one module each, every one a
``python -m analysis.stages.<stage>`` entry with ``--help``; they talk to each other only through
files (fetch -> clean -> indices -> diagnostics, models -> robustness; nickel, supply_risk,
scorecard, scenarios beside them; report last; bench times them). Below them the subject
libraries, pure functions that tests call directly: ``data/`` (registry, parsers, schemas, specs,
cache, io), ``measures/`` (constructs, synergy, weighting, scorecard), ``econometrics/``
(estimation, inference, marginal effects, power, the moderated models and their robustness
variants), ``simulation/`` (the stock-flow model) and ``publish/`` (tables, figures).
``config.py`` holds paths. For notebooks: ``from analysis import api``.
"""

import signal as _signal
import sys as _sys
import threading as _threading

__version__ = "0.1.0"


def _stage_name() -> str | None:
    """``indices`` when this process is ``python -m analysis.stages.indices``, else None."""
    argv = getattr(_sys, "orig_argv", [])
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        if module.startswith("analysis."):
            return module.rpartition(".")[2]
    return None


def _interrupted_while_starting(signum, frame):
    print(f"[{_stage_name()}] interrupted (Ctrl-C) while starting; nothing was written",
          file=_sys.stderr, flush=True)
    raise SystemExit(130)


# Ctrl-C while a stage is still importing its libraries: one line, no traceback. The stage's
# entry point (analysis.data.io.run_stage) takes over once it runs.
if _stage_name() and _threading.current_thread() is _threading.main_thread():
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
