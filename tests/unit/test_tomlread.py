"""lxctools.config.tomlread against tomllib: for every text, the same value or the same error
(message and position). Generated documents, mutated ones, pyl's shipped configs and a corpus
of the spec's corners."""

import math
import pathlib
import tomllib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lxctools.config import tomlread

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def _plain(value):
    """NaN never equals itself; compare it by name."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan", math.copysign(1, value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return (type(value).__name__, value)


def _outcome(loads, text):
    try:
        return "ok", _plain(loads(text))
    except (tomllib.TOMLDecodeError, tomlread.TOMLDecodeError) as exc:
        return "error", str(exc)


def assert_same(text):
    assert _outcome(tomlread.loads, text) == _outcome(tomllib.loads, text), repr(text)


CORNERS = [
    "", "\n", "# only a comment", "a = 1", "a=1\r\nb=2\r\n", "a = 1\rb = 2", "a = 1 # c\n",
    "a = 1 b = 2", "a =", "= 1", "a = 1\na = 2", "a.b = 1\na.c = 2", "a.b = 1\na = 2",
    "a = {b = 1}\na.c = 2", "a = [1]\n[[a]]", "[a]\n[a]", "[a.b]\n[a]", "[a]\nb.c = 1\n[a.b]",
    "[a]\nb.c = 1\n[a.b.d]", "[a]\nb.c = 1\n[b]\n[a]\nb.d = 2", "[a.b]\n[a]\nb.x = 1",
    "[[a]]\nb = 1\n[[a]]\nb = 2\n[a.c]\nd = 3", "[[a]]\n[a]", "[a]\n[[a]]", "[[a.b]]\n[a]\nb.c = 1",
    "[[a]]\n[[a.b]]\n[[a]]\n[[a.b]]", "[[a]]\n[a.b]\n[[a]]\n[a.b]", "[[a]]\nb.c = 1\n[[a]]\nb.c = 2", "a = 1\n[a]", "a = 1\n[[a]]", "[ a . b ]\nc=1", "[a]x",
    "[[a] ]", "[a", "[[a]", "['a b'.\"c\\td\"]", "a.'b'.\"c\" = 1", '"" = 1', "'' = 2",
    "a = true", "a = truex", "a = tru", "a = false", "a = True",
    "a = 0", "a = -0", "a = +0", "a = 01", "a = 1_000", "a = 1__0", "a = 1_", "a = _1",
    "a = 0x1F", "a = 0x_1", "a = 0X1", "a = 0o17", "a = 0b101", "a = 0b2", "a = +0x1", "a = 0xg",
    "a = 1.5", "a = 1.", "a = .5", "a = 1e5", "a = 1E+5", "a = 1e-5", "a = 1e", "a = 1.5e_3",
    "a = 6.626e-34", "a = 1_0.0_1e1_0", "a = 0e0", "a = 0.0", "a = -0.0",
    "a = inf", "a = +inf", "a = -inf", "a = nan", "a = +nan", "a = -nan", "a = infinity",
    "a = 1979-05-27", "a = 1979-05-27T07:32:00", "a = 1979-05-27t07:32:00Z",
    "a = 1979-05-27 07:32:00.999999", "a = 1979-05-27T07:32:00.1234567891-07:00",
    "a = 1979-05-27T07:32:00+24:00", "a = 1979-05-27T07:32:00+23:59", "a = 1979-05-27T07:32",
    "a = 1979-02-30", "a = 1979-05-32", "a = 1979-05-27T07:32:00+7:00",
    "a = 1979-05-27T07:32:00+07", "a = 1979-05-27T07:32:00-07:60", "a = 1979-13-01", "a = 1979-00-01", "a = 07:32:00", "a = 24:00:00",
    "a = 07:32:60", "a = 07:32:00.", "a = 07:32:00.5", "a = 1979-05-27T", "a = 1979-05-27 x",
    "a = 1979-05-27T07:32:00Zx",
    'a = "x"', 'a = "\\b\\t\\n\\f\\r\\"\\\\"', 'a = "\\u00e9\\U0001F600"', 'a = "\\uD800"',
    'a = "\\u12"', 'a = "\\x41"', 'a = "\\e"', 'a = "tab\there"', 'a = "nl\nx"', 'a = "ctl\x01"',
    'a = "open', "a = 'lit\\n'", "a = 'open", "a = 'ctl\x7f'",
    'a = """\nfirst\nsecond"""', 'a = """x\\\n   \n  y"""', 'a = """x\\   \n y"""',
    'a = """x\\ y"""', 'a = """"one""""', 'a = """two"""""', 'a = """six""""""',
    "a = '''\nraw\\n'''", "a = ''''x''''", "a = '''x'''''", "a = '''x''''''", 'a = """\\',
    'a = """x\x00"""', 'a = """ends\\',
    "a = []", "a = [ ]", "a = [1, 2,]", "a = [1,,2]", "a = [,]", "a = [1 2]",
    "a = [\n 1, # c\n 2\n]", "a = [[1], ['x'], {b = 1}]", "a = [1", "a = [1,",
    "a = {}", "a = { }", "a = {b = 1, c = 'x'}", "a = {b = 1,}", "a = {b = 1 c = 2}",
    "a = {b = 1, b = 2}", "a = {b.c = 1, b.d = 2}", "a = {b = {c = 1}, b.d = 2}",
    "a = {b = 1, b.c = 2}", "a = {b = [1], b.c = 2}", "a = {\nb = 1}", "a = {b = 1",
    "a = 1 # ctl\x01", "# tab\tin comment\na=1", "a = 1 #", "\ta = 1\t",
    "[tbl] # c\nx = 1", "[ tbl ]\n", "[]", "[[]]", "[.a]", "[a.]", "a. = 1", "a .b = 1",
]


