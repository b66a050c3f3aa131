"""kernel.signals.restore_defaults: what a process forked from the supervisor hands on to exec."""

from __future__ import annotations

import os
import signal

from lxctools.kernel import signals


def _in_child(body) -> int:
    """Run BODY in a forked child; its wait status."""
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


def test_a_signal_held_back_since_the_fork_meets_the_default_action_not_a_handler() -> None:
    # A start's PID 1 is cloned with every signal blocked and the supervisor's handlers: one
    # sent meanwhile must act as it would on the container's process (SIGUSR1: terminate),
    # neither run the supervisor's handler nor vanish into it.
    def body() -> None:
        ran = []
        signal.signal(signal.SIGUSR1, lambda *_: ran.append(1))
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        os.kill(os.getpid(), signal.SIGUSR1)
        signals.restore_defaults()
        os._exit(3 if ran else 4)  # reached only if the signal did not terminate this process

    status = _in_child(body)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGUSR1, status


def test_ignored_and_blocked_signals_go_back_to_their_defaults() -> None:
    def body() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGQUIT, signal.SIGUSR2})
        signals.restore_defaults()
        clean = (signal.getsignal(signal.SIGHUP) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
                 and not signal.pthread_sigmask(signal.SIG_BLOCK, ()))
        os._exit(0 if clean else 5)

    status = _in_child(body)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
