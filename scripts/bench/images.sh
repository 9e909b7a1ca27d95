#!/usr/bin/env bash
# Images benchmark: airlock's container-image path (mirror, export, import into a
# registry) against what an operator would do by hand with skopeo, tar and zstd, on the
# same upstream registry, in one run.
#
# Upstream: a Kolla-like image family written by a seeded Python generator as OCI image
# layouts (gzip layers, gzip mtime 0) and pushed with `skopeo copy --all
# --preserve-digests` into Debian's docker-registry on a free loopback port:
#   kolla/base           amd64+arm64  os (~60 MB gzip) + kolla-base
#   kolla/keystone       amd64+arm64  base + openstack-base + keystone
#   kolla/glance-api     amd64+arm64  base + openstack-base + glance + glance-api
#   kolla/nova-api       amd64+arm64  base + openstack-base + nova-base + nova-api
#   kolla/nova-compute   amd64        base + openstack-base + nova-base + libvirt-client + nova-compute
#   kolla/nova-scheduler amd64        base + openstack-base + nova-base + nova-scheduler
#   kolla/horizon        amd64+arm64  base + openstack-base + horizon + horizon-static
# (own layers 4-22 MB gzip; ~370 MB of distinct blobs, ~1.2 GB if every image is
# copied on its own). The layouts are generated once into $BENCH_DIR/generated and
# reused; every run pushes them into a fresh upstream registry.
#
# Timed, each under /usr/bin/time -f '%e %M %U %S' (wall s, peak RSS KiB, user, sys):
#   a. airlock mirror (empty cache) + airlock export (zstd -3, 2 threads)
#        vs  skopeo copy --all docker://… dir:… per image + tar -c | zstd -T2 -3
#      sizes: the bundle vs the unique compressed bytes (the distinct blobs the upstream
#      registry stores once: layers, configs, manifests, indexes) and vs the .tar.zst
#   b. airlock import of the zstd bundle into a fresh empty registry (and a fresh store)
#        vs  skopeo copy --all --preserve-digests oci:LAYOUT:… docker://… per image, from
#            one OCI layout holding every image (built beforehand, not timed), into
#            another fresh registry
#      for information: airlock verify of the bundle alone; import with --oci-jobs 1;
#      import of an uncompressed bundle (export --compression none)
#   c. airlock import of the same bundle again into the filled target: time and the
#      receipt's registry.bytesUploaded (and, for information, skopeo's copy again)
# Both targets are then checked: every tag must resolve to the upstream digest.
#
# Where the time goes: during import-like steps a sampler reads /proc/net/tcp every
# 0.1 s and records the TCP connections open to the target registry: the first one
# marks the end of airlock's verify/stage phase (nothing talks to the target before),
# the largest count shows how many uploads run in parallel. The registries' own CPU is
# accounted apart ("reg%") from the rest of the machine ("other%"). Caches are WARM;
# `sync` runs before every step so one step's write-back does not land in the next.
# The machine may be shared: each step waits for idle CPUs first, and is re-measured
# (up to BENCH_RETRIES times) when other processes took over 25% of a core meanwhile.
#
# Environment:
#   BENCH_DIR         work dir (default <repo>/scratch/bench-images; git-ignored)
#   BENCH_SKIP_BUILD  set to 1 to use target/release/airlock as it is
#   BENCH_IDLE_WAIT   seconds to wait for an idle machine before each step (default 120)
#   BENCH_RETRIES     times to re-measure a step that other processes disturbed (default 2)
#   BENCH_ROUNDS      rounds of b. and c. (import, skopeo copy, re-import, skopeo again, run
#                     side by side in each round); the summary takes each step's median
#                     round (default 3)
#
# Targets checked in the summary: bundle <= 1.01 x unique compressed bytes; airlock
# import >= 1.5 x faster than skopeo copy; re-import < 5% of the first import's time,
# uploading nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench-images}
BUILT=$REPO/target/release/airlock
AIRLOCK=$BENCH_DIR/bin/airlock     # a copy, so a concurrent rebuild cannot swap it mid-run
THREADS=2                          # zstd workers for both airlock and the zstd baseline
ZSTD_LEVEL=3                       # airlock's default level
GEN_VERSION=1                      # bump when the generator changes, to regenerate
TAG=1.0
IMAGES=(base keystone glance-api nova-api nova-compute nova-scheduler horizon)   # as in the generator

TOOLS=$BENCH_DIR/tools             # the generator, written by this script
GENERATED=$BENCH_DIR/generated     # layer pool + one OCI layout per image, reused across runs
REGS=$BENCH_DIR/registries         # each registry's config and storage
RUN=$BENCH_DIR/run                 # this run: spec, lock, airlock dirs, bundles, baselines
TIMES=$BENCH_DIR/times
LOGS=$BENCH_DIR/logs

# per timed step: wall s, peak RSS KiB, own CPU %, registries' CPU %, others' CPU %,
# first connection to the target (s after start) and most connections at once
declare -A SEC RSS CPU REGCPU OTHER FIRST CONNS
declare -A REG_PID REG_PORT        # registry name -> pid, port
SAMPLE_PORT=                       # when set, timed() samples connections to this port

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'images.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. tools and build ------------------------------------------------------------------

