"""Mutation testing: does the test suite fail when the maths is wrong?

Reads the mutant list (``tools/mutants.yaml``: id, file, exact ``find`` text, ``replace`` text,
tests, a one-line ``what``, optionally ``equivalent: true`` with a ``reason``). For each mutant,
one at a time and each in its own temporary copy of the project:

1. copy the project (the files git knows: tracked ones plus new, non-ignored ones; so ``.venv``,
   the fetched ``data/raw`` files, ``data/processed``, ``outputs`` and ``.git`` stay out);
2. replace the ``find`` text, which must occur exactly once in the file (otherwise the whole run
   stops before any test: a stale mutant must never pass silently);
3. run the mutant's tests with this Python (the project's ``.venv``) from the copy, with
   ``PYTHONPATH=<copy>``, after checking in the same process that ``analysis`` and the mutated
   module are imported from the copy (the editable install points at the original checkout) and
   that the copy's canary token is the one loaded;
4. record caught (pytest exit 1: some test failed), survived (exit 0) or error (anything else:
   a collection error, the import check, a timeout).

Before the mutants, the union of their tests runs once on an unmutated copy (the baseline): it
must pass, or every mutant would look caught. Prints a table (id, file, result, seconds, the
first test that failed) and a summary; exits 1 if any mutant not listed as equivalent survived
or ended in an error, 2 if the mutant list or the baseline is unusable.

Run ``make mutate`` or ``python tools/mutate.py --help``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tools" / "mutants.yaml"
PACKAGE = "analysis"
# Never copied unless git tracks the file (data/raw/rn_policy_events.csv is the project's own).
EXCLUDED = (".venv", ".git", "data/raw", "data/processed", "outputs", ".pytest_cache",
            ".ruff_cache")
REQUIRED = ("id", "file", "what", "find", "replace", "tests")
OPTIONAL = ("equivalent", "reason")
CANARY_FAILED = 97  # exit code of the in-process import check

# Runs inside the copy: check what is imported, then hand over to pytest in the same process,
# so the tests use exactly the modules that were checked.
BOOTSTRAP = """
import importlib, pathlib, sys
root = pathlib.Path(sys.argv[1]).resolve()
package_name, module, token, code = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def stop(message):
    print(f"[mutate] IMPORT CHECK FAILED: {message}", flush=True)
    sys.exit(code)
package = importlib.import_module(package_name)
if root not in pathlib.Path(package.__file__).resolve().parents:
    stop(f"{package_name} imported from {package.__file__}, not from the copy {root}")
if getattr(package, "MUTATION_CANARY", None) != token:
    stop(f"{package_name} at {package.__file__} does not carry this copy's canary token")
if module:
    loaded = importlib.import_module(module)
    if root not in pathlib.Path(loaded.__file__).resolve().parents:
        stop(f"{module} imported from {loaded.__file__}, not from the copy {root}")
import pytest
sys.exit(pytest.main(sys.argv[6:]))
"""


class SpecError(Exception):
    """The mutant list is unusable (bad entry, stale or ambiguous find text)."""


@dataclass
class Mutant:
    id: str
    file: str
    what: str
    find: str
    replace: str
    tests: list[str]
    equivalent: bool = False
    reason: str = ""


@dataclass
class Outcome:
    mutant: Mutant | None  # None for the baseline
    result: str  # caught | survived | error | equivalent | baseline-ok
    seconds: float
    returncode: int | None
    failed_tests: list[str] = field(default_factory=list)
    detail: str = ""


def say(message: str) -> None:
    print(f"[mutate] {message}", flush=True)


# --------------------------------------------------------------------------- the mutant list
def load_spec(path: Path, root: Path) -> tuple[dict, list[Mutant]]:
    """Read and check the mutant list against the current sources (every find text once)."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"{path}: cannot read the mutant list ({error})") from error
    if not isinstance(spec, dict) or not isinstance(spec.get("mutants"), list):
        raise SpecError(f"{path}: expected a mapping with a 'mutants' list")
    defaults = spec.get("defaults") or {}
    mutants, problems, seen = [], [], set()
    for number, entry in enumerate(spec["mutants"], start=1):
        where = f"{path.name}, mutant {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a mapping")
            continue
        where = f"{path.name}, mutant {entry.get('id', number)!r}"
        missing = [k for k in REQUIRED if k not in entry]
        unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
        if missing or unknown:
            problems.append(f"{where}: missing keys {missing}, unknown keys {unknown}")
            continue
        mutant = Mutant(**{k: entry[k] for k in (*REQUIRED, *OPTIONAL) if k in entry})
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(mutant.id)) or mutant.id in seen:
            problems.append(f"{where}: id must be unique and made of letters, digits, _")
        seen.add(mutant.id)
        if isinstance(mutant.tests, str):
            mutant.tests = [mutant.tests]
        if not mutant.tests:
            problems.append(f"{where}: no tests listed")
        if mutant.equivalent and not str(mutant.reason).strip():
            problems.append(f"{where}: equivalent mutants need a reason")
        if mutant.find == mutant.replace:
            problems.append(f"{where}: replace is the same as find")
        source = root / mutant.file
        if not source.is_file():
            problems.append(f"{where}: file {mutant.file} does not exist")
        else:
            count = source.read_text(encoding="utf-8").count(mutant.find)
            if count != 1:
                problems.append(f"{where}: the find text occurs {count} times in {mutant.file} "
                                f"(must be exactly once; stale or ambiguous mutant): "
                                f"{mutant.find!r}")
        for test in mutant.tests:
            if not (root / test.split("::")[0]).exists():
                problems.append(f"{where}: test path {test} does not exist")
        mutants.append(mutant)
    if problems:
        raise SpecError("the mutant list is unusable:\n  " + "\n  ".join(problems))
    return defaults, mutants


