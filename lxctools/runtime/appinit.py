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
        # Kept referenced until os._exit: a Popen object that is collected polls its child with
        # waitpid(WNOHANG) and, if the command has already exited, reaps it, which left the loop
        # below with nothing to wait for and exit status 0 (1 execute in 4 with stdio closed).
        command = subprocess.Popen(argv, executable=path, env=env, restore_signals=True)
    except OSError as err:
        code = 127 if err.errno == 2 else 126  # the shell's convention, as lxc-execute
        sock.sendall(f"error@{code} cannot run '{argv[0]}': {err.strerror}\n".encode())
        sock.close()
        os._exit(code)
    sock.close()  # the supervisor sees EOF: the container is RUNNING

    child = command.pid

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    os._exit(wait_for_command(child))


def wait_for_command(child: int) -> int:
    """Reap children until the command exits; its status, 128+N for a signal. Orphans die with
    PID 1 anyway (the kernel kills the namespace), so the others are reaped only on the way."""
    while True:
        try:
            pid, wstatus = os.waitpid(-1, 0)
        except ChildProcessError:
            # The command was reaped by someone else: its status is lost, and 0 would be a lie.
            return 1
        if pid == child:
            status = os.waitstatus_to_exitcode(wstatus)
            return 128 - status if status < 0 else status
