#!/usr/bin/python3
"""PyTorch side of `npm run bench -- ops` (bench/ops.ts spawns it once per thread count).

usage: /usr/bin/python3 bench/pytorch/ops.py '<json config>'
config: {"threads": n, "shapes": [[N, C, H, W], ...], "ops": [ids], "warmup": w, "repeat": r, "seed": s}

Same operations and timing protocol as our side: float32, torch.set_num_threads(n), w untimed
calls, then the median of r timed calls. "fwd+bwd" = forward, loss = sum(y * r) for a fixed
random r, backward to the input and the weights (gradients set to None, untimed, before each
call). Prints one JSON line on stdout.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def peak_rss_mib():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def cpu_seconds():
    """CPU time of this process, every thread (user + system)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def conv_peak_gflops(threads, channels=512, repeats=5):
    """PyTorch's own float32 peak here: GFLOP/s of a large 1x1 convolution, 64 x 512 x 8 x 8 by
    512 x 512 (the convolution backend, oneDNN in Debian's build, with whatever vector width
    the CPU has, on shapes where it is fast: 8 x 512 x 32 x 32 takes a path 15x slower here,
    and torch.mm would measure Debian's generic BLAS), best of `repeats`, at
    `threads`. At 1 thread it is timed on this thread's CPU clock (immune to time-slicing)."""
    import time
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(int(threads))
    x = torch.randn(64, channels, 8, 8)
    w = torch.randn(channels, channels, 1, 1)
    clock = time.thread_time if int(threads) == 1 else time.perf_counter
    flops = 2 * 64 * channels * channels * 8 * 8
    with torch.no_grad():
        F.conv2d(x, w)
        best = 0.0
        for _ in range(repeats):
            t = clock()
            F.conv2d(x, w)
            best = max(best, flops / max(clock() - t, 1e-9) / 1e9)
    return best


def build_case(op, shape):
    """Returns (forward, leaves, with_backward); forward() -> y."""
    n, c, h, w = shape
    x = torch.randn(shape, dtype=torch.float32, requires_grad=True)
    leaves = [x]

    def leaf(t):
        t.requires_grad_(True)
        leaves.append(t)
        return t

    def depthwise():
        return leaf(torch.randn(c, 1, 3, 3) / 3)

    def pointwise():
        return leaf(torch.randn(c, c, 1, 1) / c ** 0.5)

    def bn():
        # BatchNorm2d(C, affine=False) in train mode, as in the search network.
        running_mean = torch.zeros(c)
        running_var = torch.ones(c)
        return lambda t: F.batch_norm(t, running_mean, running_var, None, None, True, 0.1, 1e-5)

    with_backward = True
    if op == 'sep_conv_3x3':
        dw1, pw1, bn1, dw2, pw2, bn2 = depthwise(), pointwise(), bn(), depthwise(), pointwise(), bn()

        def forward():
            t = F.relu(x)
            t = F.conv2d(t, dw1, padding=1, groups=c)
            t = bn1(F.conv2d(t, pw1))
            t = F.relu(t)
            t = F.conv2d(t, dw2, padding=1, groups=c)
            return bn2(F.conv2d(t, pw2))
    elif op == 'dil_conv_3x3':
        dw, pw, norm = depthwise(), pointwise(), bn()

        def forward():
            return norm(F.conv2d(F.conv2d(F.relu(x), dw, padding=2, dilation=2, groups=c), pw))
    elif op == 'conv_3x3':
        wt = leaf(torch.randn(c, c, 3, 3) / (9 * c) ** 0.5)

        def forward():
            return F.conv2d(x, wt, padding=1)
    elif op in ('dw_conv_3x3_fwd', 'dw_conv_3x3'):
        wt = depthwise()
        with_backward = op == 'dw_conv_3x3'

        def forward():
            return F.conv2d(x, wt, padding=1, groups=c)
    elif op == 'conv_1x1':
        wt = pointwise()

        def forward():
            return F.conv2d(x, wt)
    elif op == 'batch_norm':
        norm = bn()

        def forward():
            return norm(x)
    elif op == 'max_pool_3x3':
        def forward():
            return F.max_pool2d(x, 3, stride=1, padding=1)
    elif op == 'avg_pool_3x3':
        def forward():
            return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    else:
        raise ValueError(f'unknown op {op!r}')
    return forward, leaves, with_backward


def measure(op, shape, warmup, repeat, seed):
    torch.manual_seed(seed)
    forward, leaves, with_backward = build_case(op, shape)
    r = torch.randn(shape, dtype=torch.float32)

    if with_backward:
        def call():
            y = forward()
            (y * r).sum().backward()
    else:
        def call():
            with torch.no_grad():
                forward()

    def reset():
        for t in leaves:
            t.grad = None

    for _ in range(warmup):
        reset()
        call()
    samples = []
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), samples


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    config = json.loads(sys.argv[1])
    torch.set_num_threads(int(config['threads']))
    results = []
    for shape in config['shapes']:
        for op in config['ops']:
            try:
                median_ms, samples = measure(op, shape, int(config['warmup']), int(config['repeat']), int(config['seed']))
                results.append({'shape': shape, 'op': op, 'medianMs': median_ms, 'samplesMs': samples})
            except Exception as e:  # report per case, keep measuring the others
                results.append({'shape': shape, 'op': op, 'medianMs': None, 'error': f'{type(e).__name__}: {e}'})
    print(json.dumps({
        'side': 'pytorch',
        'version': torch.__version__,
        'threads': torch.get_num_threads(),
        'results': results,
        'peakRssMiB': peak_rss_mib(),
        'cpuSeconds': cpu_seconds(),
    }))


if __name__ == '__main__':
    main()
