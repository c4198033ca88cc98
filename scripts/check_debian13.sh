#!/usr/bin/env bash
# check_debian13.sh: run the README's set-up and tests (`make install && make test`) on
# Debian 13 (trixie), in a chroot, from this machine's working tree. A developer check, not
# part of .ci/run.
#
# What it does:
#   1. Builds a minimal Debian 13 root with mmdebstrap (installed on the host with apt when
#      missing), or reuses the one already in the root folder, so a second run is quick.
#   2. Copies the project's current working tree into <root>/srv/special_qgis: tracked files
#      plus untracked files that git does not ignore (`git ls-files -co --exclude-standard`),
#      never the host's .venv or .qgis-profile. The chroot's own .venv is kept from the last
#      run (make reinstalls it when the requirement files changed; --fresh-venv forces it).
#   3. Mounts /proc, /sys, /dev, /dev/pts and a /dev/shm tmpfs in the root (always unmounted
#      on exit), copies /etc/resolv.conf and the host's local CA certificates, and runs
#      `make install` then `make test` as root in the chroot. make install itself installs
#      Debian's QGIS stack with apt and the venv with pip.
#   4. If pip in the chroot cannot reach PyPI, downloads cp313 manylinux wheels on the host
#      (`pip download --python-version 3.13 --only-binary=:all: ...`) into a folder bound
#      into the chroot, and points pip there (PIP_FIND_LINKS, PIP_NO_INDEX). Only then.
#   5. Prints the Debian, QGIS, Python, numpy, GDAL and torch versions, make install's
#      result, make test's summary line and the wall time of each phase, and exits with
#      make test's status (make install's when that fails; 2 for a usage or set-up error).
#
# Needs: root (mmdebstrap --mode=root, mount, chroot), network to a Debian mirror and PyPI,
# about 12 GB free disk for the root (QGIS stack about 1.5 GB; torch 2.14.1 from PyPI is a
# CUDA build, about 5.6 GB in the venv), and time: about 5 minutes for the root, 15-40 for
# make install (mostly downloading torch and its CUDA libraries), then make test (tens of
# minutes on 2 cores). A second run with the root and venv in place skips the first two.
#
# Usage: sudo scripts/check_debian13.sh [options]
#   --root DIR      the Debian 13 root (env SPECIAL_QGIS_DEBIAN13_ROOT;
#                   default /var/tmp/special-qgis-debian13)
#   --mirror URL    the Debian mirror (env SPECIAL_QGIS_DEBIAN_MIRROR;
#                   default http://deb.debian.org/debian; the security archive:
#                   env SPECIAL_QGIS_DEBIAN_SECURITY, default http://deb.debian.org/debian-security)
#   --fresh-root    delete the root and build it again
#   --fresh-venv    delete the chroot's .venv, so make install builds it again
#   --pip-fallback auto|always|never
#                   host-downloaded wheels: when PyPI is unreachable from the chroot (auto,
#                   the default), always, or never (env SPECIAL_QGIS_PIP_FALLBACK)
#   --no-test       stop after make install
#   --no-host-ca    do not copy the host's /usr/local/share/ca-certificates/*.crt into the
#                   chroot (copied by default, so a TLS-inspecting proxy works as on the host)
#   -h, --help      this text
# Logs: <root>/var/log/special-qgis/{install,test}.log (host paths).
set -euo pipefail

SCRIPT_START=$SECONDS
ROOT=${SPECIAL_QGIS_DEBIAN13_ROOT:-/var/tmp/special-qgis-debian13}
MIRROR=${SPECIAL_QGIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PIP_FALLBACK=${SPECIAL_QGIS_PIP_FALLBACK:-auto}
FRESH_ROOT=0
FRESH_VENV=0
RUN_TEST=1
HOST_CA=1
SUITE=trixie
PROJECT_IN_ROOT=/srv/special_qgis     # path inside the chroot
WHEELS_IN_ROOT=/var/cache/special-qgis-wheels
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '[check_debian13 %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[check_debian13] error: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT=$2; shift 2 ;;
        --root=*) ROOT=${1#*=}; shift ;;
        --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR=$2; shift 2 ;;
        --mirror=*) MIRROR=${1#*=}; shift ;;
        --fresh-root) FRESH_ROOT=1; shift ;;
        --fresh-venv) FRESH_VENV=1; shift ;;
        --pip-fallback) [ $# -ge 2 ] || die "--pip-fallback needs auto, always or never"
                        PIP_FALLBACK=$2; shift 2 ;;
        --pip-fallback=*) PIP_FALLBACK=${1#*=}; shift ;;
        --no-test) RUN_TEST=0; shift ;;
        --no-host-ca) HOST_CA=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case $PIP_FALLBACK in auto|always|never) ;; *) die "--pip-fallback: auto, always or never, not '$PIP_FALLBACK'" ;; esac

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, mount and chroot); run it with sudo."
{ [ -f "$SRC/Makefile" ] && [ -e "$SRC/.git" ]; } \
    || die "$SRC is not the project's git working tree."
