"""pyl-console: attach this terminal to a container's console or one of its ttys."""

from __future__ import annotations

HELP = """Connect to a container's tty (-t N, 1..lxc.tty.max) or console (-t 0).
Type Ctrl-a q to detach (the container goes on), Ctrl-a Ctrl-a for a literal Ctrl-a; -e changes
the prefix (-e '^b' or -e b). The console's recent output (ring buffer) is shown on connect.
At the end of its input (stdin not a terminal: `pyl-console -n c1 </dev/null`, a pipe that was
read to its end) it detaches too, as lxc-console does, after showing the output already there."""
NEEDS_NAME = True
NAME_STATES = "console"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    parser.add_argument("-t", "--tty", type=int, default=-1, help="tty number (0 = console; default: first free)")
    parser.add_argument("-e", "--escape", default="a", help="escape prefix letter (default a = Ctrl-a)")


def escape_code(text: str) -> int:
    from lxctools.errors import UsageError
    text = text.removeprefix("^")
    if len(text) != 1 or not (text.isascii() and text.isalpha()):  # Ctrl-é is no control code
        raise UsageError(f"invalid escape '{text}' (a letter, optionally written ^x)")
    return ord(text.lower()) - ord("a") + 1


def run(args, ctx) -> int:
    attach_console(ctx, ctx.container(args.name), tty=args.tty, escape=args.escape, until_stopped=False)
    return 0


def attach_console(ctx, container, *, tty: int, escape: str | None, until_stopped: bool) -> None:
    import os
    import sys
    from lxctools.errors import PylError
    from lxctools.monitor.client import connect
    from lxctools.terminal import EscapeFilter, proxy

    prefix = escape_code("a" if escape is None else escape)  # -e '' is a typo, not Ctrl-a
    container.require_state("console")
    conn = connect(container.layout)
    reply = conn.request({"op": "console", "name": container.name, "tty": tty})
    fds = conn.reader.take_fds()
    if not fds:
        raise PylError("the supervisor sent no terminal")
    master = fds[0]
    letter = chr(prefix + ord("a") - 1)
    if not until_stopped:
        sys.stderr.write(f"\nConnected to tty {reply['tty']}\n"
                         f"Type <Ctrl+{letter} q> to exit the console, <Ctrl+{letter} Ctrl+{letter}> "
                         f"to enter Ctrl+{letter} itself\n")
        sys.stderr.flush()
    if reply.get("backlog"):
        os.write(1, reply["backlog"].encode())
    # pyl-start -F keeps the console until the container stops: no escape key there.
    escape_filter = None if until_stopped else EscapeFilter(prefix)

    def resized() -> None:
        # The console's master stays with the supervisor (it logs the console): it copies the
        # size of our proxy pty onto it. The reply is read, and dropped, by the control loop.
        conn.send({"op": "console_winch", "name": container.name})

    try:
        proxy(master, control=conn.sock.fileno(), on_control=conn.reader.fill, filter_input=escape_filter,
              detach_at_eof=not until_stopped, on_resize=resized if reply.get("proxied") else None)
        if escape_filter is not None and escape_filter.pending:
            os.write(master, escape_filter.pending)
    finally:
        os.close(master)
        conn.close()
