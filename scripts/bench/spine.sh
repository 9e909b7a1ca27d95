#!/usr/bin/env bash
# Spine benchmark: how fast airlock moves bytes, against the coreutils tools it replaces.
#
# On a mixed fixture (default 2 GiB: incompressible random data, log-like text and
# binaries from /usr, in a few large files and many small ones) it times, in one run:
#   - airlock mirror (from an empty cache)
#   - airlock export (zstd level 3, 2 threads)  vs  tar -c | zstd -T2 -3, and that plus
#     a separate sha256sum pass (what a careful operator would do by hand)
#   - airlock export --compression none, then airlock verify of that bundle  vs
#     sha256sum -c and openssl dgst -sha256 over the same bytes, unpacked
#   - airlock verify of the zstd bundle (for information)
#   - determinism: export --threads 1 vs the default export, compared with cmp
# Each command runs under /usr/bin/time -f '%e %M %U %S' (wall seconds, peak RSS KiB,
# user and system CPU seconds), in BENCH_REPEAT interleaved rounds (A B C, A B C, ...);
# each step's median wall time is reported (and the spread to its worst), as the VM's
# speed drifts by 20% and more from one minute to the next. Caches are WARM: nothing is dropped from the page cache;
# every input is read once before the timed runs, and `sync` runs between them so one
# run's write-back does not land in the next one's time. Outputs go to a disk (ext4 on
# virtio here) and airlock fsyncs its bundle: see the "tar|zstd + fsync" row.
#
# The machine is shared (other builds may run): the script benchmarks a private copy of
# the binary, waits for the CPUs to be idle before each step, re-measures a step that
# other processes disturbed, and reports for each step the CPU they used meanwhile
# ("other%": their user-mode CPU, 100 = one whole core).
#
# Environment:
#   BENCH_DIR         work dir (default <repo>/scratch/bench); the fixture is reused
#   BENCH_GIB         fixture size in GiB (default 2)
#   BENCH_SKIP_BUILD  set to 1 to use target/release/airlock as it is
#   BENCH_IDLE_WAIT   seconds to wait for an idle machine before each step (default 900)
#   BENCH_RETRIES     times to re-measure a step that other processes disturbed (default 5)
#   BENCH_REPEAT      rounds of measurements; each step's median is reported (default 3)
#   BENCH_STEPS       which groups to time, comma-separated, from mirror, export,
#                     determinism, none, verify (default: all of them). Without mirror,
#                     the cache of an earlier run is reused (one untimed mirror fills it).
#   BENCH_BASELINE    another airlock binary (an earlier build) whose export is timed in
#                     the same rounds, side by side, as "export_zstd_baseline"
#
# Targets checked in the summary: export >= 1.0 x tar|zstd throughput; verify of an
# uncompressed bundle >= 2 GB/s on 2 cores; peak RSS of every airlock command < 150 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench}
BENCH_GIB=${BENCH_GIB:-2}
BUILT=$REPO/target/release/airlock
AIRLOCK=$BENCH_DIR/bin/airlock   # a copy, so a concurrent rebuild cannot swap it mid-run
THREADS=2          # zstd workers for both airlock and the zstd baseline
ZSTD_LEVEL=3       # airlock's default level
GEN_VERSION=2      # bump when the fixture generator changes, to regenerate
ROUNDS=${BENCH_ROUNDS:-${BENCH_REPEAT:-3}}
STEPS=${BENCH_STEPS:-mirror,export,determinism,none,verify}
BASELINE=${BENCH_BASELINE:-}
want() { [[ ,$STEPS, == *,$1,* ]]; }

DATA=$BENCH_DIR/data
OUT=$BENCH_DIR/out
TIMES=$BENCH_DIR/times
LOGS=$BENCH_DIR/logs

# per step: best and worst wall s, peak RSS KiB, its CPU % and others' CPU % in the best
# run, bytes processed
declare -A SEC WORST RSS CPU OTHER BYTES ALL

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'spine.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. build and tools ------------------------------------------------------------------

