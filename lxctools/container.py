"""The one container API every pyl tool uses: create, destroy, state, config, start/stop...

Tools stay thin: they parse arguments, call one method here, and print. Methods raise
lxctools.errors; nothing here prints except progress on a terminal.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False

from lxctools.config import TEMPLATE_LINE  # the package's __init__ imports nothing
from lxctools.errors import (
    AlreadyExistsError, BusyError, ConfigError, NotFoundError, PylError, UsageError, WrongStateError,
)
from lxctools.locking import container_lock, prune_locks, release_guarding, try_flock
from lxctools.names import validate_name
from lxctools.paths import PARTIAL_MARKER, Layout
from lxctools.runstate import RunState, read_runstate
from lxctools.state import State

if TYPE_CHECKING:
    from pathlib import Path

    from lxctools.config.model import ContainerConfig

CREATE_HEADER = (
    TEMPLATE_LINE + "{template}\n"
    "# Parameters passed to the template:{args}\n"
    "# For additional config options, see `pyl-config -l` and README.md\n"
)


class Container:
    def __init__(self, name: str, layout: Layout) -> None:
        self.name = validate_name(name)
        self.layout = layout

    # pathlib is imported on first use of a Path (~7 ms): start, stop, info... never need one.
    @property
    def dir(self) -> Path:
        return self.layout.container_dir(self.name)

    @property
    def dir_str(self) -> str:
        """The container's folder as a string (dir without pathlib: pyl-copy's path uses it)."""
        return self.layout.container_path(self.name)

    # ---- what is on disk -------------------------------------------------------------------
    @property
    def config_path(self) -> Path | None:
        return self.layout.config_file(self.name)

    def is_partial(self) -> bool:
        return os.path.exists(os.path.join(self.layout.container_path(self.name), PARTIAL_MARKER))

    def is_defined(self) -> bool:
        """A container exists once its folder holds a config and no creation is in progress."""
        if self.is_partial():
            # Also without a config yet: a create or copy killed before writing it leaves
            # nothing else that would ever remove the folder.
            self.reap_partial()
            return False
        return self.layout.config_file_path(self.name) is not None

    def require_defined(self) -> None:
        if not self.is_defined():
            raise NotFoundError(f"container does not exist in {self.layout.lxcpath_str}")

    def load_config(self, rcfile: str | None = None) -> "ContainerConfig":
        from lxctools.config.model import ContainerConfig
        if rcfile:
            if not os.path.isfile(rcfile):
                raise NotFoundError(f"config file '{rcfile}' does not exist")
            return ContainerConfig.load(rcfile)
        path = self.layout.config_file_path(self.name)
        if path is None:
            raise NotFoundError(f"container does not exist in {self.layout.lxcpath_str}")
        return ContainerConfig.load(path)

    # ---- state --------------------------------------------------------------------------------
    def runstate(self) -> RunState:
        return read_runstate(self.layout, self.name)

    def state(self) -> State:
        return self.runstate().state

    def require_state(self, operation: str, rs: RunState | None = None) -> RunState:
        from lxctools.state import ALLOWED
        rs = rs or self.runstate()
        if rs.state not in ALLOWED[operation]:
            if rs.state is State.STOPPED and not self.is_defined():
                raise NotFoundError(f"cannot {operation}: container does not exist in {self.layout.lxcpath_str}")
            raise WrongStateError(f"cannot {operation}: container is {rs.state}")
        return rs

    def lock(self, operation: str, wait: float = 0.0) -> container_lock:
        """``with container.lock("start"):`` hold this container's operation lock."""
        return container_lock(self.layout.lock_path(self.name), self.name, operation, wait=wait,
                              folder=self.dir_str)

    # ---- create / destroy -------------------------------------------------------------------
    def reap_partial(self, *, holding_lock: bool = False) -> None:
        """Remove a creation that died halfway (its marker is no longer locked by a live pyl-create)."""
        folder = self.dir_str
        marker = os.path.join(folder, PARTIAL_MARKER)
        # The operation lock first: a pyl-create holds it from before the marker exists until
        # after it is gone, so there is no window in which a live creation looks abandoned.
        lock_path = self.layout.lock_path(self.name)
        op_fd = None if holding_lock else try_flock(lock_path)
        if op_fd is None and not holding_lock:
            return
        try:
            # Not created if missing: the creation we saw may have finished meanwhile, and a
            # marker made here would have its healthy container deleted as half-made.
            fd = try_flock(marker, create=False)
            if fd is None:
                return  # finished, or a pyl-copy or an older pyl-create still holds its marker
            try:
                remove_tree(folder, self.layout.lxcpath_str)
            finally:
                os.close(fd)
        finally:
            if op_fd is not None:
                release_guarding(op_fd, lock_path, folder)

    def create(self, *, template: str | None, config_file: str | None, backend: str = "dir",
               rootfs_dir: str | None = None, template_args: list[str] | None = None,
               quiet: bool = False) -> None:
        # Plain strings and os.path here: pathlib costs pyl-create ~4 ms of its ~55.
        from lxctools.config.model import ContainerConfig
        from lxctools.runtime.template import resolve_template, run_template

        if backend not in ("dir", "none"):
            raise UsageError(f"backing store '{backend}' is not supported (pyl supports: dir)")
        if rootfs_dir is not None and not os.path.isabs(rootfs_dir):
            raise UsageError("--dir needs an absolute path")
        # "none" is a real template in pyl (it only prepares the rootfs folder and says where
        # to put files); a path or LXC's name resolution covers the rest.
        template_path = resolve_template(template) if template else None
        base = self._initial_config(config_file)
        folder = self.layout.container_path(self.name)
        with self.building():
            created_rootfs: str | None = None
            try:
                rootfs = rootfs_dir or os.path.join(folder, "rootfs")
                if not (rootfs_dir and os.path.exists(rootfs)):
                    # The highest folder this makes goes again if the create fails (--dir
                    # /srv/new/c1/rootfs must not leave /srv/new behind).
                    created_rootfs = rootfs
                    while rootfs_dir and not os.path.exists(os.path.dirname(created_rootfs)):
                        created_rootfs = os.path.dirname(created_rootfs)
                    if rootfs_dir:
                        os.makedirs(os.path.dirname(rootfs), exist_ok=True)
                    os.mkdir(rootfs, 0o755)
                    # mkdir's mode goes through the umask: a cron job's 077 would make the
                    # container's / 0700, and every user but root inside could open nothing.
                    os.chmod(rootfs, 0o755)
                cfg = base
                cfg.expand_hwaddr()
                if cfg.get("lxc.rootfs.path") in (None, ""):
                    cfg.set("lxc.rootfs.path", f"dir:{rootfs}")
                if cfg.get("lxc.uts.name") in (None, ""):
                    cfg.set("lxc.uts.name", self.name)
                # Templates speak LXC's protocol: they append LXC-format lines to PATH/config.
                lxc_config = os.path.join(folder, "config")
                _write_file(lxc_config, cfg.to_text("lxc"), 0o640)
                if template_path is not None:
                    _progress(f"running template {os.path.basename(template_path)} for {self.name}")
                    run_template(template_path, path=folder, name=self.name, rootfs=rootfs,
                                 args=template_args or [], quiet=quiet)
                final = ContainerConfig.load(lxc_config)
                final.values()  # validate what the template wrote before declaring success
                header = CREATE_HEADER.format(
                    template=template_path or "none",
                    args="".join(f" {a}" for a in (template_args or [])))
                tmp = os.path.join(folder, ".config.toml.tmp")
                _write_file(tmp, header + final.to_text("toml"), 0o640)
                os.rename(tmp, os.path.join(folder, "config.toml"))
                os.unlink(lxc_config)
            except BaseException:
                if created_rootfs is not None and rootfs_dir:  # --dir outside the folder
                    import shutil
                    shutil.rmtree(created_rootfs, ignore_errors=True)
                raise

    def building(self) -> _Building:
        """``with container.building():`` make this container (pyl-create, pyl-copy); see _Building."""
        return _Building(self)

    def _initial_config(self, config_file: str | None) -> "ContainerConfig":
        from lxctools.config.model import ContainerConfig
        if config_file:
            if not os.path.isfile(config_file):
                raise NotFoundError(f"config file '{config_file}' does not exist")
            source = config_file
        else:
            from lxctools.config.system import load_system_config
            source = str(load_system_config().default_config)
            if not os.path.isfile(source):
                from lxctools.paths import configs_dir
                source = os.path.join(configs_dir(), "default.toml")
            if not os.path.isfile(source):
                return ContainerConfig.empty()
        cfg = ContainerConfig.load(source)
        cfg.anchor_paths()  # it moves into the container's folder: relative paths keep their meaning
        return cfg

    def destroy(self, *, force: bool = False, snapshots: bool = False) -> None:
        with self.lock("destroy"):
            self._destroy_locked(force=force, snapshots=snapshots)

    def _destroy_locked(self, *, force: bool, snapshots: bool, source_held: tuple[str, str] | None = None) -> None:
        """Destroy under this container's lock. SOURCE_HELD: the container whose lock the caller
        holds (a destroy -s of our source), so our entry in its list is left to it."""
        from lxctools import dependents
        _reap_destroy_leftovers(self.layout, holding=self.name)
        self.require_defined()
        rs = self.runstate()
        if rs.state is not State.STOPPED:
            if not force:
                raise WrongStateError(f"cannot destroy: container is {rs.state}",
                                      hint="stop it first, or use -f to stop and destroy it")
            self._stop_locked(kill=True, timeout=10)
        folder = self.dir_str
        snaps = os.path.join(folder, "snaps")
        # Snapshots, not what a pyl-snapshot killed halfway left (listing them reaps those).
        if os.path.isdir(snaps) and list_container_names(Layout(snaps, self.layout.rundir_str)) and not snapshots:
            raise WrongStateError("cannot destroy: container has snapshots", hint="use -s to destroy them too")
        me = dependents.pair(self.layout.lxcpath_str, self.name)
        clones = dependents.live_clones(folder)
        source = dependents.source_of(folder)  # a corrupt record is refused before anything is gone
        if clones and not snapshots:
            raise WrongStateError("cannot destroy: container has snapshot clones", hint="use -s")
        try:
            values = self.load_config().values()
        except ConfigError as err:
            # The rootfs to delete (maybe outside the folder) and the destroy hooks are in
            # the config: guessing would risk deleting the wrong thing.
            raise ConfigError(err.message, hint="fix the config first (destroy needs its rootfs path and "
                              f"hooks), or remove {folder} by hand") from None
        rootfs = _rootfs_dir(values.get("lxc.rootfs.path"))
        managed = values.get("lxc.rootfs.managed", "1") != "0"
        # Every refusal before anything changes (clones, snapshots, hooks, the source's clone
        # list, files).
        if not managed and rootfs is not None and _is_inside(rootfs, folder):
            raise PylError("lxc.rootfs.managed = 0 but the rootfs is inside the container folder; "
                           "refusing to delete it")
        busy = _mounts_under(folder)
        if busy:
            raise BusyError(f"cannot destroy: something is mounted at {busy[0]}")
        # -s: the clones with their own snapshots (lxc-destroy -s stops at a clone that has
        # some), then our snapshots. A snapshot of an overlay clone reads our source's rootfs:
        # destroyed one by one, each leaves that source's list (removing snaps/ would not).
        doomed = [("clone", Container(name, Layout(lxcpath, self.layout.rundir_str)))
                  for lxcpath, name in clones]
        if snapshots:
            snaps_layout = Layout(snaps, self.layout.rundir_str)
            doomed += [("snapshot", Container(name, snaps_layout)) for name in list_container_names(snaps_layout)]
        if not force:
            for kind, other in doomed:
                state = other.runstate().state
                if state is not State.STOPPED:  # refused before any of them is gone
                    raise WrongStateError(f"{kind} {other.name}: cannot destroy: container is {state}",
                                          hint="stop it first, or use -f to stop and destroy it")
        for kind, other in doomed:
            try:
                with other.lock("destroy"):
                    if other.is_defined():  # a clone's snapshot is also our clone: gone with it
                        other._destroy_locked(force=force, snapshots=True, source_held=me)
            except PylError as err:
                if not err.message.startswith(f"{other.name}: "):  # the lock's own message names it
                    err.prefixed(f"{kind} {other.name}")
                raise
        self._run_hooks(values, "destroy")
        if source is not None and source != source_held:
            self._leave_source(source, me)
        if managed and rootfs is not None and not _is_inside(rootfs, folder) and os.path.exists(rootfs):
            remove_tree(rootfs, os.path.dirname(rootfs))
        # Out of sight first (one rename), then deleted: a destroy killed halfway leaves a
        # hidden folder, never a half-deleted container under the name.
        trash = self.layout.container_path(f".{self.name}{DESTROYING}{os.getpid()}")
        os.rename(folder, trash)
        remove_tree(trash, self.layout.lxcpath_str)
        # The snapshots' lock files live under their own lxcpath's run folder (folder/snaps).
        prune_locks(Layout(snaps, self.layout.rundir_str))

    def _leave_source(self, source: tuple[str, str], me: tuple[str, str]) -> None:
        """An overlay clone going away drops out of its source's lxc_snapshots, under the source's
        lock (a clone registered meanwhile must not be lost from the list). If another command
        holds that lock the entry stays: harmless, lists count only clones that still exist, and
        a destroy must not wait on a long copy (nor hold the supervisor, for an ephemeral one)."""
        from lxctools import dependents
        try:
            owner = Container(source[1], Layout(source[0], self.layout.rundir_str))
            with owner.lock("forget a clone"):
                dependents.unregister_clone(owner.dir_str, me)
        except (PylError, OSError):
            pass  # busy, or a source that is not a container any more: the entry is harmless

    def _run_hooks(self, values: dict, hook: str) -> None:
        from lxctools.runtime.hooks import run_hooks
        run_hooks(values, hook, name=self.name, config_file=str(self.layout.config_file_path(self.name)),
                  extra_env={})

    # ---- running: delegated to the supervisor ------------------------------------------------
    def start_values(self, rcfile: str | None = None, overrides: list[str] | None = None) -> tuple[dict, str]:
        """The config a start would use (file + -s overrides), validated; and its path."""
        cfg = self.load_config(rcfile)
        if overrides:
            cfg.apply_overrides(overrides)
        path = rcfile or str(self.config_path)
        return cfg.values(), str(path)

    def start(self, *, rcfile: str | None = None, overrides: list[str] | None = None,
              command: list[str] | None = None, pidfile: str | None = None) -> tuple[bool, int | None]:
        """Start and return (started_now, init pid); (False, pid) if it was already running.
        PIDFILE: the supervisor writes its PID there and removes the file when the container
        stops (pyl-start -p)."""
        from lxctools.monitor.client import connect
        with self.lock("start"):
            if rcfile is None:
                self.require_defined()
            rs = self.runstate()
            if rs.state.is_running and pidfile is None:
                return False, rs.pid
            message = self._start_message(rcfile, overrides, command)
            if pidfile is not None:  # running already: the supervisor still takes the file on
                message["pidfile"] = os.path.abspath(pidfile)
            with connect(self.layout, for_start=not rs.state.is_running) as conn:
                reply = conn.request(message)
            for warning in reply.get("warnings") or []:
                from lxctools.log import warn_user
                warn_user(f"pyl-start: {self.name}", warning)
            return not reply.get("already"), reply.get("pid")

    def _start_message(self, rcfile: str | None, overrides: list[str] | None, command: list[str] | None,
                       app_container: bool = False) -> dict:
        """The supervisor loads and validates the config itself (it has the parser loaded;
        this process then pays for no TOML import); errors come back as replies."""
        from lxctools.config.system import load_system_config
        config_file = os.path.abspath(rcfile) if rcfile else self.layout.config_file_path(self.name)
        return {"op": "start", "name": self.name, "config_file": config_file, "overrides": overrides or [],
                "command": command, "app_container": app_container,
                "default_bridge": getattr(load_system_config(), "default_bridge", "pylbr0")}

    def execute(self, command: list[str], *, rcfile: str | None = None,
                overrides: list[str] | None = None) -> int:
        """Run command as an application container with this process's stdio; return its status."""
        import _signal  # not signal: it imports enum for names we do not print
        from lxctools.monitor.client import connect, check
        with self.lock("execute"):
            if rcfile is None:
                self.require_defined()
            rs = self.runstate()
            if rs.state.is_running:
                raise WrongStateError(f"cannot execute: container is {rs.state}")
            conn = connect(self.layout, for_start=True)
            from lxctools.monitor.client import caller_stdio
            conn.send(self._start_message(rcfile, overrides, command, app_container=True), fds=caller_stdio())
            for warning in check(conn.receive()).get("warnings") or []:
                from lxctools.log import warn_user
                warn_user(f"pyl-execute: {self.name}", warning)
        # The container runs on its own now; the lock is for the start only.
        forwarded = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                     _signal.SIGUSR1, _signal.SIGUSR2)
        def forward(signum: int, _frame: object) -> None:
            # Runs between bytecodes of this thread (inside the blocked recvmsg's EINTR retry),
            # never in the middle of another send on this socket.
            try:
                conn.send({"op": "signal", "name": self.name, "signal": signum, "quiet": True})
            except OSError:
                pass

        previous = {sig: _signal.signal(sig, forward) for sig in forwarded}
        try:
            while True:
                message = conn.reader.next_message()
                if message is None:
                    if not conn.reader.fill():
                        raise PylError("lost the supervisor while the command ran")
                    continue
                if message.get("event") == "exit":
                    return int(message["status"])
        finally:
            for sig, handler in previous.items():
                _signal.signal(sig, handler)
            conn.close()

    def attach(self, *, command: list[str] | None, rcfile: str | None = None,
               namespaces: str | None = None, elevated: frozenset[str] = frozenset(),
               uid: int | None = None, gid: int | None = None, env: dict[str, str] | None = None,
               clear_env: bool = True, keep_vars: tuple[str, ...] = (), pty: bool = False,
               pty_log: str | None = None) -> int:
        """Run command (default: the user's login shell) inside; return its exit status.
        The supervisor forks the attached process (see runtime.attach); this process only
        passes its stdio and relays signals and the pty."""
        from lxctools.monitor.attach_client import attach
        self.require_state("attach")
        if rcfile:
            raise UsageError("--rcfile is not supported by pyl-attach (the running config is used)")
        chosen = None
        if namespaces:
            from lxctools.runtime.attach import parse_namespaces
            chosen = list(parse_namespaces(namespaces))
            elevated = frozenset({"CAP", "CGROUP", "LSM"})  # as lxc-attach: -s implies -e
        try:
            cwd: str | None = os.getcwd()
        except OSError:
            cwd = None
        return attach(self.layout, {
            "name": self.name, "command": command or None, "namespaces": chosen,
            "elevated": sorted(elevated), "uid": uid, "gid": gid, "env": env or {},
            "clear_env": clear_env, "keep_vars": list(keep_vars), "cwd": cwd,
        }, pty=pty, pty_log=pty_log)

    def cgroup_plan(self, rs: RunState | None = None):
        """Paths of the running container's cgroups (found from its init's /proc/PID/cgroup)."""
        from lxctools.runtime import cgroups
        rs = rs or self.require_state("cgroup")
        return cgroups.plan_from_existing(self.name, _cgroup_layout(), pid=rs.pid)

    def _read_cgroup_pids(self, rs: RunState | None) -> list[int]:
        """cgroup_pids_of's way without a supervisor: [] when it stopped meanwhile."""
        from lxctools.runtime import cgroups
        try:
            return cgroups.procs(self.cgroup_plan(rs))
        except (PylError, OSError):
            return []

    def cgroup_value(self, key: str, value: str | None = None) -> str | None:
        """pyl-cgroup: read KEY of the running container's cgroup, or write VALUE to it. The
        supervisor does it (one round trip, as pyl-info: it has the cgroup code loaded); a
        container running without one (an orphan no supervisor adopted yet) is done here."""
        rs = self.runstate()
        if not rs.state.allows("cgroup") or not rs.pid:
            self.require_defined()
            raise WrongStateError(f"'{self.layout.lxcpath_str}:{self.name}' is not running")
        from lxctools.monitor.client import request_if_served
        reply = request_if_served(self.layout, {"op": "cgroup", "name": self.name, "key": key, "value": value})
        if reply is not None:
            return reply.get("value") if value is None else None
        from lxctools.runtime import cgroups
        plan = self.cgroup_plan(rs)
        if value is None:
            return cgroups.read_value(plan, key)
        cgroups.write_value(plan, key, value)
        return None

    def exec_in_netns(self, argv: list[str]) -> int:
        """Run a host program in the container's network namespace only; its exit status."""
        from lxctools.runtime.netns_exec import run_in_netns
        return run_in_netns(self.require_state("netstat").pid, argv)

    def device(self, action: str, device: str, target: str | None) -> None:
        """pyl-device: move a host interface in (or back out), or create/remove a device node
        inside and allow/deny it in the device cgroup."""
        from lxctools.runtime import devices
        if os.geteuid() != 0:
            from lxctools.errors import PermissionDeniedError
            raise PermissionDeniedError("pyl-device needs root")
        rs = self.runstate()
        if not rs.state.allows("device") or not rs.pid:
            self.require_defined()
            raise WrongStateError(f"cannot {action} a device: container is {rs.state}")
        is_node = device.startswith("/")
        if not is_node and (action == "del" or devices.is_host_interface(device)):
            if action == "add":
                devices.move_interface_in(rs.pid, device, target or device)
            else:  # a bare name to take back is an interface inside
                devices.move_interface_out(rs.pid, target or device, device)
            return
        host_path = device if is_node else "/dev/" + device
        if action == "add" and not is_node and not os.path.exists(host_path):
            raise NotFoundError(f"the host has no interface '{device}' and no device node {host_path}")
        inside = devices.container_path(host_path, target)
        plan = self.cgroup_plan(rs)
        values = (rs.record or {}).get("values") or {}
        # pure v2: what pyl-device granted in this run (the device program is rebuilt from it)
        granted = devices.Granted(self.layout.run_path("devices", f"{self.name}.json"),
                                  (rs.pid, (rs.record or {}).get("starttime") or 0))
        with self.lock("device", wait=5.0):  # two pyl-device at once: one list, not two
            if action == "add":
                node = devices.host_node(host_path)
                # before the node exists: never visible but denied
                devices.allow_in_cgroup(plan, node, values=values, granted=granted)
                devices.add_node(rs.pid, node, inside)
                return
            node = devices.remove_node(rs.pid, inside)
            devices.deny_in_cgroup(plan, node, values=values, granted=granted)

    def stats(self, rs: RunState | None = None, plan=None):
        """cgroup statistics of a running container (None when stopped or unreadable).
        plan: its cgroup_plan, when the caller has it already (pyl-top reads block I/O too)."""
        rs = rs or self.runstate()
        if not rs.state.is_running:
            return None
        from lxctools.runtime import cgroups
        try:
            return cgroups.stats(plan if plan is not None else self.cgroup_plan(rs))
        except (PylError, OSError):
            return None

    def stop(self, *, kill: bool = False, timeout: float = 60, wait: bool = True, reboot: bool = False,
             nokill: bool = False) -> None:
        from lxctools.errors import NotRunningError
        from lxctools.monitor.client import request_stop
        options = {"kill": kill, "timeout": timeout, "wait": wait, "reboot": reboot, "nokill": nokill}
        # The supervisor first: it answers for every container it supervises, so the usual stop
        # reads no state file. Its "not running" leads to the checks below (missing, orphaned).
        try:
            request_stop(self.layout, self.name, supervised_only=True, **options)
            return
        except NotRunningError:
            pass
        rs = self.runstate()
        if not rs.state.is_running:
            self.require_defined()
            raise NotRunningError("is not running")
        request_stop(self.layout, self.name, **options)

    def freeze(self) -> None:
        self._simple_request("freeze")

    def unfreeze(self) -> None:
        rs = self.runstate()
        if not rs.state.is_running or rs.state is State.RUNNING:
            if not rs.state.is_running:
                self.require_defined()
            return  # as lxc-unfreeze: it only acts on a frozen container; otherwise nothing to do
        self._simple_request("unfreeze", rs)

    def _simple_request(self, op: str, rs: RunState | None = None) -> dict:
        from lxctools.monitor.client import connect
        rs = self.require_state(op, rs)
        with connect(self.layout, start=not rs.supervised) as conn:
            return conn.request({"op": op, "name": self.name})

    def wait(self, states: frozenset[State], timeout: float | None) -> State:
        """Return once the container is in one of states; TimeoutError_ after timeout seconds."""
        from lxctools.errors import TimeoutError_
        from lxctools.monitor.client import connect
        rs = self.runstate()
        if rs.state in states:
            return rs.state
        if timeout == 0:
            raise TimeoutError_(f"container is {rs.state}, not {'|'.join(sorted(states))}")
        with connect(self.layout) as conn:
            try:
                reply = conn.request({"op": "wait", "name": self.name, "states": sorted(states),
                                      "timeout": timeout})
            except PylError as err:
                if err.exit_code == 76:
                    raise TimeoutError_(f"timed out waiting for {'|'.join(sorted(states))}") from None
                raise
        return State(reply["state"])

    def _stop_locked(self, *, kill: bool, timeout: float) -> None:
        from lxctools.monitor.client import request_stop
        request_stop(self.layout, self.name, kill=kill, timeout=timeout, wait=True)


