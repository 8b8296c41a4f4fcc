"""Input/output helpers shared by every stage: errors that name the file, hashing, atomic writes,
and the stage runner (quiet console, full log, clean exit codes).

Every file the pipeline writes goes through a temporary file in the same folder followed by
``os.replace``, so an interrupted run never leaves a half-written file under a final name.

:func:`run_stage` is the command-line entry of every stage. By default a stage prints one line on
the console (a live progress line on a terminal, its final state otherwise); everything it prints
goes to ``outputs/logs/<stage>.log``; ``-v`` (or ``PIPELINE_VERBOSE=1``, ``make ... V=1``) prints
it all as well. Bad input (:class:`DataError`) ends with one line naming the file, the entry and
the problem and exit code 2; Ctrl-C with one line and exit code 130; no traceback on the console
in either case (the log keeps it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TextIO

import pandas as pd


def display_path(path: Path | str) -> str:
    """``path`` relative to the working directory when it lies below it (shorter messages)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


class DataError(Exception):
    """Bad input: the message names the file, and where there is one the entry and the field.

    ``DataError(path, problem, column=None, *, entry=None, field=None)`` reads as
    ``<path>, <entry>, field '<field>', column '<column>': <problem>`` (the parts that are given).
    The exception pickles (a worker process can raise it to the parent).
    """

    def __init__(self, path: Path | str, problem: str, column: str | None = None, *,
                 entry: str | None = None, field: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.column = column
        self.entry = entry
        self.field = field
        where = display_path(self.path)
        if entry:
            where += f", {entry}"
        if field:
            where += f", field '{field}'"
        if column:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        return (_rebuild_data_error, (type(self), self.path, self.problem, self.column,
                                      self.entry, self.field))


def _rebuild_data_error(cls, path, problem, column, entry, field):
    return cls(path, problem, column, entry=entry, field=field)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_of(path: Path) -> str | None:
    """The registry source a file under ``data/raw`` belongs to (its first folder), if any."""
    from analysis.config import DATA_RAW

    try:
        parts = Path(path).resolve().relative_to(DATA_RAW.resolve()).parts
    except (ValueError, OSError):
        return None
    return parts[0] if len(parts) > 1 else None


def verify_sha256(path: Path, expected: str, source: str | None = None) -> None:
    """Raise DataError unless ``path`` exists and hashes to ``expected``. The message names the
    remedy, ``make refetch SOURCE=<source>`` (``source``: the registry name, by default the
    first folder of ``path`` under data/raw)."""
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    actual = sha256_of(path)
    if actual != expected:
        source = source or source_of(path)
        remedy = (f"run `make refetch SOURCE={source}` (it deletes this copy and fetches the "
                  "pinned file again, from DATA_MIRROR or the official URL)" if source else
                  "delete it and fetch it again")
        raise DataError(
            path,
            f"sha256 mismatch: expected {expected}, found {actual}. The file is truncated, "
            f"corrupted or a different vintage; it was left untouched. To replace it, {remedy}; "
            "to pin a new vintage deliberately, `python -m analysis.stages.fetch --update --only "
            f"{source or 'NAME'}`.",
        )


@contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only if the block succeeds.

    ``mode`` is applied before the move (raw inputs are made read-only, 0o444). A folder that
    cannot be written (read-only, full disk) raises :class:`DataError` naming ``target``, never
    the temporary file.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                            dir=target.parent)
    except OSError as error:
        raise DataError(target, f"cannot write here ({error.strerror or error}: check that "
                        f"{display_path(target.parent)} is writable)") from error
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as error:
            if isinstance(error, (BlockingIOError, InterruptedError)):
                raise
            raise DataError(target, f"cannot write ({error.strerror or error})") from error
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def atomic_write_bytes(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def atomic_copy(source: Path, target: Path, check: Callable[[Path], None] | None = None,
                mode: int = 0o644) -> Path:
    """Copy ``source`` to ``target`` atomically; ``check`` runs on the copy before it is moved in."""
    with atomic_path(target, mode) as tmp:
        shutil.copyfile(source, tmp)
        if check is not None:
            check(tmp)
    return target


def write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    """Write a parquet file atomically, without the pandas index and with stable metadata."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow")
    return target


def read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(path, "processed file is missing; run the stage that makes it first")
    return pd.read_parquet(path)


def parquet_columns(path: Path) -> list[str]:
    """The column names of a parquet file (its schema only; the data are not read)."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise DataError(path, "processed file is missing; run the stage that makes it first")
    return list(pq.read_schema(path).names)


def record_timing(stage: str, seconds: float, path: Path | None = None) -> None:
    """Add a stage's wall-clock runtime to ``outputs/timings.json`` (read by the manifest).

    Stages run two at a time under ``make all``, so the read-modify-write holds an exclusive
    lock (``flock`` on the folder, which leaves no lock file among the outputs)."""
    import fcntl
    import json

    from analysis.config import OUTPUTS

    path = path or OUTPUTS / "timings.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError as error:
        raise DataError(path, f"cannot write ({error.strerror or error})") from error
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        timings = json.loads(path.read_text()) if path.exists() else {}
        timings[stage] = round(seconds, 2)
        atomic_write_text(path, json.dumps(timings, indent=2, sort_keys=True) + "\n")
    finally:
        os.close(folder)  # releases the lock


# =========================================================================== the stage runner
def log_path(stage: str) -> Path:
    """``outputs/logs/<stage>.log`` (or ``$PIPELINE_LOG_DIR/<stage>.log``): everything a stage
    printed in its last run."""
    from analysis.config import OUTPUTS

    folder = os.environ.get("PIPELINE_LOG_DIR")
    return (Path(folder) if folder else OUTPUTS / "logs") / f"{stage}.log"


def verbose_from_environment() -> bool:
    """True when ``PIPELINE_VERBOSE`` is set to something other than 0/empty (``make V=1``)."""
    return os.environ.get("PIPELINE_VERBOSE", "") not in ("", "0")


def add_verbose_argument(parser) -> None:
    """``-v/--verbose``: print everything the stage logs (the full log is always written)."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every step and table on the console as well (they always "
                        "go to outputs/logs/<stage>.log)")


class _Tee:
    """A text stream for a stage's stdout/stderr: complete lines go to the log file; every
    line or carriage-return update (tqdm) is passed to ``on_line``; with ``echo`` the text is
    also written there unchanged."""

    def __init__(self, log: TextIO | None, echo: TextIO | None,
                 on_line: Callable[[str], None] | None) -> None:
        self.log, self.echo, self.on_line = log, echo, on_line
        self._pending = ""

    def write(self, text: str) -> int:
        if self.echo is not None:
            self.echo.write(text)
            self.echo.flush()
        self._pending += text
        while True:
            cut = [i for i in (self._pending.find("\n"), self._pending.find("\r")) if i >= 0]
            if not cut:
                break
            i = min(cut)
            segment, separator = self._pending[:i], self._pending[i]
            self._pending = self._pending[i + 1:]
            if separator == "\n" and self.log is not None:
                self.log.write(segment + "\n")
            if segment.strip() and self.on_line is not None:
                self.on_line(segment)
        return len(text)

    def flush(self) -> None:
        if self.log is not None:
            self.log.flush()

    def isatty(self) -> bool:
        return False

    def close_pending(self) -> None:
        if self._pending and self.log is not None:
            self.log.write(self._pending + "\n")
        self._pending = ""


class _ConsoleLine:
    """The one console line of a stage: on a terminal a live tqdm line showing the elapsed time
    and the stage's latest step; elsewhere (a file, CI) nothing until the final line."""

    def __init__(self, stage: str, stream: TextIO, live: bool) -> None:
        self.stage, self.stream = stage, stream
        self.bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if live:
            from tqdm import tqdm

            width = max(40, shutil.get_terminal_size((100, 20)).columns - 1)
            self.bar = tqdm(total=None, desc=f"[{stage}]", bar_format="{desc} {elapsed}{postfix}",
                            file=stream, leave=False, ncols=width, mininterval=0.2)
            self._thread = threading.Thread(target=self._tick, name=f"{stage}-progress",
                                            daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            if self.bar is not None:
                self.bar.refresh()

    def step(self, line: str) -> None:
        if self.bar is None:
            return
        prefix = f"[{self.stage}]"
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).strip()  # a nested bar's cursor moves
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
        width = max(20, shutil.get_terminal_size((100, 20)).columns - len(prefix) - 14)
        self.bar.set_postfix_str(text[:width], refresh=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.close()


_CURRENT_LOG: Path | None = None


def current_log() -> Path | None:
    """The log file of the stage running in this process (worker processes append to it)."""
    return _CURRENT_LOG


def worker_initializer(log: str | None) -> None:
    """For worker processes of a stage: Ctrl-C is handled by the parent alone (the workers
    ignore SIGINT, so they print no traceback and are shut down by the parent), and whatever
    a worker prints goes to the stage's log."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the parent blocked SIGINT while it started this process (see block_interrupts); a Ctrl-C
    # that arrived meanwhile is pending here and is now discarded, ignored
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if log:
        try:
            stream = open(log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (process-long)
        except OSError:
            return
        sys.stdout = sys.stderr = stream


@contextmanager
def block_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back while worker processes start: they inherit the blocked signal,
    so a Ctrl-C during their start-up cannot interrupt their imports (a traceback each); the
    parent receives it as soon as the block ends, and each worker discards it in
    :func:`worker_initializer`."""
    import signal

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_stage(stage: str, action: Callable[[], object],
              errors: tuple[type[Exception], ...] = (DataError,), verbose: bool | None = None,
              summary: Callable[[object], str] | None = None, record: bool = True) -> int:
    """Run a stage's ``action`` quietly, log everything, and turn failures into exit codes.

    * console: one line per stage (live on a terminal), ``[stage] done in 8.8 s: <summary>``;
      with ``verbose`` (default: :func:`verbose_from_environment`) everything the stage prints;
    * ``outputs/logs/<stage>.log``: everything the stage printed, warnings and, on failure,
      the traceback;
    * ``outputs/timings.json``: the wall-clock time (on success; not with ``record=False``,
      for partial runs such as ``--only``);
    * exit codes: 0 success; 2 for an error of a type in ``errors`` (a message naming the file,
      the entry and the problem, always one line: ``[stage] ERROR ...``); 130 for Ctrl-C
      (``[stage] interrupted ...``); 1 for anything else (one line; the traceback is in the log).
    Every output is written atomically, so none of these leaves a half-written file.
    """
    global _CURRENT_LOG
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C -> KeyboardInterrupt
    verbose = verbose_from_environment() if verbose is None else verbose
    console_out, console_err = sys.stdout, sys.stderr
    path = log_path(stage)
    log: TextIO | None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError:
        log = None  # an unwritable outputs/ is reported by the first output the stage writes
    _CURRENT_LOG = path if log is not None else None
    live = (not verbose) and console_out.isatty()
    line = _ConsoleLine(stage, console_out, live)
    tee_out = _Tee(log, console_out if verbose else None, line.step)
    tee_err = _Tee(log, console_err if verbose else None, line.step)
    started = time.perf_counter()
    outcome: tuple[int, str, TextIO]
    try:
        with redirect_stdout(tee_out), redirect_stderr(tee_err), \
                warnings.catch_warnings():  # type: ignore[type-var]
            # warnings go to the log (and, verbose, to the console), whoever else listens
            warnings.showwarning = lambda message, category, filename, lineno, file=None, \
                line=None: tee_err.write(warnings.formatwarning(message, category, filename,
                                                                lineno, line))
            result = action()
            if record:
                record_timing(stage, time.perf_counter() - started)
        note = ""
        if summary is not None:
            try:
                note = summary(result)
            except Exception:  # noqa: BLE001 - a summary must never fail a finished stage
                note = ""
        seconds = time.perf_counter() - started
        outcome = (0, f"[{stage}] done in {seconds:.1f} s" + (f": {note}" if note else ""),
                   console_out)
    except errors as error:
        if log is not None:
            log.write(traceback.format_exc())
        text = " ".join(str(error).split())
        outcome = (2, f"[{stage}] ERROR {text}", console_err)
    except KeyboardInterrupt:
        message = (f"[{stage}] interrupted (Ctrl-C); every output is written atomically, so "
                   "none is half-written")
        outcome = (130, message, console_err)
    except Exception as error:  # noqa: BLE001 - one line on the console, the traceback in the log
        if log is not None:
            log.write(traceback.format_exc())
        if verbose:
            traceback.print_exc(file=console_err)
        first = (str(error).strip().splitlines() or [""])[0]
        where = f"; traceback in {display_path(path)}" if log is not None else ""
        outcome = (1, f"[{stage}] FAILED {type(error).__name__}: {first}{where}", console_err)
    finally:
        tee_out.close_pending()
        tee_err.close_pending()
        line.close()
        _CURRENT_LOG = None
    code, message, stream = outcome
    if log is not None:
        log.write(message + "\n")
        log.close()
    print(message, file=stream, flush=True)
    return code
