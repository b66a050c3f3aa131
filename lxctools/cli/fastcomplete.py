"""Tab completion of a container name without argparse and argcomplete.

Completing `pyl-start web<TAB>` through argcomplete imports argparse and argcomplete (~20 ms,
half of the whole answer) before it lists a folder. Names are what admins complete most, so
this module answers argcomplete's protocol itself when the word under the cursor is a container
name: the value of -n/--name, or the tool's only positional when that is the name. Anything
else (options, templates, config keys, quoting, `--opt=value` words, zsh/fish, a line it does
not follow) returns False and argcomplete answers as before. PYL_COMPLETION=argcomplete turns
this path off (to compare the two).
"""

from __future__ import annotations

import os

# Characters after which argcomplete's word splitting or bash quoting would matter.
_NOT_PLAIN = frozenset("\"'\\$`=:<>|&;()")


def try_complete(tool: str, module) -> bool:
    try:
        return _try_complete(tool, module)
    except Exception:  # never a traceback in the user's shell: argcomplete answers instead
        return False


def _try_complete(tool: str, module) -> bool:
    env = os.environ
    if env.get("_ARGCOMPLETE") != "1" or env.get("PYL_COMPLETION") == "argcomplete":
        return False
    if env.get("_ARGCOMPLETE_SHELL", "bash") != "bash" or getattr(module, "NAME_IS_PATTERN", False):
        return False
    line = env.get("COMP_LINE", "")
    try:
        point = int(env.get("COMP_POINT", len(line)))
    except ValueError:
        return False
    text = line[:point]
    if not text or _NOT_PLAIN & set(text):
        return False
    words = text.split()
    if text[-1].isspace():
        words.append("")
    if len(words) < 2 or words[-1].startswith("-"):
        return False
    lxcpath = _name_word_context(tool, module, words[1:])
    if lxcpath is False:
        return False
    from lxctools.cli.complete import container_names
    from lxctools.cli.fastargs import Namespace
    names = container_names(Namespace(lxcpath=lxcpath, _name_states=getattr(module, "NAME_STATES", None)),
                            words[-1])
    _answer(names)
    return True


def _name_word_context(tool: str, module, words: list[str]):
    """The -P value (or None) if the last word is a container name, else False."""
    from lxctools.cli.driver import build_parser
    from lxctools.cli.fastargs import MiniParser
    parser = build_parser(tool, module, MiniParser)
    by_flag = {flag: arg for arg in parser.args for flag in arg.flags if flag.startswith("-")}
    positionals = [arg for arg in parser.args if not arg.flags[0].startswith("-")]
    lxcpath = None
    name_given = False
    seen_positionals = 0
    expecting = None  # the option whose value the next word is
    for word in words[:-1]:
        if expecting is not None:
            if expecting.dest == "lxcpath":
                lxcpath = word
            elif expecting.dest == "name":
                name_given = True
            expecting = None
            continue
        if word == "--":
            return False  # a command follows: not ours to complete
        if word.startswith("-"):
            arg = by_flag.get(word)
            if arg is None:
                return False  # combined short flags, an unknown option: argcomplete decides
            if arg.takes_value:
                expecting = arg
            continue
        seen_positionals += 1
    if expecting is not None:
        return lxcpath if expecting.dest == "name" else False
    only_name = len(positionals) == 1 and positionals[0].dest == "positional_name"
    # An empty word there could also be an option: argcomplete offers both, so it answers.
    if only_name and seen_positionals == 0 and not name_given and words[-1]:
        return lxcpath
    return False


def _answer(candidates: list[str]) -> None:
    """Write the candidates where argcomplete's shell glue reads them (fd 8, or the file it
    names), separated by its IFS; one candidate gets the trailing space argcomplete adds when
    the shell cannot (no _ARGCOMPLETE_SUPPRESS_SPACE)."""
    env = os.environ
    if len(candidates) == 1 and env.get("_ARGCOMPLETE_SUPPRESS_SPACE") != "1":
        candidates = [candidates[0] + " "]
    data = env.get("_ARGCOMPLETE_IFS", "\013").join(candidates).encode()
    target = env.get("_ARGCOMPLETE_STDOUT_FILENAME")
    if target:
        with open(target, "wb") as out:
            out.write(data)
        return
    try:
        os.write(8, data)
    except OSError:
        pass  # no shell listening: nothing to tell
