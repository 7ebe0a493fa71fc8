"""torchvision's side of `npm run bench -- data`: ImageFolder + DataLoader with the authors'
training transform (RandomResizedCrop(size), RandomHorizontalFlip, [ColorJitter(0.4, 0.4,
0.4, 0.2)], ToTensor, Normalize), `workers` loader processes, timed over `images` images
after one warm-up batch. Prints one JSON line: images/s and the time per batch.

usage: data.py '{"dir": ..., "size": 224, "workers": 2, "batch": 32, "images": 512, "jitter": false}'
"""
import json
import os
import sys
import time

import torch
import torchvision
import torchvision.transforms as T


def main():
    config = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    steps = [T.RandomResizedCrop(config["size"]), T.RandomHorizontalFlip()]
    if config.get("jitter"):
        steps.append(T.ColorJitter(0.4, 0.4, 0.4, 0.2))
    steps += [T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
    dataset = torchvision.datasets.ImageFolder(os.path.join(config["dir"], "train"), T.Compose(steps))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config["batch"], shuffle=True, num_workers=config["workers"], drop_last=True,
        persistent_workers=False, prefetch_factor=2)
    torch.manual_seed(0)
    batches = iter(loader)
    next(batches)  # warm-up: worker start, first decodes
    wanted = config["images"]
    done = 0
    started = time.perf_counter()
    while done < wanted:
        try:
            images, _ = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, _ = next(batches)
        done += images.shape[0]
    seconds = time.perf_counter() - started
    print(json.dumps({"images": done, "seconds": seconds, "images_per_s": done / seconds, "torchvision": torchvision.__version__}))


main()