check_tools() {
    local missing=()
    for t in cargo zstd tar sha256sum openssl awk cmp find xargs sync; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    [ -x /usr/bin/time ] || missing+=("/usr/bin/time (apt-get install -y time)")
    [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
    [[ $BENCH_GIB =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_GIB must be a number, not '$BENCH_GIB'"
}

build() {
    if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
        say "using the existing release binary (BENCH_SKIP_BUILD=1)"
    else
        say "building airlock (cargo build --release)"
        cargo build --release
    fi
    [ -x "$BUILT" ] || die "$BUILT was not built"
    mkdir -p "$(dirname "$AIRLOCK")"
    cp "$BUILT" "$AIRLOCK.tmp" && mv "$AIRLOCK.tmp" "$AIRLOCK"
    "$AIRLOCK" --version >&2
}

check_space() {
    mkdir -p "$BENCH_DIR"
    # fixture + cache + 2 zstd bundles + tar.zst + uncompressed bundle + unpacked copy (~6x)
    local need_kib free_kib
    need_kib=$(awk -v g="$BENCH_GIB" 'BEGIN { printf "%.0f", g * 6 * 1024 * 1024 }')
    free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
    [ "$free_kib" -ge "$need_kib" ] || die "need about $((need_kib / 1048576)) GiB free in $BENCH_DIR, have $((free_kib / 1048576)) GiB"
}

# --- 2. the fixture --------------------------------------------------------------------

# Three endless (or long) byte streams the files are cut from, so no two files share content.
random_stream() {   # incompressible: AES-256-CTR of zeros under a fixed key, reproducible
    openssl enc -aes-256-ctr -nosalt -K "$(printf '%064x' 42)" -iv "$(printf '%032x' 7)" -in /dev/zero 2>/dev/null
}
log_stream() {      # compressible (~5x at zstd -3): web-service log lines, fixed seed
    awk -v seed=7 'BEGIN {
        srand(seed); t = 1700000000
        split("INFO INFO INFO INFO INFO WARN ERROR DEBUG", lv, " ")
        split("GET GET GET POST PUT DELETE", m, " ")
        split("/api/v1/users /api/v1/orders /healthz /static/app.js /api/v2/search /login /metrics", p, " ")
        for (i = 0; ; i++) {
            t += rand() * 0.01
            printf "%.3f host-%02d app[%d]: %s %s %s status=%d bytes=%d latency_ms=%.1f req=%08x\n",
                t, int(rand() * 16), 1000 + int(rand() * 50), lv[1 + int(rand() * 8)], m[1 + int(rand() * 6)],
                p[1 + int(rand() * 7)], (rand() < 0.95 ? 200 : 500), int(rand() * 65536), rand() * 250, i
        }
    }'
}
bin_stream() {      # moderately compressible: the machine's /usr/lib and /usr/share files, in name order
    find /usr/lib /usr/share -type f -print0 2>/dev/null | sort -z | xargs -0 cat 2>/dev/null
}

# The file plan, one "kind size relpath" line per file: per kind, a share of the total in
# one or two large files and the rest in small files of 4 KiB - 2 MiB (log-uniform, so most
# are small). Deterministic (fixed seed).
make_plan() {
    local total=$1 bin_avail=$2
    awk -v total="$total" -v bin_avail="$bin_avail" 'BEGIN {
        srand(20240601); MiB = 1048576
        # kind, large files (fractions of the total), share left for small files
        bin_share = 0.20; if (bin_share * total > 0.8 * bin_avail) bin_share = 0.8 * bin_avail / total
        nk = split("random log bin", kinds, " ")
        large["random"] = "0.20 0.12"; small["random"] = 0.13
        large["log"]    = "0.15";      small["log"]    = 0.20
        large["bin"]    = bin_share / 2; small["bin"] = bin_share / 2
        small["log"] += 0.20 - bin_share   # whatever /usr cannot supply becomes log text
        ext["random"] = "dat"; ext["log"] = "log"; ext["bin"] = "bin"
        for (k = 1; k <= nk; k++) {
            kind = kinds[k]
            n = split(large[kind], fr, " ")
            for (j = 1; j <= n; j++) {
                size = int(fr[j] * total / 4096) * 4096
                if (size > 0) { printf "%s %.0f large/%s-%d.%s\n", kind, size, kind, j, ext[kind]; planned += size }
            }
            left = int(small[kind] * total); i = 0
            if (k == nk) left = total - planned   # the last kind tops the total up exactly
            while (left > 0) {
                size = int(exp(log(4096) + rand() * (log(2 * MiB) - log(4096))))
                if (size > left) size = (left < 4096 ? 4096 : left)
                printf "%s %.0f small/%s/%03d/%s-%05d.%s\n", kind, size, kind, int(i / 500), kind, i, ext[kind]
                left -= size; planned += size; i++
            }
        }
    }'
}

generate_fixture() {
    local total stamp
    total=$(awk -v g="$BENCH_GIB" 'BEGIN { printf "%.0f", g * 1073741824 }')
    stamp="gen=$GEN_VERSION bytes=$total"
    if [ -f "$DATA/.complete" ] && [ "$(cat "$DATA/.complete")" = "$stamp" ]; then
        say "reusing the fixture in $DATA ($stamp)"
        return
    fi
    say "generating a ${BENCH_GIB} GiB mixed fixture in $DATA"
    rm -rf "$DATA" "$BENCH_DIR/airlock.yaml" "$BENCH_DIR/files.list"
    mkdir -p "$DATA"
    local bin_avail
    bin_avail=$(find /usr/lib /usr/share -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }')
    make_plan "$total" "$bin_avail" > "$BENCH_DIR/plan.txt"
    awk '{ d = $3; sub(/\/[^\/]*$/, "", d); print d }' "$BENCH_DIR/plan.txt" | sort -u | (cd "$DATA" && xargs mkdir -p)

    # Cut every file from its kind's stream; head -c reads exactly SIZE bytes from a pipe.
    exec 3< <(random_stream) 4< <(log_stream) 5< <(bin_stream)
    local kind size rel
    while read -r kind size rel; do
        case $kind in
            random) head -c "$size" <&3 > "$DATA/$rel" ;;
            log)    head -c "$size" <&4 > "$DATA/$rel" ;;
            bin)    # a unique first line, so no two slices of /usr can be identical
                    { printf 'airlock-bench %s\n' "$rel"; head -c "$((size - 15 - ${#rel}))" <&5; } > "$DATA/$rel" ;;
        esac
        [ "$(stat -c %s "$DATA/$rel")" = "$size" ] || die "generator ran short at $rel"
    done < "$BENCH_DIR/plan.txt"
    exec 3<&- 4<&- 5<&-

    # The spec (sources relative to it) and the plain file list for tar / sha256sum.
    awk '{ print $3 }' "$BENCH_DIR/plan.txt" > "$BENCH_DIR/files.list"
    {
        printf 'name: bench\nversion: "g%s"\nfiles:\n' "${BENCH_GIB//./_}"
        awk '{ printf "  - path: %s\n    source: data/%s\n", $3, $3 }' "$BENCH_DIR/plan.txt"
    } > "$BENCH_DIR/airlock.yaml"
    sync
    echo "$stamp" > "$DATA/.complete"
}

