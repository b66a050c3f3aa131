"""LXC-style logging for pyl: -o FILE and -l LEVEL, one line per event, no `logging` import cost.

Format follows LXC: `pyl-start c1 20261127203801.123 ERROR    start - message`.
Errors shown to the user are printed once by the CLI; this log is the detailed trail.
"""

from __future__ import annotations

import os
import sys
import time

LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "NOTICE": 3, "WARN": 4, "WARNING": 4, "ERROR": 5,
          "CRIT": 6, "ALERT": 7, "FATAL": 8}
LEVEL_NAMES = ["TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL"]


class Log:
    def __init__(self) -> None:
        self.prog = "pyl"
        self.name = ""
        self.level = LEVELS["ERROR"]
        self.fd: int | None = None

    def configure(self, prog: str, name: str | None, logfile: str | None, level: str | None) -> None:
        self.prog = prog
        self.name = name or ""
        if level is not None:
            self.level = parse_level(level)
        if logfile and logfile != "none":
            if logfile == "-":
                self.fd = os.dup(2)
                return
            try:
                self.fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            except OSError as err:
                from lxctools.errors import UsageError
                raise UsageError(f"cannot open log file '{logfile}': {err.strerror}") from None

    def _emit(self, level: int, category: str, message: str) -> None:
        if self.fd is None or level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        line = f"{self.prog} {self.name} {stamp} {LEVEL_NAMES[level]:<8} {category} - {message}\n"
        try:
            os.write(self.fd, line.encode())
        except OSError:
            pass

    def trace(self, category: str, message: str) -> None:
        self._emit(0, category, message)

    def debug(self, category: str, message: str) -> None:
        self._emit(1, category, message)

    def info(self, category: str, message: str) -> None:
        self._emit(2, category, message)

    def warn(self, category: str, message: str) -> None:
        self._emit(4, category, message)

    def error(self, category: str, message: str) -> None:
        self._emit(5, category, message)


def parse_level(text: str) -> int:
    key = text.strip().upper()
    if key.isdigit() and int(key) < len(LEVEL_NAMES):
        return int(key)
    if key not in LEVELS:
        from lxctools.errors import UsageError
        raise UsageError(f"invalid log priority '{text}' (one of {', '.join(LEVEL_NAMES)})")
    return LEVELS[key]


def warn_user(prog: str, message: str) -> None:
    """A warning the user should see (not an error): one line on stderr."""
    sys.stderr.write(f"{prog}: warning: {message}\n")


log = Log()
