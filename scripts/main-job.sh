#!/usr/bin/env bash
# The main job on the bundled fixtures, with no network: build airlock, then
#   key generate -> mirror -> export -> verify -> inspect (manifest, SBOM, provenance)
#   -> import -> history -> report -> show the result -> serve -> env
# for every kind: plain files, git repositories, container images, Python packages and
# Debian packages, then serve the store and read it back with curl, git, pip and apt-get.
# Everything happens in a scratch directory (AIRLOCK_DEMO_DIR, default a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

# The dev build (dependencies optimized, see Cargo.toml) is the one the test suite has just
# made, so CI builds nothing more; AIRLOCK_PROFILE=release for an optimized binary.
profile="${AIRLOCK_PROFILE:-dev}"
cargo build --locked --quiet --profile "$profile"
airlock="$PWD/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/airlock"
work="${AIRLOCK_DEMO_DIR:-$(mktemp -d -t airlock-demo.XXXXXX)}"
export AIRLOCK_CONFIG_DIR="$work/config" AIRLOCK_CACHE_DIR="$work/cache" AIRLOCK_STORE="$work/store"
mkdir -p "$work"
rm -rf "$work/spec" "$work/media"
cp -r fixtures "$work/spec"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "connected side: a signing key, trusted here too (a real site ships only the .pub)"
[ -f "$AIRLOCK_CONFIG_DIR/keys/airlock.key" ] || "$airlock" key generate --no-password --trust

step "airlock mirror: resolve airlock.yaml into airlock.lock, fetch into the cache"
"$airlock" mirror -f "$work/spec/airlock.yaml"

step "airlock export: a signed bundle, cut into 1 KiB volumes to show splitting"
"$airlock" export --lock "$work/spec/airlock.lock" -o "$work/media" --split 1KiB

step "disconnected side: airlock verify (signature, schema, every byte)"
"$airlock" verify "$work/media/fixtures-1.0.airlock.001"

step "airlock inspect"
"$airlock" inspect "$work/media/fixtures-1.0.airlock.001"

step "airlock inspect --sbom: the CycloneDX SBOM it carries (--json prints the document itself)"
"$airlock" inspect --sbom "$work/media/fixtures-1.0.airlock.001" | head -n 14

step "airlock inspect --provenance: the SLSA provenance, its DSSE signature checked"
"$airlock" inspect --provenance "$work/media/fixtures-1.0.airlock.001" | head -n 12

step "disconnected side: the site's apt signing key (import signs the apt repository with it)"
[ -f "$AIRLOCK_CONFIG_DIR/keys/apt.key" ] || "$airlock" key apt generate --no-password

step "airlock import into the store's repositories"
"$airlock" import "$work/media/fixtures-1.0.airlock.001"

step "airlock history: the store's ledger, what came in, when, from which bundle"
"$airlock" history

step "airlock report: one HTML page for the auditor, with the site's import history"
"$airlock" report "$work/media/fixtures-1.0.airlock.001" -o "$work/report.html" --store "$AIRLOCK_STORE"

step "result: files in $AIRLOCK_STORE/repository/raw"
(cd "$AIRLOCK_STORE/repository/raw" && find . -type f | sort | xargs sha256sum)

step "result: git repositories in $AIRLOCK_STORE/git"
git -C "$AIRLOCK_STORE/git/hello.git" for-each-ref --format='%(objectname:short) %(refname)'
rm -rf "$work/hello-clone"
git clone -q "$AIRLOCK_STORE/git/hello.git" "$work/hello-clone"
git -C "$work/hello-clone" log --oneline --graph

step "result: images in the store's registry ($AIRLOCK_STORE/oci), and the bundle as an OCI layout"
find "$AIRLOCK_STORE/oci" -path '*/tags/*' -type f | sort | while read -r t; do
  printf '%s -> %s\n' "${t#"$AIRLOCK_STORE/oci/"}" "$(cat "$t")"
done
rm -rf "$work/unpacked" && mkdir -p "$work/unpacked"
cat "$work/media"/fixtures-1.0.airlock.[0-9]* | zstd -dc | tar -x -C "$work/unpacked"
if command -v skopeo >/dev/null; then
  skopeo inspect --raw oci:"$work/unpacked":hello_hello-1.0 | head -c 300; echo
else
  echo "(install skopeo to read images straight from the unpacked bundle: skopeo inspect oci:DIR:hello_hello-1.0)"
fi

step "result: the Python index in $AIRLOCK_STORE/repository/pypi (PEP 503 + PEP 691)"
(cd "$AIRLOCK_STORE/repository/pypi" && find . -type f | sort)

step "result: the signed apt repository in $AIRLOCK_STORE/repository/apt"
(cd "$AIRLOCK_STORE/repository/apt" && find . -type f -not -path '*/by-hash/*' | sort)

