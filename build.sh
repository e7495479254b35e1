#!/usr/bin/env bash
# FlexKv build driver. Usage:
#   ./build.sh            build the native library, the wheel and .venv (wheel installed)
#   ./build.sh demo       build, then run the standalone demo (no vLLM, no GPU)
#   ./build.sh test       build, then run every test (xunit, then pytest)
#   ./build.sh bench NAME build, then run benchmarks/NAME (replay, cpu-copy, scheduler, ssd, redis, redis-frozen, xproc, scale)
#   ./build.sh gpu-check  run benchmarks/gpu_check.py with .venv's python (builds first if not built)
#   ./build.sh native|wheel
#   ./build.sh clean      remove every build output, .venv included: the tree is as a fresh clone
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

# Packages a benchmark can do without (it says so and measures without them): installed when
# possible, never a reason to stop. fio measures the disk's limit for bench ssd.
optional_deps() { ( deps "$@" ) || echo "could not install $*; the benchmark goes on without it" >&2; }

native() {
  command -v dotnet >/dev/null || { echo "dotnet SDK not found (need .NET 10)" >&2; exit 1; }
  restore src/FlexKv.Native/FlexKv.Native.csproj -r linux-x64
  log "NativeAOT publish -> $NATIVE_OUT/libflexkv.so (the AOT compile takes about a minute)"
  # flexkv_build_info reports the commit (with -dirty for uncommitted changes) and the build
  # time; SOURCE_DATE_EPOCH, when set, gives a reproducible date.
  local sha date
  sha=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  if [ "$sha" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then sha="$sha-dirty"; fi
  date=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
  dotnet publish src/FlexKv.Native/FlexKv.Native.csproj -r linux-x64 -c Release -o "$NATIVE_OUT" -nologo -v quiet \
    -p:FlexKvGitSha="$sha" -p:FlexKvBuildDate="$date"
  cp "$NATIVE_OUT/libflexkv.so" python/flexkv/libflexkv.so
  mkdir -p python/flexkv/include
  cp src/FlexKv.Native/include/flexkv.h python/flexkv/include/flexkv.h
}

# dotnet restore is silent (-v quiet), and on a new machine it downloads: say what, and how much,
# first. Sizes measured with an empty package folder (NuGet's .nupkg downloads, then unpacked).
# Restored once per clone (obj/project.assets.json); later builds skip this.
restore() {
  local proj=$1 what; shift
  [ -f "$(dirname "$proj")/obj/project.assets.json" ] && return 0
  local packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
  case "$proj" in
    *Tests*) what="xunit and the .NET test SDK, about 20 MB to download, 75 MB unpacked" ;;
    *) what="the NativeAOT compiler and runtime packs and StackExchange.Redis, about 100 MB to download, 350 MB unpacked" ;;
  esac
  if [ -d "$packages" ]; then
    log "NuGet restore for $proj (packages not yet in $packages are downloaded: at most $what)"
  else
    log "NuGet restore for $proj: first build on this machine, downloading $what into $packages"
  fi
  dotnet restore "$proj" "$@" -nologo -v quiet
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
  rm -rf build/lib build/bdist.* python/*.egg-info  # setuptools' leftovers: only the wheel is kept
  "$PY" -m pip install --no-index --no-deps --force-reinstall -q dist/flexkv-*.whl
}

all() { deps "$@"; native; wheel; }

case "${1:-all}" in
  all) all ;;
  native) native ;;
  wheel) wheel ;;
  demo) all; shift; log "demo"; "$PY" examples/demo.py "$@" ;;
  test)
    all python3-pytest python3-torch python3-xxhash python3-prometheus-client python3-matplotlib redis-server redis-tools
    restore tests/FlexKv.Core.Tests/FlexKv.Core.Tests.csproj
    log "xunit"
    dotnet test tests/FlexKv.Core.Tests/FlexKv.Core.Tests.csproj -nologo -v quiet
    log "pytest"
    (cd tests/python && "$PY" -m pytest -q -p no:cacheprovider)
    ;;
  bench)
    name=${2:?usage: ./build.sh bench NAME}
    all python3-torch redis-server redis-tools
    [ "$name" = ssd ] && optional_deps fio
    [ "$name" = scale ] && deps python3-xxhash  # the journal it writes carries the engine's block keys
    log "benchmark $name"
    "$PY" "benchmarks/${name//-/_}.py" "${@:3}"
    ;;
  gpu-check)
    # A GPU machine may have no .NET: a tree built elsewhere (library and .venv) is used as it is.
    # PyTorch with CUDA comes from the system (the venv sees system site packages), never apt.
    { [ -x "$PY" ] && [ -f python/flexkv/libflexkv.so ]; } || all
    shift; log "GPU check"; "$PY" benchmarks/gpu_check.py "$@" ;;
  clean)
    rm -rf build dist .venv .pytest_cache python/flexkv/libflexkv.so python/flexkv/include python/*.egg-info
    find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
    find . -name .git -prune -o -type d \( -name __pycache__ -o -name .pytest_cache \) -prune -exec rm -rf {} +
    ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
