"""The small init of an application container (pyl-execute): PID 1 runs the command as its child,
forwards signals to it, reaps every orphan, and exits with the command's status (128+N for a
signal), the way lxc-execute's init does."""

from __future__ import annotations

import os
import signal
import socket

FORWARDED = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGPWR, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM]


def run_app_init(argv: list[str], env: dict[str, str], sock: socket.socket) -> None:
    """Never returns."""
    from lxctools.kernel.ns import set_process_name
    set_process_name("pyl-init")
    path = argv[0]
    if "/" not in path:  # the container's PATH, not ours
        for folder in env.get("PATH", "").split(":"):
            if os.access(os.path.join(folder, path), os.X_OK):
                path = os.path.join(folder, path)
                break
    # Not os.fork() + exec: subprocess starts the child with vfork() (CPython 3.10+), so nothing
    # of this large Python process is copied (~2-5 ms of an execute here); a failed exec comes
    # back here as the exception. Not os.posix_spawn(): glibc's leaves its two internal signals
    # (32, 33) ignored in the command, which inherits that across exec. restore_signals resets
    # SIGPIPE and SIGXFSZ; handled signals go back to their defaults with the exec; close_fds
    # (the default) leaves the command stdin, stdout and stderr only, as lxc-execute's init.
    import subprocess
    try:
        child = subprocess.Popen(argv, executable=path, env=env, restore_signals=True).pid
    except OSError as err:
        code = 127 if err.errno == 2 else 126  # the shell's convention, as lxc-execute
        sock.sendall(f"error@{code} cannot run '{argv[0]}': {err.strerror}\n".encode())
        sock.close()
        os._exit(code)
    sock.close()  # the supervisor sees EOF: the container is RUNNING

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    status = 0
    while True:
        try:
            pid, wstatus = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(wstatus)
            status = 128 - status if status < 0 else status
            # Orphans die with PID 1 anyway (the kernel kills the namespace); reap what's quick.
            break
    os._exit(status)
