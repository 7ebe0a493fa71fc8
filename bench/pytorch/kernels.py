#!/usr/bin/python3
"""PyTorch side of `npm run bench -- kernels --vs-pytorch` (bench/kernels.ts spawns it once per
thread count).

usage: /usr/bin/python3 bench/pytorch/kernels.py '<json config>'
config: {"threads": n, "repeat": batches, "rows": [{"id": ..., "kind": "fwd"|"gradIn"|"gradW",
         "batch", "inC", "outC", "H", "W", "k", "stride", "pad", "dilation", "groups"}, ...]}

Each convolution row runs the kernel PyTorch itself runs for it: F.conv2d for the forward,
aten.convolution_backward with one output mask for the input or the weight gradient.
Batches of calls of at least 5 ms; a batch counts as clean when no thread of this process
waited for a CPU meanwhile (/proc/self/task/*/schedstat, as our side does); the fastest clean
batch (else the fastest) is reported in ms per call. One JSON line on stdout.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


def thread_wait_ns():
    total = 0
    try:
        for tid in os.listdir('/proc/self/task'):
            with open(f'/proc/self/task/{tid}/schedstat') as f:
                total += int(f.read().split()[1])
    except OSError:
        return None
    return total


def sample(fn, batches):
    calls = 1
    while True:
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t >= 0.005 or calls >= 1 << 16:
            break
        calls *= 2
    every, clean = [], []
    for _ in range(batches):
        w0 = thread_wait_ns()
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t
        w1 = thread_wait_ns()
        every.append(wall / calls * 1000)
        if w0 is not None and w1 is not None and (w1 - w0) / 1e9 < 0.02 * wall:
            clean.append(wall / calls * 1000)
    pool = clean or every
    return min(pool), len(clean)


def main():
    config = json.loads(sys.argv[1])
    torch.set_num_threads(int(config['threads']))
    torch.manual_seed(1)
    out = []
    for r in config['rows']:
        x = torch.randn(r['batch'], r['inC'], r['H'], r['W'])
        w = torch.randn(r['outC'], r['inC'] // r['groups'], r['k'], r['k'])
        conv = dict(stride=r['stride'], padding=r['pad'], dilation=r['dilation'], groups=r['groups'])
        with torch.no_grad():
            y = F.conv2d(x, w, **conv)
            gy = torch.randn_like(y)
            if r['kind'] == 'fwd':
                def fn():
                    F.conv2d(x, w, **conv)
            else:
                mask = [r['kind'] == 'gradIn', r['kind'] == 'gradW', False]
                args = (gy, x, w, None, [r['stride']] * 2, [r['pad']] * 2, [r['dilation']] * 2, False, [0, 0], r['groups'], mask)

                def fn():
                    torch.ops.aten.convolution_backward(*args)
            for _ in range(3):
                fn()
            best, clean = sample(fn, int(config.get('repeat', 20)))
        out.append({'id': r['id'], 'bestMs': best, 'clean': clean})
        print('.', end='', file=sys.stderr, flush=True)
    print('', file=sys.stderr)
    print(json.dumps({'version': torch.__version__, 'threads': torch.get_num_threads(), 'rows': out}))


if __name__ == '__main__':
    main()