check_tools() {
    local missing=()
    for t in cargo docker-registry skopeo python3 zstd tar awk sha256sum du sync; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    [ -x /usr/bin/time ] || missing+=("/usr/bin/time (apt-get install -y time)")
    [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (Debian: apt-get install -y docker-registry skopeo zstd time python3)"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 >= 3.9 is needed (random.randbytes)"
    [ -r /proc/net/tcp ] || die "/proc/net/tcp is not readable (needed to sample connections)"
}

build() {
    if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
        say "using the existing release binary (BENCH_SKIP_BUILD=1)"
    else
        say "building airlock (cargo build --release)"
        cargo build --release || die "cargo build --release failed"
    fi
    [ -x "$BUILT" ] || die "$BUILT was not built"
    mkdir -p "$(dirname "$AIRLOCK")"
    cp "$BUILT" "$AIRLOCK.tmp" && mv "$AIRLOCK.tmp" "$AIRLOCK"
    "$AIRLOCK" --version >&2
}

check_space() {
    mkdir -p "$BENCH_DIR"
    local free_kib
    free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
    # pool + upstream + cache + 2 bundles + skopeo dirs and .tar.zst (~1.2 GB each) +
    # OCI layout + 5 target registries + 3 stores
    [ "$free_kib" -ge $((8 * 1024 * 1024)) ] || die "need about 8 GiB free in $BENCH_DIR, have $((free_kib / 1048576)) GiB"
}

# --- 2. the image family -------------------------------------------------------------------

write_tools() {
    mkdir -p "$TOOLS"
    cat > "$TOOLS/gen.py.tmp" <<'PY'
"""OCI image layouts for the images benchmark: a Kolla-like family of images.

  gen.py OUT_DIR     writes OUT_DIR/pool (each unique layer once, gzip) and
                     OUT_DIR/layouts/NAME (one OCI image layout per image, tag 1.0,
                     blobs hard-linked from the pool); prints a JSON summary

Every layer is a gzip-compressed tar (gzip mtime 0, no file name; tar mtimes fixed) of
files of 1 KiB - 2 MiB (log-uniform) mixing three kinds of content: random bytes
(already-compressed data: wheels, .so.xz, images), 5-bit "binary" bytes (executables,
shared libraries: gzip gets ~0.65) and text lines drawn from a small pool (python
sources, docs, configs: gzip gets ~0.2). Deterministic: every choice comes from
random.Random seeded by the layer's name and architecture.
"""
import gzip, hashlib, io, json, math, os, random, sys, tarfile
from concurrent.futures import ProcessPoolExecutor

MiB = 1 << 20
MTIME = 1_700_000_000

# layer -> (uncompressed MiB, path prefix). Per architecture: amd64 and arm64 differ.
LAYERS = {
    "os":             (92, "usr"),                                # the distribution: ~60 MB gzip
    "kolla-base":     (6,  "usr/local/kolla"),                    # start scripts, sudoers, tini
    "openstack-base": (24, "var/lib/kolla/venv/lib/python3/site-packages"),
    "keystone":       (22, "var/lib/kolla/venv/lib/python3/site-packages/keystone"),
    "glance":         (18, "var/lib/kolla/venv/lib/python3/site-packages/glance"),
    "glance-api":     (8,  "etc/glance"),
    "nova-base":      (27, "var/lib/kolla/venv/lib/python3/site-packages/nova"),
    "nova-api":       (8,  "etc/nova/api"),
    "nova-compute":   (30, "usr/lib/nova-compute"),
    "libvirt-client": (15, "usr/lib/libvirt"),
    "nova-scheduler": (8,  "etc/nova/scheduler"),
    "horizon":        (30, "var/lib/kolla/venv/lib/python3/site-packages/openstack_dashboard"),
    "horizon-static": (12, "var/lib/kolla/venv/share/static"),
}
BASE = ["os", "kolla-base"]
SERVICE_BASE = BASE + ["openstack-base"]
BOTH = ["amd64", "arm64"]
# image -> (platforms, layers bottom-up)
IMAGES = {
    "base":           (BOTH,      BASE),
    "keystone":       (BOTH,      SERVICE_BASE + ["keystone"]),
    "glance-api":     (BOTH,      SERVICE_BASE + ["glance", "glance-api"]),
    "nova-api":       (BOTH,      SERVICE_BASE + ["nova-base", "nova-api"]),
    "nova-compute":   (["amd64"], SERVICE_BASE + ["nova-base", "libvirt-client", "nova-compute"]),
    "nova-scheduler": (["amd64"], SERVICE_BASE + ["nova-base", "nova-scheduler"]),
    "horizon":        (BOTH,      SERVICE_BASE + ["horizon", "horizon-static"]),
}
TAG = "1.0"
WORDS = ("import def class return self None True False raise except lambda yield async await "
         "config option value request response handler client server session token project "
         "user domain role policy image volume network port router subnet flavor instance host "
         "compute scheduler conductor api service endpoint catalog region quota limit cache "
         "oslo_config oslo_log oslo_messaging sqlalchemy keystoneauth1 webob routes paste").split()
FIVE_BIT = bytes((b % 32) * 5 + 17 for b in range(256))   # 32 symbols: ~0.65 under gzip
EXT = {"random": "gz", "binary": "so", "text": "py"}
SUB = {"random": "data", "binary": "bin", "text": "share"}


class Tee:
    """The tar stream: hashed (the diff_id) and gzip-compressed on its way to the file."""
    def __init__(self, gz):
        self.gz, self.h = gz, hashlib.sha256()

    def write(self, b):
        self.h.update(b)
        return self.gz.write(b)


class HashFile:
    """The compressed file: hashed (the blob digest) and counted as it is written."""
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def content(r, kind, n, pool):
    if kind == "random":
        return r.randbytes(n)
    if kind == "binary":
        return r.randbytes(n).translate(FIVE_BIT)
    return "\n".join(r.choices(pool, k=n // 40 + 1)).encode()[:n]


def make_layer(args):
    name, arch, pool_dir = args
    mib, prefix = LAYERS[name]
    r = random.Random(f"airlock-bench-images/{name}/{arch}")
    pool = [" ".join(r.choice(WORDS) for _ in range(r.randint(2, 12))) for _ in range(3000)]
    tmp = os.path.join(pool_dir, f".tmp-{name}-{arch}")
    with open(tmp, "wb") as f:
        hf = HashFile(f)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=hf, compresslevel=6, mtime=0)
        tee = Tee(gz)
        tar = tarfile.open(fileobj=tee, mode="w|", format=tarfile.USTAR_FORMAT)
        dirs = set()
        left, i = mib * MiB, 0
        while left > 0:
            n = min(left, int(math.exp(r.uniform(math.log(1024), math.log(2 * MiB)))))
            kind = r.choices(["random", "binary", "text"], weights=[35, 35, 30])[0]
            d = f"{prefix}/{SUB[kind]}/{r.choice(WORDS)}{i % 7}"
            parts = d.split("/")
            for k in range(1, len(parts) + 1):
                p = "/".join(parts[:k])
                if p not in dirs:
                    dirs.add(p)
                    ti = tarfile.TarInfo(p)
                    ti.type, ti.mode, ti.mtime, ti.uname, ti.gname = tarfile.DIRTYPE, 0o755, MTIME, "root", "root"
                    tar.addfile(ti)
            data = content(r, kind, n, pool)
            ti = tarfile.TarInfo(f"{d}/{r.choice(WORDS)}_{i:05d}.{EXT[kind]}")
            ti.size, ti.mtime, ti.uname, ti.gname = len(data), MTIME, "root", "root"
            ti.mode = 0o755 if kind == "binary" else 0o644
            tar.addfile(ti, io.BytesIO(data))
            left -= n
            i += 1
        tar.close()
        gz.close()
        f.flush()
        os.fsync(f.fileno())
    digest = hf.h.hexdigest()
    os.replace(tmp, os.path.join(pool_dir, digest))
    return (name, arch, digest, hf.n, "sha256:" + tee.h.hexdigest(), mib * MiB)


def put(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs/sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


def dumps(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=True).encode()


def main():
    out = sys.argv[1]
    pool_dir = os.path.join(out, "pool")
    os.makedirs(pool_dir, exist_ok=True)
    wanted = sorted({(l, a) for plats, layers in IMAGES.values() for a in plats for l in layers})
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        made = {(n, a): (d, s, diff, u)
                for n, a, d, s, diff, u in ex.map(make_layer, [(n, a, pool_dir) for n, a in wanted])}
    for image, (plats, layers) in IMAGES.items():
        layout = os.path.join(out, "layouts", image)
        os.makedirs(os.path.join(layout, "blobs/sha256"), exist_ok=True)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        descs = []
        for arch in plats:
            lds, diffs, hist = [], [], []
            for l in layers:
                d, s, diff, _ = made[(l, arch)]
                dst = os.path.join(layout, "blobs/sha256", d)
                if not os.path.exists(dst):
                    os.link(os.path.join(pool_dir, d), dst)
                lds.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": s})
                diffs.append(diff)
                hist.append({"created": "2024-04-01T00:00:00Z", "created_by": f"kolla-build: {l}"})
            platform = {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}
            config = {**platform, "created": "2024-04-01T00:00:00Z",
                      "config": {"Env": ["PATH=/var/lib/kolla/venv/bin:/usr/bin:/bin", f"KOLLA_SERVICE={image}"],
                                 "Cmd": ["kolla_start"], "User": image.split("-")[0],
                                 "Labels": {"name": f"kolla/{image}", "build-date": "20240401"}},
                      "rootfs": {"type": "layers", "diff_ids": diffs}, "history": hist}
            c = put(layout, dumps(config))
            m = put(layout, dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
                                   "layers": lds}))
            descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **m, "platform": platform})
        if len(descs) == 1:
            top = {k: v for k, v in descs[0].items() if k != "platform"}
        else:
            top = {"mediaType": "application/vnd.oci.image.index.v1+json",
                   **put(layout, dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                        "manifests": descs}))}
        with open(os.path.join(layout, "index.json"), "wb") as f:
            f.write(dumps({"schemaVersion": 2,
                           "manifests": [{**top, "annotations": {"org.opencontainers.image.ref.name": TAG}}]}))
    summary = {"tag": TAG,
               "images": {i: {"platforms": p, "layers": l} for i, (p, l) in IMAGES.items()},
               "layers": [{"layer": n, "arch": a, "digest": "sha256:" + d, "bytes": s, "uncompressed": u}
                          for (n, a), (d, s, _, u) in sorted(made.items())]}
    json.dump(summary, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
PY
    mv "$TOOLS/gen.py.tmp" "$TOOLS/gen.py"
}

