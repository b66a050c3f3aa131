#!/usr/bin/env bash
# pyl's one set-up script (README.md): installs what pyl needs on a Debian host, then
#   ./setup.sh demo   creates a busybox container, starts it, runs `echo hello world` in it, lists it
#   ./setup.sh test   installs the test dependencies and runs the whole test suite
#   ./setup.sh install  only installs (venv in .venv, console scripts in .venv/bin)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
here=$PWD
venv="$here/.venv"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: run as root (containers need namespaces, cgroups and mounts)" >&2
        exit 77
    fi
}

install_debs() {
    local missing=()
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
    command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
    ldconfig -p 2>/dev/null | grep -q 'libseccomp.so.2' || missing+=(libseccomp2)
    # the tests look at the host with these (pyl itself does not shell out to them)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v ps >/dev/null 2>&1 || missing+=(procps)
    if [ "${1:-}" = test ]; then
        # the attack probes of tests/integration/test_security_attacks.py are static C programs
        command -v gcc >/dev/null 2>&1 || missing+=(gcc)
        [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] || missing+=(libc6-dev)
    fi
    # Debian's python3 is the interpreter pyl prefers (pick_python); its venv is a package
    if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The interpreter every pyl command starts: PYL_PYTHON if set, else the distribution's
# /usr/bin/python3 when it is 3.11+ with venv (Debian builds it with PGO and LTO, statically
# linked: ~3 ms faster to start here than a default pyenv build, on every command), else
# python3 from PATH.
pick_python() {
    local candidate candidates=(/usr/bin/python3 python3)
    [ -z "${PYL_PYTHON:-}" ] || candidates=("$PYL_PYTHON")  # asked for: that one or nothing
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
                2>/dev/null; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return
        fi
    done
    echo "setup.sh: no Python 3.11+ with venv among: ${candidates[*]} (set PYL_PYTHON)" >&2
    exit 69
}

install_python() {
    local extras=$1 python
    python=$(pick_python)
    # A venv made from another interpreter (an earlier set-up, or PYL_PYTHON changed) is
    # made again: pyvenv.cfg names the interpreter it was made from.
    if [ -f "$venv/pyvenv.cfg" ]; then
        local made_from
        made_from=$(sed -n 's/^executable = //p' "$venv/pyvenv.cfg")
        if [ "$(readlink -f "$made_from")" != "$(readlink -f "$python")" ]; then
            echo "setup.sh: making $venv again, with $python" >&2
            rm -rf "$venv"
        fi
    fi
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
        # venv puts setuptools in (Python < 3.12), and its distutils-precedence.pth imports a
        # module at every interpreter start: ~0.7 ms of each pyl command. pyl does not use it
        # at run time, and pip builds pyl in an isolated environment with its own setuptools.
        "$venv/bin/python" -m pip uninstall -q -y setuptools >/dev/null 2>&1 || true
    fi
    # editable_mode=compat: a plain .pth path entry; the default editable finder costs every
    # pyl command ~30 ms of start-up (pathlib, re, fnmatch...).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        --config-settings editable_mode=compat -e ".$extras"
}

case "${1:-demo}" in
    install)
        need_root; install_debs; install_python ""
        echo "pyl installed: add $venv/bin to PATH" ;;
    demo)
        need_root; install_debs; install_python ""
        export PATH="$venv/bin:$PATH"
        pyl-destroy -n demo -f -q 2>/dev/null || true
        pyl-create -n demo -t busybox
        pyl-start -n demo
        pyl-attach -n demo -- echo hello world
        pyl-ls --fancy ;;
    test)
        need_root; install_debs test; install_python "[test]"
        shift || true
        exec "$venv/bin/python" -m pytest -q "$@" ;;
    *)
        echo "usage: ./setup.sh [demo|test|install]" >&2; exit 64 ;;
esac
