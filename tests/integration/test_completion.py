"""Tab completion through argcomplete's protocol, as bash calls it: names filtered by the state
the command accepts, options, templates, config keys."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BIN, NO_NET, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]



def complete(pyl, line: str, tmp_dir: str = "/tmp", *, suppress_space: bool = True,
             via: str | None = None) -> list[str]:
    """What the shell gets for LINE; via="argcomplete" turns pyl's own name completion off."""
    import tempfile
    tool = line.split()[0]
    with tempfile.NamedTemporaryFile("r", dir=tmp_dir, prefix="pylcomp-") as out:
        # what argcomplete's bash glue does: completions go to the file named here
        env = dict(pyl.env, _ARGCOMPLETE="1", _ARGCOMPLETE_IFS="\n", COMP_LINE=line,
                   COMP_POINT=str(len(line)), _ARGCOMPLETE_SUPPRESS_SPACE="1" if suppress_space else "0",
                   ARGCOMPLETE_USE_TEMPFILES="1", _ARGCOMPLETE_STDOUT_FILENAME=out.name)
        if via:
            env["PYL_COMPLETION"] = via
        # bin/pyl-<tool> is a symlink to bin/pyl: argv[0] picks the tool, as a console script would
        proc = subprocess.run([sys.executable, str(BIN.parent / tool)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        text = out.read()
    return sorted(x if not suppress_space else x.strip() for x in text.split("\n") if x.strip())


def test_names_filtered_by_state(pyl):
    for name in ("alpha", "beta"):
        pyl.ok("create", "-n", name, "-t", "busybox", "-f", NO_NET)
    pyl.ok("start", "-n", "beta")
    lx = str(pyl.lxcpath)
    assert complete(pyl, f"pyl-start -P {lx} -n ") == ["alpha"]
    assert complete(pyl, f"pyl-attach -P {lx} -n ") == ["beta"]
    assert complete(pyl, f"pyl-destroy -P {lx} -n ") == ["alpha", "beta"]
    assert complete(pyl, f"pyl-info -P {lx} al") == ["alpha"]
    pyl.ok("freeze", "-n", "beta")
    assert complete(pyl, f"pyl-unfreeze -P {lx} -n ") == ["beta"]
    pyl.ok("unfreeze", "-n", "beta")
    pyl.ok("stop", "-n", "beta", "-k")


def test_options_templates_and_keys(pyl):
    lx = str(pyl.lxcpath)
    assert "--fancy" in complete(pyl, f"pyl-ls -P {lx} --fa")
    assert set(complete(pyl, f"pyl-create -P {lx} -n x -t ")) >= {"busybox", "local", "none"}
    keys = complete(pyl, f"pyl-info -P {lx} -n x -c lxc.uts.")
    assert "lxc.uts.name" in keys


def test_own_name_completion_answers_as_argcomplete_does(pyl):
    # pyl answers name words itself (no argparse/argcomplete import); argcomplete must agree.
    for name in ("alpha", "alps", "beta"):
        pyl.ok("create", "-n", name, "-t", "busybox", "-f", NO_NET)
    pyl.ok("start", "-n", "beta")
    lx = str(pyl.lxcpath)
    lines = [f"pyl-start -P {lx} al", f"pyl-start -P {lx} -n ", f"pyl-attach -P {lx} ",
             f"pyl-info -P {lx} -H ", f"pyl-destroy -P {lx} -f a", f"pyl-stop -P {lx} --name b",
             f"pyl-freeze -P {lx} x", f"pyl-start -P {lx} alpha "]
    for line in lines:
        for space in (True, False):
            ours = complete(pyl, line, suppress_space=space)
            theirs = complete(pyl, line, suppress_space=space, via="argcomplete")
            assert ours == theirs, (line, space)
    pyl.ok("stop", "-n", "beta", "-k")