@pytest.mark.parametrize("text", CORNERS)
def test_corner(text):
    assert_same(text)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")) + sorted(CONFIGS.glob("*.example")),
                         ids=lambda p: p.name)
def test_shipped_configs(path):
    assert_same(path.read_text())


# --- generated documents: TOML-shaped text from a small grammar, valid or not ---

_names = st.sampled_from(["a", "b", "c", "lxc", "net", "0", "x-y", '"q"', "'l'", '"a"', '""'])
_keys = st.lists(_names, min_size=1, max_size=3).map(".".join)
_strings = st.text(alphabet=st.sampled_from(list("ab \t'\"\\nu0e9#=[]{}\n\x01")), max_size=8)
_scalars = st.one_of(
    st.sampled_from(["true", "false", "inf", "-nan", "0", "-0", "1_000", "0x1f", "0o7", "0b1",
                     "1.5", "1e3", "-2.5E-3", "01", "1__0", "1979-05-27", "07:32:00.5",
                     "1979-05-27T07:32:00Z", "1979-05-27 07:32:00-07:00", "1979-02-30"]),
    st.integers(-10**20, 10**20).map(str),
    _strings.map(lambda s: f'"{s}"'),
    _strings.map(lambda s: f"'{s}'"),
    _strings.map(lambda s: f'"""{s}"""'),
    _strings.map(lambda s: f"'''{s}'''"),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(_keys, inner), max_size=3).map(
            lambda kvs: "{" + ", ".join(f"{k} = {v}" for k, v in kvs) + "}"),
    ),
    max_leaves=6,
)
_statements = st.one_of(
    st.tuples(_keys, _values).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    _keys.map(lambda k: f"[{k}]"),
    _keys.map(lambda k: f"[[{k}]]"),
    st.just("# comment"),
    st.just(""),
)
_documents = st.lists(_statements, max_size=8).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(_documents)
@example("[a]\nb.c = 1\n[a.b]")
def test_generated_documents(text):
    assert_same(text)


_MUTATION_CHARS = list("=[]{}\"'.,#\n\\ _-+:Tx0179aez")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted((CONFIGS / name).read_text() for name in ("default.toml", "common.toml"))
                       + [c for c in CORNERS if len(c) > 8]),
       st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["insert", "delete", "replace"]),
                          st.sampled_from(_MUTATION_CHARS)), min_size=1, max_size=3))
def test_mutated_documents(text, edits):
    for where, how, char in edits:
        where %= len(text) + 1
        if how == "insert":
            text = text[:where] + char + text[where:]
        elif how == "delete":
            text = text[:where] + text[where + 1:]
        else:
            text = text[:where] + char + text[where + 1:]
    assert_same(text)


def test_what_tomllib_does_not_report_as_toml_errors():
    """An over-long integer and too deep a nesting: ValueError and RecursionError from
    tomllib, errors about the text here (pyl reports them as config errors, file named)."""
    with pytest.raises(tomlread.TOMLDecodeError, match=r"Integer too long \(at line 2, column 5\)"):
        tomlread.loads("a = 1\nb = " + "9" * 5000)
    assert tomlread.loads("a = 0x" + "f" * 5000)["a"] == 16 ** 5000 - 1  # no limit for base 16
    with pytest.raises(tomlread.TOMLDecodeError, match="nested too deeply"):
        tomlread.loads("a = " + "[" * 100_000)
    assert tomlread.loads("a = " + "[" * 50 + "]" * 50)["a"]


def test_not_a_string():
    with pytest.raises(TypeError):
        tomlread.loads(b"a = 1")


def test_no_costly_imports():
    """The point of this module: reading a config imports none of what tomllib brings."""
    import subprocess
    import sys

    code = ("import sys; from lxctools.config import tomlread; "
            "tomlread.loads(open(sys.argv[1]).read()); "
            "print(' '.join(m for m in ('tomllib', 're', 'typing', 'datetime', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(CONFIGS / "default.toml")], check=True,
                         capture_output=True, text=True, cwd=CONFIGS.parent).stdout
    assert out.strip() == ""
