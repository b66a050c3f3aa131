"""The supervisor's state files (and the ls summary cache, the device-rule files) are written by
write_json_atomic: a reader finds the old file or the new one, with exactly the mode asked for,
and no temp file is left behind, whether the write succeeded or failed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lxctools.state import read_json, write_json_atomic


def test_writes_the_document_and_leaves_only_it(tmp_path):
    target = tmp_path / "state" / "c1.json"  # the folder is made on the way
    write_json_atomic(target, {"name": "c1", "state": "RUNNING", "pid": 42, "ünï": "cödé"})
    assert read_json(target) == {"name": "c1", "state": "RUNNING", "pid": 42, "ünï": "cödé"}
    assert os.listdir(target.parent) == ["c1.json"]
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "c1.json"
    write_json_atomic(target, {"values": {f"k{i}": "x" * 100 for i in range(200)}})
    write_json_atomic(target, {"state": "STOPPED"})
    assert read_json(target) == {"state": "STOPPED"}
    assert os.listdir(tmp_path) == ["c1.json"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_mode_is_exactly_the_one_asked_for_whatever_the_umask(tmp_path, mode, umask):
    target = tmp_path / "c1.json"
    old = os.umask(umask)
    try:
        write_json_atomic(target, {"a": 1}, mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_an_unserialisable_document_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "c1.json"
    write_json_atomic(target, {"state": "RUNNING"})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"state": object()})
    assert read_json(target) == {"state": "RUNNING"}
    assert os.listdir(tmp_path) == ["c1.json"]


def test_a_failed_rename_removes_the_temp_file(tmp_path):
    target = tmp_path / "c1.json"
    target.mkdir()
    (target / "keep").write_text("x")  # a non-empty folder: rename onto it fails
    with pytest.raises(OSError):
        write_json_atomic(target, {"state": "RUNNING"})
    assert sorted(os.listdir(tmp_path)) == ["c1.json"]


def test_does_not_import_tempfile(tmp_path):
    # tempfile (with shutil, random, bz2, lzma: ~9 ms) was what the first write of a state file
    # cost a supervisor, and what pyl-ls --fancy paid whenever it rewrote its cache.
    code = ("import sys, pathlib; from lxctools.state import write_json_atomic; "
            "write_json_atomic(pathlib.Path(sys.argv[1]) / 'x.json', {'a': 1}); "
            "print(sorted(m for m in ('tempfile', 'shutil', 'random') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
    assert read_json(tmp_path / "x.json") == {"a": 1}



from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)
_RECORDISH = st.fixed_dictionaries({}, optional={
    "pid": st.one_of(st.integers(-2, 1 << 22), st.text(max_size=3), st.none()),
    "starttime": st.one_of(st.integers(0, 1 << 40), st.text(max_size=3), st.none()),
    "state": st.one_of(st.sampled_from(["RUNNING", "FROZEN", "STOPPED", "BOGUS", "running"]), st.integers()),
    "values": st.one_of(st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers() | st.none()
                                        | st.lists(st.text(max_size=2) | st.integers(), max_size=2), max_size=2),
                        st.lists(st.integers())),
})


@given(document=st.one_of(_JSON, _RECORDISH))
def test_a_state_file_of_any_shape_is_a_record_or_none_never_a_crash(tmp_path_factory, document):
    # The state file is the supervisor's, written whole; one edited by hand into another shape
    # must be "no record" to pyl-info and to the supervisor that adopts, never a traceback.
    import json
    from lxctools.runstate import read_runstate
    from lxctools.paths import Layout
    from lxctools.state import State, read_state_record
    root = tmp_path_factory.mktemp("lp")
    layout = Layout(root / "lxc", root / "run")
    path = Path(layout.state_path("c1"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    record = read_state_record(path)
    if record is not None:
        assert isinstance(record["pid"], int) and State(record.get("state", "STOPPED"))
    assert read_runstate(layout, "c1").state in set(State)


def test_a_state_record_as_the_supervisor_writes_it_is_read(tmp_path):
    from lxctools.state import read_state_record
    path = tmp_path / "c1.json"
    write_json_atomic(path, {"pid": 4242, "starttime": 123, "state": "RUNNING", "values": {"lxc.uts.name": "c1"}})
    assert read_state_record(path)["pid"] == 4242
    for broken in ('{"pid": "4242", "starttime": 1}', '{"pid": 1, "state": "BOGUS"}', "[1, 2]", "{", '"x"',
                   '{"pid": 1, "values": {"lxc.group": 5}}', '{"pid": 1, "values": {"lxc.group": [1]}}',
                   '{"pid": 1, "config_file": 7}'):
        path.write_text(broken)
        assert read_state_record(path) is None, broken