command -v git >/dev/null || die "git is needed on the host."
# Never a path that would make --fresh-root or the copy dangerous.
ROOT=$(realpath -m -- "$ROOT")
case $ROOT in
    /|/bin|/boot|/dev|/etc|/home|/lib*|/opt|/proc|/root|/run|/sbin|/srv|/sys|/tmp|/usr|/var|/var/tmp)
        die "refusing to use $ROOT as the Debian 13 root; give a dedicated folder with --root." ;;
esac
[[ $ROOT/ == "$SRC"/* ]] && die "the root ($ROOT) must not lie inside the project ($SRC)."
PROJECT=$ROOT$PROJECT_IN_ROOT
LOGDIR=$ROOT/var/log/special-qgis
MARKER=$ROOT/.special-qgis-debian13-root

# One run per root at a time.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock -n 9 || die "another check_debian13.sh is using $ROOT (lock $ROOT.lock)."

# --- mounts: always undone on exit ------------------------------------------------------
MOUNTS=()
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null \
            || echo "[check_debian13] warning: could not unmount ${MOUNTS[i]}" >&2
    done
    MOUNTS=()
}
mounts_under_root() {  # mount points below $ROOT, deepest first
    awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    unmount_all
    local left
    left=$(mounts_under_root)
    [ -z "$left" ] || echo "[check_debian13] warning: still mounted under $ROOT: $left" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "[check_debian13] interrupted" >&2; exit 130' INT TERM HUP
do_mount() {  # do_mount TARGET mount-args...
    local target=$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTS+=("$target")
}

# Mounts left by a run that was killed outright (no trap ran); the lock says none is live.
stale=$(mounts_under_root)
if [ -n "$stale" ]; then
    say "Unmounting what a previous run left mounted under $ROOT."
    while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done <<<"$stale"
fi

# --- phase 1: the Debian 13 root ---------------------------------------------------------
t0=$SECONDS
if [ "$FRESH_ROOT" = 1 ] && [ -e "$ROOT" ]; then
    [ -z "$(mounts_under_root)" ] || die "something is still mounted under $ROOT; not deleting it."
    say "Deleting the old root $ROOT (--fresh-root)."
    rm -rf --one-file-system -- "$ROOT"
fi
if [ -f "$MARKER" ]; then
    say "Reusing the Debian 13 root at $ROOT ($(cat "$ROOT/etc/debian_version" 2>/dev/null || echo '?'))."
    ROOT_PHASE="reused"
else
    if [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
        die "$ROOT exists but is not a finished root (no $(basename "$MARKER")); remove it or run with --fresh-root."
    fi
    mkdir -p "$ROOT"
    free_mb=$(df -Pm "$ROOT" | awk 'NR == 2 {print $4}')
    if [ "$free_mb" -lt 12000 ]; then
        die "the root needs about 12 GB free in $(dirname "$ROOT"), and only $free_mb MB are."
    fi
    if ! command -v mmdebstrap >/dev/null; then
        say "Installing mmdebstrap on the host (apt)."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap
    fi
    say "Building a Debian 13 ($SUITE) root in $ROOT from $MIRROR (a few minutes)."
    security=${SPECIAL_QGIS_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
    mmdebstrap --mode=root --variant=minbase --format=directory \
        --include=make,ca-certificates,python3 \
        "$SUITE" "$ROOT" \
        "deb $MIRROR $SUITE main" \
        "deb $MIRROR $SUITE-updates main" \
        "deb $security $SUITE-security main"
    # Installing packages must never start services in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    date -u +%FT%TZ >"$MARKER"
    ROOT_PHASE="built"
fi
T_ROOT=$((SECONDS - t0))
grep -q '^VERSION_ID="13"' "$ROOT/etc/os-release" \
    || die "$ROOT is not Debian 13: $(grep PRETTY_NAME "$ROOT/etc/os-release" || true)"

# --- phase 2: the working tree -----------------------------------------------------------
t0=$SECONDS
say "Copying the working tree of $SRC into $PROJECT_IN_ROOT (keeping the chroot's own .venv)."
mkdir -p "$PROJECT" "$LOGDIR"
if [ "$FRESH_VENV" = 1 ] && [ -e "$PROJECT/.venv" ]; then
    say "Deleting the chroot's .venv (--fresh-venv)."
    rm -rf --one-file-system -- "$PROJECT/.venv"
fi
find "$PROJECT" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf --one-file-system -- {} +
while IFS= read -r -d '' f; do
    case $f in .venv|.venv/*|.qgis-profile|.qgis-profile/*) continue ;; esac
    # Tracked files deleted in the working tree are left out.
    if [ -e "$SRC/$f" ] || [ -L "$SRC/$f" ]; then printf '%s\0' "$f"; fi
done < <(git -C "$SRC" ls-files -z -co --exclude-standard) >"$LOGDIR/files.list"
n_files=$(tr -cd '\0' <"$LOGDIR/files.list" | wc -c)
[ "$n_files" -gt 0 ] || die "git ls-files found no files in $SRC."
tar -C "$SRC" --null -T "$LOGDIR/files.list" -cf - | tar -C "$PROJECT" -xpf -
say "Copied $n_files files ($(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(
    [ -n "$(git -C "$SRC" status --porcelain 2>/dev/null)" ] && echo ', with uncommitted changes'))."
T_COPY=$((SECONDS - t0))

# --- the chroot --------------------------------------------------------------------------
do_mount "$ROOT/proc" -t proc proc
do_mount "$ROOT/sys" -t sysfs sysfs
do_mount "$ROOT/dev" --bind /dev
do_mount "$ROOT/dev/pts" --bind /dev/pts
do_mount "$ROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
rm -f "$ROOT/etc/resolv.conf"   # may be a dangling link
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's own CA certificates (e.g. of a TLS-inspecting proxy the host goes through)
# are trusted in the chroot too, so apt and pip reach what the host reaches.
if [ "$HOST_CA" = 1 ] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" /usr/sbin/update-ca-certificates >/dev/null
    say "Trusting the host's local CA certificates in the chroot ($(cd /usr/local/share/ca-certificates && echo ./*.crt | sed 's|\./||g'))."
fi

# A clean environment: nothing of the host's pip, venv or proxy settings leaks in.
CHROOT_ENV=(HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM="${TERM:-dumb}"
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180
    PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
in_root() {  # in_root COMMAND: a bash command in the project folder in the chroot
    chroot "$ROOT" /usr/bin/env -i "${CHROOT_ENV[@]}" /bin/bash -c "cd $PROJECT_IN_ROOT && $1"
}

# --- pip fallback: wheels downloaded on the host -----------------------------------------
pypi_ok=1
if [ "$PIP_FALLBACK" = always ]; then
    pypi_ok=0
elif [ "$PIP_FALLBACK" = auto ]; then
    if in_root "python3 -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=30)\"" \
        >/dev/null 2>&1; then
        say "PyPI is reachable from the chroot; pip installs from it."
    else
        pypi_ok=0
        say "PyPI is NOT reachable from the chroot: falling back to wheels downloaded on the host."
    fi
fi
if [ "$pypi_ok" = 0 ]; then
    # numpy's pin depends on Debian's numpy (see the Makefile), so the QGIS stack goes first.
    in_root "make system"
    numpy_pin=$(in_root "python3 -c 'import numpy; print(\"numpy<%d\" % (int(numpy.__version__.split(\".\")[0]) + 1))'")
    host_pip=(python3 -m pip)
    "${host_pip[@]}" --version >/dev/null 2>&1 || die "the fallback needs pip on the host (apt-get install python3-pip)."
    WHEELS=$ROOT.wheels
    mkdir -p "$WHEELS"
    say "Downloading cp313 wheels on the host into $WHEELS ($numpy_pin)."
    printf '%s\n' "$numpy_pin" >"$WHEELS/system-constraints.txt"
    # Debian 13's glibc is 2.41; an older pip does not widen one --platform to older ones.
    platforms=(--platform manylinux2014_x86_64 --platform linux_x86_64)
    for minor in $(seq 17 41); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    # A requirement published only as an sdist gets a wheel built on the host, which is
    # usable in the chroot only when pure Python (py3-none-any); then the download is retried.
    for attempt in 1 2 3 4 5 6 7 8; do
        if "${host_pip[@]}" download --dest "$WHEELS" --find-links "$WHEELS" \
            --python-version 3.13 --implementation cp --abi cp313 --only-binary=:all: \
            "${platforms[@]}" \
            -c "$SRC/constraints.txt" -c "$WHEELS/system-constraints.txt" \
            -r "$SRC/requirements-dev.txt" 2>&1 | tee "$LOGDIR/pip-download.log"; then
            break
        fi
        missing=$(sed -n 's/^ERROR: No matching distribution found for \([^ ]*\).*/\1/p' \
            "$LOGDIR/pip-download.log" | tail -n 1)
        if [ -z "$missing" ] || [ "$attempt" = 8 ]; then
            die "pip download on the host failed (a requirement with no cp313 manylinux wheel?); see above."
        fi
        say "No cp313 wheel for $missing: building it on the host (pure Python only)."
        "${host_pip[@]}" wheel --no-deps --wheel-dir "$WHEELS" "$missing" \
            || die "could not build a wheel for $missing on the host."
        name=${missing%%[=<>!~]*}
        find "$WHEELS" -maxdepth 1 -iname "${name//-/_}-*-none-any.whl" | grep -q . \
            || die "$missing is not pure Python: no wheel of it for Python 3.13 can be made on the host."
    done
    do_mount "$ROOT$WHEELS_IN_ROOT" --bind "$WHEELS"
    CHROOT_ENV+=(PIP_FIND_LINKS="$WHEELS_IN_ROOT" PIP_NO_INDEX=1)
fi

# --- phase 3 and 4: make install, make test ----------------------------------------------
t0=$SECONDS
say "make install in the chroot (log: $LOGDIR/install.log)."
set +e
in_root "make install" 2>&1 | tee "$LOGDIR/install.log"
INSTALL_RC=${PIPESTATUS[0]}
set -e
T_INSTALL=$((SECONDS - t0))
if [ "$INSTALL_RC" = 0 ]; then say "make install succeeded."; else say "make install FAILED (status $INSTALL_RC)."; fi

TEST_RC=
T_TEST=0
SUMMARY="(make test not run)"
if [ "$INSTALL_RC" = 0 ] && [ "$RUN_TEST" = 1 ]; then
    t0=$SECONDS
    say "make test in the chroot (log: $LOGDIR/test.log)."
    set +e
    in_root "make test" 2>&1 | tee "$LOGDIR/test.log"
    TEST_RC=${PIPESTATUS[0]}
    set -e
    T_TEST=$((SECONDS - t0))
    # One line per pytest run (make test may run the suite more than once; a failing run
    # stops it before the next).
    SUMMARY=$(grep -E '^=+ .*(passed|failed|error|skipped|deselected|no tests ran).* in [0-9.]+s' \
        "$LOGDIR/test.log" | sed '1!s/^/           /' || true)
    [ -n "$SUMMARY" ] || SUMMARY="(no pytest summary line; see $LOGDIR/test.log)"
fi

# --- report ------------------------------------------------------------------------------
# shellcheck disable=SC2016  # expanded by the chroot's bash
versions=$(in_root '
py=/usr/bin/python3; [ -x .venv/bin/python ] && py=.venv/bin/python
echo "Debian: $(. /etc/os-release; echo "$PRETTY_NAME") ($(cat /etc/debian_version))"
echo "QGIS (dpkg): $(dpkg-query -W -f="\${Version}" qgis 2>/dev/null || echo "not installed")"
if command -v qgis >/dev/null; then
  echo "qgis --version: $(QT_QPA_PLATFORM=offscreen timeout 60 qgis --version 2>/dev/null | grep -m1 -i qgis || echo "?")"
fi
$py - <<"EOF" 2>&1
import sys
print("Python:", sys.version.split()[0], "(" + sys.executable + ")")
for label, mod, attr in (("numpy", "numpy", "__version__"), ("GDAL", "osgeo.gdal", "__version__"),
                         ("torch", "torch", "__version__"), ("PyQGIS", "qgis.core", None)):
    try:
        m = __import__(mod, fromlist=["x"])
        v = getattr(m, attr) if attr else m.Qgis.version()
        print(label + ":", v, "(" + (getattr(m, "__file__", "") or "") + ")")
    except Exception as exc:
        print(label + ": not importable:", type(exc).__name__, exc)
EOF
' 2>&1 || true)

unmount_all
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
echo
echo "================ special_qgis on Debian 13: summary ================"
echo "$versions"
echo "Working tree: $SRC -> $ROOT$PROJECT_IN_ROOT"
echo "pip source: $([ "$pypi_ok" = 1 ] && echo PyPI || echo "host-downloaded wheels ($ROOT.wheels)")"
echo "make install: $([ "$INSTALL_RC" = 0 ] && echo OK || echo "FAILED (status $INSTALL_RC)")"
echo "make test: $SUMMARY${TEST_RC:+ (status $TEST_RC)}"
if [ -f "$LOGDIR/test.log" ] && [ -n "$TEST_RC" ]; then
    grep -E '^(FAILED|ERROR) ' "$LOGDIR/test.log" | sed 's/^/  /' || true
fi
echo "Wall time: root $(fmt "$T_ROOT") ($ROOT_PHASE), copy $(fmt "$T_COPY"), make install $(fmt "$T_INSTALL"), make test $(fmt "$T_TEST"), total $(fmt $((SECONDS - SCRIPT_START)))"
echo "Logs: $LOGDIR/install.log, $LOGDIR/test.log"
echo "===================================================================="
if [ "$INSTALL_RC" != 0 ]; then exit "$INSTALL_RC"; fi
exit "${TEST_RC:-0}"
