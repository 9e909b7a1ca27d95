#!/usr/bin/env bash
# Run airlock's whole test suite on a fresh Debian machine: install the tools the tests
# run for real (minisign, zstd, nginx, openssl, git, docker-registry, skopeo, gnupg, dpkg-dev, apt) if they are
# missing, check formatting and lints, then run every test. Tests never skip: a missing
# tool fails them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

# command -> Debian package
declare -A packages=(
  [minisign]=minisign
  [zstd]=zstd
  [nginx]=nginx-light
  [openssl]=openssl
  [sha256sum]=coreutils
  [tar]=tar
  [git]=git
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [htpasswd]=apache2-utils
  [curl]=curl
  [gpg]=gnupg
  [gpgv]=gpgv
  [gpgconf]=gpgconf
  [dpkg-deb]=dpkg
  [dpkg-scanpackages]=dpkg-dev
  [apt-get]=apt
  [xz]=xz-utils
  [gzip]=gzip
)
missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done
if ((${#missing[@]})); then
  echo "installing test dependencies: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --all-targets --no-fail-fast
else
  cargo test --locked --all-targets --no-fail-fast
fi
