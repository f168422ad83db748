#!/usr/bin/env python3
"""Run one command on a fresh pseudo-terminal and drive it from a script of JSON lines.

Why this exists: `moat run -t` only engages when moat's stdin is a terminal, and a test runner has none to
give. `script(1)` differs between util-linux and busybox, cannot resize the terminal and cannot tell whether
the terminal was left as it was found. This helper can: it is the terminal a user would be sitting at.

Usage: pty_helper.py [--rows N] [--cols N] [--timeout S] -- COMMAND [ARG...]

The command starts at once, as a session leader with the pty as its controlling terminal and as its
stdin/stdout/stderr, in the size given (default 24x80). Then each line read from stdin is one step, run in
order, and answered by one JSON line on stdout:

  {"write": "text"}                    write the text (UTF-8) to the terminal, as typed keys; "\\u0003" is ^C
  {"resize": [rows, cols]}             set the window size; the kernel sends SIGWINCH to the foreground group
  {"signal": "SIGTERM"}                send a signal to the command's process
  {"wait": seconds}                    sleep, reading output meanwhile
  {"expect": "regex", "timeout": s}    wait until the output after the previous match matches
  {"termios": true}                    report the terminal's mode now: {"raw": bool, "icanon", "echo", "isig"}

A step that fails (an expect that times out, a bad line) ends the script: the command gets SIGTERM and the
remaining steps are skipped. At the end of stdin the helper waits for the command to exit (--timeout, then
SIGTERM, then SIGKILL) and prints a last line:

  {"done": true, "exit": code or null, "signal": number or null, "restored": bool, "changed": [termios fields
   that differ from before the start], "output": everything the command wrote, "timed_out": bool,
   "aborted": reason or null}

Standard library only; Linux.
"""

import argparse
import fcntl
import json
import os
import re
import select
import signal
import struct
import sys
import termios
import threading
import time

TERMIOS_FIELDS = ["iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed", "cc"]


class Terminal:
    """The master side of a pty with a command on the slave side, and everything the command wrote."""

    def __init__(self, argv, rows, cols):
        self.master, self.slave = os.openpty()
        self.set_size(rows, cols)
        # The parent keeps the slave open: to read its termios after the command exits, and so the master
        # never reports a hangup while a step is still waiting.
        self.before = termios.tcgetattr(self.slave)
        self.output = bytearray()
        self.status = None  # os.waitpid status once the command has exited
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.pid = os.fork()
        if self.pid == 0:
            self._child(argv)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._reap, daemon=True).start()

    def _child(self, argv):
        try:
            os.setsid()
            fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(self.slave, fd)
            os.close(self.master)
            os.close(self.slave)
            os.execvp(argv[0], argv)
        except BaseException as e:  # noqa: BLE001 - the child must never return into the parent's code
            os.write(2, f"pty_helper: cannot run {argv[0]}: {e}\n".encode())
        os._exit(127)

    def _read(self):
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.cond:
                self.output += data
                self.cond.notify_all()

    def _reap(self):
        _, status = os.waitpid(self.pid, 0)
        with self.cond:
            self.status = status
            self.cond.notify_all()

    def text(self):
        return self.output.decode("utf-8", errors="replace")

    def set_size(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def mode(self):
        lflag = termios.tcgetattr(self.slave)[3]
        flags = {name: bool(lflag & getattr(termios, name.upper())) for name in ("icanon", "echo", "isig")}
        return {"raw": not any(flags.values()), **flags}

    def wait_exit(self, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.status is not None, timeout)

    def kill(self, sig):
        if self.status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def drain(self):
        """After the exit: wait until the output has been quiet for 0.2 s (at most 2 s)."""
        end = time.monotonic() + 2
        seen = -1
        while len(self.output) != seen and time.monotonic() < end:
            seen = len(self.output)
            time.sleep(0.2)
        self.stop.set()


def run_step(term, step, cursor):
    """Run one step; returns (report, new cursor). The report has "ok": false when the step failed."""
    if "write" in step:
        os.write(term.master, step["write"].encode("utf-8"))
    elif "resize" in step:
        rows, cols = step["resize"]
        term.set_size(rows, cols)
    elif "signal" in step:
        term.kill(getattr(signal, step["signal"]))
    elif "wait" in step:
        time.sleep(step["wait"])
    elif "expect" in step:
        pattern = re.compile(step["expect"])
        deadline = time.monotonic() + step.get("timeout", 10)
        exited_at = None
        with term.cond:
            while True:
                found = pattern.search(term.text(), cursor)
                if found:
                    return {"ok": True, "match": found.group(0), "groups": found.groups()}, found.end()
                now = time.monotonic()
                if term.status is not None and exited_at is None:
                    exited_at = now
                if now >= deadline:
                    return {"ok": False, "error": "timed out", "after": term.text()[cursor:]}, cursor
                # After the exit, only output already on its way can still come.
                if exited_at is not None and now - exited_at > 0.5:
                    return {"ok": False, "error": "the command exited", "after": term.text()[cursor:]}, cursor
                term.cond.wait(min(deadline - now, 0.1))
    elif "termios" in step:
        return {"ok": True, **term.mode()}, cursor
    else:
        return {"ok": False, "error": "unknown step"}, cursor
    return {"ok": True}, cursor


def main():
    parser = argparse.ArgumentParser(description="Drive a command on a pseudo-terminal (see the module doc).")
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--cols", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for the exit after the script")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()

    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    term = Terminal(args.command, args.rows, args.cols)
    cursor = 0
    aborted = None
    for n, line in enumerate(sys.stdin):
        if not line.strip():
            continue
        if aborted is not None:
            emit({"step": n, "ok": False, "skipped": True})
            continue
        try:
            step = json.loads(line)
            report, cursor = run_step(term, step, cursor)
        except Exception as e:  # noqa: BLE001 - a bad step is reported, not a crash of the helper
            step, report = line.strip(), {"ok": False, "error": repr(e)}
        emit({"step": n, **report})
        if not report["ok"]:
            aborted = f"step {n} failed: {json.dumps(step)}"
            term.kill(signal.SIGTERM)

    timed_out = not term.wait_exit(args.timeout)
    if timed_out:
        term.kill(signal.SIGTERM)
        if not term.wait_exit(5):
            term.kill(signal.SIGKILL)
            term.wait_exit(None)
    term.drain()
    after = termios.tcgetattr(term.slave)
    changed = [name for name, a, b in zip(TERMIOS_FIELDS, term.before, after) if a != b]
    status = term.status
    emit({
        "done": True,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "restored": not changed,
        "changed": changed,
        "output": term.text(),
        "timed_out": timed_out,
        "aborted": aborted,
    })


if __name__ == "__main__":
    main()
