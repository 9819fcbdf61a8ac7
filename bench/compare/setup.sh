#!/usr/bin/env bash
# Installs the two peer systems of the comparison into bench/compare/.work/ (gitignored),
# from the package registries, idempotently: a Python venv with pycrdt-websocket and a
# Node 20 project with automerge-repo. Safe to run again; does nothing when up to date.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$here/.work"
mkdir -p "$work/js"
offline() {
  echo "bench/compare/setup.sh: cannot install $1 (is the machine offline, or the registry" >&2
  echo "unreachable?). The circle-node part of the benchmark needs no install:" >&2
  echo "  .venv/bin/python bench/compare/run.py --small --systems circle-node" >&2
  exit 2
}
command -v node >/dev/null || { echo "setup.sh: Node 20 is required (node not found)" >&2; exit 2; }
if ! cmp -s "$here/requirements-pycrdt.txt" "$work/pyenv/.installed" 2>/dev/null; then
  python3 -m venv "$work/pyenv"
  "$work/pyenv/bin/pip" install --quiet -r "$here/requirements-pycrdt.txt" || offline pycrdt-websocket
  cp "$here/requirements-pycrdt.txt" "$work/pyenv/.installed"
fi
if ! cmp -s "$here/package.json" "$work/js/package.json" || [ ! -d "$work/js/node_modules" ]; then
  cp "$here/package.json" "$work/js/package.json"
  (cd "$work/js" && npm install --no-audit --no-fund --silent) || offline automerge-repo
fi
cp "$here/drivers/automerge_driver.mjs" "$work/js/automerge_driver.mjs"
