#!/usr/bin/env bash
# Python benchmark: `airlock mirror` of a wheel closure against `pip download` of the same
# closure from the same local upstream, in one run.
#
# Upstream: fixtures/make-python-fixture.py --bench N --no-demo writes N pure-Python
# wheels (albench-000 ... , each ~BENCH_SIZE bytes of incompressible payload) whose
# Requires-Dist form a binary tree rooted at albench-000, and a PEP 503 index with
# #sha256 fragments and PEP 658 core metadata for every other project. nginx serves it on
# a free loopback port.
#
# Timed (best of BENCH_ROUNDS interleaved rounds, each with an empty cache / directory):
#   airlock mirror        requirements [albench-000], pythons [3.11],
#                         platforms [manylinux_2_28_x86_64]
#   pip download          --only-binary :all: --python-version 3.11
#                         --platform manylinux_2_28_x86_64 --no-cache-dir albench-000
# Both resolve the whole tree (reading metadata) and fetch every wheel; both check the
# index's sha256 (pip does when the index gives one). Ratio = pip time / airlock time.
#
# Environment:
#   BENCH_DIR     work dir (default <repo>/scratch/bench-python; git-ignored)
#   BENCH_COUNT   wheels in the tree (default 64)
#   BENCH_SIZE    payload bytes per wheel (default 300000)
#   BENCH_ROUNDS  rounds (default 3)
#   BENCH_SKIP_BUILD=1  use target/release/airlock as it is
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/bench/lib.sh
BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench-python}
COUNT=${BENCH_COUNT:-64}
SIZE=${BENCH_SIZE:-300000}
ROUNDS=${BENCH_ROUNDS:-3}
PIP=${BENCH_PIP:-python3 -m pip}

die() { printf 'python.sh: %s\n' "$*" >&2; exit 1; }
for t in cargo python3 nginx; do command -v "$t" >/dev/null || die "missing tool: $t"; done
$PIP --version >/dev/null 2>&1 || die "pip is missing (python3 -m pip)"
[[ $COUNT =~ ^[0-9]+$ && $COUNT -ge 40 ]] || die "BENCH_COUNT must be at least 40"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --locked -q
fi
mkdir -p "$BENCH_DIR/bin"
cp target/release/airlock "$BENCH_DIR/bin/airlock"
AIRLOCK=$BENCH_DIR/bin/airlock

UP=$BENCH_DIR/upstream
if [ ! -f "$UP/.done-$COUNT-$SIZE" ]; then
    rm -rf "$UP"
    python3 fixtures/make-python-fixture.py "$UP/www" --bench "$COUNT" --size "$SIZE" --no-demo
    touch "$UP/.done-$COUNT-$SIZE"
fi
wheels=$(ls "$UP/www/files" | grep -c '\.whl$')
bytes=$(du -sb "$UP/www/files" | cut -f1)

static_nginx "$UP/nginx" "$UP/www"
INDEX=http://127.0.0.1:$NGINX_PORT/simple/

RUN=$BENCH_DIR/run
rm -rf "$RUN"
mkdir -p "$RUN"
cat >"$RUN/airlock.yaml" <<EOF
name: bench
python:
  - index: $INDEX
    requirements: [albench-000]
    pythons: ["3.11"]
    platforms: [manylinux_2_28_x86_64]
EOF
cat "$UP/www/files"/*.whl >/dev/null   # warm page cache

now() { date +%s.%N; }
best_airlock=999999 best_pip=999999
for r in $(seq "$ROUNDS"); do
    rm -rf "$RUN/cache" "$RUN/airlock.lock" "$RUN/pip"
    sync
    t0=$(now)
    "$AIRLOCK" -q mirror -f "$RUN/airlock.yaml" --cache-dir "$RUN/cache" >/dev/null
    t1=$(now)
    a=$(echo "$t1 - $t0" | bc)
    got=$(python3 -c "import json; print(len(json.load(open('$RUN/airlock.lock'))['python']))")
    [ "$got" = "$wheels" ] || die "airlock locked $got files, expected $wheels"
    sync
    t0=$(now)
    $PIP download -q --disable-pip-version-check --no-cache-dir --index-url "$INDEX" \
        --only-binary :all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
        -d "$RUN/pip" albench-000
    t1=$(now)
    p=$(echo "$t1 - $t0" | bc)
    got=$(ls "$RUN/pip" | wc -l)
    [ "$got" = "$wheels" ] || die "pip downloaded $got files, expected $wheels"
    printf 'round %d: airlock mirror %.2f s, pip download %.2f s\n' "$r" "$a" "$p"
    best_airlock=$(echo "if ($a < $best_airlock) $a else $best_airlock" | bc)
    best_pip=$(echo "if ($p < $best_pip) $p else $best_pip" | bc)
done
printf '\n%d wheels, %s bytes, tree of dependencies from albench-000, nginx on loopback\n' "$wheels" "$bytes"
printf 'best of %d: airlock mirror %.2f s, pip download %.2f s -> airlock is %.1fx faster\n' \
    "$ROUNDS" "$best_airlock" "$best_pip" "$(echo "$best_pip / $best_airlock" | bc -l)"
