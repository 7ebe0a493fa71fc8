#!/usr/bin/python3
"""PyTorch side of the export tests (test/export/pytorch.test.ts runs it with /usr/bin/python3).

The networks come from bench/pytorch/model_eval.py (written from the spec, checked against the
reference fixtures by bench/pytorch/check_fixtures.py), whose module tree is the authors'
model.py: the state-dict keys are theirs. With PCDARTS_AUTHORS_CODE=DIR (a checkout of the
authors' code: model.py, operations.py, genotypes.py, utils.py) their own classes are used.

usage:
  pytorch_interop.py check '<json>'  {"weights": FILE, "inputs": FILE}
      FILE: a `pcdarts export --format pytorch` safetensors file; inputs: safetensors with x
      [N, C, H, W] and pcdarts's eval-mode logits [N, classes]. Builds the network its
      metadata names, load_state_dict(strict=True), eval mode, logits of x. Prints one JSON
      line: max_abs_diff, max_abs_ref, rel_l2, argmax_equal, keys, network.
  pytorch_interop.py save '<json>'   {"out": FILE, "inputs_out": FILE, "network": "NetworkCIFAR",
      "C": 4, "layers": 3, "classes": 10, "in_channels": 1, "auxiliary": true, "genotype": {...},
      "hw": 32, "n": 6, "steps": 3, "seed": 0}
      Builds the network, trains it `steps` SGD steps on random data in train mode (so weights
      and batch-norm statistics are PyTorch's own), saves its state dict as safetensors (with
      the safetensors package when installed, else written by the format's spec: an 8-byte
      little-endian header length, a JSON header, raw little-endian data), and x with the
      eval-mode logits to inputs_out. Prints one JSON line: writer, keys.
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bench', 'pytorch'))
from model_eval import NetworkCIFAR, NetworkImageNet  # noqa: E402

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32, 'U8': torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file, by the format's spec."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop('__metadata__', {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info['data_offsets']
        raw = bytearray(data[base + begin:base + end])
        t = torch.frombuffer(raw, dtype=DTYPES[info['dtype']]) if raw else torch.empty(0, dtype=DTYPES[info['dtype']])
        tensors[name] = t.reshape(info['shape']).clone()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (name -> contiguous tensor) by the format's spec."""
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    blobs = []
    offset = 0
    for name, t in tensors.items():
        blob = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {'dtype': NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode('utf8')
    text += b' ' * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def build(network, C, classes, layers, auxiliary, genotype, in_channels):
    """(model, which definition built it): the authors' model.py when PCDARTS_AUTHORS_CODE names
    a checkout of their code, else bench/pytorch/model_eval.py."""
    authors = os.environ.get('PCDARTS_AUTHORS_CODE')
    if authors:
        sys.path.insert(0, authors)
        import model as authors_model  # noqa: E402
        from genotypes import Genotype  # noqa: E402
        cls = {'NetworkCIFAR': authors_model.NetworkCIFAR, 'NetworkImageNet': authors_model.NetworkImageNet}[network]
        model = cls(C, classes, layers, auxiliary, Genotype(**genotype))
        model.drop_path_prob = 0.0
        if in_channels != 3:  # their stems are hard-wired to 3 image channels
            if network == 'NetworkCIFAR':
                model.stem[0] = torch.nn.Conv2d(in_channels, 3 * C, 3, padding=1, bias=False)
            else:
                model.stem0[0] = torch.nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False)
        return model, 'authors'
    cls = {'NetworkCIFAR': NetworkCIFAR, 'NetworkImageNet': NetworkImageNet}[network]
    return cls(C, classes, layers, auxiliary, genotype, in_channels=in_channels), 'model_eval'


def check(config):
    state, meta = read_safetensors(config['weights'])
    model, definition = build(meta['network'], int(meta['init_channels']), int(meta['classes']), int(meta['layers']),
                              meta['auxiliary'] == 'true', json.loads(meta['genotype']), int(meta['in_channels']))
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key, or shape
    model.eval()
    inputs, _ = read_safetensors(config['inputs'])
    with torch.no_grad():
        logits, _ = model(inputs['x'])
    ref = inputs['logits']
    diff = (logits - ref).abs()
    print(json.dumps({
        'network': meta['network'], 'keys': len(state), 'definition': definition,
        'max_abs_diff': diff.max().item(), 'max_abs_ref': ref.abs().max().item(),
        'rel_l2': ((logits - ref).norm() / ref.norm()).item(),
        'argmax_equal': bool((logits.argmax(1) == ref.argmax(1)).all().item()),
    }))


def save(config):
    torch.manual_seed(int(config.get('seed', 0)))
    torch.set_num_threads(1)
    model, definition = build(config['network'], int(config['C']), int(config['classes']), int(config['layers']),
                              bool(config['auxiliary']), config['genotype'], int(config['in_channels']))
    n, hw, c = int(config.get('n', 6)), int(config['hw']), int(config['in_channels'])
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    model.train()
    for _ in range(int(config.get('steps', 3))):
        x = torch.randn(n, c, hw, hw)
        y = torch.randint(0, int(config['classes']), (n,))
        optimizer.zero_grad()
        logits, logits_aux = model(x)
        loss = F.cross_entropy(logits, y)
        if logits_aux is not None:
            loss = loss + 0.4 * F.cross_entropy(logits_aux, y)
        loss.backward()
        optimizer.step()
    model.eval()
    x = torch.randn(n, c, hw, hw)
    with torch.no_grad():
        logits, _ = model(x)
    state = model.state_dict()
    try:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, config['out'])
        writer = 'safetensors'
    except ImportError:
        write_safetensors(config['out'], state)
        writer = 'spec'
    write_safetensors(config['inputs_out'], {'x': x, 'logits': logits})
    print(json.dumps({'writer': writer, 'keys': len(state), 'definition': definition}))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ('check', 'save'):
        sys.exit(__doc__)
    config = json.loads(sys.argv[2])
    (check if sys.argv[1] == 'check' else save)(config)


if __name__ == '__main__':
    main()
