"""Refactor guard: record the sha256 of every built file, then check a later build against it.

A refactor that moves code must not move numbers. Before the move, record every file under
``outputs/`` and ``data/processed/``; after it, rebuild (``make clean && make all``) and check:

    .venv/bin/python tools/output_guard.py record /tmp/before.json
    ... refactor, make clean && make all ...
    .venv/bin/python tools/output_guard.py check /tmp/before.json

Files that legitimately differ from run to run are left out: run timings, the run manifest
(absolute paths and runtimes), the report (it prints both) and stage logs. So are the other
regions' folders (``outputs/<region>/``, ``data/processed/<region>/`` for every
``specs/regions/<region>.yaml``): the guard checks the default region. ``check`` exits 1 and
lists every file that is missing, new or different.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARDED = ("outputs", "data/processed")
# Run-dependent by design: wall-clock times, absolute paths, the report that prints both.
VOLATILE_NAMES = {"timings.json", "manifest.json", "report.html"}
VOLATILE_PARTS = {"logs"}


def _drop_timings(value):
    """A JSON value without its wall-clock entries (keys ending in ``seconds``)."""
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def normalised_bytes(path: Path) -> bytes:
    """The bytes the guard compares. Two run-dependent parts are left out, nothing else: the
    wall-clock ``*seconds`` entries of a JSON file (a cold cache times the scenario stage's
    calibration and PySD check again), and the ``%`` comment lines of a LaTeX table (they name
    the path of the program that wrote it, which a move of the code changes)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        return json.dumps(_drop_timings(json.loads(data)), sort_keys=True).encode()
    if path.suffix == ".tex":
        return b"".join(line for line in data.splitlines(keepends=True)
                        if not line.startswith(b"%"))
    return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(normalised_bytes(path)).hexdigest()


def snapshot(root: Path, folders: tuple[str, ...] = GUARDED) -> dict[str, str]:
    """{path relative to ``root``: sha256} for every guarded, non-volatile file under ``folders``
    (other regions' sub-folders left out)."""
    regions = {p.stem for p in (root / "specs" / "regions").glob("*.yaml")}
    hashes: dict[str, str] = {}
    for folder in folders:
        base = root / folder
        if not base.exists():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            if path.name in VOLATILE_NAMES or VOLATILE_PARTS & set(relative.parts):
                continue
            if path.relative_to(base).parts[0] in regions:
                continue
            hashes[relative.as_posix()] = _sha256(path)
    return hashes


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two snapshots (empty when byte-identical)."""
    problems = [f"missing now: {name}" for name in sorted(set(before) - set(after))]
    problems += [f"new: {name}" for name in sorted(set(after) - set(before))]
    problems += [f"differs: {name}" for name in sorted(set(before) & set(after))
                 if before[name] != after[name]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["record", "check"])
    parser.add_argument("file", type=Path, help="the JSON file of recorded hashes")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (default: this one)")
    args = parser.parse_args(argv)
    current = snapshot(args.root)
    if args.action == "record":
        args.file.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(current)} files in {args.file}")
        return 0
    problems = compare(json.loads(args.file.read_text()), current)
    for line in problems:
        print(line)
    print(f"{len(current)} files checked, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
