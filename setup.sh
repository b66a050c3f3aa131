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
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_python() {
    local extras=$1
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
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
        need_root; install_debs; install_python "[test]"
        shift || true
        exec "$venv/bin/python" -m pytest -q "$@" ;;
    *)
        echo "usage: ./setup.sh [demo|test|install]" >&2; exit 64 ;;
esac
