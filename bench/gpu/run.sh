#!/usr/bin/env bash
# pcdarts on a real GPU: one prepared run (issue #17).
#
#   bash bench/gpu/run.sh [--allow-software] [--quick] [--out DIR] [--shapes FILE]
#
# 1. probes the Vulkan loader, the installable client drivers and Dawn's adapter, and stops
#    (exit 3) unless the adapter is a discrete GPU;
# 2. measures, on WebGPU (Dawn through the npm package webgpu): the cost per dispatch, GEMM
#    GFLOP/s, and convolution forward / backward at the PC-DARTS search shapes
#    (bench/gpu/shapes.json, or --shapes); every kernel is checked against the reference first;
# 3. measures the same in PyTorch CUDA on the same machine, where PyTorch has CUDA;
# 4. [TODO, phase 2] s/step of the search at K=4 b256 and K=1 b64;
# 5. writes DIR/result.json (both sides and our/PyTorch ratios) and prints the ratios.
#
# --allow-software runs everything on a software adapter (SwiftShader from Debian's chromium
# when no other Vulkan driver is set) and PyTorch on the CPU: a smoke run that shows the
# script works (the test suite runs it with --quick); its figures mean nothing.
# --quick: batch 2 and small GEMMs, one repetition. --shapes: another shape list (default
# bench/gpu/shapes.json; the test suite's smoke run uses three of its rows).
# Exit: 0 done; 2 bad arguments; 3 no discrete GPU (or no Vulkan loader); 1 anything else.
set -euo pipefail
cd "$(dirname "$0")/../.."

allow_software=0
quick=0
out=""
shapes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --allow-software) allow_software=1 ;;
    --quick) quick=1 ;;
    --out) [ $# -ge 2 ] || { echo "bench/gpu/run.sh: --out needs a directory" >&2; exit 2; }; out="$2"; shift ;;
    --shapes) [ $# -ge 2 ] && [ -f "$2" ] || { echo "bench/gpu/run.sh: --shapes needs an existing JSON file" >&2; exit 2; }; shapes="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench/gpu/run.sh: unknown option '$1' (known: --allow-software, --quick, --out DIR, --shapes FILE)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || out="artifacts/gpu-bench-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
probe="$out/probe.txt"
: > "$probe"
say() { echo "$*" | tee -a "$probe" >&2; }

# ---------------------------------------------------------------- 1. probe
say "== host: $(uname -srm), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if command -v nvidia-smi >/dev/null 2>&1; then
  say "== nvidia-smi:"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$probe" >&2 || true
  say "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-<unset>} (Vulkan in a container needs 'graphics' in it)"
fi
# (grep without -q: under pipefail, -q's early exit would fail the pipeline with SIGPIPE)
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
  if [ -e /usr/lib/chromium/libvulkan.so.1 ]; then
    export LD_LIBRARY_PATH="/usr/lib/chromium${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "== Vulkan loader: none installed; using chromium's /usr/lib/chromium/libvulkan.so.1"
  else
    say "bench/gpu/run.sh: no Vulkan loader (libvulkan.so.1); install it (Debian/Ubuntu: apt-get install libvulkan1)"
    exit 3
  fi
fi
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true)
say "== Vulkan drivers (ICD files): ${icds:-none}; VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-<unset>}"
if command -v nvidia-smi >/dev/null 2>&1 && ! echo "$icds" | grep nvidia >/dev/null && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  say "note: an NVIDIA GPU but no nvidia_icd.json: Dawn needs the NVIDIA Vulkan driver (libnvidia-gl and nvidia_icd.json)"
  for f in /usr/share/glvnd/egl_vendor.d/10_nvidia.json /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0; do
    [ -e "$f" ] && say "  found $f"
  done
fi
if [ "$allow_software" = 1 ] && [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "$icds" ] && [ -e /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
  say "== --allow-software: SwiftShader ($VK_ICD_FILENAMES)"
fi
if command -v vulkaninfo >/dev/null 2>&1; then
  say "== vulkaninfo --summary:"; vulkaninfo --summary 2>&1 | tee -a "$probe" >&2 || true
fi

[ -f dist/bench/gpu/webgpu.js ] || npm run build >&2

# ---------------------------------------------------------------- 2. WebGPU side
flags=()
[ "$allow_software" = 1 ] && flags+=(--allow-software)
[ "$quick" = 1 ] && flags+=(--quick)
[ -n "$shapes" ] && flags+=(--shapes "$shapes")
set +e
node dist/bench/gpu/webgpu.js "${flags[@]}" --json "$out/webgpu.json" 2> >(tee -a "$probe" >&2)
status=$?
set -e
if [ "$status" = 3 ]; then
  say "bench/gpu/run.sh: stopped: no discrete GPU adapter (see $probe)"
  exit 3
elif [ "$status" != 0 ]; then
  say "bench/gpu/run.sh: the WebGPU side failed (exit $status)"
  exit 1
fi

# ---------------------------------------------------------------- 3. PyTorch side
torch_json=""
# Debian's PyTorch lives in the system interpreter, which a pyenv or venv python3 may hide
if [ -n "${PYTHON:-}" ]; then python=$PYTHON; elif [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
if "$python" -c 'import torch' >/dev/null 2>&1; then
  device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
  if [ "$device" = cuda ] || [ "$allow_software" = 1 ]; then
    pyflags=(--device "$device")
    [ "$quick" = 1 ] && pyflags+=(--quick)
    [ -n "$shapes" ] && pyflags+=(--shapes "$shapes")
    "$python" bench/gpu/torch_side.py "${pyflags[@]}" --json "$out/pytorch.json" 2> >(tee -a "$probe" >&2)
    torch_json="$out/pytorch.json"
  else
    say "== PyTorch has no CUDA here: no PyTorch side"
  fi
else
  say "== no PyTorch ($python -c 'import torch' failed): no PyTorch side"
fi

# ---------------------------------------------------------------- 4. search step: TODO (phase 2)
# TODO(issue #17 phase 2): once the engine runs on the webgpu backend, measure s/step of the
# search at K=4 b256 and K=1 b64 here, ours and PyTorch CUDA's, e.g.
#   npm run bench -- search --backend webgpu --json "$out/search-webgpu.json"
#   npm run bench -- search --vs-pytorch --pytorch-device cuda --json "$out/search-pytorch.json"
# and merge them into result.json's "search" entry (now a placeholder saying so).

# ---------------------------------------------------------------- 5. result
node dist/bench/gpu/merge.js "$out/webgpu.json" ${torch_json:+"$torch_json"} "$out/result.json" --probe "$probe"
echo "bench/gpu/run.sh: wrote $out/result.json" >&2
