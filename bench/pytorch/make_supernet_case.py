#!/usr/bin/python3
"""Writes a `supernet` fixture case (format: ../shared/fixtures/README.md) computed by the
PyTorch search network of bench/pytorch/model_search.py, for shapes the public fixtures do not
cover: the ImageNet search network with any K (the authors' hard-code K=2), K=1, and so on.

usage: /usr/bin/python3 bench/pytorch/make_supernet_case.py OUT_DIR NAME key=value ...
  keys: network (cifar|imagenet), C, layers, K, steps, multiplier, hw, batch, classes,
        in_channels, edge_normalization (0|1), seed

model_search.py is itself checked against the authors' cases (check_fixtures.py on
../shared/fixtures/pytorch and pytorch-imagenet), so a case written here carries the authors'
numerics to new shapes. Unlike the authors' ImageNet cases it evaluates every MixedOp once per
forward, so it also holds the batch-norm statistics after the train-mode forward
(expected.buffer.*) and eval-mode logits (expected.eval_logits).

Tolerance as the README describes: 10x the distance between this float32 run and the same
computation in float64, never below 1e-3 relative (a whole network).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_search import PRIMITIVES, Network  # noqa: E402

DEFAULTS = {'network': 'imagenet', 'C': 8, 'layers': 4, 'K': 4, 'steps': 4, 'multiplier': None, 'hw': 32, 'batch': 3,
            'classes': 5, 'in_channels': 3, 'edge_normalization': 1, 'seed': 0}


def write_safetensors(path, tensors):
    header = {}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.dtype('float32'): 'F32', np.dtype('int64'): 'I64'}[array.dtype]
        raw = array.astype(array.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(array.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode('utf8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def run(config, state, arch, x, target, dtype):
    """The computation of a supernet case in `dtype`: train-mode forward, CE, backward, eval-mode forward."""
    steps = config['steps']
    model = Network(config['C'], config['classes'], config['layers'], steps=steps, multiplier=config['multiplier'],
                    k=config['K'], in_channels=config['in_channels'], edge_normalization=bool(config['edge_normalization']),
                    network=config['network'])
    model.load_state_dict(state)
    model.to(dtype)
    for name, _ in model.named_arch_parameters():
        setattr(model, name, arch[name].clone().to(dtype).requires_grad_(True))
    model.train()
    logits = model(x.to(dtype))
    loss = F.cross_entropy(logits, target)
    loss.backward()
    out = {'expected.logits': logits.detach(), 'expected.loss': loss.detach().reshape(1)}
    for name, t in model.named_arch_parameters():
        out[f'expected.grad.arch.{name}'] = t.grad.detach()
    for name, p in model.named_parameters():
        out[f'expected.grad.param.{name}'] = p.grad.detach() if p.grad is not None else torch.zeros_like(p)
    for name, b in model.named_buffers():
        if not name.endswith('num_batches_tracked'):
            out[f'expected.buffer.{name}'] = b.detach().clone()
    model.eval()
    with torch.no_grad():
        out['expected.eval_logits'] = model(x.to(dtype))
    return model, out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    out_dir, name = argv[0], argv[1]
    config = dict(DEFAULTS)
    for arg in argv[2:]:
        key, _, value = arg.partition('=')
        if key not in DEFAULTS:
            sys.exit(f'make_supernet_case: unknown key {key!r}\n{__doc__}')
        config[key] = value if key == 'network' else int(value)
    if config['multiplier'] is None:
        config['multiplier'] = config['steps']
    torch.manual_seed(config['seed'])
    torch.set_num_threads(1)
    model = Network(config['C'], config['classes'], config['layers'], steps=config['steps'], multiplier=config['multiplier'],
                    k=config['K'], in_channels=config['in_channels'], edge_normalization=bool(config['edge_normalization']),
                    network=config['network'])
    # Architecture weights far enough from uniform that the genotype is not a near-tie.
    arch = {n: torch.randn(t.shape) for n, t in model.named_arch_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(config['batch'], config['in_channels'], config['hw'], config['hw'])
    target = torch.randint(0, config['classes'], (config['batch'],))

    model32, expected = run(config, state, arch, x, target, torch.float32)
    _, reference = run(config, state, arch, x, target, torch.float64)
    # Relative noise of the tensors float32 resolves (error under 1 % of the norm); absolute noise
    # (RMS) of the others: values that are float32 rounding noise themselves, such as the
    # running mean of a pooled batch-normalised map, whose exact value is 0.
    noise_rel = 0.0
    noise_abs = 0.0
    for key, value in expected.items():
        e = reference[key].double()
        d = value.double() - e
        if float(d.norm()) <= 0.01 * float(e.norm()):
            noise_rel = max(noise_rel, float(d.norm() / e.norm()) if float(e.norm()) > 0 else 0.0)
        else:
            noise_abs = max(noise_abs, float(d.norm()) / math.sqrt(d.numel()))
    tolerance = {'rel_l2': max(10 * noise_rel, 1e-3), 'abs': max(10 * noise_abs, 1e-7)}

    for n, t in model32.named_arch_parameters():
        t.data.copy_(arch[n])
    genotype = model32.genotype()
    tensors = {'input.x': x.numpy(), 'input.target': target.numpy().astype(np.int64)}
    tensors.update({f'param.{k}': v.numpy() for k, v in state.items()})
    tensors.update({f'arch.{k}': v.numpy() for k, v in arch.items()})
    tensors.update({k: v.float().numpy() for k, v in expected.items()})
    c = config
    manifest = {
        'kind': 'supernet', 'name': name, 'mode': 'train', 'primitives': PRIMITIVES, 'genotype': genotype,
        'config': {'network': c['network'], 'C': c['C'], 'layers': c['layers'], 'K': c['K'], 'steps': c['steps'],
                   'multiplier': c['multiplier'], 'hw': c['hw'], 'batch': c['batch'], 'classes': c['classes'],
                   'in_channels': c['in_channels'], 'stem_multiplier': 3, 'edge_normalization': bool(c['edge_normalization'])},
        'about': f"bench/pytorch/make_supernet_case.py (model_search.py, seed {c['seed']}): train-mode forward, CE, gradients, "
                 'buffers, eval-mode logits, genotype',
        'tolerance': tolerance, 'float32_noise': {'rel_l2': noise_rel, 'abs': noise_abs}, 'tensors': sorted(tensors),
    }
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, f'{name}.safetensors'), tensors)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print(f'{name}: {len(tensors)} tensors, tolerance rel {tolerance["rel_l2"]:.3g} abs {tolerance["abs"]:.3g}')


if __name__ == '__main__':
    main(sys.argv[1:])
