"""pyl-autostart on real busybox containers: -L ordering and groups, start then kill, exit codes."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]

P = f"au{os.getpid() % 100000}"


def _create(pyl, tmp_path, name: str, extra: str) -> None:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"lxc.include = {ROOT}/configs/common.toml\nlxc.net.0.type = empty\n{extra}")
    pyl.ok("create", "-n", name, "-t", "busybox", "-f", str(conf))


@pytest.fixture
def four(pyl, tmp_path):
    """The reference's setup: a1 in onboot with a delay, a2 auto without group, a3/t2 not auto."""
    _create(pyl, tmp_path, f"{P}a1", "lxc.start.auto = 1\nlxc.start.delay = 3\nlxc.group = onboot\n")
    _create(pyl, tmp_path, f"{P}a2", "lxc.start.auto = 1\n")
    _create(pyl, tmp_path, f"{P}a3", "lxc.start.order = -5\n")
    _create(pyl, tmp_path, f"{P}t2", "lxc.start.order = -1\n")
    return pyl


def test_list_default_groups_all(four):
    pyl = four
    assert pyl.ok("autostart", "-L").stdout == f"{P}a2 0\n"
    assert pyl.ok("autostart", "-L", "-g", "onboot,").stdout == f"{P}a1 3\n{P}a2 0\n"
    assert pyl.ok("autostart", "-L", "-g", "onboot").stdout == f"{P}a1 3\n"
    assert pyl.ok("autostart", "-L", "-a", "-A").stdout.split("\n")[:-1] == \
        [f"{P}a3 0", f"{P}t2 0", f"{P}a1 3", f"{P}a2 0"]
    assert pyl.ok("autostart", "-L", "-a").stdout == f"{P}a1 3\n{P}a2 0\n"
    dup = pyl("autostart", "-L", "-g", "onboot,onboot")
    assert dup.returncode == 0 and 'Duplicate group "onboot"' in dup.stderr


def test_no_containers_exits_1(pyl):
    result = pyl("autostart", "-L")
    assert result.returncode == 1 and result.stdout == ""


def test_start_then_shutdown_lists_running_in_reverse(four):
    pyl = four
    pyl.ok("autostart", "-a", "-A", "-g", "ignored")   # -a wins over -g (with a warning)
    running = pyl.ok("ls", "--running", "-1").stdout.split()
    assert sorted(running) == sorted([f"{P}a1", f"{P}a2", f"{P}a3", f"{P}t2"])
    assert pyl.ok("autostart", "-L").stdout == ""             # nothing left to start
    assert pyl.ok("autostart", "-L", "-k", "-a", "-A").stdout.split() == \
        [f"{P}a2", f"{P}a1", f"{P}t2", f"{P}a3"]
    pyl.ok("autostart", "-k", "-a", "-A")
    assert pyl.ok("ls", "--running", "-1").stdout.split() == []