describe_fixture() {
    awk '{ n[$1]++; b[$1] += $2; t += $2; if ($3 ~ /^large/) { nl++; bl += $2 } }
         END {
             printf "fixture: %d files, %.2f GiB (%d large = %.0f MiB, %d small 4 KiB-2 MiB)\n", NR, t / 2^30, nl, bl / 2^20, NR - nl
             for (k in n) printf "  %-6s %5d files %8.0f MiB\n", k, n[k], b[k] / 2^20
         }' "$BENCH_DIR/plan.txt"
}

# --- 3. measurements -------------------------------------------------------------------

# User-mode CPU seconds of the whole machine so far (all CPUs, from /proc/stat). User
# time only: other people's builds show up here, while the kernel's write-back of a
# step's own output (system time in kernel threads) does not.
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3) / hz }' /proc/stat
}

# Wait (up to BENCH_IDLE_WAIT s) until other processes use under 10% of one core.
wait_for_idle() {
    local limit=${BENCH_IDLE_WAIT:-900} waited=0 a b busy
    while :; do
        a=$(busy_seconds); sleep 2; b=$(busy_seconds)
        busy=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (b - a) / 2 * 100 }')
        [ "$busy" -lt 10 ] && return
        if [ "$waited" -ge "$limit" ]; then
            echo "  WARNING: still ${busy}% of a core busy after ${limit}s; timing anyway (see other%)" >&2
            return
        fi
        [ "$waited" -eq 0 ] && echo "  (other processes use ${busy}% of a core; waiting for idle)" >&2
        waited=$((waited + 2))
    done
}

