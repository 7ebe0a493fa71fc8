#!/usr/bin/python3
"""Writes a `search_step` fixture case (format: ../shared/fixtures/README.md) computed by the
PyTorch search network of bench/pytorch/model_search.py and the authors' architect
(bench/pytorch/architect.py), first or second order, for shapes the public cases do not cover:
other K, edge normalisation off, the ImageNet search network, architecture gradient clipping.

usage: /usr/bin/python3 bench/pytorch/make_search_step_case.py OUT_DIR NAME key=value ...
  keys: network (cifar|imagenet), C, layers, K, steps, multiplier, hw, batch, classes,
        in_channels, edge_normalization (0|1), seed, order (1|2), steps_taken,
        lr (the constant weight learning rate, eta of the unrolled step), arch_grad_clip (0: none)

Per step s, as the fixtures' search_step: the architecture step on input.step{s}.valid_x (the
second order also uses the step's training batch, eta = lr and the SGD momentum buffers), then
the weight step on input.step{s}.train_x (CE, clip to 5, SGD momentum 0.9, weight decay 3e-4).
model_search.py and architect.py are checked against the authors' cases (check_fixtures.py on
../shared/fixtures/pytorch and pytorch-second-order), so a case written here carries the
authors' numerics to new shapes.

Tolerance as the README describes: 10x the distance between this float32 run and the same
computation in float64, never below 2e-3 relative (after optimisation steps).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architect import Architect  # noqa: E402
from make_supernet_case import write_safetensors  # noqa: E402
from model_search import Network  # noqa: E402

DEFAULTS = {'network': 'cifar', 'C': 8, 'layers': 5, 'K': 4, 'steps': 4, 'multiplier': None, 'hw': 16, 'batch': 4,
            'classes': 10, 'in_channels': 3, 'edge_normalization': 1, 'seed': 0, 'order': 2, 'steps_taken': 2,
            'lr': 0.1, 'arch_grad_clip': 0}
HYPER = {'momentum': 0.9, 'weight_decay': 3e-4, 'grad_clip': 5.0, 'arch_lr': 6e-4, 'arch_betas': [0.5, 0.999],
         'arch_weight_decay': 1e-3}


def build(config):
    return Network(config['C'], config['classes'], config['layers'], steps=config['steps'], multiplier=config['multiplier'],
                   k=config['K'], in_channels=config['in_channels'], edge_normalization=bool(config['edge_normalization']),
                   network=config['network'])


def run(config, hyper, state, arch, batches, dtype):
    model = build(config)
    model.load_state_dict(state)
    model.to(dtype)
    for name, _ in model.named_arch_parameters():
        setattr(model, name, arch[name].clone().to(dtype).requires_grad_(True))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=hyper['lr'], momentum=hyper['momentum'], weight_decay=hyper['weight_decay'])
    architect = Architect(model, hyper['momentum'], hyper['weight_decay'], hyper['arch_lr'], hyper['arch_betas'],
                          hyper['arch_weight_decay'], hyper.get('arch_grad_clip'))
    out = {}
    for s, (train_x, train_y, valid_x, valid_y) in enumerate(batches):
        architect.step(train_x.to(dtype), train_y, valid_x.to(dtype), valid_y, hyper['lr'], opt, config['order'] == 2)
        opt.zero_grad()
        loss = F.cross_entropy(model(train_x.to(dtype)), train_y)
        loss.backward()
        out[f'expected.step{s}.train_loss'] = loss.detach().reshape(1)
        nn.utils.clip_grad_norm_(model.parameters(), hyper['grad_clip'])
        opt.step()
    for name, t in model.named_arch_parameters():
        out[f'expected.arch.{name}'] = t.detach().clone()
    for name, v in model.state_dict().items():
        if not name.endswith('num_batches_tracked'):
            out[f'expected.param.{name}'] = v.detach().clone()
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    out_dir, name = argv[0], argv[1]
    config = dict(DEFAULTS)
    for arg in argv[2:]:
        key, _, value = arg.partition('=')
        if key not in DEFAULTS:
            sys.exit(f'make_search_step_case: unknown key {key!r}\n{__doc__}')
        config[key] = value if key == 'network' else float(value) if key in ('lr', 'arch_grad_clip') else int(value)
    if config['multiplier'] is None:
        config['multiplier'] = config['steps']
    hyper = dict(HYPER, lr=config['lr'])
    if config['arch_grad_clip'] > 0:
        hyper['arch_grad_clip'] = config['arch_grad_clip']
    torch.manual_seed(config['seed'])
    torch.set_num_threads(1)
    model = build(config)
    arch = {n: t.detach().clone() for n, t in model.named_arch_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    shape = (config['batch'], config['in_channels'], config['hw'], config['hw'])
    batches = [(torch.randn(shape), torch.randint(0, config['classes'], (config['batch'],)),
                torch.randn(shape), torch.randint(0, config['classes'], (config['batch'],))) for _ in range(config['steps_taken'])]

    expected = run(config, hyper, state, arch, batches, torch.float32)
    reference = run(config, hyper, state, arch, batches, torch.float64)
    noise_rel = 0.0
    noise_abs = 0.0
    for key, value in expected.items():
        e = reference[key].double()
        d = value.double() - e
        if float(d.norm()) <= 0.01 * float(e.norm()):
            noise_rel = max(noise_rel, float(d.norm() / e.norm()) if float(e.norm()) > 0 else 0.0)
        else:
            noise_abs = max(noise_abs, float(d.norm()) / math.sqrt(d.numel()))
    tolerance = {'rel_l2': max(10 * noise_rel, 2e-3), 'abs': max(10 * noise_abs, 1e-7)}

    tensors = {}
    for s, (train_x, train_y, valid_x, valid_y) in enumerate(batches):
        tensors[f'input.step{s}.train_x'] = train_x.numpy()
        tensors[f'input.step{s}.train_target'] = train_y.numpy().astype(np.int64)
        tensors[f'input.step{s}.valid_x'] = valid_x.numpy()
        tensors[f'input.step{s}.valid_target'] = valid_y.numpy().astype(np.int64)
    tensors.update({f'param.{k}': v.numpy() for k, v in state.items()})
    tensors.update({f'arch.{k}': v.numpy() for k, v in arch.items()})
    tensors.update({k: v.float().numpy() for k, v in expected.items()})
    c = config
    manifest = {
        'kind': 'search_step', 'name': name,
        'config': {'network': c['network'], 'C': c['C'], 'layers': c['layers'], 'K': c['K'], 'hw': c['hw'], 'batch': c['batch'],
                   'classes': c['classes'], 'steps_taken': c['steps_taken'], 'lr': c['lr'], 'in_channels': c['in_channels'],
                   'steps': c['steps'], 'multiplier': c['multiplier'], 'stem_multiplier': 3,
                   'edge_normalization': bool(c['edge_normalization']), 'order': c['order']},
        'hyper': hyper,
        'about': f"bench/pytorch/make_search_step_case.py (model_search.py + architect.py, seed {c['seed']}): "
                 f"{c['steps_taken']} search steps of order {c['order']}, expected.param.* after the last",
        'tolerance': tolerance, 'float32_noise': {'rel_l2': noise_rel, 'abs': noise_abs}, 'tensors': sorted(tensors),
    }
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, f'{name}.safetensors'), tensors)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print(f'{name}: {len(tensors)} tensors, tolerance rel {tolerance["rel_l2"]:.3g} abs {tolerance["abs"]:.3g}')


if __name__ == '__main__':
    main(sys.argv[1:])
