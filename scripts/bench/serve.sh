#!/usr/bin/env bash
# Serve benchmark: `airlock serve` under HTTP load, against nginx serving the very same
# blob files from the same store directory, in one run. Loopback only.
#
# Setup: builds release airlock (a private copy is benchmarked, so a concurrent rebuild
# cannot swap it mid-run), runs scripts/main-job.sh into $BENCH_DIR/demo to fill a store
# (image hello/hello:1.0, raw files, git), then PUTs a 1 MiB and a 4 KiB random file into
# the raw repository; each becomes a blob at $STORE/blobs/sha256/<hex>, readable at
# /v2/hello/hello/blobs/sha256:<hex> (blobs are global in the store).
#
# Servers, each on a free 127.0.0.1 port:
#   airlock serve -q --store $STORE       (tokio multi-thread runtime, 2 cores)
#   nginx, worker_processes 2, access_log off, sendfile on, root $STORE: serves
#         /blobs/sha256/<hex>, the same files airlock serves
#
# Load: wrk, 2 threads, BENCH_CONNS connections, BENCH_SECONDS per run, --latency, each
# run after a 1 s warm-up and after waiting (bounded) for other processes to go quiet
# (a run they disturbed anyway is re-run, BENCH_RETRIES times):
#   airlock  GET /v2/hello/hello/blobs/sha256:<1 MiB>     nginx  GET /blobs/sha256/<1 MiB>
#   airlock  GET /v2/hello/hello/blobs/sha256:<4 KiB>     nginx  GET /blobs/sha256/<4 KiB>
#   airlock  GET /v2/hello/hello/manifests/1.0  (Accept: OCI image index)
#   airlock  GET /v2/hello/hello/tags/list
#   airlock  GET /repository/pypi/simple/aldemo-app/  (Accept: PEP 691 JSON, the index page)
# wrk and the servers share the machine's 2 cores, as they would on a small mirror host.
#
# Then an access-log check: a second `airlock serve` without -q takes a short load
# (BENCH_LOG_SECONDS s, 20 connections) on each airlock endpoint; the status codes in its
# access log are counted and every non-2xx line (and any other stderr line) is shown.
#
# Summary: req/s, p99 latency, MiB/s (wrk's Transfer/sec, binary units), mean KiB per
# response (sanity: the whole blob was sent), errors (wrk's "Non-2xx or 3xx responses"
# plus socket errors connect/read/write/timeout), the server's CPU % (200 = both cores),
# other processes' user CPU % meanwhile, and airlock/nginx ratios for the same blob.
# Exits 1 if any run had an error.
#
# Environment:
#   BENCH_DIR          work dir (default <repo>/scratch/bench-serve; git-ignored)
#   BENCH_SECONDS      seconds per wrk run (default 10, at most 30)
#   BENCH_CONNS        wrk connections (default 100, at most 200)
#   BENCH_TIMEOUT      wrk request timeout, counted as a socket error (default 5s)
#   BENCH_LOG_SECONDS  seconds per access-log check run (default 3; 0 skips the check)
#   BENCH_IDLE_WAIT    seconds to wait for an idle machine before each run (default 30)
#   BENCH_RETRIES      times to re-run a run during which other processes took over 25% of
#                      a core (default 1; the last measurement is reported)
#   BENCH_SKIP_BUILD   set to 1 to use target/release/airlock as it is
#   BENCH_REPEAT       rounds over every endpoint (default 3); each endpoint's median
#                      req/s (and that run's latency and CPU) is reported
#   BENCH_BASELINE     another airlock binary (an earlier build), served on the same store
#                      and loaded in the same rounds: the "base" rows
#   BENCH_REUSE_STORE  set to 1 to reuse $BENCH_DIR/demo/store if it has hello/hello:1.0
#                      (main-job.sh always runs cargo build; this skips it)
# Needs: wrk, nginx (Debian: apt-get install wrk nginx-light), curl, sha256sum, ss.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench-serve}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-100}
TIMEOUT=${BENCH_TIMEOUT:-5s}
LOG_SECONDS=${BENCH_LOG_SECONDS:-3}
THREADS=2
ROUNDS=${BENCH_ROUNDS:-${BENCH_REPEAT:-3}}
BASELINE=${BENCH_BASELINE:-}
BUILT=$REPO/target/release/airlock
AIRLOCK=$BENCH_DIR/bin/airlock
DEMO=$BENCH_DIR/demo
STORE=$DEMO/store
NG=$BENCH_DIR/nginx
LOGS=$BENCH_DIR/logs
IMAGE=hello/hello
TAG=1.0
INDEX_TYPE=application/vnd.oci.image.index.v1+json

