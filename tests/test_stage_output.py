"""Quiet by default: a stage prints one line (live on a terminal), its full output goes to its
log, ``verbose`` prints everything; warnings and tables never reach the console."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time
import warnings

from analysis.data import io


def _stage():
    print("[demo] step one: a table follows")
    print("col_a  col_b\n  1.0    2.0")
    warnings.warn("a library warning", UserWarning, stacklevel=1)
    return 42


def test_quiet_stage_prints_one_line_and_logs_everything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path))
    code = io.run_stage("demo", _stage, verbose=False, record=False,
                        summary=lambda result: f"answer {result}")
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines() == [out.splitlines()[0]] and out.startswith("[demo] done in ")
    assert out.rstrip().endswith(": answer 42")
    log = (tmp_path / "demo.log").read_text()
    assert "step one" in log and "col_a  col_b" in log and "a library warning" in log
    assert log.rstrip().splitlines()[-1] == out.strip()


def test_verbose_prints_what_the_stage_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path))
    assert io.run_stage("demo", _stage, verbose=True, record=False) == 0
    out, err = capsys.readouterr()
    assert "col_a  col_b" in out and "a library warning" in err


def test_an_unexpected_error_is_one_line_with_the_log_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path))

    def broken():
        print("[demo] working")
        raise ZeroDivisionError("division by zero")

    assert io.run_stage("demo", broken, verbose=False, record=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError: division by zero" in err
    assert "demo.log" in err and "Traceback" in (tmp_path / "demo.log").read_text()


SCRIPT = """
import sys, time
from analysis.data import io
def act():
    for i in range(4):
        print(f"[demo] step {i}", flush=True)
        time.sleep(0.6)
sys.exit(io.run_stage("demo", act, record=False))
"""


def test_a_terminal_gets_one_live_line(tmp_path):
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=slave, stdout=slave,
                               stderr=slave, close_fds=True,
                               env={**os.environ, "PIPELINE_LOG_DIR": str(tmp_path)})
    os.close(slave)
    received = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.3)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk and process.poll() is not None:
                break
            received += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=30) == 0
    text = received.decode(errors="replace").replace("\r\n", "\n")
    updates = text.split("\r")
    assert any("[demo] 00:0" in u and "step 2" in u for u in updates), updates
    final = [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert final.startswith("[demo] done in ")
    assert text.count("\n") == 1  # one line: the live updates overwrite it in place
