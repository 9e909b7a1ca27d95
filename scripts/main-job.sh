#!/usr/bin/env bash
# The main job on the bundled fixtures, with no network: build airlock, then
#   key generate -> mirror -> export -> verify -> inspect -> import -> show the result
# for every kind that has landed: plain files, git repositories, container images and
# Python packages, then serve the store and read it back with curl, git and pip.
# Everything happens in a scratch directory (AIRLOCK_DEMO_DIR, default a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
airlock="$PWD/target/release/airlock"
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

step "airlock import into the store's raw repository"
"$airlock" import "$work/media/fixtures-1.0.airlock.001"

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
echo "+ git clone $url/git/hello.git"
git clone -q "$url/git/hello.git" "$work/served-clone" && git -C "$work/served-clone" log --oneline -1
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
kill $serve_pid
