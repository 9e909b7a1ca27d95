#!/usr/bin/env bash
# Debian benchmark: `airlock mirror` of a package closure against `apt-get install
# --download-only` of the same closure, from the same upstream archive, in one run.
#
# Upstream: BENCH_PACKAGES (default 150) generated .deb packages of realistic sizes
# (log-normal, median ~120 KiB, a few of several MiB, incompressible payloads; about
# 60 MB in all) with a dependency graph (versioned dependencies, alternatives `a | b`,
# a virtual package via Provides, two versions of some packages, arch:all and amd64),
# indexed by dpkg-scanpackages, signed with a throwaway gpg key and served by nginx on a
# free loopback port. The root package depends, directly or not, on every package, so the
# closure is the whole archive. Generated once into $BENCH_DIR/generated and reused.
#
# Timed, each under /usr/bin/time -f '%e %M' (wall s, peak RSS KiB), caches empty:
#   airlock mirror            (verify InRelease with rPGP, fetch Packages.xz, resolve, fetch debs: 8 at once)
#   apt-get update + install --download-only bench-root   (private config, empty dpkg status, gpgv)
# Ratio = apt time / airlock time (> 1: airlock is faster). Both check every .deb's SHA256.
#
# Environment:
#   BENCH_DIR         work dir (default <repo>/scratch/bench-debian; git-ignored)
#   BENCH_PACKAGES    number of generated packages (default 150)
#   BENCH_SKIP_BUILD  set to 1 to use target/release/airlock as it is
#   BENCH_ROUNDS      rounds of each side, best kept (default 3)
#   BENCH_AIRLOCK     use this airlock binary instead of building target/release/airlock
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/bench/lib.sh
BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench-debian}
NPKG=${BENCH_PACKAGES:-150}
ROUNDS=${BENCH_ROUNDS:-3}
export PATH="$PATH:/usr/sbin:/sbin"

die() { printf 'debian.sh: %s\n' "$*" >&2; exit 1; }
for t in dpkg-deb dpkg-scanpackages gpg apt-get nginx xz gzip python3 /usr/bin/time flock; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ $NPKG =~ ^[1-9][0-9]+$ ]] || die "BENCH_PACKAGES must be a number >= 10"
mkdir -p "$BENCH_DIR"
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || die "another run uses $BENCH_DIR"

