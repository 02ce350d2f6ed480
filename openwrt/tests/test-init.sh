#!/bin/sh
# Tests the logic of openwrt/files/aliddns.init and the two hotplug scripts off a
# router: OpenWrt's functions (config_load/config_get/config_foreach,
# uci_validate_section, procd_*, network_get_device, logger) are replaced by
# stubs that record what the scripts ask procd for, and the UCI files under test
# are sourced the way functions.sh sources `uci export` output.
#
#   sh openwrt/tests/test-init.sh          (dash, bash or busybox sh)
#
# Ends with "N passed, N failed"; exit status 1 when something failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
files="$here/../files"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0

# ---------------------------------------------------------------- stubs

# A UCI file is valid shell once `config`, `option` and `list` are functions:
# that is how OpenWrt's functions.sh loads `uci export` output.
config_load() {
	CONFIG_SECTIONS=""
	CONFIG_NUM_SECTIONS=0
	[ -f "$UCI_CONFIG_DIR/$1" ] || return 1
	# shellcheck source=/dev/null
	. "$UCI_CONFIG_DIR/$1"
}
package() { :; }
config() {
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	CONFIG_SECTION="${2:-cfg$CONFIG_NUM_SECTIONS}"
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}
option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\${2-}"
}
list() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\$CONFIG_${CONFIG_SECTION}_$1 }\$2\""
}
config_get() {
	local _v
	eval "_v=\${CONFIG_${2}_${3}-}"
	[ -n "$_v" ] || _v="${4-}"
	eval "$1=\$_v"
}
config_foreach() {
	local _fn="$1" _type="$2" _s _t
	shift 2
	for _s in $CONFIG_SECTIONS; do
		eval "_t=\${CONFIG_${_s}_TYPE-}"
		[ "$_t" = "$_type" ] && "$_fn" "$_s" "$@"
	done
	return 0
}
# Reads each 'name:type:default' option into $name; sections listed in
# FAKE_INVALID fail, as /sbin/validate_data would for a bad value.
uci_validate_section() {
	local _sec="$3" _spec _name _rest _def _val
	shift 3
	[ -n "$_sec" ] || return 0
	case " ${FAKE_INVALID-} " in *" $_sec "*) return 1 ;; esac
	for _spec in "$@"; do
		_name=${_spec%%:*}
		_rest=${_spec#*:}
		case "$_rest" in *:*) _def=${_rest##*:} ;; *) _def="" ;; esac
		config_get _val "$_sec" "$_name" "$_def"
		eval "$_name=\$_val"
	done
	return 0
}
log() { echo "$*" >>"$LOG"; }
procd_open_instance() { log "instance $1"; }
procd_set_param() { log "  $*"; }
procd_append_param() { log "  + $*"; }
procd_close_instance() { log "end"; }
procd_open_trigger() { :; }
procd_close_trigger() { :; }
procd_add_reload_trigger() { log "reload_trigger $*"; }
procd_add_interface_trigger() { log "interface_trigger $*"; }
procd_add_raw_trigger() { log "raw_trigger $*"; }
procd_add_validation() {
	log "validation $1"
	"$1" ""
}
procd_send_signal() { log "signal $*"; }
procd_running() { [ "${FAKE_RUNNING:-0}" = 1 ] && [ "$1 ${2-}" = "aliddns main" ]; }
# FAKE_L3_<network>: the l3 device of a network that is up.
network_get_device() {
	eval "$1=\${FAKE_L3_$2-}"
	eval "[ -n \"\${FAKE_L3_$2-}\" ]"
}
logger() {
	local line
	log "logger $*"
	# Reads stdin only when piped to (the background `update` of `trigger`).
	if [ ! -t 0 ] && [ "${LOGGER_STDIN:-0}" = 1 ]; then
		while IFS= read -r line; do log "  | $line"; done
	fi
}
stop() { log "stop"; }
start() { log "start"; }

# ---------------------------------------------------------------- helpers

