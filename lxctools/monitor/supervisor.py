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
from typing import Any

from lxctools.errors import PylError, WrongStateError
from lxctools.log import log
from lxctools.monitor import protocol
from lxctools.monitor.lifecycle import LifecycleOps
from lxctools.monitor.records import (
    MAX_SLEEP, AttachSession, Client, PendingNetRelease, Supervised, Waiter, deadline_after,
)
from lxctools.monitor.sessions import SessionOps
from lxctools.paths import Layout, seconds_from_env
from lxctools.state import ALLOWED, State, write_json_atomic

STARTUP_GRACE = 5.0
NET_RELEASE_POLL = 0.01   # how often a stopped container's veth is looked for while it goes


class Supervisor(LifecycleOps, SessionOps):
    def __init__(self, layout: Layout, linger: float) -> None:
        self.layout = layout
        self.linger = linger
        self.sel = selectors.DefaultSelector()
        self.clients: set[Client] = set()
        self.containers: dict[str, Supervised] = {}
        self.by_pid: dict[int, Supervised] = {}
        self.waiters: list[Waiter] = []
        self.attached: dict[int, AttachSession] = {}
        self.net_releases: dict[str, PendingNetRelease] = {}   # by container name
        self.idle_since: float | None = time.monotonic()
        self.stopping = False
        self.sock: socket.socket | None = None
        self.started_at = time.monotonic()
        self.served_any = False

    # ---- set-up --------------------------------------------------------------------------------

    def listen(self) -> None:
        self._bind_socket()
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
        self.monitor_cgroup = None
        self._leave_parent_cgroup()

    def _bind_socket(self) -> None:
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

    def _late_clients_keep_us(self) -> bool:
        """Called when idle long enough to leave. A client may have connected since the last
        look (its connection waits in the listen backlog); closing the socket would leave it
        with no answer. So: unlink the socket (a client arriving from now on finds none and
        spawns a supervisor, which waits for our lock), then take what is queued. Nobody: leave.
        Somebody: serve them, listening again at the same path (we still hold the lock, so no
        other supervisor can have bound it)."""
        assert self.sock is not None
        try:
            self.layout.monitor_socket.unlink()
        except FileNotFoundError:
            pass
        late = []
        while True:
            try:
                late.append(self.sock.accept()[0])
            except (BlockingIOError, InterruptedError):
                break
        if not late:
            return False
        self.sel.unregister(self.sock)
        self.sock.close()
        self._bind_socket()
        for conn in late:
            self._admit(conn)
        self.idle_since = None
        log.debug("monitor", f"{len(late)} client(s) came as the supervisor was leaving; staying")
        return True

    def _leave_parent_cgroup(self) -> None:
        """On pure cgroup v2 the payload cgroups' parent may hold no process (no-internal-process
        rule) once controllers are enabled for them, so the supervisor moves into pyl.monitor."""
        from lxctools.runtime import cgroups
        try:
            layout = cgroups.detect_layout()
            if layout.kind != "v2":
                return
            if os.geteuid() == 0 and os.environ.get("PYL_CGROUP_RELATIVE") != "1":
                # Root's containers go under init's cgroup, as LXC puts them (lxc.cgroup.relative
                # = 0): usually the root cgroup, exempt from the no-internal-process rule, not
                # the caller's (a login scope or a service, which holds processes: no controller
                # could be enabled below it).
                layout = cgroups.detect_init_layout()
            monitor = cgroups.plan_monitor_cgroup(layout)
            cgroups.create(monitor)
            cgroups.attach(monitor, os.getpid())
            self.monitor_cgroup = monitor
            # A netlink worker forked before (daemon.main, for a start) comes along: left in the
            # caller's cgroup it would hold a process where PYL_CGROUP_RELATIVE puts the
            # containers' parent, and die with the caller's unit.
            from lxctools.runtime.networker import WORKER
            if WORKER.pid is not None:
                try:
                    cgroups.attach(monitor, WORKER.pid)
                except PylError as err:  # it died meanwhile: the next network request forks anew
                    log.error("monitor", f"cannot move the netlink worker into pyl.monitor: {err}")
        except PylError as err:
            log.error("monitor", f"cannot move into pyl.monitor: {err}")

    def _return_to_parent_cgroup(self) -> None:
        """At exit, undo _leave_parent_cgroup: back to the cgroup we came from, and pyl.monitor
        removed unless another supervisor (another lxcpath's) still lives in it. Where the
        parent may not hold processes again (controllers enabled below it), pyl.monitor stays
        for the next supervisor."""
        monitor, self.monitor_cgroup = self.monitor_cgroup, None
        if monitor is None:
            return
        from lxctools.runtime import cgroups
        try:
            for d in monitor.dirs:
                with open(os.path.join(d.parent, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            cgroups.destroy(monitor)  # left alone while another lxcpath's supervisor is in it
        except (OSError, PylError) as err:
            log.debug("monitor", f"pyl.monitor stays: {err}")

    def _on_term(self, *_: object) -> None:
        # SIGTERM to the supervisor: leave the containers running (they are adopted by the next
        # supervisor), just stop serving. Stopping containers is pyl-stop's job.
        self.stopping = True

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
                    elif kind == "console-proxy":
                        self._console_proxy_ready(obj, _mask)
                    elif kind == "pidfd":
                        self._pidfd_readable(obj)
                    elif kind == "attach":
                        self._attach_report(obj)
                except Exception as err:  # one bad request must not take every container's supervisor down
                    log.error("monitor", f"{kind}: {type(err).__name__}: {err}")
                    if kind == "client":
                        self._close_client(obj)
            self._timers()
            if self._idle_expired() and not self._late_clients_keep_us():
                break
        self._shutdown()

    def _networker_deadline(self) -> float | None:
        from lxctools.runtime import networker
        return networker.WORKER.idle_deadline() if "lxctools.runtime.networker" in sys.modules else None

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [s.stop_deadline for s in self.containers.values() if s.stop_deadline is not None]
        deadlines += [w.deadline for w in self.waiters if w.deadline is not None]
        if self.net_releases:
            deadlines.append(now + NET_RELEASE_POLL)
        worker_deadline = self._networker_deadline()
        if worker_deadline is not None:
            deadlines.append(worker_deadline)
        if self.idle_since is not None:
            deadlines.append(max(self.idle_since + self.linger, 0 if self.served_any else self.started_at + STARTUP_GRACE))
        if not deadlines:
            return None
        return min(MAX_SLEEP, max(0.0, min(deadlines) - now))

    def _idle_expired(self) -> bool:
        if not self.served_any and time.monotonic() < self.started_at + STARTUP_GRACE:
            return False  # the client that spawned us has yet to connect
        busy = bool(self.containers) or bool(self.clients) or bool(self.attached) or bool(self.net_releases)
        if busy:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        return time.monotonic() >= self.idle_since + self.linger

    def _timers(self) -> None:
        if self.net_releases:
            self._settle_net_releases()
        if self._networker_deadline() is not None:
            from lxctools.runtime.networker import WORKER
            WORKER.stop_if_idle()
        now = time.monotonic()
        for sup in list(self.containers.values()):
            if sup.stop_deadline is not None and now >= sup.stop_deadline and not sup.stop_kill_sent:
                self._hard_kill(sup)
        for waiter in list(self.waiters):
            if waiter.deadline is not None and now >= waiter.deadline:
                self.waiters.remove(waiter)
                self._reply(waiter.client, {"ok": False, "code": 76, "error": "timed out"})

    def _shutdown(self) -> None:
        self._settle_net_releases(block=True)
        if "lxctools.runtime.networker" in sys.modules:
            from lxctools.runtime.networker import WORKER
            WORKER.stop()
        self._return_to_parent_cgroup()  # after the worker, which lives in pyl.monitor too
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
        self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
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

    def op_wait(self, client: Client, msg: dict, fds: list[int]) -> None:
        states = frozenset(State(s) for s in msg["states"])
        name = msg["name"]
        sup = self.containers.get(name)
        current = sup.state if sup else State.STOPPED
        if current in states:
            self._reply(client, {"ok": True, "state": str(current)})
            return
        self.waiters.append(Waiter(client, name, states, deadline_after(msg.get("timeout"))))

    def op_subscribe(self, client: Client, msg: dict, fds: list[int]) -> None:
        client.subscribed = re.compile(msg.get("regex") or ".*")
        self._reply(client, {"ok": True})

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
            "net": net_state, "ephemeral": sup.ephemeral, "pidfiles": sup.pidfiles,
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

    def _drain_signals(self, fd: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass
        self._reap()


def run(layout: Layout, ready_fd: int) -> int:
    """Serve LAYOUT's lxcpath until idle (daemon.main holds its lock, open for the process's
    life, and may have forked the netlink worker already). READY_FD, if >= 0, hears "ok" once
    we listen."""
    linger = seconds_from_env("PYL_MONITOR_LINGER", 30.0)
    log.configure("pyl-monitord", None, str(layout.monitor_log), os.environ.get("PYL_MONITOR_LOGLEVEL", "INFO"))
    os.chdir("/")
    sup = Supervisor(layout, linger)
    sup.listen()
    sup.adopt_orphans()
    if ready_fd >= 0:
        try:
            os.write(ready_fd, b"ok\n")
        except BrokenPipeError:
            # The client that spawned us was killed while it waited. Serve anyway: others
            # (a pyl-wait, the next start) may be queued on the socket already, and a
            # supervisor dying here left them "the supervisor closed the connection".
            log.info("monitor", "the client that started this supervisor is gone")
        os.close(ready_fd)
    sup.serve()
    return 0