die() { echo "serve.sh: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*" >&2; }

# --- 0. limits and tools ----------------------------------------------------------------
[[ $SECONDS_PER_RUN =~ ^[0-9]+$ ]] && [ "$SECONDS_PER_RUN" -ge 1 ] && [ "$SECONDS_PER_RUN" -le 30 ] \
    || die "BENCH_SECONDS must be 1..30 (got $SECONDS_PER_RUN)"
[[ $CONNS =~ ^[0-9]+$ ]] && [ "$CONNS" -ge "$THREADS" ] && [ "$CONNS" -le 200 ] \
    || die "BENCH_CONNS must be $THREADS..200 (got $CONNS)"
[[ $LOG_SECONDS =~ ^[0-9]+$ ]] && [ "$LOG_SECONDS" -le 30 ] || die "BENCH_LOG_SECONDS must be 0..30"
missing=()
for t in wrk nginx curl sha256sum ss /usr/bin/time; do command -v "$t" > /dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
    die "missing: ${missing[*]} (Debian: apt-get install -y wrk nginx-light curl coreutils iproute2 time)"
fi

# --- 1. build ---------------------------------------------------------------------------
step "build"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --locked --quiet
fi
[ -x "$BUILT" ] || die "$BUILT is missing (build it, or unset BENCH_SKIP_BUILD)"
mkdir -p "$BENCH_DIR/bin" "$LOGS" "$BENCH_DIR/data"
cp "$BUILT" "$AIRLOCK.tmp" && mv "$AIRLOCK.tmp" "$AIRLOCK"
"$AIRLOCK" --version >&2 || true

