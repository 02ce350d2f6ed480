#!/usr/bin/env bash
# The LuCI app (openwrt/luci-app-aliddns) and its translations, without a router:
# every view parses (node --check) and does what its tests expect when run against
# recording fakes of LuCI's API (tests/views.test.js); menu.d/acl.d are valid and name only existing
# views and the exact command lines the views run, of programs the packages
# install (scripts/check-luci-app.py); the .po/.pot compile (msgfmt --check); the
# .pot matches the _() strings of the sources and zh_Hans translates all of them
# (scripts/luci-i18n.py check); the LMO compiler's tests pass and it compiles
# zh_Hans (scripts/po2lmo.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=.ci/lib.sh
. .ci/lib.sh

have node || apt_install nodejs || { echo "FAIL: node is missing and apt-get could not install nodejs"; exit 1; }
have msgfmt || apt_install gettext || { echo "FAIL: msgfmt is missing and apt-get could not install gettext"; exit 1; }
have python3 || apt_install python3 || { echo "FAIL: python3 is missing"; exit 1; }

APP=openwrt/luci-app-aliddns
status=0

echo "== node --check ($(node --version))"
mapfile -t js < <(find "$APP/htdocs" "$APP/tests" -name "*.js" | sort)
[ "${#js[@]}" -gt 0 ] || { echo "FAIL: no .js under $APP/htdocs"; status=1; }
for f in "${js[@]}"; do
	node --check "$f" || { echo "FAIL: node --check $f"; status=1; }
done

echo "== views against recording fakes of LuCI's API"
node --test "$APP/tests/views.test.js" >"${TMPDIR:-/tmp}/aliddns-views-test.log" 2>&1 || {
	cat "${TMPDIR:-/tmp}/aliddns-views-test.log"
	echo "FAIL: node --test $APP/tests/views.test.js"
	status=1
}
grep -E '^# (tests|pass|fail)' "${TMPDIR:-/tmp}/aliddns-views-test.log" || true
rm -f "${TMPDIR:-/tmp}/aliddns-views-test.log"

echo "== menu.d / acl.d"
python3 scripts/check-luci-app.py || status=1

echo "== msgfmt --check"
for f in "$APP"/po/templates/*.pot "$APP"/po/*/*.po; do
	if ! out=$(msgfmt --check -o /dev/null "$f" 2>&1); then
		echo "$out"
		echo "FAIL: msgfmt --check $f"
		status=1
	fi
done

echo "== translations complete"
python3 scripts/luci-i18n.py check || status=1

echo "== po2lmo"
(cd scripts && python3 -m unittest test_po2lmo test_luci_i18n) || { echo "FAIL: po2lmo / i18n tests"; status=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for po in "$APP"/po/*/aliddns.po; do
	lang=$(basename "$(dirname "$po")")
	# LuCI's language codes (luci.mk): zh_Hans is zh-cn.
	case "$lang" in
	zh_Hans) lang=zh-cn ;;
	zh_Hant) lang=zh-tw ;;
	esac
	python3 scripts/po2lmo.py "$po" "$tmp/aliddns.$lang.lmo" || { echo "FAIL: po2lmo $po"; status=1; }
	[ -s "$tmp/aliddns.$lang.lmo" ] || { echo "FAIL: po2lmo wrote nothing for $po"; status=1; }
done
ls -l "$tmp"

exit "$status"
