"""Signal dispositions for a process on its way to exec a container's (or a template's) code."""

import _signal  # not `signal`: that one imports enum (~3 ms of a pyl-create)


def restore_defaults() -> None:
    """Every signal back to its default action and none blocked. An ignored signal and the
    signal mask survive exec, and a process forked by pyl carries plenty of both: CPython
    ignores SIGPIPE and SIGXFSZ, and the supervisor keeps whatever its own starter ignored or
    blocked (SIGHUP under nohup, SIGINT and SIGQUIT in a non-interactive shell's background
    job). A container's processes must not inherit a cron job's or a shell's choices.
    A handler (a Python function) needs no reset for exec, but would run the supervisor's
    code here before it, so it goes too."""
    for sig in _signal.valid_signals():
        if _signal.getsignal(sig) != _signal.SIG_DFL:
            try:
                _signal.signal(sig, _signal.SIG_DFL)
            except (OSError, ValueError):  # SIGKILL, SIGSTOP and the like: never anything else
                pass
    # Unblocked last: a signal held back since the fork (start blocks them all around its
    # clone) meets the default action, never a handler of the supervisor's.
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
