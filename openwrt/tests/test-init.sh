#!/bin/sh
# Tests the logic of openwrt/files/aliddns.init and the two hotplug scripts off a
# router (interface events take the hotplug path only, one pass per address
# change; everything logs at facility daemon with a level; a validation failure
# logs the binary's own FILE:LINE: KEY line): OpenWrt's functions (config_load/config_get/config_foreach,
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
logger() { log "logger $*"; }
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
EOF
}

# Sources the init script (as rc.common does) and points it at the case's
# dirs. The fake binary logs its arguments; `check` exits with the status in
# $dir/check-status (default 0), as the real one exits 2 on a config error.
# REAL_PROG / REAL_CONF run the real binary on a real file instead.
load_init() {
	# shellcheck source=openwrt/files/aliddns.init
	. "$files/aliddns.init"
	if [ -n "${REAL_PROG-}" ]; then
		PROG="$REAL_PROG"
		CONF="$REAL_CONF"
		return 0
	fi
	PROG="$dir/aliddns"
	cat >"$PROG" <<EOF
#!/bin/sh
echo "prog \$*" >>"$LOG"
case " \$* " in *" check "*) exit "\$(cat "$dir/check-status" 2>/dev/null || echo 0)" ;; esac
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

# run_trigger ARGS...: `/etc/init.d/aliddns trigger ARGS`.
run_trigger() {
	: >"$LOG"
	(
		load_init
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

procd_lines() { grep -v '^logger\|^prog' "$LOG"; }

MAIN_INSTANCE="instance main
  command $tmp/CASE/aliddns --syslog -c /etc/config/aliddns run
  file /etc/config/aliddns
  respawn 3600 10 5
  stderr 1
end"
main_instance() { echo "$MAIN_INSTANCE" | sed "s|$tmp/CASE|$dir|"; }
serve_instance() { main_instance | sed 's/instance main/instance serve/; s/ run$/ serve/'; }
# The only triggers: a config change reloads, LuCI/ubus can validate. No
# interface trigger (procd would match every interface.* event).
BASE_TRIGGERS="reload_trigger aliddns
validation aliddns_validate_all"

enabled_config() {
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
EOF
}

# ---------------------------------------------------------------- start_service

new_case shipped-default
cp "$files/aliddns.config" "$UCI_CONFIG_DIR/aliddns"
run_start
check "nothing started, only the reload trigger" "$BASE_TRIGGERS" "$(procd_lines)"
check_has "says it is disabled, at daemon.info" "logger -t aliddns -p daemon.info disabled"

new_case pppoe-records
enabled_config
run_start
check "run instance logging to syslog itself; no interface trigger" "$(main_instance)
$BASE_TRIGGERS" "$(procd_lines)"
check_hasnt "the binary is not asked to check a valid config" "^prog"

new_case serve-too
enabled_config
sed -i "s/option enabled '0'/option enabled '1'/; s/option secret ''/option secret '0123456789abcdef'/" "$UCI_CONFIG_DIR/aliddns"
run_start
check "run and serve instances" "$(main_instance)
$(serve_instance)
$BASE_TRIGGERS" "$(procd_lines)"

new_case serve-short-secret
enabled_config
sed -i "s/option enabled '0'/option enabled '1'/; s/option secret ''/option secret 'short'/" "$UCI_CONFIG_DIR/aliddns"
run_start
check_hasnt "no serve instance" "instance serve"
check_has "says why, at daemon.err" "logger -t aliddns -p daemon.err .*secret must have 16 characters"

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
check "serve runs without DDNS" "$(serve_instance)
$BASE_TRIGGERS" "$(procd_lines)"

new_case no-interface-a-record
cat >"$UCI_CONFIG_DIR/aliddns" <<'EOF'
config global
	option enabled 1
config record
	option domain example.com
	option rr www
EOF
run_start
check "anonymous global and record work" "$(main_instance)
$BASE_TRIGGERS" "$(procd_lines)"

new_case network-name-instead-of-device
enabled_config
sed -i 's/pppoe-wan/wan/g' "$UCI_CONFIG_DIR/aliddns"
run_start
check_has "warns that wan is a network name, at daemon.warning" "logger -t aliddns -p daemon.warning .*'wan' is a network name"
FAKE_RUNNING=1 run_trigger
check "trigger does not repeat config warnings" "signal aliddns main USR1" "$(cat "$LOG")"

new_case all-records-disabled
enabled_config
sed -i "s/option type/option enabled '0'\n\toption type/" "$UCI_CONFIG_DIR/aliddns"
run_start
check "no instance, only the reload trigger" "$BASE_TRIGGERS" "$(procd_lines)"
check_has "says why, at daemon.notice" "logger -t aliddns -p daemon.notice no enabled record"

new_case invalid-record
enabled_config
echo 2 >"$dir/check-status"
FAKE_INVALID=home4 run_start
check "not started" "$BASE_TRIGGERS" "$(procd_lines)"
check "the binary's check logs the precise error itself (to syslog)" \
	"prog --syslog -c /etc/config/aliddns check" "$(grep '^prog' "$LOG")"
check_has "then: not started, at daemon.err" "logger -t aliddns -p daemon.err not started: invalid configuration"
check_hasnt "no vague 'details: ...' line" "details:"

new_case invalid-but-the-binary-disagrees
enabled_config
echo 0 >"$dir/check-status"
FAKE_INVALID="global home4" run_start
check_has "names the sections validate_data rejected, at daemon.err" \
	"logger -t aliddns -p daemon.err config global 'global' record 'home4' failed validation"

new_case invalid-httpdns
enabled_config
echo 2 >"$dir/check-status"
FAKE_INVALID=httpdns run_start
check "run starts, serve does not" "$(main_instance)
$BASE_TRIGGERS" "$(procd_lines)"
check_has "the binary's check explains" "^prog --syslog -c /etc/config/aliddns check"

# The real binary, when one is built: its own line reaches the log. With no
# syslog socket (ALIDDNS_SYSLOG_SOCKET points nowhere) it falls back to stderr.
real_bin="${ALIDDNS_BIN:-$here/../../target/debug/aliddns}"
new_case real-binary-explains
if [ -x "$real_bin" ] && [ -z "${ALIDDNS_RUNNER-}" ]; then
	cat >"$UCI_CONFIG_DIR/aliddns" <<'EOF'
config global 'global'
	option enabled '1'
	option access_key 'NeverShowThisSecret'
	option interval '5'

config record 'www'
	option domain 'example.com'
	option rr 'www'
EOF
	REAL_PROG="$real_bin" REAL_CONF="$UCI_CONFIG_DIR/aliddns" FAKE_INVALID=global \
		ALIDDNS_SYSLOG_SOCKET="$dir/no-syslog-here" run_start 2>>"$LOG"
	check_has "FILE:LINE: KEY: why" "$UCI_CONFIG_DIR/aliddns:4: interval: '5' must be a whole number from 10 to 604800"
	check_hasnt "no secret" "NeverShowThisSecret"
else
	echo "# skipped real-binary-explains: no $real_bin (cargo build first)"
fi

new_case reload
enabled_config
(
	load_init
	reload_service
)
check "reload restarts" "stop
start" "$(cat "$LOG")"

new_case one-facility
# Every logger call of the shipped scripts names facility daemon and a level.
bad=$(grep -n 'logger' "$files/aliddns.init" "$files/aliddns.hotplug" "$files/aliddns.ntp-hotplug" |
	grep -v '^[^:]*:[0-9]*:[[:space:]]*#' | grep -v 'logger -t aliddns -p "daemon\.' || true)
check "no logger call without -p daemon.LEVEL" "" "$bad"

# ---------------------------------------------------------------- trigger

new_case trigger
enabled_config
FAKE_RUNNING=1 run_trigger
check "by hand/NTP: signal the daemon" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifup wan pppoe-wan
check "ifup of the record's device: signal" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifupdate wan pppoe-wan
check "ifupdate of the record's device: signal" "signal aliddns main USR1" "$(cat "$LOG")"
FAKE_RUNNING=1 run_trigger ifupdate lan br-lan
check "ifupdate of an unrelated interface: nothing" "" "$(cat "$LOG")"
FAKE_RUNNING=0 run_trigger ifup wan pppoe-wan
check "daemon not running (cron-only): one update pass that logs to syslog itself" \
	"prog --syslog -c /etc/config/aliddns update" "$(cat "$LOG")"

new_case trigger-disabled
cp "$files/aliddns.config" "$UCI_CONFIG_DIR/aliddns"
FAKE_RUNNING=1 run_trigger
check "disabled: no signal" "" "$(procd_lines)"
FAKE_RUNNING=0 run_trigger ifup wan pppoe-wan
check "disabled: no update" "" "$(cat "$LOG")"

new_case trigger-invalid
enabled_config
FAKE_INVALID=home4 FAKE_RUNNING=0 run_trigger ifup wan pppoe-wan
check "invalid config: no pass (start already said why)" "" "$(cat "$LOG")"

new_case trigger-auto
enabled_config
sed -i 's/pppoe-wan/auto/g' "$UCI_CONFIG_DIR/aliddns"
FAKE_RUNNING=1 run_trigger ifupdate lan br-lan
check "a default-route record cares about every interface" "signal aliddns main USR1" "$(cat "$LOG")"

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
	hotplug_more "$@"
}
hotplug_more() {
	local script="$1"
	shift
	(
		unset ACTION INTERFACE DEVICE IFUPDATE_ADDRESSES IFUPDATE_PREFIXES IFUPDATE_ROUTES IFUPDATE_DATA
		for assignment in "$@"; do export "${assignment?}"; done
		export ALIDDNS_INITSCRIPT="${INIT_UNDER_TEST:-$dir/init}" ALIDDNS_RUNDIR="$dir/run"
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
hotplug "$files/aliddns.hotplug" ACTION=ifup-failed INTERFACE=wan
check "ifup-failed: nothing" "" "$(cat "$LOG")"
hotplug "$files/aliddns.hotplug" ACTION=ifup INTERFACE=loopback DEVICE=lo
check "loopback: nothing" "" "$(cat "$LOG")"
rm "$dir/init"
hotplug "$files/aliddns.hotplug" ACTION=ifup INTERFACE=wan DEVICE=pppoe-wan
check "package removed (no init script): nothing, no error" "" "$(cat "$LOG")"

# The whole path, hotplug -> the real init script's trigger -> procd, over what
# netifd sends around a PPPoE redial: one signal per address change, none for
# ifdown, route-only updates or unrelated interfaces.
new_case redial-end-to-end
enabled_config
sed -n '/^# -* stubs$/,/^# -* helpers$/p' "$here/test-init.sh" >"$dir/stubs.sh"
cat >"$dir/init" <<EOF
#!/bin/sh
# What rc.common does for an extra command, with this test's stubs.
. "$dir/stubs.sh"
. "$files/aliddns.init"
LOG="$LOG" UCI_CONFIG_DIR="$UCI_CONFIG_DIR" FAKE_RUNNING=1 PROG=/bin/false
shift
trigger "\$@"
EOF
chmod +x "$dir/init"
: >"$LOG"
for event in "ACTION=ifdown INTERFACE=wan" "ACTION=ifdown INTERFACE=wan6" \
	"ACTION=ifup INTERFACE=wan DEVICE=pppoe-wan" \
	"ACTION=ifupdate INTERFACE=wan DEVICE=pppoe-wan IFUPDATE_ROUTES=1" \
	"ACTION=ifup INTERFACE=wan6 DEVICE=pppoe-wan" \
	"ACTION=ifupdate INTERFACE=wan6 DEVICE=pppoe-wan IFUPDATE_DATA=1" \
	"ACTION=ifupdate INTERFACE=wan6 DEVICE=pppoe-wan IFUPDATE_PREFIXES=1" \
	"ACTION=ifupdate INTERFACE=lan DEVICE=br-lan IFUPDATE_ADDRESSES=1"; do
	# shellcheck disable=SC2086 # the event is a list of assignments
	INIT_UNDER_TEST="$dir/init" FAKE_RUNNING=1 hotplug_more "$files/aliddns.hotplug" $event
done
check "three address changes (wan ifup, wan6 ifup, wan6 new prefix): three passes" "signal aliddns main USR1
signal aliddns main USR1
signal aliddns main USR1" "$(cat "$LOG")"

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