step "airlock serve: the store over HTTP, read by the usual clients"
"$airlock" serve --listen 127.0.0.1:0 -q > "$work/serve.out" &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '{print $3}' "$work/serve.out")
echo "serving $url"
echo "+ curl $url/repository/raw/licenses/NOTICE.txt"
curl -sf "$url/repository/raw/licenses/NOTICE.txt"
echo "+ curl $url/v2/hello/hello/tags/list"
curl -sf "$url/v2/hello/hello/tags/list"; echo
rm -rf "$work/served-clone"
echo "+ git clone --depth 1 $url/git/hello.git   (smart HTTP, protocol v2)"
git clone -q --depth 1 "$url/git/hello.git" "$work/served-clone" && git -C "$work/served-clone" log --oneline -1
if python3 -m pip --version >/dev/null 2>&1; then
  rm -rf "$work/wheels"
  echo "+ pip download --index-url $url/repository/pypi/simple/ --python-version 3.11 --platform manylinux2014_x86_64 aldemo-app"
  PIP_CONFIG_FILE=/dev/null python3 -m pip download -q --disable-pip-version-check --no-cache-dir \
    --index-url "$url/repository/pypi/simple/" --only-binary :all: \
    --python-version 3.11 --platform manylinux2014_x86_64 -d "$work/wheels" aldemo-app
  ls "$work/wheels"
else
  echo "(install python3-pip to fetch from the served index: pip download --index-url $url/repository/pypi/simple/ ...)"
fi
if command -v apt-get >/dev/null; then
  # apt-get with a private configuration: nothing of this machine's apt is used or changed.
  a="$work/apt"
  rm -rf "$a" && mkdir -p "$a"/{lists/partial,archives/partial,parts,prefs.d,trusted.d,log}
  : > "$a/status"
  echo "deb [arch=amd64 signed-by=$AIRLOCK_STORE/repository/apt/airlock-archive-keyring.asc] $url/repository/apt fixtures main" > "$a/sources.list"
  cat > "$a/apt.conf" <<APT
Dir::Etc::sourcelist "$a/sources.list"; Dir::Etc::sourceparts "-"; Dir::Etc::parts "$a/parts";
Dir::Etc::preferencesparts "$a/prefs.d"; Dir::Etc::trusted "$a/trusted.gpg"; Dir::Etc::trustedparts "$a/trusted.d";
Dir::State "$a"; Dir::State::lists "$a/lists"; Dir::State::status "$a/status";
Dir::Cache "$a"; Dir::Cache::archives "$a/archives"; Dir::Log "$a/log";
Debug::NoLocking "1"; APT::Sandbox::User "$(id -un)"; APT::Architecture "amd64"; Acquire::Languages "none";
APT
  echo "+ $(cat "$a/sources.list")"
  echo "+ apt-get update && apt-get install --download-only hello-app"
  APT_CONFIG="$a/apt.conf" apt-get -qq update
  APT_CONFIG="$a/apt.conf" apt-get -qq install -y --download-only hello-app >/dev/null
  ls "$a/archives"/*.deb | xargs -n1 basename
else
  echo "(install apt to read the served repository: deb [signed-by=...] $url/repository/apt fixtures main)"
fi

step "airlock env: ready configuration for the site's clients, from what the store imported"
# (The fixtures' git repository comes from a local path, so `--for git` has no upstream
# URL to rewrite here; with https:// or git:// upstreams it writes url.<site>.insteadOf.)
"$airlock" env --for pip --url "$url" -o "$work/pip.conf"
cat "$work/pip.conf"
"$airlock" env --for containers --url "$url" -o "$work/registries.conf"
cat "$work/registries.conf"
"$airlock" env --for apt --url "$url" --signed-by "$work/airlock-archive-keyring.asc" \
  --key-out "$work/airlock-archive-keyring.asc" -o "$work/airlock.sources"
cat "$work/airlock.sources"
"$airlock" env --for kolla-build --url "$url" --kolla-distro debian
"$airlock" env --for constraints --url "$url"
"$airlock" env --for zuul --url "$url" | head -n 20
if python3 -m pip --version >/dev/null 2>&1; then
  rm -rf "$work/env-wheels"
  echo "+ PIP_CONFIG_FILE=$work/pip.conf pip download -c <(airlock env --for constraints ...) aldemo-app"
  PIP_CONFIG_FILE="$work/pip.conf" python3 -m pip download -q --disable-pip-version-check --no-cache-dir \
    --only-binary :all: --python-version 3.11 --platform manylinux2014_x86_64 -d "$work/env-wheels" \
    -c <("$airlock" env --for constraints --url "$url") aldemo-app
  ls "$work/env-wheels"
fi
kill $serve_pid
