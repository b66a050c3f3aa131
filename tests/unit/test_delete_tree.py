"""lxctools.kernel.files.delete_tree, pyl's shutil.rmtree: everything under the folder goes,
nothing a symlink in it points at does, and a failure names the full path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from lxctools.kernel import files


def _outside(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep").write_text("keep")
    (outside / "sub" / "keep").write_text("keep")
    return outside


def _intact(outside) -> bool:
    return (outside / "keep").read_text() == "keep" and (outside / "sub" / "keep").read_text() == "keep"


def test_deletes_every_kind_of_entry_and_follows_no_link(tmp_path):
    outside = _outside(tmp_path)
    tree = tmp_path / "tree"
    (tree / "a" / "b" / "c").mkdir(parents=True)
    (tree / "a" / "file").write_text("x")
    os.link(tree / "a" / "file", tree / "a" / "b" / "hardlink")
    os.symlink(outside, tree / "a" / "to-dir")
    os.symlink(outside / "keep", tree / "a" / "b" / "to-file")
    os.symlink(tmp_path / "nowhere", tree / "dangling")
    os.symlink("../..", tree / "a" / "b" / "c" / "up")
    os.mkfifo(tree / "a" / "fifo")
    files.delete_tree(str(tree))
    assert not os.path.lexists(tree)
    assert _intact(outside)


# A tree of folders, files and links (to folders outside, to files outside, up the tree).
entries = st.lists(st.tuples(st.lists(st.sampled_from("abc"), max_size=3),
                             st.sampled_from(["dir", "file", "link-out", "link-up", "link-file"])),
                   max_size=12)


@settings(max_examples=60, deadline=None)
@given(entries=entries)
def test_any_tree_goes_and_nothing_outside_does(tmp_path_factory, entries):
    base = tmp_path_factory.mktemp("t")
    outside = _outside(base)
    tree = base / "tree"
    tree.mkdir()
    for n, (parts, kind) in enumerate(entries):
        folder = tree.joinpath(*parts)
        if not folder.is_dir() or folder.is_symlink():
            continue
        path = folder / f"e{n}"
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text("x")
        elif kind == "link-out":
            os.symlink(outside, path)
        elif kind == "link-up":
            os.symlink("..", path)
        else:
            os.symlink(outside / "keep", path)
    files.delete_tree(str(tree))
    assert not os.path.lexists(tree)
    assert _intact(outside)


def test_a_failure_names_the_full_path(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "stuck").write_text("x")
    real_unlink = os.unlink

    def unlink(name, *, dir_fd=None):
        if name == "stuck":
            raise PermissionError(1, "Operation not permitted")
        return real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(files.os, "unlink", unlink)
    with pytest.raises(PermissionError) as caught:
        files.delete_tree(str(tree))
    assert caught.value.filename == str(tree / "sub" / "stuck")
    assert (tree / "sub" / "stuck").exists()


def test_a_file_is_not_a_tree(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        files.delete_tree(str(tmp_path / "f"))
    assert (tmp_path / "f").exists()


def test_does_not_import_shutil():
    code = "import sys; import lxctools.kernel.files; print('shutil' in sys.modules, 're' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__)))).stdout
    assert out.split() == ["False", "False"]
