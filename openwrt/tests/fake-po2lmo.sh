#!/bin/sh
# Test double of `python3 scripts/po2lmo.py IN.po OUT.lmo` (written with the
# LuCI app): writes the msgstr lines, so the packaging tests need no real .lmo.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 IN.po OUT.lmo" >&2; exit 2; }
grep '^msgstr' "$1" >"$2"
