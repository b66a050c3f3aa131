"""The supervisor's container lifecycle: start, stop, freeze, reboot, exits, teardown, and
adopting containers whose previous supervisor died. A mixin of Supervisor (supervisor.py), which
owns the event loop, the clients and the state broadcasts these methods use."""

from __future__ import annotations

import os
import selectors
import signal
import time
from typing import Any

from lxctools.errors import PylError, WrongStateError
from lxctools.locking import release, try_flock
from lxctools.log import log
from lxctools.monitor.records import (
    Client, NullClient, PendingNetRelease, Supervised, deadline_after, signal_number,
)
from lxctools.state import State, read_state_record

# How long a stopped container's veth gets to go with its network namespace before the
# supervisor deletes it itself (something else keeps the namespace: a bind mount, a process
# that entered it).
NET_RELEASE_WAIT = 1.0


class LifecycleOps:
    def adopt_orphans(self) -> None:
        state_dir = self.layout.path_rundir / "state"
        if not state_dir.is_dir():
            return
        from lxctools.runstate import process_starttime
        for path in state_dir.glob("*.json"):
            name = path.stem
            record = read_state_record(path)
            lock_fd = try_flock(self.layout.running_lock_path(name))
            if lock_fd is None or record is None:
                if lock_fd is not None:
                    log.error("monitor", f"{name}: {path} is no state record (unreadable, or edited "
                                         "into another shape): not adopted, the container counts as stopped")
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
                self.containers[name] = sup
                self.by_pid[pid] = sup
                for pidfile in sup.pidfiles:  # they named the supervisor that died
                    _write_pid(pidfile)
                self.sel.register(sup.pidfd, selectors.EVENT_READ, ("pidfd", sup))
                log.info("monitor", f"adopted {name} (pid {pid})")
            else:
                log.info("monitor", f"cleaning up after {name}, which died while unsupervised")
                if sup is not None:
                    self._teardown(sup)
                else:
                    path.unlink(missing_ok=True)
                    release(lock_fd, self.layout.running_lock_path(name), remove=True)

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
                          ephemeral=record.get("ephemeral", False), adopted=True,
                          pidfiles=[p for p in record.get("pidfiles") or [] if isinstance(p, str)])

    # ---- the loop ------------------------------------------------------------------------------

    def op_start(self, client: Client, msg: dict, fds: list[int]) -> None:
        from lxctools.runtime.start import StartRequest, start_container
        name = msg["name"]
        if name in self.net_releases:
            self._settle_net_releases(name, block=True)  # its last run's links and leases first
        if name in self.containers:
            sup = self.containers[name]
            if self._hold_pidfile(sup, msg.get("pidfile")):
                self._save(sup)
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
        running_lock = self.layout.running_lock_path(name)
        lock_fd = try_flock(running_lock)
        if lock_fd is None:
            raise WrongStateError("cannot start: another supervisor holds this container")
        app = bool(msg.get("app_container"))
        stdio = tuple(fds[:3]) if app and len(fds) >= 3 else None
        req = StartRequest(name=name, lxcpath=str(self.layout.lxcpath), config_file=msg["config_file"],
                           values=msg["values"], command=msg.get("command"), app_container=app,
                           stdio=stdio, default_bridge=msg.get("default_bridge", "pylbr0"), rundir=str(self.layout.rundir))
        self._broadcast_state(name, State.STARTING)
        try:
            started = start_container(req)
        except BaseException:
            # Any failure, not only a PylError: a lock kept here would refuse every later start
            # of this container ("another supervisor holds it") for the supervisor's lifetime.
            release(lock_fd, running_lock, remove=True)
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
        log_warning = self._open_console_log(sup)
        from lxctools.monitor.sessions import open_peers
        sup.tty_peers = open_peers([sup.console_master, *sup.tty_masters])
        for master in [sup.console_master, *sup.tty_masters]:
            if master is not None:
                os.set_blocking(master, False)
                self.sel.register(master, selectors.EVENT_READ, ("console", sup))
        if app:
            sup.exec_client = client
            client.on_close.append(lambda: self._exec_client_left(sup))
        self._hold_pidfile(sup, msg.get("pidfile"))
        self._save(sup)
        self._broadcast_state(name, State.RUNNING)
        warnings = list(started.warnings) + ([log_warning] if log_warning else [])
        self._reply(client, {"ok": True, "state": "RUNNING", "pid": sup.pid, "warnings": warnings})
        # The init may already have died (a fast pyl-execute command): reap now.
        self._reap()

    def _hold_pidfile(self, sup: Supervised, path: str | None) -> bool:
        """pyl-start -p: write this supervisor's PID (the container's monitor, in LXC's words)
        to PATH, and remove it when the container stops, as lxc-start does. Written here, not
        by the client: a container that stops at once then never leaves a stale file. True when
        SUP's list of pid files changed (its state file is to be saved)."""
        if not path:
            return False
        _write_pid(path)
        if path in sup.pidfiles:
            return False
        sup.pidfiles.append(path)
        return True

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
            self._send_signal(sup, signal_number(sup.values.get("lxc.signal.reboot"), signal.SIGINT))
            self._reply(client, {"ok": True})
            return
        if not msg.get("nowait"):
            sup.stop_waiters.append(client)
        if sup.state is State.FROZEN or sup.state is State.FREEZING:
            # a frozen init cannot handle a halt signal: thaw so shutdown (or SIGKILL) can proceed
            self._thaw(sup, announce=False)
        if not msg.get("reboot"):
            sup.halting = True  # a freeze now would stop init from handling the halt signal
        if msg.get("kill"):
            # An earlier --nokill stop that gave up must not turn this kill into its refusal.
            sup.stop_nokill = False
            self._hard_kill(sup)
        else:
            deadline = deadline_after(msg.get("timeout", 60))
            self._send_signal(sup, signal_number(sup.values.get("lxc.signal.halt"), signal.SIGPWR))
            if deadline is not None:
                if sup.stop_deadline is None or deadline < sup.stop_deadline:
                    sup.stop_deadline = deadline
                    sup.stop_kill_sent = False
                sup.stop_nokill = bool(msg.get("nokill"))
        if msg.get("nowait"):
            self._reply(client, {"ok": True})

    def op_freeze(self, client: Client, msg: dict, fds: list[int]) -> None:
        from lxctools.runtime import cgroups
        sup = self._require(msg["name"], "freeze")
        if sup.halting:
            # Frozen after the halt signal, init never handles it: the stop would wait out its
            # whole timeout (60 s) and then kill, the clean shutdown lost.
            raise WrongStateError("cannot freeze: the container is being stopped")
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
            # THAWED is an event (pyl-monitor, pyl-wait), not a state anyone finds the container
            # in: the thaw above is done, RUNNING follows at once. Not written to the state file,
            # which would be rewritten a moment later (a freeze's FREEZING is written: a freeze
            # can take a while, and an unfreeze meanwhile must see it to queue its request).
            sup.state = State.THAWED
            self._broadcast_state(sup.name, State.THAWED)
        self._set_state(sup, State.RUNNING)

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
        if sup.stop_nokill:
            sup.stop_kill_sent = True
            for client in sup.stop_waiters:
                self._reply(client, {"ok": False, "code": 76, "error": "timed out waiting for the container to stop"})
            sup.stop_waiters.clear()
            sup.stop_deadline = None
            sup.halting = False  # given up: it runs on, and may be frozen again
            return
        sup.stop_kill_sent = True
        sup.stop_deadline = None
        self._return_phys(sup)
        from lxctools.runtime import cgroups
        stop_signal = signal_number(sup.values.get("lxc.signal.stop"), signal.SIGKILL)
        self._send_signal(sup, stop_signal)
        if sup.cgroup_plan is not None and stop_signal == signal.SIGKILL:
            try:
                # No waiting here: init's exit comes through the event loop, and the teardown
                # then kills whatever is left and waits for the cgroups to empty.
                cgroups.kill_all(sup.cgroup_plan, signal.SIGKILL, wait=False)
            except PylError as err:
                log.error("monitor", f"{sup.name}: kill: {err}")

    def _return_phys(self, sup: Supervised) -> None:
        """Give host interfaces moved in with type phys back under their own names while the
        container's netns still exists (once it dies the kernel returns them as devN)."""
        if not any(getattr(p, "type", None) == "phys" for p in sup.net_plans):
            return
        try:
            from lxctools.runtime.networker import WORKER
            WORKER.call("return_phys", sup.net_plans, sup.pid)
        except Exception as err:
            log.error("monitor", f"{sup.name}: returning phys interfaces: {err}")

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
        if code is not None:
            shown = code if code >= 0 else 128 - code
            self._broadcast({"event": "exit", "name": sup.name, "status": shown})
        # busybox/systemd reboot inside a PID namespace: the kernel kills init with SIGHUP.
        reboot = sup.reboot or code == -signal.SIGHUP
        if sup.stop_waiters or sup.stop_deadline is not None:
            reboot = sup.reboot
        try:
            self._set_state(sup, State.STOPPING)
        except (OSError, PylError) as err:
            # The state file could not be written (/run full): the teardown, the exit status
            # of a pyl-execute and the stop waiters' answers must not wait on it. Left to an
            # exception, the container stayed supervised with a dead init and they hung.
            log.error("monitor", f"{sup.name}: recording STOPPING: {err}")
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
        if sup.netinfo_sock is not None:  # first: the socket keeps the container's netns alive
            sup.netinfo_sock.close()
            sup.netinfo_sock = None
        if sup.net_state is not None:
            if sup.net_state.phys:
                # Physical devices go back to the host now: a restart may want them at once.
                self._release_network(sup.name, sup.net_state, wait=NET_RELEASE_WAIT)
            else:
                # A veth's host end goes with the container's network namespace, which the
                # kernel frees asynchronously: a few ms after init died, sometimes 100+ ms on a
                # busy host. The stop is done without waiting for that (waiting made stop -k
                # 20-200 ms); _settle_net_releases confirms it, or deletes the link, and gives
                # the addresses back only then, so an address is never on two live links. A
                # start of this container settles its release first (op_start).
                self.net_releases[sup.name] = PendingNetRelease(
                    sup.net_state, time.monotonic() + NET_RELEASE_WAIT)
        if sup.console_proxy is not None:
            self._close_console_proxy(sup)  # the pyl-console sees its end (EIO) and leaves
        for fd in [sup.console_master, *sup.tty_masters, *sup.tty_peers, sup.pidfd, sup.console_log]:
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
        for path in sup.pidfiles:
            _remove_pidfile(path)
        self.layout.state_file(sup.name).unlink(missing_ok=True)
        try:  # what pyl-device granted in this run (pure v2): the next run starts from the config
            os.unlink(self.layout.run_path("devices", f"{sup.name}.json"))
        except FileNotFoundError:
            pass
        # The running lock's file goes with the run (readers find no file: not running), so a
        # run dir does not keep one per container ever started.
        release(sup.running_lock, self.layout.running_lock_path(sup.name), remove=True)
        self._broadcast_state(sup.name, State.STOPPED)

    def _release_network(self, name: str, state: Any, wait: float) -> None:
        """Wait up to WAIT for the kernel to drop the veth host ends of STATE, delete what is
        left (the netlink worker), restore physical devices, release the address leases."""
        try:
            from lxctools.runtime import net
            rest = net.release_after_exit(state, wait=wait)
            if rest is not None:
                from lxctools.runtime.networker import WORKER
                WORKER.call("teardown", rest)
        except Exception as err:
            log.error("monitor", f"{name}: network cleanup: {err}")

    def _settle_net_releases(self, only: str | None = None, *, block: bool = False) -> None:
        """Finish pending network releases: those whose links the kernel has dropped, those past
        their deadline, and with BLOCK (a start of that container, the supervisor leaving) the
        ones asked for, waiting out their deadline if need be."""
        from lxctools.runtime.net import host_links_left
        now = time.monotonic()
        for name, pending in list(self.net_releases.items()):
            if only is not None and name != only:
                continue
            if host_links_left(pending.state) and not block and now < pending.deadline:
                continue
            del self.net_releases[name]
            self._release_network(name, pending.state, wait=max(0.0, pending.deadline - now))

    def _restart(self, sup: Supervised) -> None:
        msg = {"op": "start", "name": sup.name, "config_file": sup.config_file, "values": sup.values}
        try:
            from lxctools.config.model import ContainerConfig
            msg["values"] = ContainerConfig.load(sup.config_file).values(concrete_hwaddr=True)
        except Exception as err:
            log.error("monitor", f"{sup.name}: reboot: reloading config failed ({err}); using the old one")
        try:
            self.op_start(NullClient(), msg, [])  # type: ignore[arg-type]
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


def _write_pid(path: str) -> None:
    try:
        with open(path, "w") as file:
            file.write(f"{os.getpid()}\n")
    except OSError as err:  # the client checked it could write there; it changed since
        log.error("monitor", f"pid file {path}: {err.strerror}")


def _remove_pidfile(path: str) -> None:
    """Remove PATH if it still holds this supervisor's PID: a file that another program wrote
    since (a second pyl-start -p with the same path for another lxcpath) is not ours."""
    try:
        with open(path, "rb") as file:  # bytes: binary written over it is not ours, not a crash of the stop
            if file.read().strip() != str(os.getpid()).encode():
                return
        os.unlink(path)
    except OSError:
        pass