def _rootfs_dir(value: object) -> str | None:
    """The folder a dir-backed lxc.rootfs.path names (normalised as pathlib spelled it); None
    for a relative one: it would mean a folder of whoever's current directory, which destroy
    must not delete (pyl up to 2e9514e emptied the current folder for "dir:")."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("dir:"):
        value = value[4:]
    elif ":" in value.split("/")[0]:
        return None  # overlay:, btrfs: ... storage handled by its backend
    if not value.startswith("/"):
        return None
    from lxctools.runtime.storage import clean_path
    return clean_path(value)


def _is_inside(path: str | Path, folder: str | Path) -> bool:
    """PATH is FOLDER or below it, by name (absolute, '..' folded; symlinks not resolved)."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _mounts_under(path: str | Path) -> list[str]:
    prefix = os.path.realpath(path).rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                target = line.split()[4].replace("\\040", " ")
                if (target + "/").startswith(prefix):
                    found.append(target)
    except OSError:
        pass
    return found


def remove_tree(path: str | Path, must_be_under: str | Path) -> None:
    """Delete path without ever following a symlink out of it or descending into a mount."""
    if os.path.islink(path):
        os.unlink(path)
        return
    if not os.path.exists(path):
        return
    if not _is_inside(path, must_be_under):
        raise PylError(f"refusing to delete {path}: not under {must_be_under}")
    busy = _mounts_under(path)
    if busy:
        raise BusyError(f"refusing to delete {path}: something is mounted at {busy[0]}")
    # fd-relative traversal that never follows a symlink (safe against symlink races).
    from lxctools.kernel.files import delete_tree
    try:
        delete_tree(path)
    except PermissionError as err:
        # Root in a container keeps CAP_LINUX_IMMUTABLE (as in LXC): files it made immutable or
        # append-only (chattr +i, +a) refuse unlink, even to root here, until the flag goes.
        if not _clear_locking_flags(path):
            raise PylError(f"cannot delete {err.filename or path}: {err.strerror}") from err
        try:
            delete_tree(path)
        except OSError as again:
            raise PylError(f"cannot delete {again.filename or path}: {again.strerror}") from again