generate_images() {
    local stamp="gen=$GEN_VERSION $(sha256sum < "$TOOLS/gen.py" | cut -c1-16)"
    if [ -f "$GENERATED/.complete" ] && [ "$(cat "$GENERATED/.complete")" = "$stamp" ]; then
        say "reusing the generated images in $GENERATED ($stamp)"
        return
    fi
    say "generating the Kolla-like image family into $GENERATED (once; about a minute)"
    rm -rf "$GENERATED"
    mkdir -p "$GENERATED"
    python3 "$TOOLS/gen.py" "$GENERATED" > "$GENERATED/summary.json.tmp" || die "the image generator failed"
    mv "$GENERATED/summary.json.tmp" "$GENERATED/summary.json"
    sync
    echo "$stamp" > "$GENERATED/.complete"
}

describe_images() {   # one line per image: layers and sizes, from the generator's summary
    python3 - "$GENERATED/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
size = {(l["layer"], l["arch"]): l["bytes"] for l in s["layers"]}
for name, i in s["images"].items():
    per = [sum(size[(l, a)] for l in i["layers"]) for a in i["platforms"]]
    print(f"  kolla/{name:<15} {'+'.join(i['platforms']):<12} {len(i['layers'])} layers, "
          + ", ".join(f"{b / 1e6:.0f} MB ({a})" for a, b in zip(i["platforms"], per)))
print(f"  {len(size)} distinct layers, {sum(size.values()) / 1e6:.0f} MB gzip; "
      f"largest {max(size.values()) / 1e6:.0f} MB, smallest {min(size.values()) / 1e6:.1f} MB")
PY
}

