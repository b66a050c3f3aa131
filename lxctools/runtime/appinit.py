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
    read_fd, write_fd = os.pipe()  # exec-failure report from the command's child
    os.set_inheritable(write_fd, False)
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        try:
            path = argv[0]
            if "/" not in path:
                for folder in env.get("PATH", "").split(":"):
                    if os.access(os.path.join(folder, path), os.X_OK):
                        path = os.path.join(folder, path)
                        break
            os.execve(path, argv, env)
        except OSError as err:
            os.write(write_fd, f"{err.errno} {err.strerror}".encode())
            os._exit(127 if err.errno == 2 else 126)
    os.close(write_fd)
    failure = os.read(read_fd, 256).decode()
    os.close(read_fd)
    if failure:
        errno, _, text = failure.partition(" ")
        code = 127 if errno == "2" else 126  # the shell's convention, as lxc-execute
        sock.sendall(f"error@{code} cannot run '{argv[0]}': {text}\n".encode())
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
