"""pyl-console: attach this terminal to a container's console or one of its ttys."""

from __future__ import annotations

HELP = """Connect to a container's tty (-t N, 1..lxc.tty.max) or console (-t 0).
Type Ctrl-a q to detach (the container goes on), Ctrl-a Ctrl-a for a literal Ctrl-a; -e changes
the prefix (-e '^b' or -e b). The console's recent output (ring buffer) is shown on connect."""
NEEDS_NAME = True
NAME_STATES = "console"


def add_arguments(parser) -> None:
    parser.add_argument("-t", "--tty", type=int, default=-1, help="tty number (0 = console; default: first free)")
    parser.add_argument("-e", "--escape", default="a", help="escape prefix letter (default a = Ctrl-a)")


def escape_code(text: str) -> int:
    from lxctools.errors import UsageError
    text = text.removeprefix("^")
    if len(text) != 1 or not text.isalpha():
        raise UsageError(f"invalid escape '{text}' (a letter, optionally written ^x)")
    return ord(text.lower()) - ord("a") + 1


def run(args, ctx) -> int:
    attach_console(ctx, ctx.container(args.name), tty=args.tty, escape=args.escape, until_stopped=False)
    return 0


def attach_console(ctx, container, *, tty: int, escape: str | None, until_stopped: bool) -> None:
    import os
    import select
    import signal
    import sys
    import termios
    import tty as ttymod
    from lxctools.errors import PylError
    from lxctools.monitor.client import connect

    prefix = escape_code(escape or "a")
    container.require_state("console")
    conn = connect(container.layout)
    reply = conn.request({"op": "console", "name": container.name, "tty": tty})
    fds = conn.reader.take_fds()
    if not fds:
        raise PylError("the supervisor sent no terminal")
    master = fds[0]
    letter = chr(prefix + ord("a") - 1)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    is_tty = os.isatty(stdin)
    if not until_stopped:
        sys.stderr.write(f"\nConnected to tty {reply['tty']}\n"
                         f"Type <Ctrl+{letter} q> to exit the console, <Ctrl+{letter} Ctrl+{letter}> "
                         f"to enter Ctrl+{letter} itself\n")
        sys.stderr.flush()
    if reply.get("backlog"):
        os.write(stdout, reply["backlog"].encode())
    saved = termios.tcgetattr(stdin) if is_tty else None

    def resize(*_: object) -> None:
        if is_tty:
            import fcntl
            size = fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)

    old_winch = signal.signal(signal.SIGWINCH, resize)
    try:
        if is_tty:
            ttymod.setraw(stdin)
            resize()
        escaped = False
        stdin_open = True
        while True:
            watch = [master, conn.sock.fileno()] + ([stdin] if stdin_open else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return  # the container side is gone (stopped)
                os.write(stdout, data)
            if conn.sock.fileno() in ready:
                if not conn.reader.fill():
                    return  # supervisor closed our connection
            if stdin_open and stdin in ready:
                data = os.read(stdin, 4096)
                if not data:
                    stdin_open = False
                    continue
                out = bytearray()
                for byte in data:
                    if escaped:
                        escaped = False
                        if byte == ord("q"):
                            if out:
                                os.write(master, bytes(out))
                            return
                        out.append(byte)
                    elif byte == prefix and not until_stopped:
                        escaped = True
                    else:
                        out.append(byte)
                if out:
                    os.write(master, bytes(out))
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)
        conn.close()