# --- 3. registries -------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME: a fresh docker-registry (empty storage in $REGS/NAME) on a free
# port, the same one each time NAME is (re)started, so commands can name it beforehand.
start_registry() {
    local name=$1 dir=$REGS/$1 port i
    stop_registry "$name"
    rm -rf "$dir"
    mkdir -p "$dir/storage"
    port=${REG_PORT[$name]:-$(free_port)}
    cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$dir/config.yml" > "$LOGS/registry-$name.log" 2>&1 &
    REG_PID[$name]=$!
    REG_PORT[$name]=$port
    for i in $(seq 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
        kill -0 "${REG_PID[$name]}" 2>/dev/null || die "docker-registry $name exited: $(cat "$LOGS/registry-$name.log")"
        sleep 0.1
    done
    die "docker-registry $name did not listen on $port"
}

stop_registry() {
    local pid=${REG_PID[$1]:-}
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        unset "REG_PID[$1]"
    fi
}

stop_all() {
    local n
    for n in "${!REG_PID[@]}"; do stop_registry "$n"; done
    if [ -n "${SAMPLER_PID:-}" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
}

host() { echo "127.0.0.1:${REG_PORT[$1]}"; }

# Sum of the sizes of the distinct blobs a registry stores (layers, configs, manifests).
registry_blob_bytes() {
    find "$REGS/$1/storage/docker/registry/v2/blobs" -name data -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }'
}
registry_blob_count() {
    find "$REGS/$1/storage/docker/registry/v2/blobs" -name data -type f | wc -l
}

# Every image's tag at registry NAME must resolve to the digest upstream has.
check_target() {
    local name=$1 img up got bad=0
    for img in "${IMAGES[@]}"; do
        up=$(skopeo inspect --raw --tls-verify=false "docker://$(host upstream)/kolla/$img:$TAG" | sha256sum | cut -d' ' -f1)
        got=$(skopeo inspect --raw --tls-verify=false "docker://$(host "$name")/kolla/$img:$TAG" 2>/dev/null | sha256sum | cut -d' ' -f1)
        [ "$up" = "$got" ] || { echo "  $name: kolla/$img:$TAG is not upstream's sha256:$up" >&2; bad=1; }
    done
    return $bad
}

push_upstream() {
    local img
    start_registry upstream
    echo "  upstream docker-registry on $(host upstream)" >&2
    for img in "${IMAGES[@]}"; do
        skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
            "oci:$GENERATED/layouts/$img:$TAG" "docker://$(host upstream)/kolla/$img:$TAG" \
            || die "pushing kolla/$img upstream failed"
    done
    UNIQUE_BYTES=$(registry_blob_bytes upstream)
    UNIQUE_BLOBS=$(registry_blob_count upstream)
    echo "  upstream holds $UNIQUE_BLOBS distinct blobs, $UNIQUE_BYTES bytes" >&2
}

# --- 4. measurement ----------------------------------------------------------------------

# Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat).
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# CPU seconds all the registries this script started have used so far.
registry_seconds() {
    local pid files=()
    for pid in "${REG_PID[@]}"; do [ -r "/proc/$pid/stat" ] && files+=("/proc/$pid/stat"); done
    [ ${#files[@]} -gt 0 ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); s += $12 + $13 + $14 + $15 } END { printf "%.2f", s / hz }' "${files[@]}" 2>/dev/null || echo 0
}

# Wait (up to BENCH_IDLE_WAIT s) until other processes use under 10% of one core.
wait_for_idle() {
    local limit=${BENCH_IDLE_WAIT:-120} waited=0 a b busy
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

# sample_conns PORT FILE: every 0.1 s, "EPOCHREALTIME N" with N the established client
# connections to 127.0.0.1:PORT (rem_address ends in the port, state 01).
sample_conns() {
    local hex n
    hex=$(printf '%04X' "$1")
    while :; do
        n=$(awk -v p=":$hex" '$3 ~ p "$" && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp)
        echo "$EPOCHREALTIME $n"
        sleep 0.1
    done > "$2"
}

# timed NAME CMD...: run CMD under /usr/bin/time once the machine is idle; record wall s,
# peak RSS, its CPU %, the registries' CPU % and others' CPU %; with SAMPLE_PORT set, also
# when the first connection to that port opened and the most open at once. If other
# processes took over 25% of a core meanwhile, run it again (up to BENCH_RETRIES times).
# A function prep_NAME, if defined, runs untimed before each attempt. Output goes to
# $LOGS/NAME.out and NAME.err.
timed() {
    local name=$1; shift
    local attempt before after rbefore rafter start e m u s
    for ((attempt = 0; ; attempt++)); do
        local base=${name%_r[0-9]*}
        if declare -F "prep_$base" > /dev/null; then "prep_$base"; fi
        sync   # flush earlier writes outside the measurement; caches stay warm
        wait_for_idle
        printf '  %-26s ' "$name" >&2
        SAMPLER_PID=
        if [ -n "$SAMPLE_PORT" ]; then
            sample_conns "$SAMPLE_PORT" "$LOGS/$name.conns" &
            SAMPLER_PID=$!
        fi
        rbefore=$(registry_seconds)
        before=$(busy_seconds)
        start=$EPOCHREALTIME
        /usr/bin/time -f '%e %M %U %S' -o "$TIMES/$name" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err" \
            || { cat "$LOGS/$name.err" >&2; die "$name failed"; }
        after=$(busy_seconds)
        rafter=$(registry_seconds)
        if [ -n "$SAMPLER_PID" ]; then
            kill "$SAMPLER_PID" 2>/dev/null || true
            wait "$SAMPLER_PID" 2>/dev/null || true
            SAMPLER_PID=
            read -r FIRST[$name] CONNS[$name] < <(awk -v t0="$start" \
                '$2 > 0 && f == "" { f = $1 - t0 } $2 > mx { mx = $2 } END { printf "%s %d\n", (f == "" ? "-" : sprintf("%.1f", f)), mx }' \
                "$LOGS/$name.conns")
        fi
        read -r e m u s < "$TIMES/$name"
        SEC[$name]=$e; RSS[$name]=$m
        CPU[$name]=$(awk -v e="$e" -v u="$u" -v s="$s" 'BEGIN { printf "%.0f", (e > 0 ? (u + s) / e * 100 : 0) }')
        REGCPU[$name]=$(awk -v e="$e" -v a="$rbefore" -v b="$rafter" 'BEGIN { printf "%.0f", (e > 0 ? (b - a) / e * 100 : 0) }')
        # machine-wide busy time minus the command's own and the registries' = everything else
        OTHER[$name]=$(awk -v e="$e" -v u="$u" -v s="$s" -v a="$before" -v b="$after" -v r="$rbefore" -v q="$rafter" \
            'BEGIN { o = e > 0 ? (b - a - u - s - (q - r)) / e * 100 : 0; printf "%.0f", (o < 0 ? 0 : o) }')
        printf '%7.2f s  %6.0f MiB RSS  %4s%% CPU  reg %3s%%  others %3s%%%s\n' "$e" \
            "$(awk -v m="$m" 'BEGIN { print m / 1024 }')" "${CPU[$name]}" "${REGCPU[$name]}" "${OTHER[$name]}" \
            "$([ -n "${FIRST[$name]:-}" ] && echo "  (first connection at ${FIRST[$name]} s, up to ${CONNS[$name]} at once)")" >&2
        [ "${OTHER[$name]}" -le 25 ] || [ "$attempt" -ge "${BENCH_RETRIES:-2}" ] && break
        echo "  (the machine was busy: measuring $name again)" >&2
    done
}

size_of() { stat -c %s "$1"; }
json_field() {   # json_field FILE a.b.c
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"
}

# A fresh empty target registry and a fresh airlock store for a first import.
ROUNDS=${BENCH_ROUNDS:-3}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number, not '$ROUNDS'"
declare -A MEDIAN MAXRSS   # step -> the round taken as its median (NAME_rN), largest peak RSS of any round

# adopt_median NAME: NAME's row is its median round (by wall time; the lower middle one of
# an even count), and MAXRSS[NAME] the largest peak RSS of all its rounds.
adopt_median() {
    local name=$1 r pick
    pick=$(for ((r = 1; r <= ROUNDS; r++)); do echo "${SEC[${name}_r$r]} ${name}_r$r"; done | sort -n | \
        awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
    MEDIAN[$name]=$pick
    SEC[$name]=${SEC[$pick]}; RSS[$name]=${RSS[$pick]}; CPU[$name]=${CPU[$pick]}
    REGCPU[$name]=${REGCPU[$pick]}; OTHER[$name]=${OTHER[$pick]}
    FIRST[$name]=${FIRST[$pick]:-}; CONNS[$name]=${CONNS[$pick]:-}
    MAXRSS[$name]=0
    for ((r = 1; r <= ROUNDS; r++)); do
        [ "${RSS[${name}_r$r]}" -gt "${MAXRSS[$name]}" ] && MAXRSS[$name]=${RSS[${name}_r$r]}
    done
    return 0
}

fresh_import() {   # fresh_import REGISTRY STORE
    start_registry "$1"
    rm -rf "$2"
}

run_benchmarks() {
    mkdir -p "$TIMES" "$LOGS"
    rm -rf "$RUN" "$TIMES"/* "$LOGS"/*
    mkdir -p "$RUN/out"
    export AIRLOCK_CONFIG_DIR=$RUN/airlock/config AIRLOCK_CACHE_DIR=$RUN/airlock/cache AIRLOCK_STORE=$RUN/airlock/store
    "$AIRLOCK" key generate --no-password --trust > "$LOGS/key.out" 2>&1 || { cat "$LOGS/key.out" >&2; die "key generate failed"; }

    say "upstream: pushing the image family with skopeo copy --all --preserve-digests"
    push_upstream
    local up; up=$(host upstream)
    {
        printf 'name: imgs\nversion: "1"\nimages:\n'
        for img in "${IMAGES[@]}"; do printf '  - ref: %s/kolla/%s:%s\n' "$up" "$img" "$TAG"; done
        printf 'registries:\n  "%s":\n    insecure: true\n' "$up"
    } > "$RUN/airlock.yaml"
    local lock=$RUN/airlock.lock out=$RUN/out

    # ---- a. mirror + export vs skopeo copy to dir: + tar | zstd --------------------------
    say "a. airlock mirror (empty cache: pulls every distinct blob once) + export (zstd -$ZSTD_LEVEL, $THREADS threads)"
    prep_mirror() { rm -rf "$AIRLOCK_CACHE_DIR" "$lock"; }
    timed mirror "$AIRLOCK" --json mirror -f "$RUN/airlock.yaml" --lock "$lock"
    prep_export_zstd() { rm -rf "$out/zstd"; }
    timed export_zstd "$AIRLOCK" --json export --lock "$lock" -o "$out/zstd" --threads "$THREADS"
    BUNDLE_ZSTD=$out/zstd/imgs-1.airlock
    [ -f "$BUNDLE_ZSTD" ] || die "no bundle at $BUNDLE_ZSTD"

    say "a. baseline: skopeo copy --all docker://… dir:… per image (each image whole), then tar -c | zstd -T$THREADS -$ZSTD_LEVEL"
    prep_skopeo_pull() { rm -rf "$out/dirs"; mkdir -p "$out/dirs"; }
    timed skopeo_pull bash -c 'set -e; d=$1 up=$2 tag=$3; shift 3
        for i in "$@"; do skopeo copy --quiet --all --src-tls-verify=false "docker://$up/kolla/$i:$tag" "dir:$d/$i"; done' \
        _ "$out/dirs" "$up" "$TAG" "${IMAGES[@]}"
    timed tar_zstd bash -c 'set -o pipefail; tar -C "$1" -cf - . | zstd -q -T"$2" -"$3" > "$4"' \
        _ "$out/dirs" "$THREADS" "$ZSTD_LEVEL" "$out/baseline.tar.zst"
    DIRS_BYTES=$(du -sb "$out/dirs" | cut -f1)

    say "a. (information) airlock export --compression none"
    prep_export_none() { rm -rf "$out/none"; }
    timed export_none "$AIRLOCK" --json export --lock "$lock" -o "$out/none" --compression none
    BUNDLE_NONE=$out/none/imgs-1.airlock

    # ---- b. import into a fresh registry vs skopeo copy from an OCI layout ---------------
    say "b. (not timed) one OCI layout holding every image, for skopeo: skopeo copy --all docker://… oci:LAYOUT:NAME-$TAG"
    local img
    rm -rf "$out/layout"
    for img in "${IMAGES[@]}"; do
        skopeo copy --quiet --all --preserve-digests --src-tls-verify=false \
            "docker://$up/kolla/$img:$TAG" "oci:$out/layout:$img-$TAG" || die "building the OCI layout failed at $img"
    done
    find "$out/layout" "$BUNDLE_ZSTD" "$BUNDLE_NONE" -type f -print0 | xargs -0 cat > /dev/null   # warm

    local t r
    for t in target-airlock target-skopeo target-jobs1 target-none; do start_registry "$t"; done
    prep_import() { fresh_import target-airlock "$AIRLOCK_STORE"; SAMPLE_PORT=${REG_PORT[target-airlock]}; }
    prep_skopeo_push() { start_registry target-skopeo; SAMPLE_PORT=${REG_PORT[target-skopeo]}; }
    prep_reimport() { SAMPLE_PORT=${REG_PORT[target-airlock]}; }
    prep_skopeo_repush() { SAMPLE_PORT=${REG_PORT[target-skopeo]}; }
    for ((r = 1; r <= ROUNDS; r++)); do
        say "b./c. round $r of $ROUNDS, side by side: airlock import of the zstd bundle into a fresh registry (and a fresh store)," \
            "skopeo copy --all --preserve-digests oci:LAYOUT:… docker://… per image into another, then each again into its filled target"
        timed "import_r$r" "$AIRLOCK" import "$BUNDLE_ZSTD" --oci-registry "$(host target-airlock)" --oci-insecure --json
        timed "skopeo_push_r$r" bash -c 'set -e; l=$1 t=$2 tag=$3; shift 3
            for i in "$@"; do skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false "oci:$l:$i-$tag" "docker://$t/kolla/$i:$tag"; done' \
            _ "$out/layout" "$(host target-skopeo)" "$TAG" "${IMAGES[@]}"
        timed "reimport_r$r" "$AIRLOCK" import "$BUNDLE_ZSTD" --oci-registry "$(host target-airlock)" --oci-insecure --json
        timed "skopeo_repush_r$r" bash -c 'set -e; l=$1 t=$2 tag=$3; shift 3
            for i in "$@"; do skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false "oci:$l:$i-$tag" "docker://$t/kolla/$i:$tag"; done' \
            _ "$out/layout" "$(host target-skopeo)" "$TAG" "${IMAGES[@]}"
        SAMPLE_PORT=
    done
    for t in import skopeo_push reimport skopeo_repush; do adopt_median "$t"; done
    SAMPLE_PORT=

    say "b. (information) where import's time goes: verify alone, --oci-jobs 1, an uncompressed bundle"
    timed verify_zstd "$AIRLOCK" verify "$BUNDLE_ZSTD" --json
    prep_import_jobs1() { fresh_import target-jobs1 "$RUN/airlock/store-jobs1"; SAMPLE_PORT=${REG_PORT[target-jobs1]}; }
    timed import_jobs1 env AIRLOCK_STORE="$RUN/airlock/store-jobs1" \
        "$AIRLOCK" import "$BUNDLE_ZSTD" --oci-registry "$(host target-jobs1)" --oci-insecure --oci-jobs 1 --json
    prep_import_none() { fresh_import target-none "$RUN/airlock/store-none"; SAMPLE_PORT=${REG_PORT[target-none]}; }
    timed import_none env AIRLOCK_STORE="$RUN/airlock/store-none" \
        "$AIRLOCK" import "$BUNDLE_NONE" --oci-registry "$(host target-none)" --oci-insecure --json
    SAMPLE_PORT=

    # ---- c. re-import into the filled target -------------------------------------------
    say "checking both targets: every tag must resolve to upstream's digest"
    TARGETS_OK=yes
    check_target target-airlock || TARGETS_OK=no
    check_target target-skopeo || TARGETS_OK=no
    echo "  targets match upstream: $TARGETS_OK" >&2

    BUNDLE_BYTES=$(size_of "$BUNDLE_ZSTD")
    BUNDLE_NONE_BYTES=$(size_of "$BUNDLE_NONE")
    TARZST_BYTES=$(size_of "$out/baseline.tar.zst")
    UP1=$(json_field "$LOGS/${MEDIAN[import]}.out" registry.bytesUploaded)
    MOUNTED1=$(json_field "$LOGS/${MEDIAN[import]}.out" registry.blobsMounted)
    SECS1=$(json_field "$LOGS/${MEDIAN[import]}.out" seconds)
    UP2=$(json_field "$LOGS/${MEDIAN[reimport]}.out" registry.bytesUploaded)
    SECS2=$(json_field "$LOGS/${MEDIAN[reimport]}.out" seconds)
    FROM_RECORD=$(json_field "$LOGS/${MEDIAN[reimport]}.out" answeredFromRecord)
    TARGET_BYTES=$(registry_blob_bytes target-airlock)
    SKOPEO_TARGET_BYTES=$(registry_blob_bytes target-skopeo)
}

# --- 5. summary ------------------------------------------------------------------------

report() {
    local s=$BENCH_DIR/summary.txt
    {
        echo "airlock images benchmark: ${#IMAGES[@]} Kolla-like images (tag $TAG), $UNIQUE_BLOBS distinct blobs," \
            "$(awk -v b="$UNIQUE_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }') unique compressed, $(nproc) cores, page cache WARM"
        describe_images
        echo
        echo "CPU% is the step's own CPU use (200 = both cores); reg% the docker-registry servers'; other% the rest of the machine."
        echo "conn: when the first TCP connection to the target opened (s after start) / most connections open at once."
        echo
        printf '%-50s %8s %8s %6s %5s %6s %10s %15s\n' step "wall s" "RSS MiB" "CPU%" reg% other% conn "output bytes"
        row() {   # row LABEL NAME [OUTPUT_BYTES]
            local c=""
            [ -n "${FIRST[$2]:-}" ] && c="${FIRST[$2]}/${CONNS[$2]}"
            awk -v l="$1" -v e="${SEC[$2]}" -v m="${RSS[$2]}" -v p="${CPU[$2]}" -v r="${REGCPU[$2]}" -v x="${OTHER[$2]}" \
                -v c="$c" -v o="${3:-}" 'BEGIN { printf "%-50s %8.2f %8.1f %6s %5s %6s %10s %15s\n", l, e, m / 1024, p, r, x, c, o }'
        }
        sumrow() {   # sumrow LABEL NAME1 NAME2 [OUTPUT_BYTES]
            awk -v l="$1" -v a="${SEC[$2]}" -v b="${SEC[$3]}" -v o="${4:-}" 'BEGIN { printf "%-50s %8.2f %8s %6s %5s %6s %10s %15s\n", l, a + b, "", "", "", "", "", o }'
        }
        echo "a. mirror + export"
        row "  airlock mirror (empty cache)" mirror
        row "  airlock export (zstd -$ZSTD_LEVEL, --threads $THREADS)" export_zstd "$BUNDLE_BYTES"
        sumrow "  airlock mirror + export" mirror export_zstd "$BUNDLE_BYTES"
        row "  skopeo copy --all docker:// dir: (per image)" skopeo_pull "$DIRS_BYTES"
        row "  tar -c | zstd -T$THREADS -$ZSTD_LEVEL of those dirs" tar_zstd "$TARZST_BYTES"
        sumrow "  skopeo copy + tar | zstd" skopeo_pull tar_zstd "$TARZST_BYTES"
        row "  airlock export --compression none (info)" export_none "$BUNDLE_NONE_BYTES"
        echo "b. import into a fresh registry (median of $ROUNDS rounds; each round below)"
        row "  airlock import (zstd bundle, --oci-jobs 4)" import
        row "  skopeo copy --all oci: docker:// (per image)" skopeo_push
        row "  airlock verify (zstd bundle, info)" verify_zstd
        row "  airlock import --oci-jobs 1 (info)" import_jobs1
        row "  airlock import (uncompressed bundle, info)" import_none
        echo "c. again, into the filled target (median of $ROUNDS rounds)"
        row "  airlock import again" reimport
        row "  skopeo copy again (info)" skopeo_repush
        echo "rounds (side by side)"
        local rr
        for ((rr = 1; rr <= ROUNDS; rr++)); do
            row "  round $rr: airlock import" "import_r$rr"
            row "  round $rr: skopeo copy" "skopeo_push_r$rr"
            row "  round $rr: airlock import again" "reimport_r$rr"
            row "  round $rr: skopeo copy again" "skopeo_repush_r$rr"
        done
        echo
        printf 're-import answered from the record: %s\n' "$FROM_RECORD"
        printf 'medians: import %s x faster than skopeo copy; re-import takes %s%% of the first import\n' \
            "$(awk -v a="${SEC[skopeo_push]}" -v b="${SEC[import]}" 'BEGIN { printf "%.2f", a / b }')" \
            "$(awk -v a="${SEC[reimport]}" -v b="${SEC[import]}" 'BEGIN { printf "%.1f", a / b * 100 }')"
        printf 'peak RSS, largest of all rounds (MiB): import %.1f, re-import %.1f, skopeo copy %.1f, skopeo again %.1f\n' \
            "$(awk -v m="${MAXRSS[import]}" 'BEGIN { print m / 1024 }')" "$(awk -v m="${MAXRSS[reimport]}" 'BEGIN { print m / 1024 }')" \
            "$(awk -v m="${MAXRSS[skopeo_push]}" 'BEGIN { print m / 1024 }')" "$(awk -v m="${MAXRSS[skopeo_repush]}" 'BEGIN { print m / 1024 }')"
        printf 'import receipt: %s bytes uploaded, %s blobs mounted, %s s by its own clock; re-import: %s bytes uploaded, %s s\n' \
            "$UP1" "$MOUNTED1" "$(printf '%.2f' "$SECS1")" "$UP2" "$(printf '%.2f' "$SECS2")"
        printf 'target registry after import holds %s bytes of blobs (skopeo target: %s); targets match upstream: %s\n' \
            "$TARGET_BYTES" "$SKOPEO_TARGET_BYTES" "$TARGETS_OK"
        awk -v e="${SEC[import]}" -v f="${FIRST[import]}" -v v="${SEC[verify_zstd]}" -v b="$UP1" 'BEGIN {
            if (f == "-") { print "import phases: no connection to the target was seen"; exit }
            printf "import phases (from the connection sampler): verify + stage + plan %.1f s (verify alone: %.1f s), push %.1f s (%.0f MB/s)\n",
                f, v, e - f, (e > f ? b / (e - f) / 1e6 : 0) }'
        echo

        ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }
        check() {  # check LABEL VALUE OP TARGET: OP is ge, le, lt, eq or "" (information only)
            awk -v l="$1" -v v="$2" -v op="$3" -v t="$4" 'BEGIN {
                r = op == "ge" ? (v >= t ? "PASS" : "FAIL") : op == "le" ? (v <= t ? "PASS" : "FAIL") : \
                    op == "lt" ? (v < t ? "PASS" : "FAIL") : op == "eq" ? (v == t ? "PASS" : "FAIL") : ""
                tt = op == "ge" ? ">= " t : op == "le" ? "<= " t : op == "lt" ? "< " t : op == "eq" ? "= " t : "(info)"
                printf "%-56s %12.4f %10s %s\n", l, v, tt, r }'
        }
        local max_rss=0 n
        for n in mirror export_zstd export_none verify_zstd import_jobs1 import_none; do
            [ "${RSS[$n]}" -gt "$max_rss" ] && max_rss=${RSS[$n]}
        done
        for n in import reimport; do
            [ "${MAXRSS[$n]}" -gt "$max_rss" ] && max_rss=${MAXRSS[$n]}
        done
        echo "speed ratios are baseline time / airlock time (> 1: airlock is faster)"
        printf '%-56s %12s %10s %s\n' check value target result
        check "bundle bytes / unique compressed bytes" "$(ratio "$BUNDLE_BYTES" "$UNIQUE_BYTES")" le 1.01
        check "bundle bytes / baseline tar.zst bytes" "$(ratio "$BUNDLE_BYTES" "$TARZST_BYTES")" "" ""
        check "mirror+export vs skopeo copy + tar|zstd (speed)" \
            "$(ratio "$(awk -v a="${SEC[skopeo_pull]}" -v b="${SEC[tar_zstd]}" 'BEGIN { print a + b }')" \
                     "$(awk -v a="${SEC[mirror]}" -v b="${SEC[export_zstd]}" 'BEGIN { print a + b }')")" "" ""
        check "import vs skopeo copy from an OCI layout (speed)" "$(ratio "${SEC[skopeo_push]}" "${SEC[import]}")" ge 1.5
        check "verify alone / import (share of import)" "$(ratio "${SEC[verify_zstd]}" "${SEC[import]}")" "" ""
        check "import --oci-jobs 1 / import --oci-jobs 4" "$(ratio "${SEC[import_jobs1]}" "${SEC[import]}")" "" ""
        check "re-import time / first import time" "$(ratio "${SEC[reimport]}" "${SEC[import]}")" lt 0.05
        check "re-import bytesUploaded" "$UP2" eq 0
        check "skopeo again / skopeo first (info)" "$(ratio "${SEC[skopeo_repush]}" "${SEC[skopeo_push]}")" "" ""
        check "peak RSS of any airlock command, MiB" "$(awk -v m="$max_rss" 'BEGIN { print m / 1024 }')" lt 150
        local busiest=0
        for n in "${!OTHER[@]}"; do [ "${OTHER[$n]}" -gt "$busiest" ] && busiest=${OTHER[$n]}; done
        [ "$busiest" -lt 10 ] || echo "WARNING: other processes used up to ${busiest}% of a core during a step (kernel write-back of the step's own writes counts too); check other% before trusting that row"
    } | tee "$s"
    echo "(saved to $s; per-step logs in $LOGS)" >&2
}

trap stop_all EXIT
trap 'exit 130' INT TERM

check_tools
build
check_space
mkdir -p "$LOGS" "$TIMES"
write_tools
generate_images
describe_images >&2
run_benchmarks
say "summary"
report
