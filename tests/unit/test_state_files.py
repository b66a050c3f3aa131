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
