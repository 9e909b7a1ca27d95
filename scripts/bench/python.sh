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
# Then a closure that needs backtracking: fixtures/make-python-resolve-fixture.py random
# (BENCH_RND_PROJECTS projects, seed BENCH_RND_SEED: random versions, wheels, extras,
# Requires-Python and dependencies, with upper-constraints-style pins that rule out the
# newest releases of the top projects), on the same nginx:
#   airlock mirror vs pip download (-c constraints), each from an empty cache;
#   resolution alone: airlock mirror with the files already in its cache (pages and
#   metadata are read again, nothing is downloaded) vs `uv pip compile --no-cache`
#   (uv BENCH_UV_VERSION, pinned, installed in the bench's own virtualenv).
#
# Environment:
#   BENCH_DIR     work dir (default <repo>/scratch/bench-python; git-ignored)
#   BENCH_COUNT   wheels in the tree (default 64)
#   BENCH_SIZE    payload bytes per wheel (default 300000)
#   BENCH_ROUNDS  rounds (default 3)
#   BENCH_RND_PROJECTS  projects in the backtracking index (default 64)
#   BENCH_RND_SEED      its seed (default 5)
#   BENCH_UV_VERSION    uv for the resolution comparison (default 0.13.8)
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

# --- A closure that needs backtracking ----------------------------------------------
RND_PROJECTS=${BENCH_RND_PROJECTS:-64}
RND_SEED=${BENCH_RND_SEED:-5}
UV_VERSION=${BENCH_UV_VERSION:-0.13.8}
RND=$UP/www/rnd
if [ ! -f "$UP/.rnd-$RND_PROJECTS-$RND_SEED" ]; then
    rm -rf "$RND"
    python3 fixtures/make-python-resolve-fixture.py random "$RND" --seed "$RND_SEED" --projects "$RND_PROJECTS"
    touch "$UP/.rnd-$RND_PROJECTS-$RND_SEED"
fi
UVENV=$BENCH_DIR/uv-venv
if ! "$UVENV/bin/uv" --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
    rm -rf "$UVENV"
    python3 -m venv "$UVENV"
    "$UVENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
RINDEX=http://127.0.0.1:$NGINX_PORT/rnd/simple/
python3 - "$RND/case.json" "$RUN" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/rnd-c.txt", "w").write("\n".join(c["constraints"]) + "\n")
open(sys.argv[2] + "/rnd-req.txt", "w").write("\n".join(c["roots"]) + "\n")
PY
cat >"$RUN/rnd.yaml" <<EOF
name: bench-rnd
python:
  - index: $RINDEX
    requirements-files: [rnd-req.txt]
    constraints: [rnd-c.txt]
    pythons: ["3.11"]
    platforms: [manylinux_2_28_x86_64]
    sdist: never
EOF
locked() { python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['python']))" "$RUN/rnd.lock"; }
best_am=999999 best_pd=999999 best_ar=999999 best_uv=999999
for r in $(seq "$ROUNDS"); do
    rm -rf "$RUN/rcache" "$RUN/rnd.lock" "$RUN/rpip"
    t0=$(now); "$AIRLOCK" -q mirror -f "$RUN/rnd.yaml" --cache-dir "$RUN/rcache" >/dev/null; t1=$(now)
    am=$(echo "$t1 - $t0" | bc)
    rm -f "$RUN/rnd.lock"
    t0=$(now); "$AIRLOCK" -q mirror -f "$RUN/rnd.yaml" --cache-dir "$RUN/rcache" >/dev/null; t1=$(now)
    ar=$(echo "$t1 - $t0" | bc)
    t0=$(now)
    $PIP download -q --disable-pip-version-check --no-cache-dir --index-url "$RINDEX" \
        --only-binary :all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 -c "$RUN/rnd-c.txt" -r "$RUN/rnd-req.txt" -d "$RUN/rpip"
    t1=$(now)
    pd=$(echo "$t1 - $t0" | bc)
    t0=$(now)
    "$UVENV/bin/uv" pip compile -q --no-cache --index-url "$RINDEX" --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --only-binary :all: -c "$RUN/rnd-c.txt" \
        "$RUN/rnd-req.txt" -o "$RUN/rnd-uv.txt"
    t1=$(now)
    uvt=$(echo "$t1 - $t0" | bc)
    ours=$(python3 -c "import json,sys; print(sorted((p['project'], p['version']) for p in json.load(open(sys.argv[1]))['python']))" "$RUN/rnd.lock")
    theirs=$(python3 -c "
import re, sys
pairs = (re.match(r'^([a-z0-9-]+)==(\S+)', l) for l in open(sys.argv[1]))
print(sorted((m.group(1), m.group(2)) for m in pairs if m))" "$RUN/rnd-uv.txt")
    [ "$ours" = "$theirs" ] || die "airlock and uv resolved the backtracking closure differently: $ours vs $theirs"
    [ "$(ls "$RUN/rpip" | wc -l)" = "$(locked)" ] || die "pip download and airlock fetched different closures"
    printf 'backtracking round %d: airlock mirror %.2f s, pip download %.2f s; resolution: airlock %.2f s, uv %.2f s\n' \
        "$r" "$am" "$pd" "$ar" "$uvt"
    best_am=$(echo "if ($am < $best_am) $am else $best_am" | bc)
    best_pd=$(echo "if ($pd < $best_pd) $pd else $best_pd" | bc)
    best_ar=$(echo "if ($ar < $best_ar) $ar else $best_ar" | bc)
    best_uv=$(echo "if ($uvt < $best_uv) $uvt else $best_uv" | bc)
done
printf '\nbacktracking closure: %d projects in the index, %s files locked (same choices as uv)\n' \
    "$RND_PROJECTS" "$(locked)"
printf 'best of %d: airlock mirror %.2f s, pip download %.2f s -> airlock is %.1fx faster\n' \
    "$ROUNDS" "$best_am" "$best_pd" "$(echo "$best_pd / $best_am" | bc -l)"
printf "best of %d: resolution airlock %.2f s, uv pip compile %.2f s -> airlock takes %.2fx uv's time\n" \
    "$ROUNDS" "$best_ar" "$best_uv" "$(echo "$best_ar / $best_uv" | bc -l)"
