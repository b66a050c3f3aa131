"""lxc.namespace.share.<ns>: a PID, a container of the same lxcpath, or /path/to/container (a
container of another lxcpath, as LXC has it); bad values are one clear error naming the key."""

from __future__ import annotations

import os

import pytest

from lxctools import cjson
from lxctools.errors import ConfigError, InvalidNameError, StartError
from lxctools.paths import Layout
from lxctools.runstate import process_starttime
from lxctools.runtime.start import shared_namespaces

KEY = "lxc.namespace.share.net"


def _running(lxcpath, rundir, name: str) -> None:
    """A state file saying NAME runs with this test process as its init."""
    path = Layout(lxcpath, rundir).state_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(cjson.dumps({"state": "RUNNING", "pid": os.getpid(),
                             "starttime": process_starttime(os.getpid())}))


def test_a_pid_a_name_and_a_path_to_a_container_elsewhere(tmp_path):
    here, elsewhere, rundir = tmp_path / "lxc", tmp_path / "other", str(tmp_path / "run")
    _running(str(here), rundir, "c2")
    _running(str(elsewhere), rundir, "c3")
    me = os.getpid()
    for target in (str(me), "c2", f"{elsewhere}/c3", f"{elsewhere}/c3/"):
        assert shared_namespaces({KEY: target}, lxcpath=str(here), rundir=rundir) == {"net": me}
    assert shared_namespaces({KEY: ""}, lxcpath=str(here), rundir=rundir) == {}  # cleared


def test_bad_targets_are_refused_naming_the_key(tmp_path):
    here, rundir = str(tmp_path / "lxc"), str(tmp_path / "run")
    _running(here, rundir, "x")
    # "../x" once meant container x of this lxcpath (only the last component was looked at)
    for target in ("../x", "x/", "sub/x"):
        with pytest.raises(ConfigError, match=f"{KEY} = {target}: .*absolute path"):
            shared_namespaces({KEY: target}, lxcpath=here, rundir=rundir)
    with pytest.raises(InvalidNameError, match=f"{KEY} = -1: .*starts with '-'"):
        shared_namespaces({KEY: "-1"}, lxcpath=here, rundir=rundir)
    with pytest.raises(StartError, match="container '/nowhere/x' is not running"):
        shared_namespaces({KEY: "/nowhere/x"}, lxcpath=here, rundir=rundir)
    with pytest.raises(StartError, match="no process 999999999"):
        shared_namespaces({KEY: "999999999"}, lxcpath=here, rundir=rundir)
