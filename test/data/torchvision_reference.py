"""torchvision's own augmentation code (Debian's python3-torchvision, Pillow) as the reference
for src/data/augment.ts: reads one JSON request on stdin, prints one JSON answer.

Random draws are recorded by wrapping the torch functions torchvision calls (Tensor.uniform_,
torch.randint, torch.randperm, torch.rand), so the TypeScript side can replay torch's exact
values through its AugmentDraws interface and must land on the same crop boxes and bytes.

Requests:
  {"op": "rrc", "cases": [[width, height, seed], ...]}
  {"op": "jitter", "width": w, "height": h, "rgb": base64, "factors": [[fn, factor], ...]}
  {"op": "colorjitter", "width": w, "height": h, "rgb": base64, "seeds": [...]}
  {"op": "eval", "cases": [[width, height, size], ...]}
  {"op": "many", "requests": [...]}   -> a list of the answers
"""
import base64
import json
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

record = []
_uniform = torch.Tensor.uniform_
_randint = torch.randint
_randperm = torch.randperm
_rand = torch.rand


def uniform_(self, a=0.0, b=1.0, *args, **kwargs):
    out = _uniform(self, a, b, *args, **kwargs)
    record.append({"kind": "range", "low": float(a), "high": float(b), "value": float(out.reshape(-1)[0].item())})
    return out


def randint(low, high=None, size=None, *args, **kwargs):
    out = _randint(low, high, size, *args, **kwargs)
    record.append({"kind": "int", "n": int(high) - int(low), "value": int(out.reshape(-1)[0].item()) - int(low)})
    return out


def randperm(n, *args, **kwargs):
    out = _randperm(n, *args, **kwargs)
    record.append({"kind": "perm", "n": int(n), "value": [int(v) for v in out.tolist()]})
    return out


def rand(*args, **kwargs):
    out = _rand(*args, **kwargs)
    record.append({"kind": "uniform", "value": float(out.reshape(-1)[0].item())})
    return out


torch.Tensor.uniform_ = uniform_
torch.randint = randint
torch.randperm = randperm
torch.rand = rand


def image_of(request):
    raw = np.frombuffer(base64.b64decode(request["rgb"]), dtype=np.uint8)
    return Image.fromarray(raw.reshape(request["height"], request["width"], 3), "RGB")


def b64(img):
    return base64.b64encode(np.asarray(img.convert("RGB"), dtype=np.uint8).tobytes()).decode()


def answer_one(request):
    op = request["op"]
    answer = {"torchvision": torchvision.__version__}
    if op == "rrc":
        results = []
        for width, height, seed in request["cases"]:
            torch.manual_seed(seed)
            record.clear()
            img = Image.new("RGB", (width, height))
            i, j, h, w = T.RandomResizedCrop.get_params(img, scale=[0.08, 1.0], ratio=[3.0 / 4.0, 4.0 / 3.0])
            results.append({"draws": list(record), "box": [i, j, h, w]})
        answer["results"] = results
    elif op == "jitter":
        img = image_of(request)
        fns = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast, "saturation": F.adjust_saturation, "hue": F.adjust_hue}
        answer["results"] = [b64(fns[name](img, factor)) for name, factor in request["factors"]]
    elif op == "colorjitter":
        img = image_of(request)
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.2)
        results = []
        for seed in request["seeds"]:
            torch.manual_seed(seed)
            record.clear()
            out = jitter(img)
            results.append({"draws": list(record), "rgb": b64(out)})
        answer["results"] = results
    elif op == "eval":
        results = []
        for width, height, size in request["cases"]:
            side = int(size * 256 / 224)
            new_h, new_w = F._compute_resized_output_size((height, width), [side])
            # The crop's offsets, read off a tensor whose values are their own coordinates.
            coords = torch.arange(new_h * new_w, dtype=torch.float64).reshape(1, new_h, new_w)
            first = int(F.center_crop(coords, [size])[0, 0, 0].item())
            results.append({"resize": [new_w, new_h], "top": first // new_w, "left": first % new_w})
        answer["results"] = results
    else:
        raise SystemExit(f"unknown op {op}")
    return answer


def main():
    request = json.loads(sys.stdin.read())
    # {"op": "many", "requests": [...]}: one interpreter start (torch takes seconds to import) for all.
    if request["op"] == "many":
        print(json.dumps([answer_one(r) for r in request["requests"]]))
    else:
        print(json.dumps(answer_one(request)))


main()