# measure NAME CMD...: one run of CMD under /usr/bin/time once the machine is idle; sets
# M_SEC, M_RSS (KiB), M_CPU (its CPU %) and M_OTHER (other processes' CPU %). A function
# prep_NAME, if defined, runs untimed first. Output goes to $LOGS/NAME.out and NAME.err.
measure() {
    local name=$1; shift
    local before after u s
    if declare -F "prep_$name" > /dev/null; then "prep_$name"; fi
    sync   # flush earlier writes outside the measurement; caches stay warm
    wait_for_idle
    printf '  %-22s ' "$name" >&2
    before=$(busy_seconds)
    /usr/bin/time -f '%e %M %U %S' -o "$TIMES/$name" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err" \
        || { cat "$LOGS/$name.err" >&2; die "$name failed"; }
    after=$(busy_seconds)
    read -r M_SEC M_RSS u s < "$TIMES/$name"
    M_CPU=$(awk -v e="$M_SEC" -v u="$u" -v s="$s" 'BEGIN { printf "%.0f", (e > 0 ? (u + s) / e * 100 : 0) }')
    # machine-wide user time minus the command's own = what everything else used
    M_OTHER=$(awk -v e="$M_SEC" -v u="$u" -v a="$before" -v b="$after" \
        'BEGIN { o = e > 0 ? (b - a - u) / e * 100 : 0; printf "%.0f", (o < 0 ? 0 : o) }')
    printf '%7.2f s  %6.0f MiB RSS  %4s%% CPU  (others %s%%)\n' "$M_SEC" "$(awk -v m="$M_RSS" 'BEGIN { print m / 1024 }')" \
        "$M_CPU" "$M_OTHER" >&2
}

