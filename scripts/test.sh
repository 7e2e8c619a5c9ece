#!/usr/bin/env bash
# THE test command: `bash scripts/test.sh` (CI runs it through .ci/run).
#
# Works as root on a fresh Debian 12 (no systemd), idempotently:
#   1. installs what is missing from Debian (apt-get update only when something is missing)
#   2. creates/reuses the Python venv $STRATA_VENV (default /var/tmp/strata-venv) from
#      tests/e2e/requirements.txt, reinstalling only when that file changes
#   3. starts (or reuses) a private PostgreSQL (scripts/pg-test-server.sh) for the store tests,
#      and libvirt (scripts/libvirt-up.sh) for the libvirt driver's guest test; installs
#      VirtualBMC into $STRATA_VBMC_VENV (scripts/vbmc-up.sh --install) for the IPMI client's
#      interop test
#   4. cargo build -p strata; cargo nextest run --workspace
#   5. pytest tests/e2e against the built binary
#   6. scripts/tempest-identity.sh: Tempest identity, image, volume and network tests; the
#      required ones (tests/tempest/{identity,image,volume,network}-required.txt) must pass
# and ends with one line "N passed, M failed" summed over nextest, pytest and the required
# Tempest tests; exits non-zero if anything failed.
#
# env: CARGO_TARGET_DIR (default /var/tmp/strata-target), STRATA_VENV, STRATA_PG_WORKDIR,
#      STRATA_PG_PORT (default 55432), STRATA_SKIP_TEMPEST=1 (skip stage 6, e.g. locally).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/strata-target}
export STRATA_VENV=${STRATA_VENV:-/var/tmp/strata-venv}
export DEBIAN_FRONTEND=noninteractive
export PYTHONDONTWRITEBYTECODE=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
REQS=$ROOT/tests/e2e/requirements.txt
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-test.XXXXXX")
T0=$SECONDS

stage() { printf '\n=== %s (%ds) ===\n' "$*" $((SECONDS - T0)); }

PASSED=0
FAILED=0
NOTES=()
# count STAGE PASSED FAILED
count() { PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3)); NOTES+=("$1: $2 passed, $3 failed"); }
# A stage that failed without producing countable results counts as one failure.
broken() { FAILED=$((FAILED + 1)); NOTES+=("$1: FAILED ($2)"); }

