#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for picket: system packages the dataplane and the
# local cluster need, and picket itself (editable) with its Python dependencies.
# Run as root (the local cluster and the agent need network namespaces and iptables).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 iptables ipset conntrack netcat-openbsd iperf3 curl socat kmod procps util-linux gcc)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "setup: installing picket and its Python dependencies"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
echo "setup: done. Next: 'picket lab build' (or just 'picket demo', which builds what is missing)."
