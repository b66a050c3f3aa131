"""pyl's supervisor: ONE process per lxcpath supervising all of its running containers.

Why one process and not LXC's one monitor per container: an idle Python process costs ~5 MB,
so per-container supervisors could never approach LXC's ~0.5 MB per container. This process is
a child subreaper (every container init is its child), holds the console and tty pty masters,
answers requests on LXCRUN/monitor.sock, broadcasts state changes, and tears down what a
container owned when its init dies.

Crash safety: for each container it holds LXCRUN/state/NAME.running locked and keeps
LXCRUN/state/NAME.json current. If it dies, the locks drop; containers keep running (reparented
to the host's init) and the next pyl command starts a new supervisor, which adopts them (pidfd +
start time) or cleans up after those that died meanwhile. Consoles are lost in that case
(pty masters cannot be re-opened); documented in the README.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lxctools.errors import PylError, WrongStateError
from lxctools.locking import try_flock
from lxctools.log import log
from lxctools.monitor import protocol
from lxctools.paths import Layout
from lxctools.state import ALLOWED, State, read_json, write_json_atomic

RING_SIZE = 128 * 1024
STARTUP_GRACE = 5.0


@dataclass(eq=False)
class Client:
    sock: socket.socket
    reader: protocol.Reader
    subscribed: re.Pattern | None = None
    closed: bool = False
    on_close: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Waiter:
    client: Client
    name: str
    states: frozenset[State]
    deadline: float | None
    reply: dict[str, Any] | None = None


@dataclass(eq=False)
class AttachSession:
    """One pyl-attach: the child the supervisor forked and the caller waiting for it."""
    client: Client
    child: int
    report: socket.socket
    buffer: bytes = b""


@dataclass(eq=False)
class Supervised:
    name: str
    pid: int
    starttime: int
    state: State
    values: dict[str, Any]
    config_file: str
    cgroup_plan: Any
    net_plans: tuple
    net_state: Any
    running_lock: int
    console_master: int | None = None
    tty_masters: list[int] = field(default_factory=list)
    ring: deque = field(default_factory=lambda: deque())
    ring_bytes: int = 0
    console_log: int | None = None
    pidfd: int | None = None          # only for adopted containers (not our children)
    adopted: bool = False
    stop_deadline: float | None = None
    stop_kill_sent: bool = False
    stop_waiters: list[Client] = field(default_factory=list)
    reboot: bool = False
    exec_client: Client | None = None
    attached_ttys: set[int] = field(default_factory=set)
    exit_status: int | None = None
    ephemeral: bool = False
    security_plan: Any = None
    netinfo_sock: Any = None          # NETLINK_ROUTE socket inside the container's netns


class Supervisor:
    def __init__(self, layout: Layout, linger: float) -> None:
        self.layout = layout
        self.linger = linger
        self.sel = selectors.DefaultSelector()
        self.clients: set[Client] = set()
        self.containers: dict[str, Supervised] = {}
        self.by_pid: dict[int, Supervised] = {}
        self.waiters: list[Waiter] = []
        self.attached: dict[int, AttachSession] = {}
        self.idle_since: float | None = time.monotonic()
        self.stopping = False
        self.sock: socket.socket | None = None
        self.started_at = time.monotonic()
        self.served_any = False

    # ---- set-up --------------------------------------------------------------------------------
    def listen(self) -> None:
        path = self.layout.monitor_socket
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        self.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, ("accept", None))
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(rfd, selectors.EVENT_READ, ("signal", None))
        from lxctools.kernel.ns import set_child_subreaper, set_process_name
        set_child_subreaper()
        set_process_name("pyl-monitord")
        self._leave_parent_cgroup()

    def _leave_parent_cgroup(self) -> None:
        """On pure cgroup v2 the payload cgroups' parent may hold no process (no-internal-process
        rule) once controllers are enabled for them, so the supervisor moves into pyl.monitor."""
        from lxctools.runtime import cgroups
        try:
            layout = cgroups.detect_layout()
            if layout.kind != "v2":
                return
            monitor = cgroups.plan_monitor_cgroup(layout)
            cgroups.create(monitor)
            cgroups.attach(monitor, os.getpid())
        except PylError as err:
            log.error("monitor", f"cannot move into pyl.monitor: {err}")

    def _on_term(self, *_: object) -> None:
        # SIGTERM to the supervisor: leave the containers running (they are adopted by the next
        # supervisor), just stop serving. Stopping containers is pyl-stop's job.
        self.stopping = True

    def adopt_orphans(self) -> None:
        state_dir = self.layout.path_rundir / "state"
        if not state_dir.is_dir():
            return
        from lxctools.runstate import process_starttime
        for path in state_dir.glob("*.json"):
            name = path.stem
            record = read_json(path)
            lock_fd = try_flock(self.layout.running_lock_file(name))
            if lock_fd is None or record is None:
                if lock_fd is not None:
                    os.close(lock_fd)
                continue
            pid, start = record.get("pid"), record.get("starttime")
            alive = bool(pid) and process_starttime(pid) == start
            sup = self._supervised_from_record(name, record, lock_fd)
            if alive and sup is not None:
                try:
                    from lxctools.kernel.ns import pidfd_open
                    sup.pidfd = pidfd_open(pid)
                except PylError:
                    alive = False
            if alive and sup is not None:
                sup.adopted = True
                self.containers[name] = sup
                self.by_pid[pid] = sup
                self.sel.register(sup.pidfd, selectors.EVENT_READ, ("pidfd", sup))
                log.info("monitor", f"adopted {name} (pid {pid})")
            else:
                log.info("monitor", f"cleaning up after {name}, which died while unsupervised")
                if sup is not None:
                    self._teardown(sup)
                else:
                    path.unlink(missing_ok=True)
                    os.close(lock_fd)

    def _supervised_from_record(self, name: str, record: dict, lock_fd: int) -> Supervised | None:
        from lxctools.runtime import cgroups
        try:
            cg_plan = cgroups.plan_from_existing(name, cgroups.detect_layout(), pid=record.get("pid"))
        except Exception as err:  # a broken record must not keep the supervisor from starting
            log.error("monitor", f"{name}: cannot rebuild cgroup paths: {err}")
            cg_plan = None
        net_state = record.get("net")
        if net_state is not None:
            import json
            from lxctools.runtime import net
            try:
                net_state = net.HostNetState.from_json(json.dumps(net_state))
            except (TypeError, KeyError, ValueError) as err:
                log.error("monitor", f"{name}: unreadable network state ({err}); host links may remain")
                net_state = None
        return Supervised(name=name, pid=record.get("pid") or 0, starttime=record.get("starttime") or 0,
                          state=State(record.get("state", "RUNNING")), values=record.get("values", {}),
                          config_file=record.get("config_file", ""), cgroup_plan=cg_plan, net_plans=(),
                          net_state=net_state, running_lock=lock_fd,
                          ephemeral=record.get("ephemeral", False))

    # ---- the loop ------------------------------------------------------------------------------
    def serve(self) -> None:
        while not self.stopping:
            timeout = self._next_timeout()
            for key, _mask in self.sel.select(timeout):
                kind, obj = key.data
                try:
                    if kind == "accept":
                        self._accept()
                    elif kind == "signal":
                        self._drain_signals(key.fd)
                    elif kind == "client":
                        self._client_readable(obj)
                    elif kind == "console":
                        self._console_readable(obj, key.fd)
                    elif kind == "pidfd":
                        self._pidfd_readable(obj)
                    elif kind == "attach":
                        self._attach_report(obj)
                except Exception as err:  # one bad request must not take every container's supervisor down
                    log.error("monitor", f"{kind}: {type(err).__name__}: {err}")
                    if kind == "client":
                        self._close_client(obj)
            self._timers()
            if self._idle_expired():
                break
        self._shutdown()

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [s.stop_deadline for s in self.containers.values() if s.stop_deadline is not None]
        deadlines += [w.deadline for w in self.waiters if w.deadline is not None]
        if self.idle_since is not None:
            deadlines.append(max(self.idle_since + self.linger, 0 if self.served_any else self.started_at + STARTUP_GRACE))
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _idle_expired(self) -> bool:
        if not self.served_any and time.monotonic() < self.started_at + STARTUP_GRACE:
            return False  # the client that spawned us has yet to connect
        busy = bool(self.containers) or bool(self.clients) or bool(self.attached)
        if busy:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        return time.monotonic() >= self.idle_since + self.linger

    def _timers(self) -> None:
        now = time.monotonic()
        for sup in list(self.containers.values()):
            if sup.stop_deadline is not None and now >= sup.stop_deadline and not sup.stop_kill_sent:
                self._hard_kill(sup)
        for waiter in list(self.waiters):
            if waiter.deadline is not None and now >= waiter.deadline:
                self.waiters.remove(waiter)
                self._reply(waiter.client, {"ok": False, "code": 76, "error": "timed out"})

    def _shutdown(self) -> None:
        for client in list(self.clients):
            self._close_client(client)
        if self.sock is not None:
            try:
                self.layout.monitor_socket.unlink()
            except FileNotFoundError:
                pass
            self.sock.close()

    # ---- clients -------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.sock is not None
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], sys.byteorder)
        if uid not in (0, os.geteuid()):
            conn.close()
            return
        conn.setblocking(True)
        client = Client(sock=conn, reader=protocol.Reader(conn))
        self.served_any = True
        self.clients.add(client)
        self.sel.register(conn, selectors.EVENT_READ, ("client", client))

    def _client_readable(self, client: Client) -> None:
        if not client.reader.fill():
            self._close_client(client)
            return
        while not client.closed:
            message = client.reader.next_message()
            if message is None:
                break
            self._dispatch(client, message, client.reader.take_fds())

    def _close_client(self, client: Client) -> None:
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        for callback in client.on_close:
            callback()
        self.waiters = [w for w in self.waiters if w.client is not client]
        for fd in client.reader.take_fds():
            os.close(fd)
        client.sock.close()

    def _reply(self, client: Client, message: dict[str, Any], fds: list[int] | None = None) -> None:
        if client.closed:
            return
        try:
            protocol.send(client.sock, message, fds)
        except OSError:
            self._close_client(client)

    def _dispatch(self, client: Client, msg: dict[str, Any], fds: list[int]) -> None:
        op = msg.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            self._reply(client, {"ok": False, "code": 70, "error": f"unknown request '{op}'"})
            return
        try:
            handler(client, msg, fds)
        except PylError as err:
            for fd in fds:
                os.close(fd)
            self._reply(client, {"ok": False, "code": int(err.exit_code), "error": err.message,
                                 "hint": err.hint})

    # ---- requests ------------------------------------------------------------------------------
    def op_ping(self, client: Client, msg: dict, fds: list[int]) -> None:
        self._reply(client, {"ok": True, "pid": os.getpid(), "containers": sorted(self.containers)})

    def op_state(self, client: Client, msg: dict, fds: list[int]) -> None:
        sup = self.containers.get(msg["name"])
        self._reply(client, {"ok": True, "state": sup.state if sup else "STOPPED",
                             "pid": sup.pid if sup else None})

    def op_start(self, client: Client, msg: dict, fds: list[int]) -> None:
        from lxctools.runtime.start import StartRequest, start_container
        name = msg["name"]
        if name in self.containers:
            sup = self.containers[name]
            self._reply(client, {"ok": True, "already": True, "state": sup.state, "pid": sup.pid})
            for fd in fds:
                os.close(fd)
            fds.clear()
            return
        values = msg.get("values")
        if values is None:
            from lxctools.config.model import ContainerConfig
            cfg = ContainerConfig.load(msg["config_file"])
            if msg.get("overrides"):
                cfg.apply_overrides(msg["overrides"])
            values = msg["values"] = cfg.values(concrete_hwaddr=True)
        lock_fd = try_flock(self.layout.running_lock_file(name))
        if lock_fd is None:
            raise WrongStateError("cannot start: another supervisor holds this container")
        app = bool(msg.get("app_container"))
        stdio = tuple(fds[:3]) if app and len(fds) >= 3 else None
        req = StartRequest(name=name, lxcpath=str(self.layout.lxcpath), config_file=msg["config_file"],
                           values=msg["values"], command=msg.get("command"), app_container=app,
                           stdio=stdio, default_bridge=msg.get("default_bridge", "pylbr0"))
        self._broadcast_state(name, State.STARTING)
        try:
            started = start_container(req)
        except PylError:
            os.close(lock_fd)
            self._broadcast_state(name, State.ABORTING)
            self._broadcast_state(name, State.STOPPING)
            self._broadcast_state(name, State.STOPPED)
            raise
        finally:
            for fd in fds:
                os.close(fd)
            fds.clear()  # closed: the dispatcher must not close them again on error
        sup = Supervised(name=name, pid=started.pid, starttime=started.starttime, state=State.RUNNING,
                         values=msg["values"], config_file=msg["config_file"],
                         cgroup_plan=started.cgroup_plan, net_plans=started.net_plans,
                         net_state=started.net_state, running_lock=lock_fd,
                         console_master=started.console_master, tty_masters=started.tty_masters,
                         ephemeral=str(msg["values"].get("lxc.ephemeral", "0")) == "1")
        self.containers[name] = sup
        self.by_pid[sup.pid] = sup
        self._open_console_log(sup)
        for master in [sup.console_master, *sup.tty_masters]:
            if master is not None:
                os.set_blocking(master, False)
                self.sel.register(master, selectors.EVENT_READ, ("console", sup))
        if app:
            sup.exec_client = client
            client.on_close.append(lambda: self._exec_client_left(sup))
        self._save(sup)
        self._broadcast_state(name, State.RUNNING)
        self._reply(client, {"ok": True, "state": "RUNNING", "pid": sup.pid})
        # The init may already have died (a fast pyl-execute command): reap now.
        self._reap()

    def _exec_client_left(self, sup: Supervised) -> None:
        if sup.exec_client is not None and sup.name in self.containers:
            sup.exec_client = None

    def op_signal(self, client: Client, msg: dict, fds: list[int]) -> None:
        """Forward a signal to a container's init (pyl-execute passes Ctrl-C on)."""
        sup = self._require(msg["name"], "stop")
        self._send_signal(sup, int(msg["signal"]))
        if not msg.get("quiet"):
            self._reply(client, {"ok": True})

    def op_stop(self, client: Client, msg: dict, fds: list[int]) -> None:
        name = msg["name"]
        sup = self.containers.get(name)
        if sup is None:
            self._reply(client, {"ok": False, "code": 2, "error": "is not running"})
            return
        if msg.get("reboot"):
            sup.reboot = True
            self._send_signal(sup, _signal_number(sup.values.get("lxc.signal.reboot"), signal.SIGINT))
            self._reply(client, {"ok": True})
            return
        if not msg.get("nowait"):
            sup.stop_waiters.append(client)
        if sup.state is State.FROZEN or sup.state is State.FREEZING:
            # a frozen init cannot handle a halt signal: thaw so shutdown (or SIGKILL) can proceed
            self._thaw(sup, announce=False)
        if msg.get("kill"):
            self._hard_kill(sup)
        else:
            timeout = float(msg.get("timeout", 60))
            self._send_signal(sup, _signal_number(sup.values.get("lxc.signal.halt"), signal.SIGPWR))
            if timeout >= 0:
                deadline = time.monotonic() + timeout
                if sup.stop_deadline is None or deadline < sup.stop_deadline:
                    sup.stop_deadline = deadline
                    sup.stop_kill_sent = False
                sup.stop_nokill = bool(msg.get("nokill"))  # type: ignore[attr-defined]
        if msg.get("nowait"):
            self._reply(client, {"ok": True})

    def op_freeze(self, client: Client, msg: dict, fds: list[int]) -> None:
        from lxctools.runtime import cgroups
        sup = self._require(msg["name"], "freeze")
        if sup.state is not State.FROZEN:
            self._set_state(sup, State.FREEZING)
            try:
                cgroups.freeze(sup.cgroup_plan, timeout=float(msg.get("timeout", 10)))
            except PylError:
                cgroups.thaw(sup.cgroup_plan)
                self._set_state(sup, State.RUNNING)
                raise
            self._set_state(sup, State.FROZEN)
        self._reply(client, {"ok": True, "state": "FROZEN"})

    def op_unfreeze(self, client: Client, msg: dict, fds: list[int]) -> None:
        sup = self.containers.get(msg["name"])
        if sup is None:
            raise WrongStateError("cannot unfreeze: container is STOPPED")
        if sup.state in (State.FROZEN, State.FREEZING):
            self._thaw(sup, announce=True)
        self._reply(client, {"ok": True, "state": str(sup.state)})

    def _thaw(self, sup: Supervised, announce: bool) -> None:
        from lxctools.runtime import cgroups
        cgroups.thaw(sup.cgroup_plan)
        if announce:
            self._set_state(sup, State.THAWED)
        self._set_state(sup, State.RUNNING)

    def op_wait(self, client: Client, msg: dict, fds: list[int]) -> None:
        states = frozenset(State(s) for s in msg["states"])
        name = msg["name"]
        sup = self.containers.get(name)
        current = sup.state if sup else State.STOPPED
        if current in states:
            self._reply(client, {"ok": True, "state": str(current)})
            return
        timeout = msg.get("timeout")
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + float(timeout)
        self.waiters.append(Waiter(client, name, states, deadline))

    def op_subscribe(self, client: Client, msg: dict, fds: list[int]) -> None:
        client.subscribed = re.compile(msg.get("regex") or ".*")
        self._reply(client, {"ok": True})

    def op_console(self, client: Client, msg: dict, fds: list[int]) -> None:
        sup = self._require(msg["name"], "console")
        tty = int(msg.get("tty", -1))
        masters = [sup.console_master, *sup.tty_masters]
        if tty == -1:
            free = [i for i in range(1, len(masters)) if i not in sup.attached_ttys]
            tty = free[0] if free else 0
        if tty < 0 or tty >= len(masters) or masters[tty] is None:
            raise WrongStateError(f"tty {tty} does not exist (lxc.tty.max = {len(masters) - 1}; 0 is the console)")
        if tty in sup.attached_ttys:
            raise PylError(f"tty {tty} is already in use by another pyl-console")
        master = masters[tty]
        sup.attached_ttys.add(tty)
        try:
            self.sel.unregister(master)
        except (KeyError, ValueError):
            pass
        backlog = b"".join(sup.ring) if tty == 0 else b""

        def release() -> None:
            sup.attached_ttys.discard(tty)
            if sup.name in self.containers and master is not None:
                try:
                    self.sel.register(master, selectors.EVENT_READ, ("console", sup))
                except (KeyError, ValueError, OSError):
                    pass

        client.on_close.append(release)
        self._reply(client, {"ok": True, "tty": tty, "backlog": backlog.decode(errors="replace")[-4096:]},
                    fds=[master])

    def op_netinfo(self, client: Client, msg: dict, fds: list[int]) -> None:
        result: dict[str, Any] = {}
        for name in msg.get("names") or list(self.containers):
            sup = self.containers.get(name)
            if sup is None:
                continue
            try:
                result[name] = self._interfaces(sup)
            except (PylError, OSError) as err:
                result[name] = {"error": str(err)}
        self._reply(client, {"ok": True, "containers": result})

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
            if msg.get("net", True):
                try:
                    entry["interfaces"] = self._interfaces(sup)
                except (PylError, OSError) as err:
                    entry["net_error"] = str(err)
            result[name] = entry
        self._reply(client, {"ok": True, "containers": result})

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

    def _interfaces(self, sup: Supervised) -> list[dict]:
        from lxctools.runtime import netinfo
        for attempt in (1, 2):
            if sup.netinfo_sock is None:
                sup.netinfo_sock = netinfo.open_socket_in(sup.pid)
            try:
                return netinfo.interfaces(sup.netinfo_sock)
            except (OSError, PylError):
                sup.netinfo_sock.close()
                sup.netinfo_sock = None
                if attempt == 2:
                    raise
        return []

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

    def op_quit(self, client: Client, msg: dict, fds: list[int]) -> None:
        self._reply(client, {"ok": True})
        if not self.containers:
            self.stopping = True

    def _require(self, name: str, operation: str) -> Supervised:
        sup = self.containers.get(name)
        state = sup.state if sup else State.STOPPED
        if sup is None or state not in ALLOWED[operation]:
            raise WrongStateError(f"cannot {operation}: container is {state}")
        return sup

    # ---- state and events ----------------------------------------------------------------------
    def _set_state(self, sup: Supervised, state: State) -> None:
        sup.state = state
        self._save(sup)
        self._broadcast_state(sup.name, state)

    def _save(self, sup: Supervised) -> None:
        from dataclasses import asdict, is_dataclass
        net_state = asdict(sup.net_state) if is_dataclass(sup.net_state) else sup.net_state
        write_json_atomic(self.layout.state_file(sup.name), {
            "name": sup.name, "state": str(sup.state), "pid": sup.pid, "starttime": sup.starttime,
            "supervisor": os.getpid(), "config_file": sup.config_file, "values": sup.values,
            "net": net_state, "ephemeral": sup.ephemeral,
        })

    def _broadcast_state(self, name: str, state: State) -> None:
        log.info("monitor", f"'{name}' changed state to [{state}]")
        self._broadcast({"event": "state", "name": name, "state": str(state)})
        for waiter in list(self.waiters):
            if waiter.name == name and state in waiter.states:
                self.waiters.remove(waiter)
                self._reply(waiter.client, {"ok": True, "state": str(state)})

    def _broadcast(self, event: dict[str, Any]) -> None:
        for client in list(self.clients):
            if client.subscribed is not None and client.subscribed.fullmatch(event["name"]):
                self._reply(client, event)

    # ---- consoles ------------------------------------------------------------------------------
    def _open_console_log(self, sup: Supervised) -> None:
        path = sup.values.get("lxc.console.logfile")
        if path:
            try:
                sup.console_log = os.open(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:
                log.error("monitor", f"{sup.name}: cannot open console log {path}: {err.strerror}")

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

    # ---- signals, exits, teardown --------------------------------------------------------------
    def _send_signal(self, sup: Supervised, signum: int) -> None:
        try:
            if sup.pidfd is not None:
                from lxctools.kernel.ns import pidfd_send_signal
                pidfd_send_signal(sup.pidfd, signum)
            else:
                os.kill(sup.pid, signum)  # our child: its PID cannot be reused before we reap it
        except (ProcessLookupError, PylError):
            pass

    def _hard_kill(self, sup: Supervised) -> None:
        if getattr(sup, "stop_nokill", False):
            sup.stop_kill_sent = True
            for client in sup.stop_waiters:
                self._reply(client, {"ok": False, "code": 76, "error": "timed out waiting for the container to stop"})
            sup.stop_waiters.clear()
            sup.stop_deadline = None
            return
        sup.stop_kill_sent = True
        sup.stop_deadline = None
        self._return_phys(sup)
        from lxctools.runtime import cgroups
        stop_signal = _signal_number(sup.values.get("lxc.signal.stop"), signal.SIGKILL)
        self._send_signal(sup, stop_signal)
        if sup.cgroup_plan is not None and stop_signal == signal.SIGKILL:
            try:
                cgroups.kill_all(sup.cgroup_plan, signal.SIGKILL)
            except PylError as err:
                log.error("monitor", f"{sup.name}: kill: {err}")

    def _return_phys(self, sup: Supervised) -> None:
        """Give host interfaces moved in with type phys back under their own names while the
        container's netns still exists (once it dies the kernel returns them as devN)."""
        if not any(getattr(p, "type", None) == "phys" for p in sup.net_plans):
            return
        try:
            from lxctools.runtime import net
            net.return_phys(sup.net_plans, sup.pid)
        except Exception as err:
            log.error("monitor", f"{sup.name}: returning phys interfaces: {err}")

    def _drain_signals(self, fd: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            sup = self.by_pid.get(pid)
            if sup is not None:
                self._init_exited(sup, os.waitstatus_to_exitcode(status))
            session = self.attached.pop(pid, None)
            if session is not None:
                self._attach_exited(session, os.waitstatus_to_exitcode(status))

    def _pidfd_readable(self, sup: Supervised) -> None:
        # An adopted init is not our child: its exit status is not ours to collect.
        if sup.pidfd is not None:
            try:
                self.sel.unregister(sup.pidfd)
            except (KeyError, ValueError):
                pass
        if sup.name in self.containers:
            self._init_exited(sup, None)

    def _init_exited(self, sup: Supervised, code: int | None) -> None:
        sup.exit_status = code
        if code is not None:
            shown = code if code >= 0 else 128 - code
            self._broadcast({"event": "exit", "name": sup.name, "status": shown})
        # busybox/systemd reboot inside a PID namespace: the kernel kills init with SIGHUP.
        reboot = sup.reboot or code == -signal.SIGHUP
        if sup.stop_waiters or sup.stop_deadline is not None:
            reboot = sup.reboot
        self._set_state(sup, State.STOPPING)
        self._teardown(sup)
        if sup.exec_client is not None:
            status = 0 if code is None else (code if code >= 0 else 128 - code)
            self._reply(sup.exec_client, {"event": "exit", "status": status})
        for client in sup.stop_waiters:
            self._reply(client, {"ok": True, "state": "STOPPED"})
        sup.stop_waiters.clear()
        if sup.ephemeral and not reboot:
            self._destroy_ephemeral(sup)
        elif reboot:
            self._restart(sup)

    def _teardown(self, sup: Supervised) -> None:
        """Remove everything the container owned. Each step runs even if an earlier one failed:
        a half-done teardown would leave a busy-looping pidfd or a stale state file behind."""
        from lxctools.runtime import cgroups
        from lxctools.runtime.hooks import run_hooks
        self.containers.pop(sup.name, None)
        self.by_pid.pop(sup.pid, None)
        if sup.cgroup_plan is not None:
            try:
                cgroups.kill_all(sup.cgroup_plan, signal.SIGKILL)
                cgroups.destroy(sup.cgroup_plan)
            except Exception as err:
                log.error("monitor", f"{sup.name}: cgroup cleanup: {err}")
        if sup.net_state is not None:
            try:
                from lxctools.runtime import net
                net.teardown(sup.net_state)
            except Exception as err:
                log.error("monitor", f"{sup.name}: network cleanup: {err}")
        if sup.netinfo_sock is not None:
            sup.netinfo_sock.close()
            sup.netinfo_sock = None
        for fd in [sup.console_master, *sup.tty_masters, sup.pidfd, sup.console_log]:
            if fd is not None:
                try:
                    self.sel.unregister(fd)
                except (KeyError, ValueError):
                    pass
                try:
                    os.close(fd)
                except OSError:
                    pass
        for hook in ("stop", "post-stop"):
            try:
                run_hooks(sup.values, hook, name=sup.name, config_file=sup.config_file,
                          extra_env={"LXC_TARGET": "reboot" if sup.reboot else "stop"})
            except Exception as err:
                log.error("monitor", f"{sup.name}: {err}")
        self.layout.state_file(sup.name).unlink(missing_ok=True)
        os.close(sup.running_lock)
        self._broadcast_state(sup.name, State.STOPPED)

    def _restart(self, sup: Supervised) -> None:
        msg = {"op": "start", "name": sup.name, "config_file": sup.config_file, "values": sup.values}
        try:
            from lxctools.config.model import ContainerConfig
            msg["values"] = ContainerConfig.load(sup.config_file).values(concrete_hwaddr=True)
        except Exception as err:
            log.error("monitor", f"{sup.name}: reboot: reloading config failed ({err}); using the old one")
        try:
            self.op_start(_NullClient(), msg, [])  # type: ignore[arg-type]
        except PylError as err:
            log.error("monitor", f"{sup.name}: reboot failed: {err}")

    def _destroy_ephemeral(self, sup: Supervised) -> None:
        """lxc.ephemeral = 1: the container goes away once stopped, as a destroy would do it
        (its source's lxc_snapshots entry is released too)."""
        from lxctools.container import Container
        try:
            Container(sup.name, self.layout).destroy(force=True)
        except Exception as err:
            log.error("monitor", f"{sup.name}: removing ephemeral container: {err}")


class _NullClient:
    closed = True
    on_close: list = []


def _iface_dict(info: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass
    return asdict(info) if is_dataclass(info) else dict(info)


def _signal_number(value: object, default: int) -> int:
    if value in (None, ""):
        return int(default)
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    if text.startswith("SIGRTMIN+"):
        return signal.SIGRTMIN + int(text[9:])
    if text.startswith("SIGRTMAX-"):
        return signal.SIGRTMAX - int(text[9:])
    try:
        return int(getattr(signal, text))
    except AttributeError:
        return int(default)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lxcpath, rundir = Path(argv[0]), Path(argv[1])
    ready_fd = int(argv[2]) if len(argv) > 2 else -1
    layout = Layout(lxcpath=lxcpath, rundir=rundir)
    linger = float(os.environ.get("PYL_MONITOR_LINGER", "30"))
    layout.path_rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_fd = try_flock(layout.monitor_lock)
    if lock_fd is None:
        # Another supervisor for this lxcpath won the race; the client will connect to it.
        if ready_fd >= 0:
            os.write(ready_fd, b"ok\n")
        return 0
    log.configure("pyl-monitord", None, str(layout.monitor_log), os.environ.get("PYL_MONITOR_LOGLEVEL", "INFO"))
    os.chdir("/")
    sup = Supervisor(layout, linger)
    sup.listen()
    sup.adopt_orphans()
    if ready_fd >= 0:
        os.write(ready_fd, b"ok\n")
        os.close(ready_fd)
    sup.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