def _clear_locking_flags(path: str | Path) -> int:
    """chattr -i -a on every directory and regular file under PATH, fd-relative and never
    through a symlink (as rmtree walks); how many had one of those flags."""
    import stat
    from lxctools.kernel.inodeflags import FS_APPEND_FL, FS_IMMUTABLE_FL, get_flags, set_flags
    locking = FS_IMMUTABLE_FL | FS_APPEND_FL
    cleared = 0

    def clear(fd: int) -> None:
        nonlocal cleared
        try:
            flags = get_flags(fd)
            if flags & locking:
                set_flags(fd, flags & ~locking)
                cleared += 1
        except OSError:
            pass  # a file system without inode flags, or one we may not change

    for _folder, _dirs, files, dir_fd in os.fwalk(path, follow_symlinks=False):
        clear(dir_fd)
        for name in files:
            try:
                if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    continue  # devices, fifos, sockets: opening one could do something
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                clear(fd)
            finally:
                os.close(fd)
    return cleared


class _Building:
    """Make a new container in its folder: hold the name's lock, refuse an existing container,
    create the folder with a locked `partial` marker, and remove everything if the body fails;
    the marker goes once the body succeeded. A crash leaves the marker unlocked, so the next
    look at the name reaps the half-made folder. (A class, not @contextmanager: contextlib is
    1-3 ms of pyl-create's and pyl-copy's start-up on a 2-vCPU VM.)"""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.folder = container.layout.container_path(container.name)
        self.marker = os.path.join(self.folder, PARTIAL_MARKER)
        self.lock = container.lock("create")
        self.on_signal = _CleanupOnTermination()
        self.marker_fd = -1

    def __enter__(self) -> None:
        lxcpath = self.container.layout.lxcpath_str
        try:
            os.makedirs(lxcpath, mode=0o755, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotFoundError(f"the lxcpath {lxcpath} is not a directory (a file is in its way)") from None
        self.lock.__enter__()
        try:
            self.on_signal.__enter__()
            try:
                self._make_folder()
            except BaseException:
                self.on_signal.__exit__()
                raise
        except BaseException:
            self.lock.__exit__()
            raise

    def _make_folder(self) -> None:
        import fcntl
        c = self.container
        if c.is_partial():
            c.reap_partial(holding_lock=True)
        if os.path.lexists(self.folder):
            # Named: for pyl-copy the name on the command line is the source's.
            if c.layout.config_file_path(c.name) is not None:
                raise AlreadyExistsError(f"{c.name}: container already exists")
            raise AlreadyExistsError(f"{self.folder} exists but is not a container; remove it or pick another name")
        os.mkdir(self.folder, 0o770)
        try:
            self.marker_fd = os.open(self.marker, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.marker_fd, fcntl.LOCK_EX)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        try:
            remove_tree(self.folder, self.container.layout.lxcpath_str)
        finally:
            if self.marker_fd >= 0:
                os.close(self.marker_fd)
                self.marker_fd = -1

    def __exit__(self, kind: type | None, *_: object) -> None:
        try:
            if kind is None:
                try:
                    os.unlink(self.marker)
                except BaseException:
                    self._abandon()
                    raise
                os.close(self.marker_fd)
                self.marker_fd = -1
            else:
                self._abandon()
        finally:
            try:
                self.on_signal.__exit__()
            finally:
                self.lock.__exit__()


class _CleanupOnTermination:
    """While a container is being built, SIGTERM and SIGHUP raise errors.Terminated, so the
    `except BaseException` cleanups run (the template killed, the folder removed) instead of
    the default action ending the process with both left behind. A signal the caller ignores
    (nohup) stays ignored; after the first, both are ignored until the cleanup is done."""

    def __enter__(self) -> None:
        import _signal  # not signal: it imports enum
        from lxctools.errors import Terminated

        def terminate(signum: int, _frame: object) -> None:
            for sig in self.previous:
                _signal.signal(sig, _signal.SIG_IGN)
            raise Terminated(signum)

        self.previous: dict[int, object] = {}
        for sig in (_signal.SIGTERM, _signal.SIGHUP):
            try:
                if _signal.getsignal(sig) == _signal.SIG_DFL:
                    self.previous[sig] = _signal.signal(sig, terminate)
            except ValueError:  # not the main thread
                pass

    def __exit__(self, *_: object) -> None:
        import _signal
        for sig, handler in self.previous.items():
            _signal.signal(sig, handler)


DESTROYING = ".destroying-"  # .NAME.destroying-PID: a container folder on its way out


def _reap_destroy_leftovers(layout: Layout, *, holding: str) -> None:
    """Delete the hidden folders of destroys that were killed halfway (.NAME.destroying-PID):
    one whose name's lock is free belongs to no running destroy. HOLDING: the name whose lock
    the caller holds (its leftovers, from an earlier destroy, also share the new one's path)."""
    from lxctools.names import is_valid_name
    try:
        entries = os.listdir(layout.lxcpath_str)
    except OSError:
        return
    for entry in entries:
        name, found, _pid = entry[1:].rpartition(DESTROYING)
        if not entry.startswith(".") or not found or not is_valid_name(name):
            continue
        lock_path = layout.lock_path(name)
        lock_fd = None if name == holding else try_flock(lock_path)
        if lock_fd is None and name != holding:
            continue  # that destroy is still at work
        try:
            remove_tree(layout.lxcpath / entry, layout.lxcpath)
        except (OSError, PylError):
            pass  # left for the next destroy; this one goes on
        finally:
            if lock_fd is not None:
                release_guarding(lock_fd, lock_path, layout.container_path(name))


def _write_file(path: str, text: str, mode: int) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"{message}...\n")


