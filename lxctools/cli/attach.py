"""pyl-attach: run a command (or a login shell) inside a running container."""

from __future__ import annotations

HELP = """Run COMMAND inside a running container, in its namespaces, cgroup and confinement.

  pyl-attach -n c1                     login shell of the user (container's /etc/passwd)
  pyl-attach -n c1 -- cat /etc/hostname > out
  echo data | pyl-attach -n c1 -- sh -c 'cat > /tmp/f'

Exit status is the command's (128+N for a signal, 127 not found, 126 not executable).
Differences from lxc-attach, on purpose: --clear-env is the DEFAULT (host variables such as
HOME, HISTFILE, SSH_AUTH_SOCK never leak in; --keep-env restores LXC's behaviour); a pty is
allocated inside the container's own devpts only when stdin is a terminal (--no-pty/--pty to
force), so pipes and redirections are byte-exact with stdout and stderr kept apart."""
NEEDS_NAME = True
NAME_STATES = "attach"
TAKES_COMMAND = True


def add_arguments(parser) -> None:
    parser.add_argument("-e", "--elevated-privileges", nargs="?", const="CAP|CGROUP|LSM", default=None,
                        metavar="PRIVS", help="keep privileges: CAP, CGROUP, LSM (| separated; default all)")
    parser.add_argument("-s", "--namespaces", help="only these namespaces: MOUNT|PID|UTSNAME|IPC|USER|NETWORK|CGROUP (implies -e)")
    parser.add_argument("-R", "--remount-sys-proc", action="store_true", help="accepted for LXC compatibility")
    env = parser.add_mutually_exclusive_group()
    env.add_argument("--clear-env", action="store_true", help="start from an empty environment (default)")
    env.add_argument("--keep-env", action="store_true", help="pass this process's environment (LXC's default)")
    parser.add_argument("--keep-var", action="append", default=[], metavar="VAR", help="keep VAR with --clear-env")
    parser.add_argument("-v", "--set-var", action="append", default=[], metavar="VAR=VALUE", help="set a variable")
    parser.add_argument("-u", "--uid", type=int, help="run as this uid")
    parser.add_argument("-g", "--gid", type=int, help="run as this gid")
    pty = parser.add_mutually_exclusive_group()
    pty.add_argument("--pty", dest="pty", action="store_true", default=None, help="always allocate a pty")
    pty.add_argument("--no-pty", dest="pty", action="store_false", help="never allocate a pty")
    parser.add_argument("-L", "--pty-log", help="append the pty's traffic to FILE")
    parser.add_argument("-f", dest="rcfile_short", metavar="FILE", help="same as --rcfile")


def run(args, ctx) -> int:
    import os
    from lxctools.errors import UsageError
    elevated = frozenset()
    if args.elevated_privileges is not None:
        elevated = frozenset(p.strip().upper() for p in args.elevated_privileges.split("|") if p.strip())
        bad = elevated - {"CAP", "CGROUP", "LSM"}
        if bad:
            raise UsageError(f"unknown privilege '{sorted(bad)[0]}' (CAP, CGROUP, LSM)")
    from lxctools.cli.driver import check_ids
    check_ids(args.uid, args.gid)
    extra_env = {}
    for item in args.set_var:
        if "=" not in item:
            raise UsageError(f"-v needs VAR=VALUE, got '{item}'")
        key, _, value = item.partition("=")
        extra_env[key] = value
    return ctx.container(args.name).attach(
        command=args.command, rcfile=args.rcfile or args.rcfile_short, namespaces=args.namespaces,
        elevated=elevated, uid=args.uid, gid=args.gid, env=extra_env, clear_env=not args.keep_env,
        keep_vars=tuple(args.keep_var), pty=args.pty if args.pty is not None else os.isatty(0),
        pty_log=args.pty_log)
