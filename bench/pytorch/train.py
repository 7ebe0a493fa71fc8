#!/usr/bin/python3
"""PyTorch side of `npm run bench -- train` (bench/train.ts spawns it once per batch size).

usage: /usr/bin/python3 bench/pytorch/train.py '<json config>'
config: {"threads": n, "genotype": {...JSON genotype...}, "C": 36, "layers": 20, "batch": 64,
         "hw": 32, "classes": 10, "drop_path_prob": 0.3, "auxiliary_weight": 0.4,
         "warmup": 2, "repeat": 3, "seed": 1}

One training step of the retraining network, exactly as the authors' train.py: zero grads,
forward in train mode (auxiliary head on, drop path p), loss = CE(logits) + 0.4 CE(aux logits),
backward, clip the gradient norm of every parameter (auxiliary head included) to 5, SGD
(lr 0.025, momentum 0.9, weight decay 3e-4). One random batch (N(0,1) images, uniform labels)
reused every step. `warmup` untimed steps, then the median of `repeat` timed steps. Prints
progress on stderr and one JSON line on stdout.
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
from model_eval import NetworkCIFAR  # noqa: E402
from ops import cpu_seconds, conv_peak_gflops, peak_rss_mib  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    config = json.loads(sys.argv[1])
    torch.set_num_threads(int(config['threads']))
    torch.manual_seed(int(config.get('seed', 1)))
    classes = int(config.get('classes', 10))
    model = NetworkCIFAR(int(config.get('C', 36)), classes, int(config.get('layers', 20)), True, config['genotype'],
                         drop_path_prob=float(config.get('drop_path_prob', 0.3)))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    aux_weight = float(config.get('auxiliary_weight', 0.4))
    n, hw = int(config['batch']), int(config.get('hw', 32))
    x = torch.randn(n, 3, hw, hw)
    y = torch.randint(0, classes, (n,))

    def step():
        t0 = time.perf_counter()
        optimizer.zero_grad()
        logits, logits_aux = model(x)
        loss = F.cross_entropy(logits, y)
        loss = loss + aux_weight * F.cross_entropy(logits_aux, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return time.perf_counter() - t0, loss.item()

    warmup, repeat = int(config.get('warmup', 2)), int(config.get('repeat', 3))
    samples, cpu_samples = [], []
    for i in range(warmup + repeat):
        cpu0 = time.process_time()
        seconds, loss = step()
        timed = i >= warmup
        if timed:
            cpu_samples.append(time.process_time() - cpu0)
            samples.append(seconds)
        print(f'    pytorch step {i + 1}/{warmup + repeat}{"" if timed else " (warm-up)"}: {seconds:.2f} s, loss {loss:.4f}',
              file=sys.stderr, flush=True)
    main_params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith('auxiliary_head.'))
    print(json.dumps({
        'side': 'pytorch',
        'version': torch.__version__,
        'threads': torch.get_num_threads(),
        'medianS': statistics.median(samples),
        'samplesS': samples,
        'cpuSamplesS': cpu_samples,
        'parameters': main_params,
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