# --- 2. servers and cleanup ------------------------------------------------------------
AIRLOCK_PID="" NGINX_PID="" LOGCHECK_PID=""
stop_pid() {   # stop_pid PID: TERM, wait up to 5 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 0
    kill -TERM "$pid" 2> /dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2> /dev/null && kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null || true
}
cleanup() {
    stop_pid "$LOGCHECK_PID"; LOGCHECK_PID=""
    stop_pid "${BASE_PID:-}"; BASE_PID=""
    stop_pid "$AIRLOCK_PID"; AIRLOCK_PID=""
    stop_pid "$NGINX_PID"; NGINX_PID=""   # the master stops its workers on TERM
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_airlock OUTFILE ERRFILE [ARGS...]: sets STARTED_PID and STARTED_URL
start_airlock() {
    local out=$1 err=$2 i; shift 2
    "${SERVE_BIN:-$AIRLOCK}" serve --store "$STORE" --listen 127.0.0.1:0 "$@" > "$out" 2> "$err" &
    STARTED_PID=$!
    for i in $(seq 100); do grep -q '^listening on ' "$out" 2> /dev/null && break; sleep 0.1; done
    kill -0 "$STARTED_PID" 2> /dev/null || { cat "$err" >&2; die "airlock serve exited"; }
    STARTED_URL=$(awk 'NR == 1 && $1 == "listening" { print $3 }' "$out")
    [[ $STARTED_URL =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "airlock serve: unexpected first line: $(head -1 "$out")"
}

free_port() {
    local p used
    used=$(ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }')
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        grep -qx "$p" <<< "$used" || { echo "$p"; return; }
    done
    die "no free port found"
}

# --- 3. the store -----------------------------------------------------------------------
step "store: $STORE"
if [ "${BENCH_REUSE_STORE:-0}" = 1 ] && [ -f "$STORE/oci/$IMAGE/tags/$TAG" ]; then
    echo "reusing it" >&2
else
    rm -rf "$DEMO"
    AIRLOCK_DEMO_DIR=$DEMO bash "$REPO/scripts/main-job.sh" > "$LOGS/main-job.log" 2>&1 \
        || { tail -30 "$LOGS/main-job.log" >&2; die "main-job.sh failed (log: $LOGS/main-job.log)"; }
    echo "main-job.sh done (log: $LOGS/main-job.log)" >&2
fi
[ -f "$STORE/oci/$IMAGE/tags/$TAG" ] || die "the store has no $IMAGE:$TAG"
INDEX_DIGEST=$(awk '{ print $1 }' "$STORE/oci/$IMAGE/tags/$TAG")
FIXTURE_DIGEST=$(grep -o 'sha256:[0-9a-f]\{64\}' "$REPO/fixtures/images/hello/index.json" | head -1)
[ "$INDEX_DIGEST" = "$FIXTURE_DIGEST" ] || echo "note: tag $TAG -> $INDEX_DIGEST, fixture index lists $FIXTURE_DIGEST" >&2

# the two blobs: random bytes, made once per BENCH_DIR
[ -s "$BENCH_DIR/data/big.bin" ] || head -c 1048576 /dev/urandom > "$BENCH_DIR/data/big.bin"
[ -s "$BENCH_DIR/data/small.bin" ] || head -c 4096 /dev/urandom > "$BENCH_DIR/data/small.bin"
BIG_HEX=$(sha256sum < "$BENCH_DIR/data/big.bin" | awk '{ print $1 }')
SMALL_HEX=$(sha256sum < "$BENCH_DIR/data/small.bin" | awk '{ print $1 }')

step "start airlock serve -q (with a write token for the two PUTs)"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
AIRLOCK_SERVE_TOKEN=$TOKEN start_airlock "$LOGS/airlock.out" "$LOGS/airlock.err" -q
AIRLOCK_PID=$STARTED_PID AL=$STARTED_URL
echo "airlock: $AL (pid $AIRLOCK_PID)" >&2
for f in big small; do
    code=$(curl -s -o "$LOGS/put-$f.out" -w '%{http_code}' -u "bench:$TOKEN" -X PUT \
        --data-binary "@$BENCH_DIR/data/$f.bin" "$AL/repository/raw/bench/$f.bin")
    [ "$code" = 201 ] || { cat "$LOGS/put-$f.out" >&2; die "PUT $f.bin: HTTP $code"; }
done
for hex in "$BIG_HEX" "$SMALL_HEX"; do
    [ -f "$STORE/blobs/sha256/$hex" ] || die "blob $hex is not at $STORE/blobs/sha256/$hex"
done

BASE_PID=""
if [ -n "$BASELINE" ]; then
    step "start the baseline airlock serve -q ($BASELINE) on the same store"
    SERVE_BIN=$BASELINE start_airlock "$LOGS/base.out" "$LOGS/base.err" -q
    BASE_PID=$STARTED_PID BASE=$STARTED_URL
    echo "baseline: $BASE (pid $BASE_PID)" >&2
fi

step "start nginx (worker_processes 2) on the same store"
NGPORT=$(free_port)
mkdir -p "$NG/tmp"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;   # workers must read the store as its owner does"
cat > "$NG/nginx.conf" << EOF
# written by scripts/bench/serve.sh
daemon off;
worker_processes 2;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
$user_line
events { worker_connections 1024; }
http {
    access_log off;
    types { }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    server {
        listen 127.0.0.1:$NGPORT;
        root $STORE;
        location /blobs/sha256/ { }
        location = /ok { return 200 "ok\n"; }
        location / { return 404; }
    }
}
EOF
nginx -t -q -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" 2>&1 | sed 's/^/  /' >&2 || true
nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" > "$LOGS/nginx.out" 2>&1 &
NGINX_PID=$!
NX=http://127.0.0.1:$NGPORT
for _ in $(seq 50); do curl -sf "$NX/ok" > /dev/null 2>&1 && break; sleep 0.1; done
kill -0 "$NGINX_PID" 2> /dev/null && curl -sf "$NX/ok" > /dev/null \
    || { cat "$LOGS/nginx.out" "$NG/error.log" >&2 2> /dev/null; die "nginx did not start"; }
echo "nginx: $NX (master pid $NGINX_PID, workers $(pgrep -P "$NGINX_PID" | tr '\n' ' '))" >&2

# --- 4. targets, checked once with curl ------------------------------------------------
NAMES=(al_big nx_big al_small nx_small al_manifest al_tags al_pypi)
declare -A URL LABEL HDR SRV EXPECT_HEX
URL[al_big]=$AL/v2/$IMAGE/blobs/sha256:$BIG_HEX;     LABEL[al_big]="airlock blob 1 MiB"
URL[nx_big]=$NX/blobs/sha256/$BIG_HEX;               LABEL[nx_big]="nginx   blob 1 MiB"
URL[al_small]=$AL/v2/$IMAGE/blobs/sha256:$SMALL_HEX; LABEL[al_small]="airlock blob 4 KiB"
URL[nx_small]=$NX/blobs/sha256/$SMALL_HEX;           LABEL[nx_small]="nginx   blob 4 KiB"
URL[al_manifest]=$AL/v2/$IMAGE/manifests/$TAG;       LABEL[al_manifest]="airlock manifest by tag"
URL[al_tags]=$AL/v2/$IMAGE/tags/list;                LABEL[al_tags]="airlock tags/list"
URL[al_pypi]=$AL/repository/pypi/simple/aldemo-app/; LABEL[al_pypi]="airlock PyPI page (JSON)"
HDR[al_pypi]="Accept: application/vnd.pypi.simple.v1+json"
HDR[al_manifest]="Accept: $INDEX_TYPE"
if [ -n "$BASELINE" ]; then
    NAMES=(al_big base_big nx_big al_small base_small nx_small al_manifest base_manifest al_tags al_pypi)
    URL[base_big]=$BASE/v2/$IMAGE/blobs/sha256:$BIG_HEX;     LABEL[base_big]="baseline blob 1 MiB"
    URL[base_small]=$BASE/v2/$IMAGE/blobs/sha256:$SMALL_HEX; LABEL[base_small]="baseline blob 4 KiB"
    URL[base_manifest]=$BASE/v2/$IMAGE/manifests/$TAG;       LABEL[base_manifest]="baseline manifest by tag"
    HDR[base_manifest]="Accept: $INDEX_TYPE"
    EXPECT_HEX[base_big]=$BIG_HEX; EXPECT_HEX[base_small]=$SMALL_HEX; EXPECT_HEX[base_manifest]=${INDEX_DIGEST#sha256:}
fi
for n in "${NAMES[@]}"; do SRV[$n]=${n%%_*}; done
EXPECT_HEX[al_big]=$BIG_HEX; EXPECT_HEX[nx_big]=$BIG_HEX
EXPECT_HEX[al_small]=$SMALL_HEX; EXPECT_HEX[nx_small]=$SMALL_HEX
EXPECT_HEX[al_manifest]=${INDEX_DIGEST#sha256:}

step "check every target once"
for n in "${NAMES[@]}"; do
    u=${URL[$n]}
    [[ $u =~ ^http://127\.0\.0\.1:[0-9]+/ ]] || die "not a loopback URL: $u"
    args=(-s -o "$LOGS/check-$n.body" -D "$LOGS/check-$n.headers" -w '%{http_code}')
    [ -n "${HDR[$n]:-}" ] && args+=(-H "${HDR[$n]}")
    code=$(curl "${args[@]}" "$u")
    [ "$code" = 200 ] || { cat "$LOGS/check-$n.body" >&2; die "${LABEL[$n]}: GET $u -> HTTP $code"; }
    if [ -n "${EXPECT_HEX[$n]:-}" ]; then
        got=$(sha256sum < "$LOGS/check-$n.body" | awk '{ print $1 }')
        [ "$got" = "${EXPECT_HEX[$n]}" ] || die "${LABEL[$n]}: body sha256 $got, expected ${EXPECT_HEX[$n]}"
    fi
    printf '  %-24s 200  %7s bytes  %s\n' "${LABEL[$n]}" "$(wc -c < "$LOGS/check-$n.body")" "$u" >&2
done
grep -qi "^docker-content-digest: $INDEX_DIGEST" "$LOGS/check-al_manifest.headers" \
    || die "manifest: no Docker-Content-Digest: $INDEX_DIGEST"
grep -q "\"$TAG\"" "$LOGS/check-al_tags.body" || die "tags/list does not list $TAG"
grep -q '"aldemo_app-2.0-py3-none-any.whl"' "$LOGS/check-al_pypi.body" || die "the PyPI page does not list aldemo-app 2.0"

# --- 5. load ----------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
user_jiffies() { awk '$1 == "cpu" { print $2 + $3 }' /proc/stat; }   # whole machine, user+nice
# proc_jiffies PID...: utime+stime (and user-only) of these processes, summed: "total user"
proc_jiffies() {
    local p t=0 u=0 f
    for p in "$@"; do
        f=$(sed 's/.*) //' "/proc/$p/stat" 2> /dev/null) || continue
        read -r -a a <<< "$f"
        u=$((u + a[11])); t=$((t + a[11] + a[12]))   # fields 14 and 15 (utime, stime)
    done
    echo "$t $u"
}
server_pids() {
    case $1 in
        al) echo "$AIRLOCK_PID" ;;
        base) echo "$BASE_PID" ;;
        nx) echo "$NGINX_PID" $(pgrep -P "$NGINX_PID") ;;
    esac
}
# Wait (up to BENCH_IDLE_WAIT s) until other processes use under 25% of one core.
wait_for_idle() {
    local limit=${BENCH_IDLE_WAIT:-30} waited=0 a b busy
    while :; do
        a=$(user_jiffies); sleep 1; b=$(user_jiffies)
        busy=$(( (b - a) * 100 / HZ ))
        [ "$busy" -lt 25 ] && return
        if [ "$waited" -ge "$limit" ]; then
            echo "  (still ${busy}% of a core busy after ${limit}s; running anyway, see other%)" >&2
            return
        fi
        [ "$waited" -eq 0 ] && echo "  (other processes use ${busy}% of a core; waiting up to ${limit}s)" >&2
        waited=$((waited + 1))
    done
}

wrk_args() {   # wrk_args NAME SECONDS CONNS
    local n=$1
    WRK=(wrk -t "$THREADS" -c "$3" -d "${2}s" --timeout "$TIMEOUT" --latency)
    [ -n "${HDR[$n]:-}" ] && WRK+=(-H "${HDR[$n]}")
    WRK+=("${URL[$n]}")
}

# parse_wrk FILE: "req/s p50_ms p99_ms MiB/s requests read_MiB non2xx sock_errors sock_detail"
parse_wrk() {
    awk '
    function ms(v)  { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
                      if (v ~ /[0-9]m$/) return v * 60000; if (v ~ /h$/) return v * 3600000
                      if (v ~ /s$/) return v * 1000; return v + 0 }
    function mib(v) { if (v ~ /TB$/) return v * 1048576; if (v ~ /GB$/) return v * 1024
                      if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024
                      return v / 1048576 }
    BEGIN { rps = p50 = p99 = tr = reqs = rd = "?"; non2xx = 0; sock = 0; detail = "-" }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { tr = mib($2) }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { reqs = $1; rd = $5; sub(/,$/, "", rd); rd = mib(rd) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { d = $0; sub(/.*Socket errors: */, "", d); gsub(/ /, "", d); detail = d
                       n = split(d, parts, ","); for (i = 1; i <= n; i++) { split(parts[i], kv, /[a-z]+/); sock += kv[2] } }
    END { printf "%s %s %s %s %s %s %s %s %s\n", rps, p50, p99, tr, reqs, rd, non2xx, sock, detail }' "$1"
}

declare -A RPS P50 P99 MIBS KIBR ERR ERRD SCPU OTHER TOTAL_ERR
run_one() {
    local n=$1 srv=${SRV[$1]} pids t0 t1 j0 j1 u0 u1 e wu ws
    # warm-up (untimed): page cache, connections, allocator
    wrk_args "$n" 1 "$CONNS"; "${WRK[@]}" > "$LOGS/warmup-$n.txt" 2>&1 || true
    wait_for_idle
    wrk_args "$n" "$SECONDS_PER_RUN" "$CONNS"
    printf '  %-24s %s\n' "${LABEL[$n]}" "${WRK[*]}" >&2
    pids=$(server_pids "$srv")
    local su0 su1
    read -r j0 su0 <<< "$(proc_jiffies $pids)"; u0=$(user_jiffies)
    /usr/bin/time -f '%e %U %S' -o "$LOGS/time-$n.txt" "${WRK[@]}" > "$LOGS/wrk-$n.txt" 2>&1 \
        || { cat "$LOGS/wrk-$n.txt" >&2; die "wrk failed on ${LABEL[$n]}"; }
    read -r j1 su1 <<< "$(proc_jiffies $pids)"; u1=$(user_jiffies)
    read -r e wu ws < "$LOGS/time-$n.txt"
    local rps p50 p99 tr reqs rd non2xx sock detail
    read -r rps p50 p99 tr reqs rd non2xx sock detail <<< "$(parse_wrk "$LOGS/wrk-$n.txt")"
    [ "$rps" != "?" ] || { cat "$LOGS/wrk-$n.txt" >&2; die "could not parse wrk output for ${LABEL[$n]}"; }
    RPS[$n]=$rps P50[$n]=$p50 P99[$n]=$p99 MIBS[$n]=$tr
    KIBR[$n]=$(awk -v r="$rd" -v q="$reqs" 'BEGIN { printf "%.1f", (q > 0 ? r * 1024 / q : 0) }')
    ERR[$n]=$((non2xx + sock)); ERRD[$n]="non-2xx/3xx $non2xx, socket $detail"
    SCPU[$n]=$(awk -v j="$((j1 - j0))" -v hz="$HZ" -v e="$e" 'BEGIN { printf "%.0f", j / hz / e * 100 }')
    # machine-wide user CPU minus wrk's and the server's own user CPU
    OTHER[$n]=$(awk -v m="$((u1 - u0))" -v hz="$HZ" -v e="$e" -v wu="$wu" -v s="$((su1 - su0))" \
        'BEGIN { o = (m / hz - wu - s / hz) / e * 100; printf "%.0f", (o < 0 ? 0 : o) }')
    printf '  %-24s %10.0f req/s  p99 %8.2f ms  %8.1f MiB/s  errors %s (%s)  server CPU %s%%  other %s%%\n' \
        "" "$rps" "$p99" "$tr" "${ERR[$n]}" "${ERRD[$n]}" "${SCPU[$n]}" "${OTHER[$n]}" >&2
}

step "load: wrk -t $THREADS -c $CONNS -d ${SECONDS_PER_RUN}s --latency, loopback only, $ROUNDS rounds"
declare -A RUNS
for ((round = 1; round <= ROUNDS; round++)); do
    echo "  round $round of $ROUNDS" >&2
    for n in "${NAMES[@]}"; do
        for ((attempt = 0; ; attempt++)); do
            run_one "$n"
            [ "${OTHER[$n]}" -le 25 ] || [ "$attempt" -ge "${BENCH_RETRIES:-1}" ] && break
            echo "  (other processes took ${OTHER[$n]}% of a core: measuring ${LABEL[$n]} again)" >&2
        done
        # every run's figures, one line each; the median run (by req/s) is reported
        RUNS[$n]="${RUNS[$n]:-}${RPS[$n]} ${P50[$n]} ${P99[$n]} ${MIBS[$n]} ${KIBR[$n]} ${SCPU[$n]} ${OTHER[$n]}"$'\n'
        TOTAL_ERR[$n]=$(( ${TOTAL_ERR[$n]:-0} + ERR[$n] ))
    done
done
for n in "${NAMES[@]}"; do
    read -r RPS[$n] P50[$n] P99[$n] MIBS[$n] KIBR[$n] SCPU[$n] OTHER[$n] \
        < <(printf '%s' "${RUNS[$n]}" | sort -n | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
    ERR[$n]=${TOTAL_ERR[$n]}
done
# the -q server's stderr should be empty: anything there is an error
if [ -s "$LOGS/airlock.err" ]; then
    echo "airlock serve -q wrote to stderr during the load:" >&2
    head -20 "$LOGS/airlock.err" | sed 's/^/  /' >&2
fi
kill -0 "$AIRLOCK_PID" 2> /dev/null || die "airlock serve died during the load"
kill -0 "$NGINX_PID" 2> /dev/null || die "nginx died during the load"

# --- 6. access-log check ----------------------------------------------------------------
LOGCHECK=""
if [ "$LOG_SECONDS" -gt 0 ]; then
    step "access-log check: airlock serve without -q, ${LOG_SECONDS}s x 20 connections per endpoint"
    stop_pid "$AIRLOCK_PID"; AIRLOCK_PID=""
    start_airlock "$LOGS/airlock-log.out" "$LOGS/airlock-log.err"
    LOGCHECK_PID=$STARTED_PID AL2=$STARTED_URL
    for n in "${NAMES[@]}"; do
        [ "${SRV[$n]}" = al ] || continue   # (not the baseline)
        URL[$n]=${AL2}${URL[$n]#"$AL"}
        wrk_args "$n" "$LOG_SECONDS" 20
        "${WRK[@]}" > "$LOGS/logcheck-$n.txt" 2>&1 || die "wrk failed (access-log check)"
    done
    stop_pid "$LOGCHECK_PID"; LOGCHECK_PID=""
    # "METHOD PATH STATUS Nms": tally by endpoint kind and status
    LOGCHECK=$(awk '
        NF == 4 && $4 ~ /ms$/ && $3 ~ /^[0-9][0-9][0-9]$/ {
            k = $2; sub(/\/blobs\/.*/, "/blobs/<digest>", k); sub(/\/manifests\/.*/, "/manifests/<ref>", k)
            c[k " " $3]++; total++; if ($3 !~ /^2/) bad++; next }
        { other++ }
        END { for (x in c) printf "  %8d  %s\n", c[x], x
              printf "  %d requests logged, %d non-2xx, %d other stderr lines\n", total, bad + 0, other + 0 }' \
        "$LOGS/airlock-log.err" | sort -k2)
    echo "$LOGCHECK" >&2
    LOG_BAD=$(awk 'NF == 4 && $4 ~ /ms$/ && $3 ~ /^[0-9][0-9][0-9]$/ { if ($3 !~ /^2/) print; next } { print }' \
        "$LOGS/airlock-log.err" | sort | uniq -c | sort -rn | head -20)
    [ -z "$LOG_BAD" ] || { echo "non-2xx / other lines (count, line):" >&2; echo "$LOG_BAD" | sed 's/^/  /' >&2; }
fi

# --- 7. summary -------------------------------------------------------------------------
cleanup
{
    echo
    echo "== summary: wrk -t $THREADS -c $CONNS -d ${SECONDS_PER_RUN}s --latency, loopback, $(nproc) cores shared by wrk and the server"
    echo "   median of $ROUNDS interleaved rounds per endpoint (errors: all rounds)"
    echo "   airlock $("$AIRLOCK" --version 2>/dev/null | head -1), $(nginx -v 2>&1 | sed 's/.*: //') (2 workers, sendfile on)"
    printf '%-24s %10s %9s %9s %10s %9s %7s %7s\n' endpoint "req/s" "p50 ms" "p99 ms" "MiB/s" "KiB/resp" errors "srvCPU%"
    for n in "${NAMES[@]}"; do
        printf '%-24s %10.0f %9.2f %9.2f %10.1f %9s %7s %7s\n' "${LABEL[$n]}" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" \
            "${MIBS[$n]}" "${KIBR[$n]}" "${ERR[$n]}" "${SCPU[$n]}"
    done
    echo
    for pair in big:"1 MiB" small:"4 KiB"; do
        k=${pair%%:*} label=${pair#*:}
        awk -v a="${RPS[al_$k]}" -v b="${RPS[nx_$k]}" -v pa="${P99[al_$k]}" -v pb="${P99[nx_$k]}" \
            -v ca="${SCPU[al_$k]}" -v cb="${SCPU[nx_$k]}" -v l="$label" 'BEGIN {
            printf "airlock/nginx, blob %s: req/s x%.2f (MiB/s the same ratio), p99 x%.2f, server CPU %s%% vs %s%%\n",
                l, a / b, pa / pb, ca, cb }'
        [ -z "$BASELINE" ] || awk -v a="${RPS[al_$k]}" -v b="${RPS[base_$k]}" -v n="${RPS[nx_$k]}" -v l="$label" 'BEGIN {
            printf "airlock/baseline, blob %s: req/s x%.2f (baseline/nginx x%.2f)\n", l, a / b, b / n }'
    done
    others=""
    for n in "${NAMES[@]}"; do others+="${OTHER[$n]}% "; done
    echo "other processes' user CPU during the runs (100 = a core): $others"
    total=0
    for n in "${NAMES[@]}"; do
        total=$((total + ERR[$n]))
        [ "${ERR[$n]}" -eq 0 ] || echo "ERRORS in ${LABEL[$n]}: ${ERRD[$n]}"
    done
    if [ -n "$LOGCHECK" ]; then echo "access-log check (airlock without -q):"; echo "$LOGCHECK"; fi
    [ -s "$LOGS/airlock.err" ] && echo "airlock -q stderr was not empty: see $LOGS/airlock.err"
    echo "errors: $total in all runs (wrk output in $LOGS)"
} | tee "$BENCH_DIR/summary.txt"
grep -q '^errors: 0 ' "$BENCH_DIR/summary.txt" && ! grep -q ' [1-9][0-9]* non-2xx' "$BENCH_DIR/summary.txt"
