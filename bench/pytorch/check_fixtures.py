#!/usr/bin/python3
"""Checks the PyTorch models of the benchmarks against the reference fixtures.

usage: /usr/bin/python3 bench/pytorch/check_fixtures.py [FOLDER] [--verbose]
       (FOLDER default: ../shared/fixtures/pytorch from the repository root)

Runs every case of kind supernet, search_step and eval_network the folder holds (from its
index.json, else every *.json manifest), with bench/pytorch/model_search.py and
model_eval.py: builds the network from the manifest's config (and genotype), loads param.*
and arch.*, runs the computation the manifest describes and compares every expected.*
tensor with the manifest's tolerance:  ||a - e||_2 <= rel_l2 * ||e||_2 + abs * sqrt(numel).
Prints PASS/FAIL per case, then one summary line (the last line of stdout, which
`npm run bench -- search --vs-pytorch` prints). Exit status 1 when a case fails.

So the PyTorch side of the search and train benchmarks provably computes what the fixtures
(the authors' code) and our engine compute.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from architect import Architect  # noqa: E402
from model_eval import NetworkCIFAR  # noqa: E402
from model_search import Network  # noqa: E402

KINDS = ('supernet', 'search_step', 'eval_network')
DTYPES = {'F32': np.float32, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32}


def read_safetensors(path):
    """name -> numpy array: 8-byte LE header length, JSON header, raw little-endian data."""
    with open(path, 'rb') as f:
        raw = f.read()
    (header_len,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + header_len])
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        dtype = np.dtype(DTYPES[info['dtype']]).newbyteorder('<')
        out[name] = np.frombuffer(raw, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=base + begin).reshape(info['shape']).copy()
    return out


class Comparator:
    def __init__(self, tensors, tolerance):
        self.tensors = tensors
        self.rel = float(tolerance['rel_l2'])
        self.abs = float(tolerance['abs'])
        self.results = []  # (name, ratio, passed, note)

    def has(self, name):
        return name in self.tensors

    def compare(self, name, actual, note=None):
        expected = self.tensors[name].astype(np.float64).ravel()
        if actual is None:
            self.results.append((name, math.inf, False, note or 'not computed'))
            return
        a = (actual.detach().double().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual, dtype=np.float64)).ravel()
        if a.size != expected.size:
            self.results.append((name, math.inf, False, f'{a.size} values, expected {expected.size}'))
            return
        err = float(np.linalg.norm(a - expected))
        bound = self.rel * float(np.linalg.norm(expected)) + self.abs * math.sqrt(expected.size)
        ratio = err / bound if bound > 0 else (0.0 if err == 0 else math.inf)
        self.results.append((name, ratio, ratio <= 1.0, note))

    def exact(self, name, passed, note):
        self.results.append((name, 0.0 if passed else math.inf, passed, None if passed else note))


def param_state(tensors):
    return {k[len('param.'):]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith('param.')}


def load_params(model, tensors):
    state = param_state(tensors)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(f'state-dict keys differ: missing {missing[:5]}{"..." if len(missing) > 5 else ""} '
                         f'({len(missing)}), unexpected {unexpected[:5]}{"..." if len(unexpected) > 5 else ""} ({len(unexpected)})')
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f'{k}: shape {tuple(v.shape)}, model has {tuple(own[k].shape)}')
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def number(config, key, default=None):
    v = config.get(key, default)
    if v is None:
        raise ValueError(f'manifest config has no {key!r}')
    return v


def search_network(manifest, tensors):
    c = manifest.get('config', {})
    steps = int(c.get('steps', 4))
    model = Network(int(number(c, 'C')), int(c.get('classes', 10)), int(number(c, 'layers')), steps=steps,
                    multiplier=int(c.get('multiplier', steps)), stem_multiplier=int(c.get('stem_multiplier', 3)),
                    k=int(c.get('K', 1)), in_channels=int(c.get('in_channels', 3)),
                    edge_normalization=bool(c.get('edge_normalization', True)),
                    network='imagenet' if 'imagenet' in str(c.get('network', 'cifar')).lower() else 'cifar')
    load_params(model, tensors)
    model.to(DTYPE[0])
    for name, t in model.named_arch_parameters():
        key = f'arch.{name}'
        if key not in tensors:
            raise ValueError(f'fixture has no tensor {key!r}')
        setattr(model, name, torch.from_numpy(tensors[key]).reshape(t.shape).to(DTYPE[0]).requires_grad_(True))
    return model


DTYPE = [torch.float32]  # the replay's float type: float32, or float64 for the near-tie check


def tensor(tensors, name):
    if name not in tensors:
        raise ValueError(f'fixture has no tensor {name!r}')
    return torch.from_numpy(tensors[name]).to(DTYPE[0])


def labels(tensors, name):
    if name not in tensors:
        raise ValueError(f'fixture has no tensor {name!r}')
    return torch.from_numpy(tensors[name]).long()


def compare_module_state(model, comp):
    params = dict(model.named_parameters())
    state = model.state_dict()
    for name in comp.tensors:
        if name.startswith('expected.grad.param.'):
            key = name[len('expected.grad.param.'):]
            p = params.get(key)
            if p is None:
                comp.compare(name, None, f'no parameter {key}')
            else:
                comp.compare(name, p.grad if p.grad is not None else torch.zeros_like(p))
        elif name.startswith('expected.buffer.') or name.startswith('expected.param.'):
            key = name.split('.', 2)[2]
            comp.compare(name, state.get(key), None if key in state else f'no state entry {key}')


def compare_arch(model, comp, prefix, grad):
    for name, t in model.named_arch_parameters():
        key = prefix + name
        if comp.has(key):
            comp.compare(key, (t.grad if t.grad is not None else torch.zeros_like(t)) if grad else t)


def supernet_case(manifest, comp):
    tensors = comp.tensors
    model = search_network(manifest, tensors)
    model.train()
    x = tensor(tensors, 'input.x')
    target = labels(tensors, 'input.target')
    logits = model(x)
    loss = F.cross_entropy(logits, target)
    if comp.has('expected.logits'):
        comp.compare('expected.logits', logits)
    if comp.has('expected.loss'):
        comp.compare('expected.loss', loss.reshape(1))
    loss.backward()
    compare_arch(model, comp, 'expected.grad.arch.', True)
    compare_module_state(model, comp)
    if comp.has('expected.eval_logits'):
        model.eval()
        with torch.no_grad():
            comp.compare('expected.eval_logits', model(x))
    if 'genotype' in manifest:
        derived = model.genotype()
        comp.exact('genotype', json.dumps(derived) == json.dumps(manifest['genotype']), f'derived {json.dumps(derived)}')


def search_step_case(manifest, comp):
    tensors = comp.tensors
    hyper = manifest.get('hyper', {})
    model = search_network(manifest, tensors)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=hyper['lr'], momentum=hyper['momentum'], weight_decay=hyper['weight_decay'])
    # config.order 2: the authors' unrolled architecture step (architect.py, eta = hyper.lr); else first order.
    unrolled = int(manifest.get('config', {}).get('order', 1)) == 2
    architect = Architect(model, hyper['momentum'], hyper['weight_decay'], hyper['arch_lr'], hyper.get('arch_betas', (0.5, 0.999)),
                          hyper['arch_weight_decay'], hyper.get('arch_grad_clip'))
    steps = 0
    for name in tensors:
        if name.startswith('input.step'):
            steps = max(steps, int(name[len('input.step'):].split('.', 1)[0]) + 1)
    for s in range(steps):
        # architecture step, as the authors' Architect.step
        architect.step(tensor(tensors, f'input.step{s}.train_x'), labels(tensors, f'input.step{s}.train_target'),
                       tensor(tensors, f'input.step{s}.valid_x'), labels(tensors, f'input.step{s}.valid_target'),
                       hyper['lr'], opt, unrolled)
        # weight step, as the authors' train()
        opt.zero_grad()
        loss = F.cross_entropy(model(tensor(tensors, f'input.step{s}.train_x')), labels(tensors, f'input.step{s}.train_target'))
        loss.backward()
        key = f'expected.step{s}.train_loss'
        if comp.has(key):
            comp.compare(key, loss.detach().reshape(1))
        nn.utils.clip_grad_norm_(model.parameters(), hyper['grad_clip'])
        opt.step()
    compare_arch(model, comp, 'expected.arch.', False)
    compare_module_state(model, comp)


def eval_network_case(manifest, comp):
    tensors = comp.tensors
    c = manifest.get('config', {})
    network = str(c.get('network', c.get('dataset', 'cifar'))).lower()
    if 'imagenet' in network:
        return 'NetworkImageNet is not part of the benchmarks'
    drop = float(c.get('drop_path_prob', 0.0))
    if drop > 0 and manifest.get('mode') != 'eval':
        return 'drop-path masks are random: cannot be replayed'
    model = NetworkCIFAR(int(number(c, 'C')), int(number(c, 'classes')), int(number(c, 'layers')), c.get('auxiliary') is True,
                         manifest['genotype'], in_channels=int(c.get('in_channels', 3)), drop_path_prob=drop)
    load_params(model, tensors)
    model.to(DTYPE[0])
    model.train(manifest.get('mode') != 'eval')
    smoothing = float(c.get('label_smoothing', 0.0))
    aux_weight = float(c.get('auxiliary_weight', 0.4))
    x = tensor(tensors, 'input.x')
    target = labels(tensors, 'input.target')
    logits, logits_aux = model(x)
    if comp.has('expected.logits'):
        comp.compare('expected.logits', logits)
    if comp.has('expected.logits_aux'):
        comp.compare('expected.logits_aux', logits_aux)
    loss = F.cross_entropy(logits, target, label_smoothing=smoothing)
    if logits_aux is not None:
        loss = loss + aux_weight * F.cross_entropy(logits_aux, target, label_smoothing=smoothing)
    if comp.has('expected.loss'):
        comp.compare('expected.loss', loss.detach().reshape(1))
    if loss.requires_grad:
        loss.backward()
    compare_module_state(model, comp)


HANDLERS = {'supernet': supernet_case, 'search_step': search_step_case, 'eval_network': eval_network_case}


def case_names(folder):
    index = os.path.join(folder, 'index.json')
    if os.path.exists(index):
        with open(index) as f:
            return list(json.load(f)['cases'])
    return sorted(n[:-5] for n in os.listdir(folder) if n.endswith('.json'))


def replay(kind, manifest, tensors, dtype):
    """Runs one case with the models in `dtype`; returns (comparator, reason it was skipped or None)."""
    DTYPE[0] = dtype
    torch.manual_seed(0)
    comp = Comparator(tensors, manifest['tolerance'])
    try:
        return comp, HANDLERS[kind](manifest, comp)
    finally:
        DTYPE[0] = torch.float32


def describe(comp):
    worst = max(comp.results, key=lambda r: r[1]) if comp.results else None
    text = f'{len(comp.results)} tensors compared'
    if worst is not None:
        text += f', worst {worst[1]:.3g} of tolerance ({worst[0]})'
    return text


def main(argv):
    verbose = '--verbose' in argv
    args = [a for a in argv if a != '--verbose']
    if any(a.startswith('-') for a in args) or len(args) > 1:
        sys.exit(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    folder = args[0] if args else os.path.normpath(os.path.join(here, '..', '..', '..', 'shared', 'fixtures', 'pytorch'))
    if not os.path.isdir(folder):
        print(f'check_fixtures: no fixture folder {folder}')
        return 2
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    started = time.perf_counter()
    passed = failed = skipped = other = 0
    float64_only = []
    for name in case_names(folder):
        path = os.path.join(folder, name + '.json')
        if not os.path.exists(path):
            continue
        with open(path) as f:
            manifest = json.load(f)
        kind = manifest.get('kind') if isinstance(manifest, dict) else None
        if kind not in KINDS:
            other += 1
            continue
        t0 = time.perf_counter()
        try:
            tensors = read_safetensors(os.path.join(folder, name + '.safetensors'))
            comp, why_not = replay(kind, manifest, tensors, torch.float32)
            if why_not:
                skipped += 1
                print(f'SKIP  {name} ({kind}): {why_not}')
                continue
            bad = [r for r in comp.results if not r[2]]
            ok = bool(comp.results) and not bad
            comp64 = None
            if not ok:
                # A float32 rounding near-tie (a ReLU input or a max-pool pair within float32
                # noise of each other) flips one mask and moves every gradient before it.
                # The same model in float64 tells such a tie from a wrong formula.
                comp64, _ = replay(kind, manifest, tensors, torch.float64)
        except Exception as e:  # a broken case fails, the others still run
            failed += 1
            print(f'FAIL  {name} ({kind}): {type(e).__name__}: {e}')
            continue
        seconds = time.perf_counter() - t0
        if ok:
            passed += 1
            print(f'PASS  {name} ({kind}): {describe(comp)}, {seconds:.1f} s')
        elif comp64 is not None and comp64.results and all(r[2] for r in comp64.results):
            passed += 1
            float64_only.append(name)
            print(f'PASS  {name} ({kind}) in float64: {describe(comp64)}; in float32 {len(bad)} tensors off, '
                  f'{describe(comp)} (a float32 rounding near-tie, not a model difference), {seconds:.1f} s')
        else:
            failed += 1
            print(f'FAIL  {name} ({kind}): {describe(comp)}, {seconds:.1f} s')
        shown = comp.results if verbose else ([] if ok or comp64 is not None and passed and float64_only[-1:] == [name] else bad[:10])
        for r in shown:
            print(f'      {"ok  " if r[2] else "BAD "} {r[0]}: {r[1]:.3g} of tolerance{f" ({r[3]})" if r[3] else ""}')
        if shown and not verbose and len(bad) > 10:
            print(f'      ... and {len(bad) - 10} more')
    total = time.perf_counter() - started
    note = f' ({len(float64_only)} only in float64: {", ".join(float64_only)})' if float64_only else ''
    print(f'check_fixtures: {passed} passed{note}, {failed} failed, {skipped} skipped, {other} of other kinds not checked; '
          f'{folder}, torch {torch.__version__}, {total:.1f} s')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
