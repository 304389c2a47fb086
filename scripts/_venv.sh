# Sourced by scripts/test and scripts/demo: make .venv and install the package into it.
# Reinstalls only when pyproject.toml (or the constraints) changed since the last install.

venv_dir=${AIOCACHE_EXT_VENV:-.venv}
python_bin=${PYTHON:-python3}

as_root_apt_install() {
  # apt-get install the given Debian packages when running as root, else explain and fail.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: $*" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    fi
  else
    echo "error: missing $*; install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
}

ensure_venv() {
  # $1: the extras to install, e.g. "redis,memcached,test"; $2 (optional): a pip
  # constraints file, e.g. the oldest supported releases
  if [ ! -x "$venv_dir/bin/python" ]; then
    if ! "$python_bin" -m venv "$venv_dir" >/dev/null 2>&1; then
      rm -rf "$venv_dir"
      as_root_apt_install python3-venv
      "$python_bin" -m venv "$venv_dir"
    fi
  fi
  local stamp="$venv_dir/.aiocache-ext-installed"
  local wanted
  local constraints=()
  [ -n "${2:-}" ] && constraints=(-c "$2")
  wanted="$1 $(cat pyproject.toml ${2:-} | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || ! grep -qxF "$wanted" "$stamp"; then
    echo "installing aiocache-ext[$1] into $venv_dir ..." >&2
    "$venv_dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$venv_dir/bin/python" -m pip install -q --disable-pip-version-check -e ".[$1]" "${constraints[@]}"
    echo "$wanted" >"$stamp"
  fi
  export PATH="$PWD/$venv_dir/bin:$PATH"
}