# timed NAME BYTES CMD...: one measurement of CMD, kept if it is the best (shortest wall
# time, with its CPU %) so far for NAME; peak RSS is the highest seen. BYTES is what CMD
# processes (for MB/s). A run during which other processes took over 10% of a core is
# measured again (up to BENCH_RETRIES times, default 5). Callers run each group of steps
# they compare in ROUNDS interleaved rounds, so every step sees the same machine drift.
timed() {
    local name=$1 bytes=$2 attempt; shift 2
    for ((attempt = 0; ; attempt++)); do
        measure "$name" "$@"
        [ "$M_OTHER" -le 10 ] || [ "$attempt" -ge "${BENCH_RETRIES:-5}" ] && break
        echo "  (the machine was busy: measuring $name again)" >&2
    done
    BYTES[$name]=$bytes
    # every run's "wall cpu% other%"; SEC is the median run's wall time, with its CPU
    ALL[$name]="${ALL[$name]:-}$M_SEC $M_CPU $M_OTHER"$'\n'
    read -r SEC[$name] CPU[$name] OTHER[$name] < <(printf '%s' "${ALL[$name]}" | sort -n | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
    if [ -z "${WORST[$name]:-}" ] || awk -v a="$M_SEC" -v b="${WORST[$name]}" 'BEGIN { exit !(a > b) }'; then
        WORST[$name]=$M_SEC
    fi
    if [ "$M_RSS" -gt "${RSS[$name]:-0}" ]; then RSS[$name]=$M_RSS; fi
}

size_of() { stat -c %s "$1"; }

run_benchmarks() {
    mkdir -p "$TIMES" "$LOGS"
    rm -rf "$OUT" "$TIMES"/* "$LOGS"/*
    mkdir -p "$OUT"
    export AIRLOCK_CONFIG_DIR=$BENCH_DIR/airlock/config AIRLOCK_CACHE_DIR=$BENCH_DIR/airlock/cache AIRLOCK_STORE=$BENCH_DIR/airlock/store
    local lock=$BENCH_DIR/airlock.lock list=$BENCH_DIR/files.list round
    DATA_BYTES=$(awk '{ s += $2 } END { printf "%.0f", s }' "$BENCH_DIR/plan.txt")
    NFILES=$(wc -l < "$list")

    [ -f "$AIRLOCK_CONFIG_DIR/keys/airlock.key" ] || "$AIRLOCK" key generate --no-password --trust > "$LOGS/key.out"

    if want mirror || [ ! -f "$lock" ]; then
        say "airlock mirror from an empty cache (copies and hashes every file into the cache)"
        prep_mirror() { rm -rf "$AIRLOCK_CACHE_DIR" "$BENCH_DIR/airlock.lock"; }
        local mirror_rounds=1
        want mirror && mirror_rounds=$ROUNDS
        for ((round = 1; round <= mirror_rounds; round++)); do
            timed mirror "$DATA_BYTES" "$AIRLOCK" mirror -f "$BENCH_DIR/airlock.yaml" --lock "$lock"
        done
    fi

    say "warming the page cache (reading the fixture and the airlock cache once; nothing is ever dropped)"
    find "$DATA" "$AIRLOCK_CACHE_DIR" -type f -print0 | xargs -0 cat > /dev/null

    # airlock export fsyncs its bundle before renaming it into place; the second tar|zstd
    # variant does the same (`sync FILE` fsyncs that file), for an even comparison.
    local tar_zstd='set -o pipefail; tar -C "$1" -cf - -T "$2" | zstd -q -T"$3" -"$4" > "$5"'
    want export && {
    say "export: airlock (zstd -$ZSTD_LEVEL, $THREADS threads) vs tar | zstd -T$THREADS -$ZSTD_LEVEL, + a sha256sum pass"
    for ((round = 1; round <= ROUNDS; round++)); do
        echo "  round $round of $ROUNDS" >&2
        timed export_zstd "$DATA_BYTES" "$AIRLOCK" --json export --lock "$lock" -o "$OUT/export-zstd" --threads "$THREADS" --force
        if [ -n "$BASELINE" ]; then
            timed export_zstd_baseline "$DATA_BYTES" "$BASELINE" --json export --lock "$lock" -o "$OUT/export-zstd-baseline" --threads "$THREADS" --force
        fi
        timed tar_zstd "$DATA_BYTES" bash -c "$tar_zstd" _ "$DATA" "$list" "$THREADS" "$ZSTD_LEVEL" "$OUT/baseline.tar.zst"
        timed tar_zstd_sync "$DATA_BYTES" bash -c "$tar_zstd"' && sync "$5"' _ "$DATA" "$list" "$THREADS" "$ZSTD_LEVEL" "$OUT/baseline.tar.zst"
        timed sha256sum_pass "$DATA_BYTES" bash -c 'cd "$1" && xargs -d "\n" -a "$2" sha256sum > /dev/null' _ "$DATA" "$list"
    done
    }
    [ -d "$OUT/export-zstd" ] || "$AIRLOCK" --json export --lock "$lock" -o "$OUT/export-zstd" --threads "$THREADS" --force > "$LOGS/export_zstd.out"
    BUNDLE_ZSTD=$(ls "$OUT"/export-zstd/*.airlock)

    DETERMINISM=skipped
    want determinism && {
    say "determinism: the same lock exported again with --threads 1"
    for ((round = 1; round <= ROUNDS; round++)); do
        timed export_zstd_t1 "$DATA_BYTES" "$AIRLOCK" --json export --lock "$lock" -o "$OUT/export-zstd-t1" --threads 1 --force
    done
    if cmp -s "$BUNDLE_ZSTD" "$OUT/export-zstd-t1/$(basename "$BUNDLE_ZSTD")"; then DETERMINISM=IDENTICAL; else DETERMINISM=DIFFERENT; fi
    echo "  bundles are $DETERMINISM" >&2
    }

    want none || want verify && {
    say "uncompressed bundle: airlock export --compression none"
    for ((round = 1; round <= ROUNDS; round++)); do
        timed export_none "$DATA_BYTES" "$AIRLOCK" --json export --lock "$lock" -o "$OUT/export-none" --compression none --force
    done
    BUNDLE_NONE=$(ls "$OUT"/export-none/*.airlock)
    none_bytes=$(size_of "$BUNDLE_NONE")
    }

    # The baselines hash the same bytes, unpacked from that bundle: its SHA256SUMS member is
    # sha256sum -c input. Then airlock verify of the bundle, of the unpacked directory, and
    # (for information) of the zstd bundle.
    want verify && {
    say "verify: airlock verify vs sha256sum -c and openssl dgst -sha256 over the same bytes"
    mkdir -p "$OUT/unpacked"
    tar -C "$OUT/unpacked" -xf "$BUNDLE_NONE"
    find "$OUT/unpacked" "$BUNDLE_NONE" "$BUNDLE_ZSTD" -type f -print0 | xargs -0 cat > /dev/null
    for ((round = 1; round <= ROUNDS; round++)); do
        echo "  round $round of $ROUNDS" >&2
        timed verify_none "$none_bytes" "$AIRLOCK" --json verify "$BUNDLE_NONE"
        timed sha256sum_c "$DATA_BYTES" bash -c 'cd "$1" && sha256sum -c --quiet SHA256SUMS' _ "$OUT/unpacked"
        timed openssl_dgst "$DATA_BYTES" bash -c 'cd "$1" && find blobs -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null' _ "$OUT/unpacked"
        timed openssl_dgst_p2 "$DATA_BYTES" bash -c 'cd "$1" && find blobs -type f -print0 | xargs -0 -P2 -n 64 openssl dgst -sha256 > /dev/null' _ "$OUT/unpacked"
        timed verify_dir "$DATA_BYTES" "$AIRLOCK" --json verify "$OUT/unpacked"
        timed verify_zstd "$(size_of "$BUNDLE_ZSTD")" "$AIRLOCK" --json verify "$BUNDLE_ZSTD"
    done
    }

    OUT_BYTES_AIRLOCK=$(size_of "$BUNDLE_ZSTD")
    OUT_BYTES_TAR=$(size_of "$OUT/baseline.tar.zst" 2>/dev/null || echo 0)
    OUT_BYTES_NONE=${none_bytes:-0}
    BLOBS=$(sed -n 's/^ *"blobs": *\([0-9]*\).*/\1/p' "$LOGS/export_zstd.out")
}

# --- 4. summary ------------------------------------------------------------------------

report() {
    local s=$BENCH_DIR/summary.txt
    {
        awk -v b="$DATA_BYTES" -v n="$NFILES" -v u="$BLOBS" -v c="$(nproc)" 'BEGIN {
            printf "airlock spine benchmark: %.2f GiB in %d files (%d unique blobs), %d cores, page cache WARM (nothing dropped)\n", b / 2^30, n, u, c }'
        describe_fixture | sed 1d
        echo "Median of $ROUNDS interleaved rounds per step (spread% = worst / median - 1). MB/s and GB/s: 10^6 / 10^9 bytes/s of wall time."
        echo
        echo "CPU% is the step's own CPU use (200 = both cores); other% is other processes' user CPU meanwhile;"
        echo "RSS is the highest of the runs."
        echo
        printf '%-44s %7s %7s %6s %8s %5s %6s %14s\n' step "wall s" spread% "MB/s" "RSS MiB" "CPU%" other% "output bytes"
        row() {   # row LABEL NAME [OUTPUT_BYTES]; nothing for a step this run did not time
            [ -n "${SEC[$2]:-}" ] || return 0
            awk -v l="$1" -v e="${SEC[$2]}" -v w="${WORST[$2]}" -v b="${BYTES[$2]}" -v m="${RSS[$2]}" -v c="${CPU[$2]}" \
                -v x="${OTHER[$2]}" -v o="${3:-}" \
                'BEGIN { printf "%-44s %7.2f %7.0f %6.0f %8.1f %5s %6s %14s\n", l, e, (w / e - 1) * 100, b / e / 1e6, m / 1024, c, x, o }'
        }
        row "airlock mirror (empty cache)" mirror
        row "airlock export (zstd -$ZSTD_LEVEL, --threads $THREADS)" export_zstd "$OUT_BYTES_AIRLOCK"
        row "baseline airlock export (BENCH_BASELINE)" export_zstd_baseline
        row "tar -c | zstd -T$THREADS -$ZSTD_LEVEL" tar_zstd "$OUT_BYTES_TAR"
        row "tar -c | zstd, then fsync the output" tar_zstd_sync
        row "sha256sum pass over the files" sha256sum_pass
        [ -z "${SEC[tar_zstd]:-}" ] || awk -v a="${SEC[tar_zstd]}" -v b="${SEC[sha256sum_pass]}" -v n="$DATA_BYTES" \
            'BEGIN { printf "%-44s %7.2f %7s %6.0f\n", "tar|zstd + sha256sum pass (sum)", a + b, "", n / (a + b) / 1e6 }'
        row "airlock export --threads 1 (determinism)" export_zstd_t1 "$(size_of "$OUT/export-zstd-t1/$(basename "$BUNDLE_ZSTD")" 2>/dev/null)"
        row "airlock export --compression none" export_none "$OUT_BYTES_NONE"
        row "airlock verify (uncompressed bundle)" verify_none
        row "sha256sum -c SHA256SUMS (unpacked)" sha256sum_c
        row "openssl dgst -sha256 (unpacked, 1 process)" openssl_dgst
        row "openssl dgst -sha256 (unpacked, 2 processes)" openssl_dgst_p2
        row "airlock verify (unpacked directory)" verify_dir
        row "airlock verify (zstd bundle)" verify_zstd
        echo

        local max_rss=0 n
        for n in mirror export_zstd export_zstd_t1 export_none verify_none verify_dir verify_zstd; do
            [ "${RSS[$n]:-0}" -gt "$max_rss" ] && max_rss=${RSS[$n]}
        done
        echo "ratios are baseline time / airlock time (> 1: airlock is faster)"
        printf '%-52s %10s %16s %s\n' check value target result
        check() {  # check LABEL VALUE OP TARGET: OP is ge, lt or "" (information only); no VALUE, no line
            [ -n "$2" ] || return 0
            awk -v l="$1" -v v="$2" -v op="$3" -v t="$4" 'BEGIN {
                r = op == "ge" ? (v >= t ? "PASS" : "FAIL") : op == "lt" ? (v < t ? "PASS" : "FAIL") : ""
                tt = op == "ge" ? ">= " t : op == "lt" ? "< " t : "(info)"
                printf "%-52s %10.2f %16s %s\n", l, v, tt, r }'
        }
        ratio() { [ -z "$1" ] || [ -z "$2" ] || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }
        local t=${SEC[tar_zstd]:-} x=${SEC[export_zstd]:-} v=${SEC[verify_none]:-}
        check "export vs tar|zstd" "$(ratio "$t" "$x")" ge 1.0
        check "export vs the baseline binary's export" "$(ratio "${SEC[export_zstd_baseline]:-}" "$x")" "" ""
        [ -z "$t" ] || check "export vs tar|zstd + sha256sum pass" "$(ratio "$(awk -v a="$t" -v b="${SEC[sha256sum_pass]}" 'BEGIN { print a + b }')" "$x")" "" ""
        check "export vs tar|zstd + fsync of its output" "$(ratio "${SEC[tar_zstd_sync]:-}" "$x")" "" ""
        [ "$OUT_BYTES_TAR" = 0 ] || check "output size airlock / tar.zst" "$(ratio "$OUT_BYTES_AIRLOCK" "$OUT_BYTES_TAR")" "" ""
        [ -z "$v" ] || check "verify uncompressed bundle, GB/s" "$(awk -v b="$OUT_BYTES_NONE" -v e="$v" 'BEGIN { print b / e / 1e9 }')" ge 2
        check "verify vs sha256sum -c" "$(ratio "${SEC[sha256sum_c]:-}" "$v")" "" ""
        check "verify vs openssl dgst (1 process)" "$(ratio "${SEC[openssl_dgst]:-}" "$v")" "" ""
        check "verify vs openssl dgst (2 processes)" "$(ratio "${SEC[openssl_dgst_p2]:-}" "$v")" "" ""
        check "peak RSS of any airlock command, MiB" "$(awk -v m="$max_rss" 'BEGIN { print m / 1024 }')" lt 150
        printf '%-52s %10s\n' "determinism (--threads 1 vs default)" "$DETERMINISM"
        local busiest=0
        for n in "${!OTHER[@]}"; do [ "${OTHER[$n]}" -gt "$busiest" ] && busiest=${OTHER[$n]}; done
        [ "$busiest" -le 10 ] || echo "WARNING: other processes used up to ${busiest}% of a core during a step; check other% before trusting that row"
    } | tee "$s"
    echo "(saved to $s; per-step logs in $LOGS)" >&2
}

check_tools
build
check_space
generate_fixture
describe_fixture >&2
run_benchmarks
say "summary"
report
