#!/bin/sh
# Install circle-node as a system service on Raspberry Pi OS (or any Debian with systemd).
#
#   sudo deploy/install-pi.sh [options]
#
#   --source PATH     a circle-node checkout or wheel (.whl); default: this script's checkout
#   --name NAME       the node's display name, if a new node is made (default: the hostname)
#   --listen ADDR     HOST:PORT the node serves on, if a new node is made (default 0.0.0.0:7400)
#   --python PY       the Python (3.11 or newer) to build the venv with (default: python3)
#   --pip-args ARGS   extra pip arguments, e.g. "--no-index --find-links /media/usb/wheels"
#   --no-start        install and enable the service, but do not (re)start it now
#   --dry-run         print every step and command without doing anything
#   --prefix DIR      install into the scratch root DIR (tests, packaging): nothing outside
#                     DIR is changed; the user, ownership and systemctl steps are skipped
#
# Re-running it upgrades circle-node in place: the venv, the node home, its keys and
# /etc/circle-node/env are kept. Every step is printed as "==> [N] ..." with its commands.
set -eu
# the venv is root's on purpose (the service user cannot change its code): no pip warning
export PIP_ROOT_USER_ACTION=ignore

SERVICE_USER=circle-node
OPT_DIR=/opt/circle-node
VENV=$OPT_DIR/venv
NODE_HOME=/var/lib/circle-node
ETC_DIR=/etc/circle-node
ENV_FILE=$ETC_DIR/env
UNIT_DIR=/etc/systemd/system
UNIT=circle-node.service

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SOURCE=""
NAME=""
LISTEN=0.0.0.0:7400
PYTHON=python3
PIP_ARGS=""
START=1
DRY_RUN=0
PREFIX=""
STEP=0

die() {
    printf 'install-pi.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0"
    exit "$1"
}

while [ $# -gt 0 ]; do
    case $1 in
        --source) [ $# -ge 2 ] || die "--source needs a PATH"; SOURCE=$2; shift 2 ;;
        --name) [ $# -ge 2 ] || die "--name needs a NAME"; NAME=$2; shift 2 ;;
        --listen) [ $# -ge 2 ] || die "--listen needs HOST:PORT"; LISTEN=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || die "--python needs a PY"; PYTHON=$2; shift 2 ;;
        --pip-args) [ $# -ge 2 ] || die "--pip-args needs ARGS"; PIP_ARGS=$2; shift 2 ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a DIR"; PREFIX=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage 0 ;;
        *) printf 'install-pi.sh: unknown option %s\n' "$1" >&2; usage 2 ;;
    esac
done