# --------------------------------------------------------------------------- copies
def _excluded(relative: str) -> bool:
    if "__pycache__" in Path(relative).parts:
        return True
    return any(relative == e or relative.startswith(e + "/") for e in EXCLUDED)


def project_files(root: Path) -> list[Path]:
    """Files to copy: what git tracks plus new files it does not ignore, minus EXCLUDED.

    ``data/raw`` is excluded except for the files git tracks there (the project's own event
    file). Without git, every file outside EXCLUDED is copied.
    """
    try:
        def git(*options: str) -> list[str]:
            out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *options],
                                 capture_output=True, check=True).stdout.decode()
            return [p for p in out.split("\0") if p]

        tracked = set(git("--cached"))
        candidates = sorted(tracked | set(git("--others", "--exclude-standard")))
    except (OSError, subprocess.CalledProcessError):
        tracked, candidates = set(), []
        for folder, dirs, names in os.walk(root):
            here = Path(folder).relative_to(root).as_posix()
            here = "" if here == "." else here + "/"
            dirs[:] = [d for d in dirs if not _excluded(here + d)]
            candidates += [here + n for n in names]
    return [Path(p) for p in candidates
            if (p in tracked or not _excluded(p)) and (root / p).is_file()]


def make_copy(root: Path, files: list[Path], mutant: Mutant | None, token: str) -> Path:
    """A temporary copy of ``files`` with ``mutant`` applied and the canary token appended."""
    copy = Path(tempfile.mkdtemp(prefix=f"mutate-{mutant.id if mutant else 'baseline'}-"))
    for relative in files:
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    if mutant is not None:
        path = copy / mutant.file
        text = path.read_text(encoding="utf-8")
        if text.count(mutant.find) != 1:  # checked up front; re-checked on the copy itself
            raise SpecError(f"{mutant.id}: find text not exactly once in the copy of "
                            f"{mutant.file}")
        path.write_text(text.replace(mutant.find, mutant.replace, 1), encoding="utf-8")
    init = copy / PACKAGE / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8")
                    + f'\nMUTATION_CANARY = "{token}"  # written by tools/mutate.py\n',
                    encoding="utf-8")
    return copy


def module_name(file: str) -> str:
    """analysis/measures/weighting.py -> analysis.measures.weighting ('' for files outside the package)."""
    path = Path(file)
    if path.suffix != ".py" or path.parts[0] != PACKAGE:
        return ""
    parts = list(path.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def failed_tests(output: str) -> list[str]:
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)