_CGROUP_LAYOUT = None


def _cgroup_layout():
    global _CGROUP_LAYOUT
    if _CGROUP_LAYOUT is None:
        from lxctools.runtime import cgroups
        _CGROUP_LAYOUT = cgroups.detect_layout()
    return _CGROUP_LAYOUT


def template_help(template: str) -> int:
    """pyl-create -t TEMPLATE -- --help: the template's usage; its exit status."""
    from lxctools.runtime.template import resolve_template, template_help as show
    return show(resolve_template(template))


def available_templates() -> list[str]:
    from lxctools.runtime.template import available_templates as names
    return names()


def cgroup_layout_summary() -> tuple[str, set[str]]:
    """(kind v1|v2|hybrid, controllers) of this host, for pyl-checkconfig."""
    layout = _cgroup_layout()
    controllers: set[str] = set()
    for hierarchy in layout.hierarchies:
        controllers.update(hierarchy.controllers)
    return str(layout.kind), controllers


def default_bridge(action: str, rundir: Path, *, config_file: str | None = None, force: bool = False) -> dict:
    """pyl-net: start, stop or report pyl's default bridge (pylbr0, NAT, dnsmasq)."""
    from pathlib import Path
    from lxctools.runtime import bridge
    if config_file and not os.path.isfile(config_file):
        # load_config takes a missing default file for the defaults; a file asked for is not
        raise NotFoundError(f"settings file '{config_file}' does not exist")
    if action == "start":
        return bridge.start(rundir, bridge.load_config(Path(config_file)) if config_file else bridge.load_config())
    if action == "stop":
        # the settings matter only when the run's own record is gone (bridge.stop's leftovers)
        bridge.stop(rundir, force=force, cfg=bridge.load_config(Path(config_file)) if config_file else None)
        return {}
    return bridge.status(rundir)


