"""The supervisor's sessions with running containers: consoles (pty masters handed to
pyl-console), attached processes (forked here, stdio from pyl-attach), and the live view of
state, statistics and interfaces for pyl-info / pyl-ls. A mixin of Supervisor (supervisor.py)."""

from __future__ import annotations

import os
import selectors
import socket
from typing import Any

from lxctools.errors import PylError, WrongStateError
from lxctools.log import log
from lxctools.monitor.records import RING_SIZE, AttachSession, Client, ConsoleProxy, Supervised


TIOCGPTPEER = 0x5441  # _IO('T', 0x41), Linux 4.13: open a pty master's slave without a path


def open_peers(masters: list[int | None]) -> list[int]:
    """A slave fd of each pty, held by the supervisor for the container's life. A pty master
    reads EIO whenever no slave is open: before the tty's getty opens it, and each time getty
    respawns (a logout). pyl-console took that for the end and left, silently; lxc-console
    stays connected across a logout. The supervisor never reads these fds."""
    import fcntl
    peers = []
    for master in masters:
        if master is None:
            continue
        try:
            peers.append(fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
        except OSError as err:  # an older kernel: the console works, but ends at a logout
            log.debug("monitor", f"TIOCGPTPEER: {err.strerror}")
    return peers


class SessionOps:
    def op_console(self, client: Client, msg: dict, fds: list[int]) -> None:
        sup = self._require(msg["name"], "console")
        tty = int(msg.get("tty", -1))
        masters = [sup.console_master, *sup.tty_masters]
        if tty == -1:
            free = [i for i in range(1, len(masters)) if i not in sup.attached_ttys]
            tty = free[0] if free else 0
        if sup.adopted and all(m is None for m in masters):
            # The pty masters died with the supervisor that started it; no one can open them
            # again. "tty N does not exist (lxc.tty.max = 0)" would send the admin to the config.
            raise WrongStateError("cannot console: its console and ttys were lost when the supervisor "
                                  "that started it died", hint="a restart of the container brings them back")
        if tty < 0 or tty >= len(masters) or masters[tty] is None:
            raise WrongStateError(f"tty {tty} does not exist (lxc.tty.max = {len(masters) - 1}; 0 is the console)")
        if tty in sup.attached_ttys or (tty == 0 and sup.console_proxy is not None):
            raise PylError(f"tty {tty} is already in use by another pyl-console")
        if tty == 0:
            self._attach_console_proxy(client, sup)
            return
        # A tty: its master itself goes to the pyl-console (nothing of a tty is kept here).
        master = masters[tty]
        sup.attached_ttys.add(tty)
        try:
            self.sel.unregister(master)
        except (KeyError, ValueError):
            pass

        def release() -> None:
            sup.attached_ttys.discard(tty)
            if sup.name in self.containers and master is not None:
                try:
                    self.sel.register(master, selectors.EVENT_READ, ("console", sup))
                except (KeyError, ValueError, OSError):
                    pass

        client.on_close.append(release)
        self._reply(client, {"ok": True, "tty": tty, "backlog": ""}, fds=[master])

    def _attach_console_proxy(self, client: Client, sup: Supervised) -> None:
        """The console (tty 0) through a proxy pty, as LXC's monitor does: handing its master
        over (as for a tty) stopped the ring buffer and lxc.console.logfile for as long as a
        pyl-console was attached."""
        import tty as tty_modes
        proxy_master, proxy_slave = os.openpty()
        try:
            tty_modes.setraw(proxy_slave)  # bytes pass unchanged: the real terminal is the caller's
            os.set_blocking(proxy_slave, False)  # openpty's fds are close-on-exec already
            backlog = b"".join(sup.ring)
            proxy = ConsoleProxy(slave=proxy_slave)
            self.sel.register(proxy_slave, selectors.EVENT_READ, ("console-proxy", sup))
            sup.console_proxy = proxy  # tty 0 is in use while it is set
        except BaseException:
            os.close(proxy_master)
            os.close(proxy_slave)
            raise

        def release() -> None:
            if sup.console_proxy is proxy:
                self._close_console_proxy(sup)

        client.on_close.append(release)
        try:
            self._reply(client, {"ok": True, "tty": 0, "backlog": backlog.decode(errors="replace")[-4096:],
                                 "proxied": True}, fds=[proxy_master])
        finally:
            os.close(proxy_master)  # the pyl-console has its own copy now

    def _close_console_proxy(self, sup: Supervised) -> None:
        proxy, sup.console_proxy = sup.console_proxy, None
        if proxy is None:
            return
        try:
            self.sel.unregister(proxy.slave)
        except (KeyError, ValueError):
            pass
        os.close(proxy.slave)
        if proxy.dropped:
            log.info("monitor", f"{sup.name}: the pyl-console on the console did not read "
                                f"{proxy.dropped} bytes of its output (still in the log)")

    def _console_to_proxy(self, sup: Supervised, data: bytes) -> None:
        proxy = sup.console_proxy
        if proxy is None:
            return
        proxy.pending += data
        if len(proxy.pending) > proxy.PENDING_LIMIT:  # it stopped reading: keep the newest
            cut = len(proxy.pending) - proxy.PENDING_LIMIT
            proxy.pending, proxy.dropped = proxy.pending[cut:], proxy.dropped + cut
        self._flush_console_proxy(sup)

    def _flush_console_proxy(self, sup: Supervised) -> None:
        proxy = sup.console_proxy
        if proxy is None:
            return
        try:
            while proxy.pending:
                written = os.write(proxy.slave, proxy.pending)
                proxy.pending = proxy.pending[written:]
        except BlockingIOError:
            pass
        except OSError:  # EIO: the pyl-console closed its end; its connection's close follows
            proxy.pending = b""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if proxy.pending else 0)
        try:
            self.sel.modify(proxy.slave, events, ("console-proxy", sup))
        except (KeyError, ValueError):
            pass

    def _console_proxy_ready(self, sup: Supervised, mask: int) -> None:
        """The proxy's slave: keys typed in the pyl-console (to the console), or room for the
        output it has yet to take."""
        proxy = sup.console_proxy
        if proxy is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush_console_proxy(sup)
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(proxy.slave, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pyl-console is gone
            data = b""
        if not data:
            self._close_console_proxy(sup)
            return
        if sup.console_master is not None:
            try:
                os.write(sup.console_master, data)
            except OSError:  # a console that takes no input now: keys are dropped, as a full tty's
                pass

    def op_console_winch(self, client: Client, msg: dict, fds: list[int]) -> None:
        """The pyl-console's window changed: the proxy pty has its new size; the console takes it."""
        import fcntl
        import termios
        sup = self._require(msg["name"], "console")
        if sup.console_proxy is not None and sup.console_master is not None:
            size = fcntl.ioctl(sup.console_proxy.slave, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(sup.console_master, termios.TIOCSWINSZ, size)
        self._reply(client, {"ok": True})

    def _open_console_log(self, sup: Supervised) -> str | None:
        """Open lxc.console.logfile; a warning for the one who started it if that failed (the
        container runs on without a log, as LXC's does)."""
        path = sup.values.get("lxc.console.logfile")
        if path:
            try:
                sup.console_log = os.open(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:
                log.error("monitor", f"{sup.name}: cannot open console log {path}: {err.strerror}")
                return f"the console is not logged: cannot open {path}: {err.strerror}"
        return None

    def _console_readable(self, sup: Supervised, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the slave side is closed (no one in the container holds it)
            data = b""
        if not data:
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
            return
        if fd != sup.console_master:
            return  # tty output nobody is attached to: dropped (gettys redraw their prompt)
        sup.ring.append(data)
        sup.ring_bytes += len(data)
        while sup.ring_bytes > RING_SIZE and sup.ring:
            sup.ring_bytes -= len(sup.ring.popleft())
        if sup.console_log is not None:
            try:
                os.write(sup.console_log, data)
            except OSError:
                pass
        self._console_to_proxy(sup, data)

    # ---- signals, exits, teardown --------------------------------------------------------------

    def op_info(self, client: Client, msg: dict, fds: list[int]) -> None:
        """State, init PID, cgroup statistics and interfaces of running containers, in one
        round trip: pyl-info and pyl-ls --fancy ask here instead of importing the cgroup and
        netlink code themselves (the supervisor has it loaded already)."""
        from dataclasses import asdict
        from lxctools.runtime import cgroups
        names = msg.get("names") or sorted(self.containers)
        result: dict[str, Any] = {}
        for name in names:
            sup = self.containers.get(name)
            if sup is None:
                continue
            entry: dict[str, Any] = {"state": str(sup.state), "pid": sup.pid}
            if msg.get("stats", True) and sup.cgroup_plan is not None:
                try:
                    entry["stats"] = asdict(cgroups.stats(sup.cgroup_plan))
                except (PylError, OSError) as err:
                    entry["stats_error"] = str(err)
            net = msg.get("net", True)
            if net:
                try:
                    if net == "addresses":  # pyl-ls's IPV4/IPV6 columns: one dump, not two
                        entry["addresses"] = self._netinfo(sup, "addresses")
                    else:
                        entry["interfaces"] = self._netinfo(sup, "interfaces")
                except (PylError, OSError) as err:
                    entry["net_error"] = str(err)
            result[name] = entry
        self._reply(client, {"ok": True, "containers": result})

    def op_cgroup(self, client: Client, msg: dict, fds: list[int]) -> None:
        """pyl-cgroup: read KEY of a running container's cgroup, or write VALUE to it. Here, not
        in the client: the supervisor has the container's cgroup paths and the cgroup code
        loaded (the client would import it: ~25 ms of a ~40 ms pyl-cgroup on a 2-vCPU VM)."""
        from lxctools.errors import UsageError
        from lxctools.runtime import cgroups
        sup = self._require(msg.get("name"), "cgroup")
        key, value = msg.get("key"), msg.get("value")
        if not isinstance(key, str) or not (value is None or isinstance(value, str)):
            raise UsageError("a cgroup request needs a key, and a value if it writes")
        plan = self._cgroup_plan(sup)
        if value is None:
            self._reply(client, {"ok": True, "value": cgroups.read_value(plan, key)})
        else:
            cgroups.write_value(plan, key, value)
            self._reply(client, {"ok": True})

    def op_pids(self, client: Client, msg: dict, fds: list[int]) -> None:
        """pyl-ps: the PIDs in the cgroups (and sub-cgroups, host view) of the running
        containers NAMES, in one round trip, {name: pids}; one that is not running, or whose
        cgroup went meanwhile, is left out (container.cgroup_pids_of)."""
        from lxctools.runtime import cgroups
        found: dict[str, list[int]] = {}
        for name in msg.get("names") or ():
            sup = self.containers.get(name) if isinstance(name, str) else None
            if sup is None:
                continue
            try:
                found[name] = cgroups.procs(self._cgroup_plan(sup))
            except (PylError, OSError):
                continue
        self._reply(client, {"ok": True, "pids_of": found})

    @staticmethod
    def _cgroup_plan(sup: Supervised):
        from lxctools.runtime import cgroups
        if sup.cgroup_plan is not None:
            return sup.cgroup_plan
        # adopted, and its cgroup paths could not be rebuilt then
        return cgroups.plan_from_existing(sup.name, cgroups.detect_layout(), pid=sup.pid)

    def _netinfo(self, sup: Supervised, what: str):
        """netinfo.query of the container, through the socket kept in its network namespace
        (reopened once if it went stale)."""
        from lxctools.runtime import netinfo
        for attempt in (1, 2):
            if sup.netinfo_sock is None:
                sup.netinfo_sock = netinfo.open_socket_in(sup.pid)
            try:
                return netinfo.query(sup.netinfo_sock, what)
            except (OSError, PylError):
                sup.netinfo_sock.close()
                sup.netinfo_sock = None
                if attempt == 2:
                    raise
        return []

    def op_attach(self, client: Client, msg: dict, fds: list[int]) -> None:
        """Fork the attach child here, where the cgroup, security plan and imports are ready,
        with the caller's stdio (or a pty made inside the container, sent back to the caller)."""
        from lxctools.runtime.attach import ATTACH_NAMESPACES, AttachSpec, spawn_attached
        sup = self._require(msg["name"], "attach")
        elevated = frozenset(msg.get("elevated") or ())
        pty = bool(msg.get("pty"))
        if not pty and len(fds) < 3:
            raise PylError("attach needs the caller's stdin, stdout and stderr")
        if sup.security_plan is None:
            from lxctools.runtime import security
            sup.security_plan = security.plan_security(sup.values)
        spec = AttachSpec(
            pid=sup.pid, values=sup.values, command=msg.get("command") or None,
            namespaces=tuple(msg.get("namespaces") or ATTACH_NAMESPACES), elevated=elevated,
            uid=msg.get("uid"), gid=msg.get("gid"), env=msg.get("env") or {},
            clear_env=bool(msg.get("clear_env", True)), keep_vars=tuple(msg.get("keep_vars") or ()),
            cwd=msg.get("cwd"), pty=pty, cgroup_plan=None if "CGROUP" in elevated else sup.cgroup_plan,
            caller_env=msg.get("caller_env") or {}, stdio=None if pty else (fds[0], fds[1], fds[2]),
            security_plan=sup.security_plan)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            child = spawn_attached(spec, theirs)
        finally:
            theirs.close()
            for fd in fds:
                os.close(fd)
            fds.clear()
        session = AttachSession(client=client, child=child, report=ours)
        self.attached[child] = session
        ours.setblocking(False)
        self.sel.register(ours, selectors.EVENT_READ, ("attach", session))

    def _attach_report(self, session: AttachSession) -> None:
        """Relay what the attach child says: its command's PID, a pty master, or an error."""
        try:
            data, anc, _flags, _addr = session.report.recvmsg(4096, socket.CMSG_SPACE(4))
        except BlockingIOError:
            return
        except OSError:
            data, anc = b"", []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                import array
                fd = array.array("i", payload[:4])[0]
                self._reply(session.client, {"event": "pty"}, fds=[fd])
                os.close(fd)
        if not data:
            try:
                self.sel.unregister(session.report)
            except (KeyError, ValueError):
                pass
            session.report.close()
            return
        session.buffer += data
        while b"\n" in session.buffer:
            line, _, session.buffer = session.buffer.partition(b"\n")
            text = line.decode(errors="replace")
            if text.startswith("pid "):
                self._reply(session.client, {"event": "started", "pid": int(text.split()[1])})
            elif text.startswith("error "):
                self._reply(session.client, {"event": "error", "error": text[6:]})

    def _attach_exited(self, session: AttachSession, code: int) -> None:
        # Relay what the report socket still holds (an error line) before the exit status.
        if session.report.fileno() != -1:
            self._attach_report(session)
            if session.report.fileno() != -1:
                try:
                    self.sel.unregister(session.report)
                except (KeyError, ValueError):
                    pass
                session.report.close()
        self._reply(session.client, {"event": "exit", "status": 128 - code if code < 0 else code})
