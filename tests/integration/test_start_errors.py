"""A start that fails inside the container says why, every time: init's own error line."""

from __future__ import annotations

import os

from tests.conftest import NO_NET, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]


def test_a_mount_failure_is_reported_not_a_reset_connection(pyl):
    # PID 1 fails while mounting and exits with the supervisor's "net" unread: its socket is
    # reset, and the error line it wrote just before was lost in 4 starts of 10.
    pyl.env["PYL_MONITOR_LINGER"] = "30"  # one warm supervisor for every start, as a user has
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    dev = pyl.lxcpath / "c1" / "rootfs" / "dev"
    os.system(f"rm -rf {dev}")
    dev.symlink_to("/nonexistent/../../etc")
    for _ in range(12):
        r = pyl("start", "-n", "c1")
        assert r.returncode == 71, r.stderr
        assert "lxc.autodev: target dev does not exist" in r.stderr, r.stderr
    assert pyl.ok("info", "-n", "c1", "-s", "-H").stdout == "STOPPED\n"