def live_info(layout: Layout, names: list[str] | None, *, stats: bool = True,
              net: bool | str = True) -> dict[str, dict] | None:
    """{name: {state, pid, stats, interfaces}} for running containers, from the supervisor in
    one round trip; None if no supervisor runs (then nothing runs, except orphans)."""
    from lxctools.monitor.client import request_if_served
    try:
        reply = request_if_served(layout, {"op": "info", "names": names, "stats": stats, "net": net})
    except PylError:
        return None
    return reply["containers"] if reply is not None else None


def orphan_netinfo(rs: RunState, what: str = "interfaces") -> list[dict] | dict[str, list[str]] | None:
    """netinfo.interfaces (or, WHAT "addresses", netinfo.addresses) of a running container no
    supervisor serves (it died; the next one to start adopts the container), read here through
    a netlink socket made in the container's network namespace, as the supervisor does; None if
    that cannot be done (not root, the container just stopped). What pyl-info and pyl-ls show
    for it, instead of no addresses at all."""
    from lxctools.runtime import netinfo
    if not rs.pid:
        return None
    try:
        sock = netinfo.open_socket_in(rs.pid)
    except (OSError, PylError):
        return None
    with sock:
        try:
            return netinfo.query(sock, what)
        except (OSError, PylError):
            return None


