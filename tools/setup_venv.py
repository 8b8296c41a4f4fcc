"""Create ``.venv`` with the pinned dependencies, quietly, with one progress line.

    python3 tools/setup_venv.py [--venv .venv] [--python python3]

Phase 1 (any Python 3.11+, standard library only): a fresh virtual environment, pip and the
pinned tqdm. Phase 2 (re-run inside ``.venv``): ``pip install -r requirements.lock`` with a
progress bar over the pinned packages (live on a terminal; elsewhere a final line only), then
the project itself (editable, no dependencies). pip's own output, warnings included, goes to
``<venv>/setup.log``; on failure the last lines of that log are printed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def pinned(name: str) -> str:
    """The ``name==version`` line of requirements.lock (so tqdm is the pinned version)."""
    for line in LOCK.read_text().splitlines():
        if line.lower().startswith(f"{name.lower()}=="):
            return line.strip()
    return name


def fail(log: Path, step: str) -> int:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    tail = [line for line in lines if line.strip() and "is ignored: it is neither" not in line]
    print(f"[setup] FAILED while {step}; last lines of {log.relative_to(ROOT)}:", file=sys.stderr)
    for line in tail[-8:]:
        print(f"    {line}", file=sys.stderr)
    return 1


def run_logged(command: list[str], log: Path) -> int:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                              check=False).returncode


def phase_one(venv: Path, python: str) -> int:
    log = venv.parent / ".setup.log"
    log.write_text("")
    started = time.time()  # wall clock: phase two runs in another process
    print(f"[setup] creating {venv.name} and installing the pinned packages "
          "(requirements.lock; a few minutes on a fresh clone)", flush=True)
    if run_logged([python, "-m", "venv", "--clear", str(venv)], log):
        return fail(log, "creating the virtual environment")
    final_log = venv / "setup.log"
    os.replace(log, final_log)
    venv_python = venv / "bin" / "python"
    if run_logged([str(venv_python), "-m", "pip", "install", "--upgrade", "pip", pinned("tqdm")],
                  final_log):
        return fail(final_log, "installing pip and tqdm")
    os.environ["SETUP_STARTED"] = str(started)
    os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), "--phase-two",
                                "--venv", str(venv)])
    return 0  # not reached


def phase_two(venv: Path) -> int:
    from tqdm import tqdm

    log = venv / "setup.log"
    started = float(os.environ.get("SETUP_STARTED", time.time()))
    total = sum(1 for line in LOCK.read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    live = sys.stdout.isatty()
    bar = tqdm(total=total, desc="[setup] packages", unit="pkg", disable=not live, leave=False,
               bar_format="{desc} {n_fmt}/{total_fmt} {bar:20} {elapsed} {postfix}")
    command = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", "-r", str(LOCK)]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, cwd=ROOT)
        assert process.stdout is not None
        seen = 0
        for line in process.stdout:
            handle.write(line)
            match = re.match(r"(Collecting|Requirement already satisfied:) (\S+)", line)
            if match and seen < total:
                seen += 1
                bar.update(1)
                bar.set_postfix_str(match.group(2)[:30])
            elif line.startswith("Installing collected packages"):
                bar.set_postfix_str("installing")
        code = process.wait()
    bar.close()
    if code:
        return fail(log, "installing requirements.lock")
    if run_logged([sys.executable, "-m", "pip", "install", "--no-deps", "-e", str(ROOT)], log):
        return fail(log, "installing the project (pip install -e .)")
    print(f"[setup] done in {time.time() - started:.0f} s: {total} pinned packages in "
          f"{venv.name} (pip's output: {log.relative_to(ROOT)})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 tools/setup_venv.py", description=__doc__)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--phase-two", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    venv = args.venv.resolve()
    return phase_two(venv) if args.phase_two else phase_one(venv, args.python)


if __name__ == "__main__":
    sys.exit(main())
