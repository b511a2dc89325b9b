#!/usr/bin/env bash
# Installs the Debian packages TelemetryEngine builds and tests with (README.md "Requirements").
# Does nothing when they are all present; needs root (or sudo) otherwise.
set -euo pipefail
packages=(libsqlite3-dev zlib1g-dev liblzma-dev libedit-dev libsimdjson-dev libxml2 python3 python3-venv xz-utils tmux sqlite3 curl openjdk-17-jre-headless)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