def cgroup_pids_of(layout: Layout, running: list[tuple[str, RunState | None]]) -> dict[str, list[int]]:
    """The PIDs in the cgroup and sub-cgroups of each running container (name, RunState) of
    RUNNING; [] for one that stopped meanwhile. Asked of the supervisor, which has the cgroup
    code loaded (~25 ms of a pyl-ps otherwise), in one round trip (pyl-ps on a host with 50
    containers: one request, not 50); with none answering (none runs, the containers are
    orphans; or one of an older pyl) each cgroup is read here, as cgroup_value does."""
    if not running:
        return {}
    from lxctools.monitor.client import request_if_served
    try:
        reply = request_if_served(layout, {"op": "pids", "names": [name for name, _ in running]})
    except PylError:
        reply = None
    if reply is not None and isinstance(reply.get("pids_of"), dict):
        found = reply["pids_of"]
        return {name: [int(pid) for pid in found.get(name) or ()] for name, _ in running}
    return {name: Container(name, layout)._read_cgroup_pids(rs) for name, rs in running}


def list_container_names(layout: Layout) -> list[str]:
    """Defined containers under the lxcpath, sorted bytewise like lxc-ls. A folder whose name
    no pyl command accepts ('bad name', 'a<newline>b', '-x': made by hand) is no container of
    pyl's: listed, it would split `for c in $(pyl-ls)` and stop pyl-autostart at its name. A
    half-made one (partial, its creator gone) is removed on the way, as any look at it does."""
    from lxctools.names import is_valid_name
    names = []
    try:
        entries = os.scandir(layout.lxcpath_str)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir() or not is_valid_name(entry.name):
                continue
            base = entry.path
            if os.path.exists(base + "/" + PARTIAL_MARKER):
                try:
                    Container(entry.name, layout).reap_partial()
                except (OSError, PylError):
                    pass  # not ours to remove (another user's lxcpath), or busy: listing goes on
                continue
            if os.path.isfile(base + "/config.toml") or os.path.isfile(base + "/config"):
                names.append(entry.name)
    names.sort(key=lambda n: n.encode())
    return names