# new_case NAME: a fresh config dir and log.
new_case() {
	CASE="$1"
	dir="$tmp/$CASE"
	mkdir -p "$dir/config" "$dir/run"
	UCI_CONFIG_DIR="$dir/config"
	LOG="$dir/log"
	: >"$LOG"
	cat >"$UCI_CONFIG_DIR/network" <<'EOF'
config interface 'loopback'
	option device 'lo'
	option proto 'static'

config interface 'lan'
	option device 'br-lan'
	option proto 'static'

config interface 'wan'
	option device 'eth0.2'
	option proto 'pppoe'

config interface 'wan6'
	option device '@wan'
	option proto 'dhcpv6'

config interface 'vpn'
	option proto 'wireguard'
EOF
}

# Sources the init script (as rc.common does) and points it at the case's dirs.
load_init() {
	# shellcheck source=openwrt/files/aliddns.init
	. "$files/aliddns.init"
	RUNDIR="$dir/run"
	PROG="$dir/aliddns"
	cat >"$PROG" <<'EOF'
#!/bin/sh
echo "aliddns $*"
EOF
	chmod +x "$PROG"
}

# What `/etc/init.d/aliddns start` sends to procd: start_service, then the triggers.
run_start() {
	(
		load_init
		start_service
		service_triggers
	)
}

# run_trigger ARGS...: `/etc/init.d/aliddns trigger ARGS` with the started
# service's triggers file in place.
run_trigger() {
	: >"$LOG"
	(
		load_init
		LOGGER_STDIN=1
		trigger "$@"
		wait
	)
}

check() {
	# check NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		passed=$((passed + 1))
		echo "ok - $CASE: $1"
	else
		failed=$((failed + 1))
		echo "not ok - $CASE: $1"
		echo "--- expected"
		echo "$2"
		echo "--- actual"
		echo "$3"
	fi
}

# check_has NAME PATTERN: the log has a line matching the grep pattern.
check_has() {
	if grep -q -- "$2" "$LOG"; then
		passed=$((passed + 1))
		echo "ok - $CASE: $1"
	else
		failed=$((failed + 1))
		echo "not ok - $CASE: $1 (no line matching '$2' in:)"
		sed 's/^/    /' "$LOG"
	fi
}

check_hasnt() {
	if grep -q -- "$2" "$LOG"; then
		failed=$((failed + 1))
		echo "not ok - $CASE: $1 (unexpected line matching '$2' in:)"
		sed 's/^/    /' "$LOG"
	else
		passed=$((passed + 1))
		echo "ok - $CASE: $1"
	fi
}

procd_lines() { grep -v '^logger' "$LOG"; }

MAIN_INSTANCE="instance main
  command $tmp/CASE/aliddns -c /etc/config/aliddns run
  file /etc/config/aliddns
  respawn 3600 10 5
  stdout 1
  stderr 1
end"
main_instance() { echo "$MAIN_INSTANCE" | sed "s|$tmp/CASE|$dir|"; }
serve_instance() { main_instance | sed 's/instance main/instance serve/; s/ run$/ serve/'; }
BASE_TRIGGERS="reload_trigger aliddns
validation aliddns_validate_all"

enabled_config() {
	# enabled_config [EXTRA UCI TEXT]
	cat >"$UCI_CONFIG_DIR/aliddns" <<EOF
config global 'global'
	option enabled '1'
	option access_id 'id'
	option access_key 'key'

config record 'home4'
	option domain 'example.com'
	option rr 'home'
	option type 'A'
	option interface 'pppoe-wan'

config record
	option domain 'example.com'
	option rr 'home'
	option type 'AAAA'
	option interface 'pppoe-wan'

config httpdns 'httpdns'
	option enabled '0'
	option secret ''
${1-}
EOF
}

# ---------------------------------------------------------------- start_service

new_case shipped-default
cp "$files/aliddns.config" "$UCI_CONFIG_DIR/aliddns"
run_start
check "nothing started, only the reload trigger" "$BASE_TRIGGERS" "$(procd_lines)"
check_has "says it is disabled" "logger -t aliddns -p daemon.info disabled"
[ -s "$dir/run/triggers" ]
check "no triggers file" 1 "$?"

new_case pppoe-records
enabled_config
run_start
check "run instance, triggers for wan and its alias wan6" "$(main_instance)
$BASE_TRIGGERS
interface_trigger interface.*.up wan /etc/init.d/aliddns trigger
interface_trigger interface.*.up wan6 /etc/init.d/aliddns trigger" "$(procd_lines)"
check "triggers file" "wan wan6" "$(cat "$dir/run/triggers")"

