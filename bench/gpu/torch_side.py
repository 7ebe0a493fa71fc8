#!/usr/bin/env python3
"""The PyTorch side of bench/gpu/run.sh: the same GEMMs and convolutions as bench/gpu/webgpu.ts.

    python3 bench/gpu/torch_side.py --device cuda|cpu [--quick] [--json FILE] [--shapes FILE]

Convolution backward is timed as PyTorch computes it in training: torch.nn.grad.conv2d_input
and conv2d_weight (cuDNN's backward-data and backward-filter on CUDA). Timing: `reps` calls,
then a device synchronisation; the median of `trials` windows (after a warm-up window).
--device cpu exists so that the script can be smoke-tested where no GPU is.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn import grad as nngrad

HERE = os.path.dirname(os.path.abspath(__file__))


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, reps, trials):
    for _ in range(min(reps, 3)):
        fn()
    sync(device)
    samples = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        samples.append((time.perf_counter() - start) / reps * 1e3)
    return {'ms': statistics.median(samples), 'fastestMs': min(samples)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--quick', action='store_true')
    p.add_argument('--json')
    p.add_argument('--shapes', default=os.path.join(HERE, 'shapes.json'))
    a = p.parse_args()
    if a.device == 'cuda' and not torch.cuda.is_available():
        print('bench/gpu: PyTorch has no CUDA device here', file=sys.stderr)
        return 3
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 on both sides
    torch.backends.cudnn.allow_tf32 = False
    shapes = json.load(open(a.shapes))
    trials = 1 if a.quick else 5
    g = torch.Generator().manual_seed(0)
    out = {
        'side': 'pytorch', 'device': a.device, 'smoke': a.quick or a.device == 'cpu',
        'torch': torch.__version__, 'threads': torch.get_num_threads(),
        'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version() if a.device == 'cuda' else None,
        'gpu': torch.cuda.get_device_name(0) if a.device == 'cuda' else None,
    }

    tiny = torch.zeros(1, device=device)
    reps = 200 if a.quick else 5000
    t = timed(lambda: tiny.add_(1), device, reps, trials)
    out['dispatch'] = {'usPerDispatch': t['ms'] * 1e3, 'fastestUsPerDispatch': t['fastestMs'] * 1e3}

    gemm = []
    for n in (shapes['quickGemm'] if a.quick else shapes['gemm']):
        x = torch.randn(n, n, generator=g).to(device)
        w = torch.randn(n, n, generator=g).to(device)
        flops = 2 * n ** 3
        reps = 1 if a.quick else max(1, min(50, round(2e11 / flops)))
        t = timed(lambda: F.linear(x, w), device, reps, trials)
        gemm.append({'m': n, 'n': n, 'k': n, **t, 'gflops': flops / (t['ms'] * 1e6)})
        print(f"gemm {n}: {gemm[-1]['gflops']:.1f} GFLOP/s", file=sys.stderr)
    out['gemm'] = gemm

    conv = []
    for s in shapes['conv']:
        batch = shapes['quickBatch'] if a.quick else s['batch']
        cin, cout, size, k = s['inChannels'], s['outChannels'], s['size'], s['kernel']
        x = torch.randn(batch, cin, size, size, generator=g).to(device)
        w = (torch.randn(cout, cin // s['groups'], k, k, generator=g) * 0.3).to(device)
        args = dict(stride=s['stride'], padding=s['padding'], dilation=s['dilation'], groups=s['groups'])
        y = F.conv2d(x, w, **args)
        gy = torch.randn(y.shape, generator=g).to(device)
        flops = 2 * batch * cout * y.shape[2] * y.shape[3] * (cin // s['groups']) * k * k
        reps = 1 if a.quick else max(2, min(100, round(2e10 / flops)))
        fwd = timed(lambda: F.conv2d(x, w, **args), device, reps, trials)
        gin = timed(lambda: nngrad.conv2d_input(x.shape, w, gy, **args), device, reps, trials)
        gwt = timed(lambda: nngrad.conv2d_weight(x, w.shape, gy, **args), device, reps, trials)
        row = lambda t: {**t, 'gflops': flops / (t['ms'] * 1e6)}
        conv.append({'name': s['name'], 'batch': batch, 'flops': flops,
                     'forward': row(fwd), 'gradInput': row(gin), 'gradWeight': row(gwt)})
        print(f"{s['name']} b{batch}: fwd {fwd['ms']:.3f} ms, gradInput {gin['ms']:.3f} ms, gradWeight {gwt['ms']:.3f} ms", file=sys.stderr)
    out['conv'] = conv
    if a.device == 'cuda':
        out['peakDeviceBytes'] = torch.cuda.max_memory_allocated()
    text = json.dumps(out, indent=2) + '\n'
    if a.json:
        open(a.json, 'w').write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
