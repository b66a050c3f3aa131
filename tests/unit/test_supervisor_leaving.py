"""A supervisor leaving (idle past its linger) must not close on a client that connected in the
last moment: it takes what waits in its listen backlog and stays for it (supervisor.py)."""

from __future__ import annotations

import shutil
import socket
import tempfile

import pytest

from lxctools.monitor.supervisor import Supervisor
from lxctools.paths import Layout


@pytest.fixture
def sup(tmp_path):
    # a short run dir: the socket path must fit in sun_path
    rundir = tempfile.mkdtemp(prefix="pylu-", dir="/tmp")
    supervisor = Supervisor(Layout(lxcpath=tmp_path, rundir=rundir), linger=0)
    supervisor._bind_socket()
    yield supervisor
    for client in list(supervisor.clients):
        client.sock.close()
    supervisor.sock.close()
    supervisor.sel.close()
    shutil.rmtree(rundir)


def test_nobody_waiting_it_leaves_with_its_socket_gone(sup):
    assert sup.layout.monitor_socket.exists()
    assert sup._late_clients_keep_us() is False
    assert not sup.layout.monitor_socket.exists()  # a newcomer spawns the next supervisor


def test_a_client_in_the_backlog_keeps_it_and_is_served(sup):
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        late.connect(str(sup.layout.monitor_socket))  # queued: the loop has not accepted it
        assert sup._late_clients_keep_us() is True
        assert len(sup.clients) == 1 and sup.idle_since is None
        assert sup.layout.monitor_socket.exists()  # listening again, at the same path
        again = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        again.connect(str(sup.layout.monitor_socket))
        again.close()
    finally:
        late.close()
