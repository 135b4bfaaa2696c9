#!/usr/bin/env bash
# Validates deploy/ (Kubernetes manifests, Grafana dashboard, Prometheus alerts and their unit
# tests) with real tools: kubernetes-models' API schemas and promtool. Installs Node.js and
# promtool (Debian's prometheus package) when missing. Part of deploy/local/test.sh.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "validate.sh: installing ${missing[*]} from Debian's packages to check deploy/ (promtool comes with prometheus, about 330 MB)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cd validate
echo "validate.sh: installing the validator's npm packages (deploy/validate/package-lock.json) into deploy/validate/node_modules"
npm ci --no-audit --no-fund --loglevel=error
node validate.mjs
