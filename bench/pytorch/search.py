#!/usr/bin/python3
"""PyTorch side of `npm run bench -- search` (bench/search.ts spawns it once per configuration).

usage: /usr/bin/python3 bench/pytorch/search.py '<json config>'
config: {"threads": n, "C": 16, "layers": 8, "K": 4, "steps": 4, "batch": 64, "hw": 32,
         "classes": 10, "in_channels": 3, "warmup": 2, "repeat": 3, "seed": 1,
         "freeze_arch": false, "order": 1}

One first-order PC-DARTS search step, exactly as the authors' train_search.py: architecture
step (Adam lr 6e-4, betas (0.5, 0.999), weight decay 1e-3, on a validation batch: zero arch
grads, forward + cross entropy, backward, step), then weight step (zero grads, forward + cross
entropy on a training batch, backward, clip the weights' gradient norm to 5, SGD lr 0.1,
momentum 0.9, weight decay 3e-4). Both forwards in train mode. The authors' weight-step
backward also computes the architecture gradients (discarded by the next architecture step);
"freeze_arch": true switches that off (requires_grad False on alphas/betas during the weight
step), as our side does.

"order": 2: the architecture step is the authors' unrolled second-order step (architect.py with
unrolled=True, bench/pytorch/architect.py: a virtual copy of the network at w', two more
training-batch passes at w +- R v), eta = 0.1 and the SGD optimiser's momentum buffers.

Inputs: one random training batch and one random validation batch (N(0,1) images, uniform
labels), reused every step. `warmup` untimed steps, then the median of `repeat` timed steps.
Prints progress on stderr and one JSON line on stdout.
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architect import Architect  # noqa: E402
from model_search import Network  # noqa: E402
from ops import cpu_seconds, conv_peak_gflops, peak_rss_mib  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    config = json.loads(sys.argv[1])
    torch.set_num_threads(int(config['threads']))
    torch.manual_seed(int(config.get('seed', 1)))
    steps = int(config.get('steps', 4))
    model = Network(int(config['C']), int(config.get('classes', 10)), int(config['layers']), steps=steps,
                    multiplier=int(config.get('multiplier', steps)), k=int(config['K']),
                    in_channels=int(config.get('in_channels', 3)))
    model.train()
    arch_optimizer = torch.optim.Adam(model.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=3e-4)
    freeze_arch = bool(config.get('freeze_arch', False))
    unrolled = int(config.get('order', 1)) == 2
    architect = Architect(model, 0.9, 3e-4, 6e-4, (0.5, 0.999), 1e-3) if unrolled else None

    n, hw, c_in, classes = int(config['batch']), int(config.get('hw', 32)), int(config.get('in_channels', 3)), int(config.get('classes', 10))
    train_x = torch.randn(n, c_in, hw, hw)
    train_y = torch.randint(0, classes, (n,))
    valid_x = torch.randn(n, c_in, hw, hw)
    valid_y = torch.randint(0, classes, (n,))

    def step():
        t0 = time.perf_counter()
        if unrolled:  # Architect.step, unrolled=True
            architect.step(train_x, train_y, valid_x, valid_y, 0.1, optimizer, True)
        else:  # architecture step (Architect.step, unrolled=False)
            arch_optimizer.zero_grad()
            F.cross_entropy(model(valid_x), valid_y).backward()
            arch_optimizer.step()
        t1 = time.perf_counter()
        # weight step
        optimizer.zero_grad()
        if freeze_arch:
            for a in model.arch_parameters():
                a.requires_grad_(False)
        loss = F.cross_entropy(model(train_x), train_y)
        loss.backward()
        if freeze_arch:
            for a in model.arch_parameters():
                a.requires_grad_(True)
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        t2 = time.perf_counter()
        return t2 - t0, t1 - t0, t2 - t1, loss.item()

    warmup, repeat = int(config.get('warmup', 2)), int(config.get('repeat', 3))
    samples, arch_samples, weight_samples, cpu_samples = [], [], [], []
    for i in range(warmup + repeat):
        cpu0 = time.process_time()
        total, arch, weight, loss = step()
        timed = i >= warmup
        if timed:
            cpu_samples.append(time.process_time() - cpu0)
            samples.append(total)
            arch_samples.append(arch)
            weight_samples.append(weight)
        print(f'    pytorch step {i + 1}/{warmup + repeat}{"" if timed else " (warm-up)"}: {total:.2f} s '
              f'(arch {arch:.2f} + weights {weight:.2f}), loss {loss:.4f}', file=sys.stderr, flush=True)
    print(json.dumps({
        'side': 'pytorch',
        'version': torch.__version__,
        'threads': torch.get_num_threads(),
        'medianS': statistics.median(samples),
        'samplesS': samples,
        'cpuSamplesS': cpu_samples,
        'archMedianS': statistics.median(arch_samples),
        'weightMedianS': statistics.median(weight_samples),
        'parameters': sum(p.numel() for p in model.parameters()),
        'peakRssMiB': peak_rss_mib(),
        'cpuSeconds': cpu_seconds(),
        'convPeakGflops': conv_peak_gflops(config['threads']),
    }))


if __name__ == '__main__':
    try:
        main()
    except (RuntimeError, MemoryError) as e:  # one JSON line that says what failed (e.g. out of memory)
        print(f'    failed: {type(e).__name__}: {e}', file=sys.stderr, flush=True)
        print(json.dumps({'error': f'{type(e).__name__}: {e}'.splitlines()[0], 'peakRssMiB': peak_rss_mib(), 'cpuSeconds': cpu_seconds()}))
