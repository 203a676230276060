#!/usr/bin/env bash
# Gives a GPU-less Debian machine a WebGPU adapter for Dawn (npm `webgpu`): Mesa's lavapipe Vulkan driver, new
# enough for Dawn (Mesa >= 24; bookworm's own 22.3 is refused), from the release's backports: Mesa 25.0 on
# Debian 12 (bookworm), Mesa 26.1 on Debian 13 (trixie), whose own 25.0 also works but makes a fresh machine's
# first image 2.5-6x slower (shader compiles; bench/README.md, ninth pass). Also installs Debian's
# chromium-headless-shell, the browser the browser-edition test drives (WebGPU on the CPU).
# Idempotent: prints nothing when the driver and the browser are already there.
set -euo pipefail

with_python=0
[ "${1:-}" = "--with-python" ] && with_python=1

lavapipe_ok() {
  # lavapipe registers an ICD file; the Mesa version is what Dawn cares about.
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24 && dpkg-query -W libvulkan1 >/dev/null 2>&1
}

chromium_ok() {
  command -v chromium-headless-shell >/dev/null 2>&1 || [ -n "${WHYLESION_CHROMIUM:-}" ]
}

python_ok() {
  /usr/bin/python3 -c 'import torch, numpy, PIL' >/dev/null 2>&1 && dpkg-query -W libopenblas0-pthread >/dev/null 2>&1
}

if lavapipe_ok && { [ $with_python = 0 ] || python_ok; }; then
  chromium_ok && exit 0
  # Without root or apt the browser is optional: its test skips, saying why.
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup-webgpu: no chromium-headless-shell, so the browser test will be skipped (install it, or set WHYLESION_CHROMIUM)." >&2
    exit 0
  fi
fi

manual() {
  cat >&2 <<MSG
setup-webgpu: $1
Run these as root on Debian 12 (bookworm) or 13 (trixie) to get a CPU WebGPU adapter (Mesa lavapipe), with
RELEASE = bookworm or trixie:
  echo 'deb http://deb.debian.org/debian RELEASE-backports main' > /etc/apt/sources.list.d/RELEASE-backports.list
  apt-get update
  apt-get install -y -t RELEASE-backports mesa-vulkan-drivers libvulkan1
  apt-get install -y chromium-headless-shell     # for the browser test
On other systems install Mesa >= 24 with its Vulkan drivers (lavapipe), or use a machine with a GPU.
MSG
  exit 1
}

[ "$(id -u)" = 0 ] || manual "not running as root, so I cannot install packages."
command -v apt-get >/dev/null || manual "this is not a Debian-like system (no apt-get)."
. /etc/os-release
release="${VERSION_CODENAME:-}"
{ [ "$release" = bookworm ] || [ "$release" = trixie ]; } ||
  manual "this is ${PRETTY_NAME:-an unknown system}, not Debian 12 (bookworm) or 13 (trixie)."

export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs "$release-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian $release-backports main" > "/etc/apt/sources.list.d/$release-backports.list"
fi
apt-get update -qq
if ! lavapipe_ok; then
  echo "setup-webgpu: installing Mesa lavapipe from $release-backports..." >&2
  apt-get install -y -qq -t "$release-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
fi
if ! chromium_ok; then
  echo "setup-webgpu: installing chromium-headless-shell (for the browser test)..." >&2
  apt-get install -y -qq chromium-headless-shell >/dev/null
fi
if [ $with_python = 1 ]; then
  echo "setup-webgpu: installing PyTorch reference packages (python3-torch, numpy, PIL, OpenBLAS)..." >&2
  apt-get install -y -qq python3-torch python3-numpy python3-pil libopenblas0-pthread >/dev/null
fi
lavapipe_ok || manual "the packages installed but no lavapipe driver with Mesa >= 24 is present."
echo "setup-webgpu: done." >&2
