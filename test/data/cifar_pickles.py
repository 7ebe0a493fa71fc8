"""Writes CIFAR-10 and CIFAR-100 "python version" folders in the exact layout of the official
archives (cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta;
cifar-100-python/train, test, meta), with small random contents, using real pickle + numpy.

usage: cifar_pickles.py OUT_DIR STYLE N_PER_BATCH
  STYLE py2: as the official files were written (Python 2 cPickle, protocol 2: keys, names
             and the pixel bytes as Python 2 str opcodes BINSTRING / SHORT_BINSTRING)
        p2 | p4 | p5: what Python 3's pickle writes at that protocol (bytes keys)
Prints JSON: per file the sha256 of the uint8 pixels (C order) and the labels.
"""
import hashlib
import json
import os
import pickle
import struct
import sys

import numpy as np


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: every str and bytes as a Python 2 str."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        n = len(data)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def dump(obj, path, style):
    with open(path, "wb") as f:
        if style == "py2":
            Python2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=int(style[1:]))


def main():
    out, style, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(7)
    digest = {}

    ten = os.path.join(out, "cifar-10-batches-py")
    os.makedirs(ten, exist_ok=True)
    names = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        label = ("testing batch 1 of 1" if name == "test_batch" else "training batch %s of 5" % name[-1])
        dump({b"batch_label": label.encode(), b"labels": labels, b"data": data,
              b"filenames": [("img_%d.png" % i).encode() for i in range(n)]}, os.path.join(ten, name), style)
        digest["cifar10/" + name] = {"pixels": hashlib.sha256(data.tobytes()).hexdigest(), "labels": labels}
    dump({b"num_cases_per_batch": n, b"num_vis": 3072,
          b"label_names": [s.encode() for s in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]]},
         os.path.join(ten, "batches.meta"), style)

    hundred = os.path.join(out, "cifar-100-python")
    os.makedirs(hundred, exist_ok=True)
    for name, count in [("train", 2 * n), ("test", n)]:
        data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=count)]
        coarse = [f // 5 for f in fine]
        dump({b"filenames": [("f_%d.png" % i).encode() for i in range(count)], b"batch_label": ("%sing batch 1 of 1" % name).encode(),
              b"fine_labels": fine, b"coarse_labels": coarse, b"data": data}, os.path.join(hundred, name), style)
        digest["cifar100/" + name] = {"pixels": hashlib.sha256(data.tobytes()).hexdigest(), "labels": fine}
    dump({b"fine_label_names": [("fine_%02d" % i).encode() for i in range(100)],
          b"coarse_label_names": [("coarse_%02d" % i).encode() for i in range(20)]}, os.path.join(hundred, "meta"), style)
    print(json.dumps(digest))


main()
