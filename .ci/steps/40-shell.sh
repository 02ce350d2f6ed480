#!/usr/bin/env bash
# Every shell file of the repo: shellcheck and a syntax check (`sh -n`, and
# `busybox sh -n` for the sh dialect, which is what OpenWrt's /bin/sh is), then
# the init-script logic tests (openwrt/tests/test-init.sh) under each shell.
#
# Shell files are found, not listed, so scripts other people add are checked too:
# tracked or new files named *.sh, the scripts in openwrt/files/ (init, hotplug),
# .ci/run, and any file whose first line is a sh/ash/dash/bash shebang or that
# declares `# shellcheck shell=...` near the top (hotplug scripts have no shebang).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=.ci/lib.sh
. .ci/lib.sh

have shellcheck || apt_install shellcheck || true
have busybox || apt_install busybox || true

# ---- find the shell files
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t all < <(git ls-files -co --exclude-standard)
else
	mapfile -t all < <(find . -path ./target -prune -o -path ./.git -prune -o -type f -print | sed 's|^\./||')
fi
sh_files=()
bash_files=()
for f in "${all[@]}"; do
	[ -f "$f" ] || continue
	case "$f" in
	target/* | */target/*) continue ;;
	esac
	first=$(head -n 1 "$f" 2>/dev/null | tr -d '\0' || true)
	declared=$(head -n 5 "$f" 2>/dev/null | tr -d '\0' | sed -n 's/^# shellcheck shell=\([a-z]*\).*/\1/p' | head -n 1 || true)
	dialect=""
	case "$first" in
	'#!'*bash*) dialect=bash ;;
	'#!'*/sh | '#!'*/sh' '* | '#!'*[/\ ]ash | '#!'*[/\ ]dash) dialect="sh" ;;
	esac
	[ -n "$declared" ] && dialect=$declared
	if [ -z "$dialect" ]; then
		case "$f" in
		*.sh | .ci/run) dialect="sh" ;;
		openwrt/files/*.config) ;;
		openwrt/files/*) dialect="sh" ;;
		esac
	fi
	case "$dialect" in
	bash) bash_files+=("$f") ;;
	sh | ash | dash | busybox) sh_files+=("$f") ;;
	esac
done
echo "shell files (sh): ${sh_files[*]:-none}"
echo "shell files (bash): ${bash_files[*]:-none}"

status=0

# ---- syntax
for f in "${sh_files[@]}"; do
	sh -n "$f" || { echo "FAIL: sh -n $f"; status=1; }
	if have busybox; then
		busybox sh -n "$f" || { echo "FAIL: busybox sh -n $f"; status=1; }
	fi
done
for f in "${bash_files[@]}"; do
	bash -n "$f" || { echo "FAIL: bash -n $f"; status=1; }
done
have busybox || echo "SKIPPED: busybox sh -n (busybox not installed and not installable here)"

# ---- shellcheck
# -e SC3043: `local` is not POSIX, but busybox ash (OpenWrt's /bin/sh) and dash
# have it, and OpenWrt's own init and hotplug scripts rely on it.
# -x: follow `. file` where a `# shellcheck source=` directive names it.
if have shellcheck; then
	shellcheck --version | sed -n 2p
	if [ "${#sh_files[@]}" -gt 0 ]; then
		shellcheck -x -s sh -e SC3043 "${sh_files[@]}" || { echo "FAIL: shellcheck (sh)"; status=1; }
	fi
	if [ "${#bash_files[@]}" -gt 0 ]; then
		shellcheck -x -s bash "${bash_files[@]}" || { echo "FAIL: shellcheck (bash)"; status=1; }
	fi
else
	echo "================================================================"
	echo "SKIPPED: shellcheck is not installed and apt-get could not install it"
	echo "================================================================"
fi

# ---- init script logic
shells=(sh)
have busybox && shells+=("busybox sh")
for s in "${shells[@]}"; do
	echo "== openwrt/tests/test-init.sh under $s"
	$s openwrt/tests/test-init.sh || { echo "FAIL: test-init.sh under $s"; status=1; }
done

exit "$status"
