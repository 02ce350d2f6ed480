# shellcheck shell=bash
# Sourced by the CI steps (after they cd to the repository root): how a step gets
# a Debian package it needs on a fresh machine, in one place.

# have CMD: whether CMD is on PATH.
have() { command -v "$1" >/dev/null 2>&1; }

# apt_install PACKAGE...: installs Debian packages when running as root with
# apt-get (CI runs as root on Debian); updates the package lists once per step.
# Returns non-zero when it cannot: the caller decides whether that is a skip or
# a failure.
apt_install() {
	have apt-get && [ "$(id -u)" = 0 ] || return 1
	if [ -z "${APT_UPDATED:-}" ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		APT_UPDATED=1
	fi
	echo "== apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
