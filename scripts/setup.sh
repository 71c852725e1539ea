#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for picket: system packages the dataplane and the
# local cluster need, and picket itself (editable) with its Python dependencies.
# Run as root (the local cluster and the agent need network namespaces and iptables).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 iptables ipset conntrack netcat-openbsd iperf3 curl socat kmod procps util-linux gcc
          chromium chromium-driver nodejs)  # the last three: picket ui's browser tests and front-end unit tests
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# picket (editable, with the dev tools) and the local cluster (lab/, a separate distribution that
# the production image never holds). Skipped when both are installed from this checkout with the
# same project files as last time.
stamp_dir="${XDG_CACHE_HOME:-$HOME/.cache}/picket"
stamp="$stamp_dir/setup-$(cat pyproject.toml lab/pyproject.toml | sha256sum | cut -c1-16)"
here="$(pwd)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$here" ] && python3 -c 'import picket_lab, picket_operator' 2>/dev/null \
   && command -v picket >/dev/null; then
  echo "setup: picket and picket-lab already installed from $here"
else
  echo "setup: installing picket, picket-lab and their Python dependencies"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[dev]' -e ./lab
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  mkdir -p "$stamp_dir" && echo "$here" > "$stamp"
fi
echo "setup: done."