if [ -n "$PREFIX" ]; then
    case $PREFIX in
        /*) ;;
        *) PREFIX=$(pwd)/$PREFIX ;;
    esac
    PREFIX=${PREFIX%/}
fi
[ -n "$SOURCE" ] || SOURCE=$(cd "$SCRIPT_DIR/.." && pwd)
[ -n "$NAME" ] || NAME=$(hostname)

# Where things land: the system paths, under the scratch root when --prefix is given.
R_VENV=$PREFIX$VENV
R_HOME=$PREFIX$NODE_HOME
R_ETC=$PREFIX$ETC_DIR
R_ENV=$PREFIX$ENV_FILE
R_UNIT_DIR=$PREFIX$UNIT_DIR

step() {
    STEP=$((STEP + 1))
    printf '==> [%d] %s\n' "$STEP" "$*"
}

note() {
    printf '    %s\n' "$*"
}

# The arguments as a shell would need them typed (quoted where needed).
quoted() {
    for arg in "$@"; do
        case $arg in
            *[!A-Za-z0-9_./:=@%+,-]* | "")
                printf " '%s'" "$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")" ;;
            *) printf ' %s' "$arg" ;;
        esac
    done
}

# Print a command, then run it (unless --dry-run).
run() {
    printf '    $%s\n' "$(quoted "$@")"
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    fi
}

# A command that changes the system outside the install root: skipped under --prefix.
system() {
    if [ -n "$PREFIX" ]; then
        printf '    (skipped under --prefix) $%s\n' "$(quoted "$@")"
    else
        run "$@"
    fi
}

# A command run as the service user (as the caller under --prefix, which has no such user).
as_service() {
    if [ -n "$PREFIX" ]; then
        run "$@"
    else
        run runuser -u "$SERVICE_USER" -- "$@"
    fi
}

check_requirements() {
    step "check requirements"
    if [ "$DRY_RUN" = 0 ] && [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
        die "run as root (sudo $0 ...), or try --dry-run"
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: sudo apt install python3"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON is older than 3.11: use Raspberry Pi OS Bookworm or newer, or --python"
    if [ -z "$PREFIX" ] && ! command -v systemctl >/dev/null 2>&1; then
        [ "$DRY_RUN" = 1 ] || die "systemctl not found: this script installs a systemd service"
    fi
    if "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        note "$("$PYTHON" --version) with venv support"
    elif [ -n "$PREFIX" ]; then
        die "$PYTHON cannot make a venv: install python3-venv"
    else
        system apt-get install -y python3-venv
    fi
    case $SOURCE in
        *.whl) [ -f "$SOURCE" ] || die "no wheel at $SOURCE" ;;
        *) [ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE is neither a checkout nor a wheel" ;;
    esac
    note "installing from $SOURCE"
}

create_user() {
    step "create the service user $SERVICE_USER"
    if [ -z "$PREFIX" ] && id -u "$SERVICE_USER" >/dev/null 2>&1; then
        note "$SERVICE_USER exists: kept"
        return
    fi
    system useradd --system --user-group --home-dir "$NODE_HOME" --no-create-home \
        --shell /usr/sbin/nologin --comment "circle-node service" "$SERVICE_USER"
}

create_home() {
    step "create the node home $NODE_HOME (mode 0700, owned by $SERVICE_USER)"
    run install -d -m 0700 "$R_HOME"
    system chown "$SERVICE_USER:$SERVICE_USER" "$NODE_HOME"
}

install_venv() {
    step "install circle-node into the venv $VENV"
    if [ -x "$R_VENV/bin/python" ]; then
        note "$VENV exists: upgrading circle-node in it"
    else
        run install -d -m 0755 "$(dirname "$R_VENV")"
        run "$PYTHON" -m venv "$R_VENV"
    fi
    # shellcheck disable=SC2086 # PIP_ARGS is a list of arguments
    run "$R_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade $PIP_ARGS "$SOURCE"
}

write_env_file() {
    step "write $ENV_FILE (mode 0600) with the passphrase of the node key, if missing"
    if [ -f "$R_ENV" ]; then
        note "$ENV_FILE exists: kept"
        return
    fi
    run install -d -m 0750 "$R_ETC"
    note "(a new random passphrase; it is not printed)"
    if [ "$DRY_RUN" = 1 ]; then
        note "would write $R_ENV"
        return
    fi
    passphrase=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
    (
        umask 077
        {
            echo "# circle-node service environment, read by systemd (EnvironmentFile=) as root."
            echo "# The passphrase that seals this node's key: keep a copy somewhere safe and"
            echo "# apart from backups of $NODE_HOME. Without it the keys cannot be opened."
            echo "CIRCLE_NODE_PASSPHRASE=$passphrase"
            echo "# Settings may be set here too, e.g. CIRCLE_NODE_LOG_LEVEL=debug"
            echo "# (docs/configuration.md lists them all)."
        } >"$R_ENV"
    )
    chmod 0600 "$R_ENV"
    note "wrote $R_ENV"
}

init_node() {
    step "make the node in $NODE_HOME, if it has none (name: $NAME)"
    if [ -f "$R_HOME/node.toml" ]; then
        note "a node is already there: kept"
        return
    fi
    if [ -f "$R_ENV" ]; then
        CIRCLE_NODE_PASSPHRASE=$(sed -n 's/^CIRCLE_NODE_PASSPHRASE=//p' "$R_ENV" | tail -n 1)
        export CIRCLE_NODE_PASSPHRASE  # for circle-node init; never printed
    fi
    as_service "$R_VENV/bin/circle-node" --home "$R_HOME" init --name "$NAME" --listen "$LISTEN"
}

install_unit() {
    step "install the systemd unit $UNIT_DIR/$UNIT"
    run install -d -m 0755 "$R_UNIT_DIR"
    run install -m 0644 "$SCRIPT_DIR/$UNIT" "$R_UNIT_DIR/$UNIT"
}

enable_service() {
    step "enable the service (and start it)"
    system systemctl daemon-reload
    system systemctl enable "$UNIT"
    if [ "$START" = 1 ]; then
        system systemctl restart "$UNIT"
    else
        note "--no-start: start it with: systemctl start $UNIT"
    fi
}

check_node() {
    step "check the node with circle-node doctor"
    as_service "$R_VENV/bin/circle-node" --home "$R_HOME" doctor ||
        note "doctor found problems: see above for what to do"
}

check_requirements
create_user
create_home
install_venv
write_env_file
init_node
install_unit
enable_service
check_node

if [ "$DRY_RUN" = 1 ]; then
    echo "Dry run: nothing was changed."
else
    echo "Installed. Logs: journalctl -u circle-node -f. Keep the passphrase in $ENV_FILE"
    echo "somewhere safe, and back up $NODE_HOME (docs/deploy.md, \"Backup and restore\")."
fi
