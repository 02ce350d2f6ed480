#!/bin/sh
# Regenerates openwrt/tests/fixtures/uci-{commit,export}.conf with the real `uci`
# command, so src/config/uci.rs is tested against libuci's own quoting, not our idea of it.
#
# Debian has no `uci` package. libuci's source ships inside the libuci-sys crate
# (crates.io), so this builds the CLI from there with gcc:
#   cargo info libuci-sys          # downloads it into ~/.cargo/registry/src
#   sh openwrt/tests/gen-uci-fixture.sh [PATH_TO_UCI_BINARY]
# On a router, `sh gen-uci-fixture.sh /sbin/uci` works as well.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/fixtures"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

uci_bin=${1:-}
if [ -z "$uci_bin" ]; then
	src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'libuci-sys-*' 2>/dev/null | sort | tail -n 1)
	[ -n "$src" ] || { echo "libuci-sys source not found: run 'cargo info libuci-sys' first" >&2; exit 1; }
	cp -r "$src/uci" "$src/libubox" "$work/"
	: >"$work/uci/uci_config.h"
	mkdir -p "$work/inc"
	ln -s ../libubox "$work/inc/libubox"
	(cd "$work" && gcc -Os -std=gnu99 -DUCI_PREFIX='"/usr"' -Iuci -Iinc -o uci-bin \
		uci/cli.c uci/libuci.c uci/file.c uci/util.c uci/delta.c uci/parse.c uci/blob.c \
		libubox/blob.c libubox/blobmsg.c libubox/avl.c libubox/avl-cmp.c -ldl)
	uci_bin="$work/uci-bin"
fi

mkdir -p "$work/conf" "$work/save"
: >"$work/conf/aliddns"
u() { "$uci_bin" -c "$work/conf" -t "$work/save" "$@"; }

u set aliddns.global=global
u set aliddns.global.enabled=1
u set aliddns.global.access_id=LTAI5tFixture
u set "aliddns.global.access_key=k'e\"y\\#;\$x"
u set "aliddns.global.on_change=logger -t aliddns \"changed: \$1\" 'quoted' \\ok"
u add_list aliddns.global.ip_urls=https://a.example/ip
u add_list "aliddns.global.ip_urls=https://b.example/ip?x=1&y='2'"
u set "aliddns.global.security_token=line one
line two"
u set aliddns.www4=record
u set aliddns.www4.domain=example.com
u set aliddns.www4.rr=www
u set aliddns.www4.type=A
u set aliddns.www4.interface=pppoe-wan
u add aliddns record >/dev/null
u set aliddns.@record[-1].domain=example.com
u set aliddns.@record[-1].rr=v6
u set aliddns.@record[-1].type=AAAA
u set aliddns.@record[-1].interface=br-lan
u set aliddns.@record[-1].ipv6_suffix=::1234
u add aliddns record >/dev/null
u set aliddns.@record[-1].domain=example.org
u set aliddns.@record[-1].rr=@
u set aliddns.@record[-1].ttl=600
u set aliddns.httpdns=httpdns
u set aliddns.httpdns.enabled=0
u add_list aliddns.httpdns.domains=example.com
u add_list aliddns.httpdns.domains=example.org
u commit aliddns

mkdir -p "$out"
cp "$work/conf/aliddns" "$out/uci-commit.conf"
u export aliddns >"$out/uci-export.conf"
echo "wrote $out/uci-commit.conf and $out/uci-export.conf"
