#!/usr/bin/env bash
# FlexKv build driver. Usage:
#   ./build.sh            build the native library, the wheel and .venv (wheel installed)
#   ./build.sh demo       build, then run the standalone demo (no vLLM, no GPU)
#   ./build.sh test       build, then run every test (xunit, then pytest)
#   ./build.sh bench NAME build, then run benchmarks/NAME (replay, cpu-copy)
#   ./build.sh native|wheel|clean
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
NATIVE_OUT=$ROOT/build/native

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages the Python side needs; installed only when missing (and only as root).
deps() {
  local want=(python3-venv python3-pip python3-setuptools python3-wheel python3-numpy python3-yaml "$@")
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (install them with apt-get as root)" >&2; exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}

native() {
  command -v dotnet >/dev/null || { echo "dotnet SDK not found (need .NET 10)" >&2; exit 1; }
  log "NativeAOT publish -> $NATIVE_OUT/libflexkv.so"
  dotnet publish src/FlexKv.Native/FlexKv.Native.csproj -r linux-x64 -c Release -o "$NATIVE_OUT" -nologo -v quiet
  cp "$NATIVE_OUT/libflexkv.so" python/flexkv/libflexkv.so
  mkdir -p python/flexkv/include
  cp src/FlexKv.Native/include/flexkv.h python/flexkv/include/flexkv.h
}

venv() {
  if [ ! -x "$PY" ]; then
    log "venv (Debian python, system site packages) -> $VENV"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
  fi
}

wheel() {
  venv
  log "wheel -> dist/"
  rm -rf build/lib build/bdist.* dist python/*.egg-info
  "$PY" -m pip wheel . --no-build-isolation --no-deps --no-index -q -w dist
  "$PY" -m pip install --no-index --no-deps --force-reinstall -q dist/flexkv-*.whl
}

all() { deps "$@"; native; wheel; }

case "${1:-all}" in
  all) all ;;
  native) native ;;
  wheel) wheel ;;
  demo) all; shift; log "demo"; "$PY" examples/demo.py "$@" ;;
  test)
    all python3-pytest python3-torch python3-xxhash redis-server redis-tools
    log "xunit"
    dotnet test tests/FlexKv.Core.Tests/FlexKv.Core.Tests.csproj -nologo -v quiet
    log "pytest"
    (cd tests/python && "$PY" -m pytest -q -p no:cacheprovider)
    ;;
  bench)
    name=${2:?usage: ./build.sh bench NAME}
    all python3-torch redis-server redis-tools
    log "benchmark $name"
    "$PY" "benchmarks/${name//-/_}.py" "${@:3}"
    ;;
  clean) rm -rf build dist .venv python/flexkv/libflexkv.so python/flexkv/include ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