new_case serve-too
enabled_config
sed -i "s/option enabled '0'/option enabled '1'/; s/option secret ''/option secret '0123456789abcdef'/" "$UCI_CONFIG_DIR/aliddns"
run_start
check "run and serve instances" "$(main_instance)
$(serve_instance)
$BASE_TRIGGERS
interface_trigger interface.*.up wan /etc/init.d/aliddns trigger
interface_trigger interface.*.up wan6 /etc/init.d/aliddns trigger" "$(procd_lines)"

new_case serve-short-secret
enabled_config
sed -i "s/option enabled '0'/option enabled '1'/; s/option secret ''/option secret 'short'/" "$UCI_CONFIG_DIR/aliddns"
run_start
check_hasnt "no serve instance" "instance serve"
check_has "says why" "secret must have 16 characters"

new_case serve-only
cat >"$UCI_CONFIG_DIR/aliddns" <<'EOF'
config global 'global'
	option enabled '0'

config httpdns 'httpdns'
	option enabled 'yes'
	option secret '0123456789abcdef0123'
	list domains 'example.com'
EOF
run_start
check "serve runs without DDNS; no interface trigger" "$(serve_instance)
$BASE_TRIGGERS" "$(procd_lines)"

new_case auto-interface
enabled_config "
config record 'www'
	option domain 'example.org'
	option rr 'www'
	option interface 'auto'
"
run_start
check_has "run instance" "^instance main"
check_has "any interface up triggers a pass" "^raw_trigger interface.\*.up 2000 /etc/init.d/aliddns trigger$"
check_hasnt "no per-network trigger" "^interface_trigger"
check "triggers file says any" "*" "$(cat "$dir/run/triggers")"

new_case no-interface-a-record
cat >"$UCI_CONFIG_DIR/aliddns" <<'EOF'
config global
	option enabled 1
config record
	option domain example.com
	option rr www
EOF
run_start
check_has "anonymous global and record work" "^instance main"
check_has "an echo-URL record follows the default route: wildcard" "^raw_trigger interface"

new_case unknown-device
enabled_config
sed -i 's/pppoe-wan/eth9/g' "$UCI_CONFIG_DIR/aliddns"
run_start
check_has "a device no network has yet: wildcard" "^raw_trigger interface.\*.up"

new_case device-of-an-up-interface
enabled_config
sed -i 's/pppoe-wan/eth1/g' "$UCI_CONFIG_DIR/aliddns"
FAKE_L3_vpn=eth1 run_start
check "mapped through network_get_device" "interface_trigger interface.*.up vpn /etc/init.d/aliddns trigger" \
	"$(grep '^interface_trigger' "$LOG")"

new_case configured-device-and-global-default
cat >"$UCI_CONFIG_DIR/aliddns" <<'EOF'
config global 'global'
	option enabled '1'
	option interface 'br-lan'
config record 'nas'
	option domain 'example.com'
	option rr 'nas'
	option type 'AAAA'
	option ipv6_suffix '::1234'
EOF
run_start
check "global interface is the records' default; device br-lan is network lan" \
	"interface_trigger interface.*.up lan /etc/init.d/aliddns trigger" "$(grep 'trigger interface' "$LOG")"

new_case network-name-instead-of-device
enabled_config
sed -i 's/pppoe-wan/wan/g' "$UCI_CONFIG_DIR/aliddns"
run_start
check_has "warns that wan is a network name" "logger -t aliddns -p daemon.warning .*'wan' is a network name"
check_has "still triggers on network wan" "^interface_trigger interface.\*.up wan "
FAKE_RUNNING=1 run_trigger
check "trigger does not repeat config warnings" "signal aliddns main USR1" "$(cat "$LOG")"

new_case all-records-disabled
enabled_config
sed -i "s/option type/option enabled '0'\n\toption type/" "$UCI_CONFIG_DIR/aliddns"
run_start
check "no instance, only the reload trigger" "$BASE_TRIGGERS" "$(procd_lines)"
check_has "says why" "no enabled record"

new_case invalid-record
enabled_config
FAKE_INVALID=home4 run_start
check "not started" "$BASE_TRIGGERS" "$(procd_lines)"
check_has "names the section and the way to details" "config record 'home4' is invalid; details: .* update --dry-run"

new_case reload
enabled_config
(
	load_init
	reload_service
)
check "reload restarts" "stop
start" "$(cat "$LOG")"

