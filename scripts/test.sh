#!/usr/bin/env bash
# Run airlock's whole test suite on a fresh Debian machine: install the tools the tests
# run for real (minisign, zstd, nginx, openssl, git, docker-registry, skopeo, gnupg,
# dpkg-dev, apt, aptly, python3-venv, chromium, jq; pip, pypiserver, twine, uv, packaging,
# cyclonedx-python-lib, securesystemslib and cryptography in a virtualenv; kolla in another)
# if they are missing, check formatting and lints, then run every test. Tests never skip:
# a missing tool fails them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

# The tools are installed while cargo builds: apt and PyPI wait on the network and
# dpkg, the build on the CPU, so together they take little more than the build alone.
# Their output goes to target/test-tools-setup.log, shown if they fail.
setup_tools() {
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
    [python3]=python3
    [gpg]=gnupg
    [gpgv]=gpgv
    [gpgconf]=gpgconf
    [dpkg-deb]=dpkg
    [dpkg-scanpackages]=dpkg-dev
    [apt-get]=apt
    [xz]=xz-utils
    [gzip]=gzip
    [/usr/bin/time]=time
    [chromium]=chromium
    [jq]=jq
    [aptly]=aptly
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

  # Debian's own Python with python3-venv: the installer tests make a venv with
  # /usr/bin/python3 and use the pip it bundles (23.0.1 on bookworm), never upgraded. The
  # python3 first on PATH may be another one (pyenv), so ask Debian's by its path.
  if ! /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "installing Debian's python3 and python3-venv" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi

  # Python tools the tests run for real: pip (installs from our index), pypiserver (an
  # upload target), twine (uploads into airlock serve), uv (installs from our index),
  # packaging (the PEP 440 oracle of tests/prop), cyclonedx-python-lib (the official
  # CycloneDX JSON schemas and their validator, for sbom.cdx.json) and securesystemslib
  # (an independent DSSE implementation, for provenance.intoto.json), and cryptography (the
  # sigstore signer and verifier of the referrers tests: Debian's skopeo has sigstore
  # disabled), in a virtualenv of their own.
  venv="target/test-tools/python"
  uv_version="0.13.8"
  packaging_version="26.4"
  if ! "$venv/bin/python3" -c 'import pypiserver, passlib, twine, cyclonedx.validation.json, jsonschema, securesystemslib.dsse, cryptography.hazmat.primitives.asymmetric.ec' >/dev/null 2>&1 \
    || [ "$("$venv/bin/uv" --version 2>/dev/null)" != "uv $uv_version" ] \
    || [ "$("$venv/bin/python3" -c 'import packaging; print(packaging.__version__)' 2>/dev/null)" != "$packaging_version" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "installing python3-venv" >&2
      sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    # uv first, then uv installs the rest: it downloads and unpacks in parallel, about a
    # third of pip's time for the same set. --compile-bytecode writes the .pyc files now,
    # as pip does, not at the tests' first imports.
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check "uv==$uv_version"
    "$venv/bin/uv" pip install -q --compile-bytecode --python "$venv/bin/python3" "pip>=23" "pypiserver[passlib]==2.4.2" "twine==7.0.0" "uv==$uv_version" "packaging==$packaging_version" \
      "cyclonedx-python-lib[json-validation]==11.12.0" "jsonschema==4.26.0" "securesystemslib==1.6.0" \
      "cryptography==50.0.2"
  fi

  # oras (an independent ORAS client, for `airlock oci`) has a virtualenv of its own: it
  # imports jsonschema, which, where the format extras cyclonedx-python-lib needs are
  # installed, builds an RFC 3987 grammar at every start (4.5 s of CPU per script).
  oras_venv="target/test-tools/oras"
  if [ "$("$oras_venv/bin/python3" -c 'import oras.client, importlib.metadata as m; print(m.version("oras"))' 2>/dev/null)" != "0.2.43" ]; then
    rm -rf "$oras_venv"
    python3 -m venv --without-pip "$oras_venv"
    "$venv/bin/uv" pip install -q --compile-bytecode --python "$oras_venv/bin/python3" "oras==0.2.43"
  fi

  # kolla-build (OpenStack Kolla, from PyPI) reads the kolla-build.conf that `airlock env`
  # writes (`--template-only`: Dockerfiles, no container engine). It needs the docker
  # library to start, and has dependencies of its own, so it has a virtualenv of its own.
  kolla_venv="target/test-tools/kolla"
  kolla_version="23.0.0"
  if [ "$("$kolla_venv/bin/python3" -c 'import docker, importlib.metadata as m; print(m.version("kolla"))' 2>/dev/null)" != "$kolla_version" ]; then
    rm -rf "$kolla_venv"
    python3 -m venv "$kolla_venv"
    "$venv/bin/uv" pip install -q --compile-bytecode --python "$kolla_venv/bin/python3" "kolla==$kolla_version" "docker==7.2.0"
  fi

  # Real setuptools and wheel, for the tests that build sdists offline from the served
  # index (the fixture index carries them as build requirements); downloaded once, pinned.
  wheels="target/test-tools/wheels"
  if [ ! -f "$wheels/setuptools-75.8.0-py3-none-any.whl" ] || [ ! -f "$wheels/wheel-0.45.1-py3-none-any.whl" ]; then
    "$venv/bin/python3" -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
      -d "$wheels" "setuptools==75.8.0" "wheel==0.45.1"
  fi
}
mkdir -p target
setup_log="target/test-tools-setup.log"
setup_tools >"$setup_log" 2>&1 &
setup_pid=$!
trap 'kill "$setup_pid" 2>/dev/null || true' EXIT
venv="target/test-tools/python"

cargo fmt --check
# One build for the lints and the tests: clippy's driver compiles the workspace's crates
# (every target, every lint, warnings denied: what `cargo clippy --all-targets -- -D
# warnings` checks) in the very build the tests run, instead of a separate clippy pass
# that checks every dependency a second time (about 2 minutes cold on 2 cores).
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
if [ -z "$RUSTC_WORKSPACE_WRAPPER" ]; then
  echo "clippy-driver not found: install clippy (rustup component add clippy)" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --all-targets --no-run
else
  cargo test --locked --all-targets --no-run
fi
if ! wait "$setup_pid"; then
  cat "$setup_log" >&2
  echo "installing the test tools failed (the lines above are its output)" >&2
  exit 1
fi
trap - EXIT
export PATH="$PWD/$venv/bin:$PATH"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --all-targets --no-fail-fast
else
  cargo test --locked --all-targets --no-fail-fast
fi

# The README's main job, on the test build just made: the whole flow on the bundled
# fixtures, read back by curl, git, pip and apt-get.
bash scripts/main-job.sh >/dev/null