PG_STARTED=0
cleanup() {
  local rc=$?
  if [ $PG_STARTED = 1 ]; then bash "$ROOT/scripts/pg-test-server.sh" --down >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Debian packages -------------------------------------------------------------------------
stage "system packages"
need=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v python3 >/dev/null || need+=(python3)
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then need+=(python3-venv); fi
command -v cc >/dev/null || need+=(gcc libc6-dev)    # C parts of crates (bundled SQLite, ring)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v git >/dev/null || need+=(git)
command -v qemu-img >/dev/null || need+=(qemu-utils)  # image tests compare virtual sizes with qemu-img
# the libvirt guest test: its guest is a Debian kernel + busybox initramfs (tests/e2e/guest)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
# strata-ipmi's and strata-sim's tests drive our IPMI BMCs with the real ipmitool
command -v ipmitool >/dev/null || need+=(ipmitool)
# libvirt-python (VirtualBMC's venv, the independent IPMI server) builds from its sdist
pkg-config --exists libvirt 2>/dev/null || need+=(libvirt-dev)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from Debian: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "nothing to install"
fi
command -v cargo >/dev/null || { echo "cargo is not installed (rustup toolchain expected)" >&2; exit 2; }
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi

# --- 2. Python venv ------------------------------------------------------------------------------
stage "python venv $STRATA_VENV"
want=$(sha256sum "$REQS" | cut -d' ' -f1)
have=$(cat "$STRATA_VENV/.strata-requirements.sha256" 2>/dev/null || true)
if [ ! -x "$STRATA_VENV/bin/python" ]; then
  python3 -m venv "$STRATA_VENV"
  have=""
fi
if [ "$want" != "$have" ]; then
  echo "installing $REQS"
  "$STRATA_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
  echo "$want" >"$STRATA_VENV/.strata-requirements.sha256"
else
  echo "up to date ($want)"
fi

# --- 3. PostgreSQL --------------------------------------------------------------------------------
stage "postgresql"
PG_STARTED=1   # --down only stops a server pg-test-server.sh itself started
STRATA_TEST_POSTGRES_URL=$(bash "$ROOT/scripts/pg-test-server.sh" | tail -1)
export STRATA_TEST_POSTGRES_URL
echo "STRATA_TEST_POSTGRES_URL=$STRATA_TEST_POSTGRES_URL"

# libvirt (and QEMU, genisoimage) for the libvirt driver's guest test: installed when missing,
# libvirtd and virtlogd started by hand (no systemd); left running like the venv is left.
stage "libvirt"
bash "$ROOT/scripts/libvirt-up.sh" || broken libvirt "scripts/libvirt-up.sh failed"
# The guest test fails (instead of skipping) when libvirt is missing.
export STRATA_REQUIRE_LIBVIRT=1

stage "virtualbmc"
export STRATA_VBMC_VENV=${STRATA_VBMC_VENV:-/var/tmp/strata-vbmc-venv}
bash "$ROOT/scripts/vbmc-up.sh" --install || broken virtualbmc "scripts/vbmc-up.sh --install failed"
export STRATA_REQUIRE_IPMITOOL=1 STRATA_REQUIRE_VBMC=1

# --- 4. Rust --------------------------------------------------------------------------------------
BUILD_OK=0
stage "cargo build -p strata"
if cargo build -p strata; then BUILD_OK=1; else broken "cargo build" "the strata binary did not build"; fi

stage "cargo nextest run --workspace"
# nextest keeps its store (JUnit report) under <workspace>/target unless told otherwise: keep the
# clone clean and put it in the work dir.
printf '[store]\ndir = "%s"\n' "$WORK/nextest" >"$WORK/nextest-store.toml"
JUNIT=$WORK/nextest/ci/junit.xml
nrc=0
cargo nextest run --workspace --profile ci --no-tests=warn \
  --tool-config-file "strata-test:$WORK/nextest-store.toml" || nrc=$?
junit_counts() {  # FILE -> "passed failed"
  "$STRATA_VENV/bin/python" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0)); s += int(su.get("skipped", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
print(t - f - s, f)
EOF
}
# Only the store tests need PostgreSQL: stop it (if we started it) before the e2e stages.
bash "$ROOT/scripts/pg-test-server.sh" --down && PG_STARTED=0
if [ -f "$JUNIT" ]; then
  read -r p f < <(junit_counts "$JUNIT")
  count nextest "$p" "$f"
  if [ "$nrc" != 0 ] && [ "$f" = 0 ]; then broken nextest "exit status $nrc"; fi
else
  broken nextest "exit status $nrc, no results (build failure?)"
fi

# --- 5. end-to-end (pytest) -------------------------------------------------------------------------
STRATA_BIN=$CARGO_TARGET_DIR/debug/strata
export STRATA_BIN
if [ $BUILD_OK = 1 ]; then
  stage "pytest tests/e2e"
  prc=0
  "$STRATA_VENV/bin/pytest" tests/e2e -q --durations=12 --junitxml="$WORK/pytest.xml" || prc=$?
  if [ -f "$WORK/pytest.xml" ]; then
    read -r p f < <(junit_counts "$WORK/pytest.xml")
    count pytest "$p" "$f"
    if [ "$prc" != 0 ] && [ "$f" = 0 ]; then broken pytest "exit status $prc"; fi
  else
    broken pytest "exit status $prc, no results"
  fi
else
  broken pytest "not run: no binary"
fi

# --- 6. Tempest identity + image + volume + network ----------------------------------------------------------------------
if [ "${STRATA_SKIP_TEMPEST:-0}" = 1 ]; then
  NOTES+=("tempest: skipped (STRATA_SKIP_TEMPEST=1)")
elif [ $BUILD_OK = 1 ]; then
  stage "tempest identity + image + volume + network + compute"
  export STRATA_TEMPEST_OUT=$WORK/tempest-results.txt
  export STRATA_TEMPEST_ENFORCE_IMAGE=1   # the 23 interop image tests are required too
  export STRATA_TEMPEST_ENFORCE_VOLUME=1  # and the 65 interop volume tests
  export STRATA_TEMPEST_ENFORCE_NETWORK=1 # and the 80 interop network tests
  export STRATA_TEMPEST_ENFORCE_COMPUTE=1 # and the interop compute tests (fake driver)
  trc=0
  bash "$ROOT/scripts/tempest-identity.sh" || trc=$?
  line=$(grep '^# required:' "$STRATA_TEMPEST_OUT" 2>/dev/null || true)
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    count "tempest (required identity + image + volume + network + compute tests)" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    if [ "$trc" != 0 ] && [ "${BASH_REMATCH[2]}" = 0 ]; then broken tempest "exit status $trc"; fi
  else
    broken tempest "exit status $trc, no results"
  fi
else
  broken tempest "not run: no binary"
fi

# --- summary ----------------------------------------------------------------------------------------
stage "summary"
for n in "${NOTES[@]}"; do echo "  $n"; done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