# --------------------------------------------------------------------------- one run
def run_one(root: Path, files: list[Path], mutant: Mutant | None, tests: list[str],
            pytest_args: list[str], timeout: float, python: str, keep: bool) -> Outcome:
    started = time.perf_counter()
    token = secrets.token_hex(8)
    copy = make_copy(root, files, mutant, token)
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1",
           "MPLBACKEND": "Agg"}
    module = module_name(mutant.file) if mutant else ""
    command = [python, "-c", BOOTSTRAP, str(copy), PACKAGE, module, token, str(CANARY_FAILED),
               *pytest_args, *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        code = None
        output = f"timed out after {timeout:.0f}s\n{error.stdout or ''}"
    finally:
        if not keep:
            shutil.rmtree(copy, ignore_errors=True)
    seconds = time.perf_counter() - started
    failed = failed_tests(output)
    if code == 0:
        result = "equivalent" if mutant and mutant.equivalent else "survived"
    elif code == 1:
        result = "caught"
    else:
        result = "error"
    detail = ""
    if result == "error":
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        check = [ln for ln in lines if "IMPORT CHECK FAILED" in ln]
        detail = (check or lines[-1:] or [f"exit code {code}"])[0]
    if keep:
        detail = (detail + f" (copy kept at {copy})").strip()
    return Outcome(mutant, result, seconds, code, failed, detail)


# --------------------------------------------------------------------------- report
def table(outcomes: list[Outcome]) -> str:
    rows = ["| id | file | result | seconds | failing tests / note |",
            "|---|---|---|---:|---|"]
    for o in outcomes:
        m = o.mutant
        note = o.detail
        if o.result == "caught" and o.failed_tests:
            names = list(dict.fromkeys(t.split("::")[-1].split("[")[0] for t in o.failed_tests))
            note = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        if m.equivalent:
            note = f"equivalent: {m.reason}" if o.result == "equivalent" else (
                f"LISTED AS EQUIVALENT BUT {o.result.upper()}: {note}")
        rows.append(f"| {m.id} | {m.file} | {o.result} | {o.seconds:.1f} | {note} |")
    return "\n".join(rows)


def summary(outcomes: list[Outcome]) -> tuple[str, bool]:
    counted = [o for o in outcomes if not o.mutant.equivalent]
    caught = sum(o.result == "caught" for o in counted)
    survived = [o.mutant.id for o in counted if o.result == "survived"]
    errors = [o.mutant.id for o in counted if o.result == "error"]
    equivalent = len(outcomes) - len(counted)
    text = (f"{len(outcomes)} mutants: {caught} caught, {len(survived)} survived, "
            f"{len(errors)} error, {equivalent} equivalent (not counted); "
            f"score {caught}/{len(counted)}")
    if survived:
        text += f"\nSURVIVED (the tests let these mistakes through): {', '.join(survived)}"
    if errors:
        text += f"\nERROR (no verdict): {', '.join(errors)}"
    odd = [o.mutant.id for o in outcomes if o.mutant.equivalent and o.result != "equivalent"]
    if odd:
        text += f"\nlisted as equivalent but not surviving (check the claim): {', '.join(odd)}"
    return text, not survived and not errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/mutate.py",
        description="Apply each mutant of tools/mutants.yaml alone to a temporary copy of the "
        "project, run its tests there and report caught / survived / error.")
    parser.add_argument("--spec", type=Path, default=SPEC, help="mutant list (YAML)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--workers", type=int, default=2, help="mutants run in parallel (2)")
    parser.add_argument("--list", action="store_true", help="check and list the mutants, run "
                        "nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs the tests (default: this one, the .venv)")
    args = parser.parse_args(argv)
    try:
        defaults, mutants = load_spec(args.spec, ROOT)
    except SpecError as error:
        print(f"[mutate] ERROR {error}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"[mutate] ERROR unknown mutant ids: {unknown}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            flag = " [equivalent]" if m.equivalent else ""
            print(f"{m.id:36s} {m.file:26s} {m.what}{flag}")
        return 0
    pytest_args = [str(a) for a in defaults.get("pytest_args", ["-q"])]
    timeout = float(defaults.get("timeout", 900))
    files = project_files(ROOT)
    say(f"{len(mutants)} mutants from {args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec}; "
        f"{len(files)} project files per copy; {args.workers} worker(s); python {args.python}")

    union = list(dict.fromkeys(t for m in mutants for t in m.tests))
    say(f"baseline: the unmutated copy must pass {' '.join(union)}")
    base = run_one(ROOT, files, None, union, pytest_args, timeout, args.python, args.keep)
    if base.returncode != 0:
        print(f"[mutate] ERROR the baseline (no mutant) does not pass (exit {base.returncode}):"
              f" {base.detail or ', '.join(base.failed_tests)}; fix the suite first",
              file=sys.stderr)
        return 2
    say(f"baseline passes ({base.seconds:.1f}s), imports checked inside the copy")

    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {pool.submit(run_one, ROOT, files, m, m.tests, pytest_args, timeout,
                               args.python, args.keep): m for m in mutants}
        for number, future in enumerate(as_completed(futures), start=1):
            m = futures[future]
            outcome = future.result()
            outcomes[m.id] = outcome
            say(f"{number}/{len(mutants)} {m.id}: {outcome.result} ({outcome.seconds:.1f}s)")
    ordered = [outcomes[m.id] for m in mutants]
    print()
    print(table(ordered))
    print()
    text, ok = summary(ordered)
    print(text, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