# ---------------------------------------------------------------- trigger

new_case trigger
enabled_config
run_start >/dev/null
FAKE_RUNNING=1 run_trigger
check "by hand/procd/NTP: signal the daemon" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifup wan pppoe-wan
check "ifup of a network procd already covers: nothing" "" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifup wan_alt pppoe-wan
check "ifup of another network with the record's device: signal" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifupdate wan pppoe-wan
check "ifupdate of the record's device: signal" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifupdate lan br-lan
check "ifupdate of an unrelated interface: nothing" "" "$(cat "$LOG")"
FAKE_RUNNING=0 run_trigger ifup wan pppoe-wan
check "daemon not running (cron-only): one update pass, logged" "logger -t aliddns
  | aliddns -c /etc/config/aliddns update" "$(cat "$LOG")"

new_case trigger-disabled
cp "$files/aliddns.config" "$UCI_CONFIG_DIR/aliddns"
FAKE_RUNNING=1 run_trigger
check "disabled: no signal" "" "$(procd_lines)"
FAKE_RUNNING=0 run_trigger ifup wan pppoe-wan
check "disabled: no update" "" "$(procd_lines)"

new_case trigger-auto
enabled_config
sed -i 's/pppoe-wan/auto/g' "$UCI_CONFIG_DIR/aliddns"
run_start >/dev/null
FAKE_RUNNING=1 run_trigger ifupdate lan br-lan
check "a default-route record cares about every interface" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifup lan br-lan
check "but the wildcard procd trigger covers ifup" "" "$(cat "$LOG")"

# ---------------------------------------------------------------- hotplug scripts

fake_init() {
	cat >"$dir/init" <<EOF
#!/bin/sh
echo "init \$*" >>"$LOG"
EOF
	chmod +x "$dir/init"
}

# hotplug FILE VAR=VALUE...: sourced in a subshell, as hotplug-call does.
hotplug() {
	: >"$LOG"
	local script="$1"
	shift
	(
		unset ACTION INTERFACE DEVICE IFUPDATE_ADDRESSES IFUPDATE_PREFIXES IFUPDATE_ROUTES IFUPDATE_DATA
		for assignment in "$@"; do export "${assignment?}"; done
		export ALIDDNS_INITSCRIPT="$dir/init" ALIDDNS_RUNDIR="$dir/run"
		# shellcheck source=/dev/null
		. "$script"
	)
}

new_case iface-hotplug
fake_init
hotplug "$files/aliddns.hotplug" ACTION=ifup INTERFACE=wan DEVICE=pppoe-wan
check "ifup" "init trigger ifup wan pppoe-wan" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifupdate INTERFACE=wan DEVICE=pppoe-wan IFUPDATE_ADDRESSES=1
check "ifupdate with new addresses" "init trigger ifupdate wan pppoe-wan" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifupdate INTERFACE=wan6 DEVICE=pppoe-wan IFUPDATE_PREFIXES=1
check "ifupdate with a new prefix" "init trigger ifupdate wan6 pppoe-wan" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifupdate INTERFACE=wan DEVICE=pppoe-wan IFUPDATE_ROUTES=1
check "ifupdate of routes only: nothing" "" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifupdate INTERFACE=wan DEVICE=pppoe-wan
check "ifupdate from a netifd that marks nothing" "init trigger ifupdate wan pppoe-wan" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifdown INTERFACE=wan
check "ifdown: nothing" "" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifup INTERFACE=loopback DEVICE=lo
check "loopback: nothing" "" "$(cat "$LOG")"
rm "$dir/init"
hotplug "$files/aliddns.hotplug" ACTION=ifup INTERFACE=wan DEVICE=pppoe-wan
check "package removed (no init script): nothing, no error" "" "$(cat "$LOG")"

new_case ntp-hotplug
fake_init
hotplug "$files/aliddns.ntp-hotplug" ACTION=unsync
check "unsync: nothing" "" "$(cat "$LOG")"
hotplug "$files/aliddns.ntp-hotplug" ACTION=stratum stratum=3
check "first sync: a pass" "init trigger" "$(cat "$LOG")"
hotplug "$files/aliddns.ntp-hotplug" ACTION=stratum stratum=2
check "later stratum changes: nothing" "" "$(cat "$LOG")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
