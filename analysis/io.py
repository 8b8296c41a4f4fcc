"""Input/output helpers shared by every stage: errors that name the file, hashing, atomic writes.

Every file the pipeline writes goes through a temporary file in the same folder followed by
``os.replace``, so an interrupted run never leaves a half-written file under a final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


class DataError(Exception):
    """Bad input: the message always names the file (and the column, where there is one)."""

    def __init__(self, path: Path | str, problem: str, column: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.column = column
        where = f"{self.path}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {problem}")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise DataError unless ``path`` exists and hashes to ``expected``."""
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            path,
            f"sha256 mismatch: expected {expected}, found {actual}. The file is truncated, "
            "corrupted or a different vintage. It was left untouched; delete it by hand and "
            "re-run `make data`, or pin the new vintage with `python -m analysis.fetch --update`.",
        )


@contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only if the block succeeds.

    ``mode`` is applied before the move (raw inputs are made read-only, 0o444).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
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


def record_timing(stage: str, seconds: float, path: Path | None = None) -> None:
    """Add a stage's wall-clock runtime to ``outputs/timings.json`` (read by the manifest).

    Stages run two at a time under ``make all``, so the read-modify-write holds an exclusive
    lock (``flock`` on the folder, which leaves no lock file among the outputs)."""
    import fcntl
    import json

    from analysis.config import OUTPUTS

    path = path or OUTPUTS / "timings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        timings = json.loads(path.read_text()) if path.exists() else {}
        timings[stage] = round(seconds, 2)
        atomic_write_text(path, json.dumps(timings, indent=2, sort_keys=True) + "\n")
    finally:
        os.close(folder)  # releases the lock


def run_stage(stage: str, action: Callable[[], object],
              errors: tuple[type[Exception], ...] = (DataError,)) -> int:
    """Run a stage's ``action``, record its runtime and turn bad input into exit code 2.

    The command-line entry point of every stage: on success the wall-clock time goes to
    ``outputs/timings.json`` and the exit code is 0; an error of a type in ``errors`` (always a
    message naming the file and the problem) is printed as ``[stage] ERROR ...`` on stderr and
    the exit code is 2, with nothing half-written (every write is atomic).
    """
    import sys
    import time

    try:
        started = time.perf_counter()
        action()
        record_timing(stage, time.perf_counter() - started)
    except errors as error:
        print(f"[{stage}] ERROR {error}", file=sys.stderr)
        return 2
    return 0