BUILT=${BENCH_AIRLOCK:-$REPO/target/release/airlock}
if [ -z "${BENCH_AIRLOCK:-}" ] && [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
    cargo build --release --quiet
fi
AIRLOCK=$BENCH_DIR/airlock   # a copy, so a concurrent rebuild cannot swap it mid-run
cp "$BUILT" "$AIRLOCK"

GEN=$BENCH_DIR/generated/$NPKG
ARCHIVE=$GEN/www/debian
export GNUPGHOME=$GEN/gnupg
if [ ! -f "$GEN/done" ]; then
    rm -rf "$GEN"
    mkdir -p "$GEN/build" "$ARCHIVE/pool/main" "$GNUPGHOME"
    chmod 700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key 'Bench Upstream <bench@example.org>' ed25519 sign never 2>/dev/null
    gpg --export --armor >"$GEN/upstream.asc"
    python3 - "$GEN/build" "$NPKG" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
names = [f"pkg{i:03d}" for i in range(n)]
for i, name in enumerate(names):
    deps = []
    if i > 0:
        for j in sorted(set(rng.randrange(i) for _ in range(rng.randint(1, 3)))):
            deps.append(f"{names[j]} (>= 1.0)" if j % 4 == 0 else names[j])
    if i % 10 == 5:
        deps.append("bench-missing | " + names[i - 1])   # alternative: the first is absent
    if i % 17 == 3:
        deps.append("bench-virtual")                      # virtual: provided by pkg000
    arch = "all" if i % 3 == 0 else "amd64"
    size = min(int(rng.lognormvariate(11.7, 1.1)), 8 << 20)   # median ~120 KiB
    versions = ["1.0", "1.1"] if i % 11 == 0 else ["1.0"]
    for v in versions:
        d = os.path.join(out, f"{name}_{v}_{arch}")   # dpkg-scanpackages -a matches *_<arch>.deb
        os.makedirs(os.path.join(d, "DEBIAN"), exist_ok=True)
        os.makedirs(os.path.join(d, "usr/share", name), exist_ok=True)
        with open(os.path.join(d, "usr/share", name, "payload.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        extra = "Provides: bench-virtual\n" if i == 0 else ""
        dep = f"Depends: {', '.join(deps)}\n" if deps else ""
        with open(os.path.join(d, "DEBIAN/control"), "w") as f:
            f.write(f"Package: {name}\nVersion: {v}\nArchitecture: {arch}\nMaintainer: Bench <bench@example.org>\n"
                    f"Installed-Size: {size // 1024}\n{dep}{extra}Section: misc\nPriority: optional\n"
                    f"Description: generated package {name}\n Payload of {size} bytes.\n")
root = os.path.join(out, "bench-root_1.0_all")
os.makedirs(os.path.join(root, "DEBIAN"), exist_ok=True)
with open(os.path.join(root, "DEBIAN/control"), "w") as f:
    f.write("Package: bench-root\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <bench@example.org>\n"
            f"Depends: {', '.join(names)}\nDescription: the closure's root\n Depends on everything.\n")
PY
    for d in "$GEN"/build/*/; do
        b=$(basename "$d")
        dpkg-deb --root-owner-group -Znone --build "$d" "$ARCHIVE/pool/main/$b.deb" >/dev/null
    done
    dists=$ARCHIVE/dists/bench
    mkdir -p "$dists/main/binary-amd64"
    (cd "$ARCHIVE" && dpkg-scanpackages --multiversion --arch amd64 pool 2>/dev/null >"$dists/main/binary-amd64/Packages")
    xz -k "$dists/main/binary-amd64/Packages"
    gzip -k9 "$dists/main/binary-amd64/Packages"
    {
        printf 'Origin: Bench\nLabel: Bench\nSuite: bench\nCodename: bench\nDate: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n' \
            "$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
        for f in Packages Packages.gz Packages.xz; do
            printf ' %s %s main/binary-amd64/%s\n' "$(sha256sum <"$dists/main/binary-amd64/$f" | cut -d' ' -f1)" \
                "$(stat -c %s "$dists/main/binary-amd64/$f")" "$f"
        done
    } >"$dists/Release"
    gpg --batch --quiet --clearsign --digest-algo SHA512 -o "$dists/InRelease" "$dists/Release"
    gpgconf --kill gpg-agent || true
    touch "$GEN/done"
fi

RUN=$BENCH_DIR/run
rm -rf "$RUN"
mkdir -p "$RUN"
static_nginx "$RUN/nginx" "$GEN/www"
URL=http://127.0.0.1:$NGINX_PORT/debian

cat >"$RUN/airlock.yaml" <<YAML
name: bench
debian:
  - name: bench-site
    url: $URL
    suites: [bench]
    components: [main]
    architectures: [amd64]
    keyring: $GEN/upstream.asc
    packages: [bench-root]
YAML

apt_setup() {
    local d=$1
    rm -rf "$d"
    mkdir -p "$d"/{state/lists/partial,cache/archives/partial,parts,trusted.d,prefs.d,log}
    : >"$d/status"
    echo "deb [arch=amd64 signed-by=$GEN/upstream.asc] $URL bench main" >"$d/sources.list"
    cat >"$d/apt.conf" <<APT
Dir::Etc::sourcelist "$d/sources.list"; Dir::Etc::sourceparts "-"; Dir::Etc::parts "$d/parts";
Dir::Etc::preferencesparts "$d/prefs.d"; Dir::Etc::trusted "$d/trusted.gpg"; Dir::Etc::trustedparts "$d/trusted.d";
Dir::State "$d/state"; Dir::State::status "$d/status"; Dir::Cache "$d/cache"; Dir::Log "$d/log";
Debug::NoLocking "1"; APT::Sandbox::User "root"; APT::Architecture "amd64"; Acquire::Languages "none";
APT
}

best() { sort -n | head -1; }
airlock_times=() apt_times=() airlock_rss=() apt_rss=()
cat "$ARCHIVE"/pool/main/*.deb >/dev/null   # warm the page cache for both sides
for r in $(seq "$ROUNDS"); do
    rm -rf "$RUN/cache" "$RUN/airlock.lock"
    sync
    /usr/bin/time -f '%e %M' -o "$RUN/t.airlock" env AIRLOCK_CACHE_DIR="$RUN/cache" \
        "$AIRLOCK" -q mirror -f "$RUN/airlock.yaml" >"$RUN/mirror.out"
    read -r s m <"$RUN/t.airlock"; airlock_times+=("$s"); airlock_rss+=("$m")
    apt_setup "$RUN/apt"
    sync
    /usr/bin/time -f '%e %M' -o "$RUN/t.apt" sh -c \
        "APT_CONFIG=$RUN/apt/apt.conf apt-get -qq update && APT_CONFIG=$RUN/apt/apt.conf apt-get -qq install -y --download-only bench-root" >"$RUN/apt.out" 2>&1
    read -r s m <"$RUN/t.apt"; apt_times+=("$s"); apt_rss+=("$m")
    printf 'round %s: airlock %ss, apt %ss\n' "$r" "${airlock_times[-1]}" "${apt_times[-1]}" >&2
done

n_airlock=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(len(l["debian"][0]["packages"]))' "$RUN/airlock.lock")
n_apt=$(find "$RUN/apt/cache/archives" -name '*.deb' | wc -l)
bytes=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(sum(p["size"] for p in l["debian"][0]["packages"]))' "$RUN/airlock.lock")
# Both sides must have fetched the same closure.
diff <(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); [print(p["filename"].rsplit("/",1)[1]) for p in l["debian"][0]["packages"]]' "$RUN/airlock.lock" | sort) \
     <(find "$RUN/apt/cache/archives" -name '*.deb' -printf '%f\n' | sort) >/dev/null \
    || die "airlock's closure differs from apt's"
a=$(printf '%s\n' "${airlock_times[@]}" | best)
b=$(printf '%s\n' "${apt_times[@]}" | best)
ra=$(printf '%s\n' "${airlock_rss[@]}" | sort -n | tail -1)
rb=$(printf '%s\n' "${apt_rss[@]}" | sort -n | tail -1)
printf '\nclosure: %s packages (apt: %s), %s MB; best of %s rounds, cold caches, warm page cache\n' \
    "$n_airlock" "$n_apt" "$((bytes / 1000000))" "$ROUNDS"
printf '%-44s %8s s  %8s KiB peak RSS\n' "airlock mirror" "$a" "$ra"
printf '%-44s %8s s  %8s KiB peak RSS\n' "apt-get update + install --download-only" "$b" "$rb"
python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'ratio apt/airlock: {b/a:.2f}x')" "$a" "$b"
