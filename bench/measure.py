"""How one number is measured: hyperfine for short commands, a wall clock for sequences.

Every timed command is first run once untimed (prepare, then the command) so a tool that is
missing or failing yields a reason instead of a number. Rounds alternate the two tools
(LXC, pyl, pyl, LXC, ...) so a drift of the machine affects both alike.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from tools import COMMAND_TIMEOUT, Tool, first_error_line


class NotAvailable(Exception):
    """The operation cannot be measured for this tool; str() is the reason shown in the table."""


@dataclass
class Sample:
    """The values one tool produced for one operation (seconds, or KiB for memory)."""

    values: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values and not self.error else None


@dataclass(frozen=True)
class Timed:
    """One operation as a tool runs it: `argv` is timed, `prepare` puts the state back."""

    argv: list[str]
    prepare: list[list[str]] = field(default_factory=list)
    shell: bool = False  # argv is one shell string (needed for fd redirections)


def _sh(commands: list[list[str]]) -> str:
    """Prepare steps as one `sh -c` line; failures are ignored (e.g. stop of a stopped one)."""
    return "sh -c " + shlex.quote("; ".join(shlex.join(c) + " >/dev/null 2>&1" for c in commands) + "; true")


ROUND_BUDGET = 6.0  # seconds per tool and round: slow commands get fewer runs


def check_once(tool: Tool, timed: Timed) -> float:
    """Run prepare + command once, untimed; return its seconds, or raise NotAvailable with the
    tool's own message."""
    if not timed.shell and not tool.has(os.path.basename(timed.argv[0]).split("-", 1)[1]):
        raise NotAvailable(f"n/a ({os.path.basename(timed.argv[0])} not implemented yet)")
    for step in timed.prepare:
        tool.run(step)
    argv = ["sh", "-c", timed.argv[0]] if timed.shell else timed.argv
    began = time.perf_counter()
    proc = tool.run(argv)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        if "No module named 'lxctools.cli." in proc.stderr:
            raise NotAvailable("n/a (not implemented yet)")
        raise NotAvailable(f"n/a ({first_error_line(proc)})")
    return seconds


def hyperfine(tool: Tool, timed: Timed, runs: int, warmup: int) -> list[float]:
    """Per-run wall times in seconds from one hyperfine invocation."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup),
                "--style", "none", "--export-json", out.name]
        if timed.shell:
            argv += ["--shell", "sh", timed.argv[0]]
        else:
            argv += ["-N", shlex.join(timed.argv)]
        if timed.prepare:
            argv[1:1] = ["--prepare", _sh(timed.prepare)]
        try:
            proc = subprocess.run(argv, env=tool.env or None, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT * (runs + warmup) + 30)
        except subprocess.TimeoutExpired:
            raise NotAvailable("n/a (timed out under hyperfine)") from None
        if proc.returncode != 0:
            raise NotAvailable(f"n/a ({first_error_line(proc)})")
        with open(out.name) as f:
            return list(json.load(f)["results"][0]["times"])


def compare(tools: list[Tool], make: dict[str, Timed | None], rounds: int, runs: int,
            warmup: int) -> dict[str, Sample]:
    """Time each tool's command in alternating rounds; a tool whose `make` entry is None or
    whose check fails gets its reason instead of numbers."""
    samples = {t.key: Sample() for t in tools}
    plan = {t.key: (runs, warmup) for t in tools}
    last_round = {t.key: rounds - 1 for t in tools}
    for tool in tools:
        timed = make.get(tool.key)
        if timed is None:
            samples[tool.key].error = "n/a (not implemented yet)"
            continue
        try:
            seconds = check_once(tool, timed)
        except NotAvailable as err:
            samples[tool.key].error = str(err)
            continue
        if seconds > ROUND_BUDGET:  # very slow: one timed run after the (warm-up) check run
            plan[tool.key], last_round[tool.key] = (1, 0), 0
        elif seconds * (runs + warmup) > ROUND_BUDGET:  # the check run was the warm-up
            plan[tool.key] = (max(2, min(runs, int(ROUND_BUDGET / max(seconds, 1e-3)))), 0)
    for r in range(rounds):
        order = tools if r % 2 == 0 else list(reversed(tools))
        for tool in order:
            sample = samples[tool.key]
            if sample.error or r > last_round[tool.key]:
                continue
            try:
                sample.values += hyperfine(tool, make[tool.key], *plan[tool.key])
            except NotAvailable as err:
                sample.error = str(err)
    return samples


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def poll_until(predicate, timeout: float, interval: float = 0.01) -> float | None:
    """Seconds until predicate() is true, or None after `timeout`."""
    start = time.perf_counter()
    while True:
        if predicate():
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            return None
        time.sleep(interval)
