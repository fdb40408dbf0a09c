"""The experiment's CNN (docs/experiment.md) trained in PyTorch, tuned as the TypeScript engine is:
channels-last, in-place ReLU, BCE from logits, Adam, uint8 NHWC batches turned into x / 255
inside the step (as the engine's preprocessing layer does). Prints one JSON line.
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large> so allocations stay in the process.

usage: pytorch_cnn.py [size=300] [batch=64] [steps=6] [threads=all] [warmup=2]"""
import json, statistics, sys, time, resource
import torch
import torch.nn as nn


class FlattenNHWC(nn.Module):
    """Keras's Flatten order (height, width, channel): a free view of channels-last activations."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.size(0), -1)


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else torch.get_num_threads()
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    cin = 3
    for f in (32, 32, 64, 64, 128):
        layers += [nn.Conv2d(cin, f, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = f
    s = size
    for _ in range(5):
        s = (s - 2) // 2
    layers += [FlattenNHWC(), nn.Linear(s * s * 128, 512), nn.ReLU(inplace=True),
               nn.Linear(512, 32), nn.ReLU(inplace=True), nn.Linear(32, 1)]
    model = nn.Sequential(*layers).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)  # NHWC, as batches arrive
    y = (torch.arange(batch) % 2).float().view(batch, 1)

    def step():
        x = pixels.permute(0, 3, 1, 2).float().mul_(1 / 255)  # channels-last NCHW view, no copy
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(warmup):  # oneDNN primitive creation, first touch of memory
        t = time.perf_counter()
        step()
        print(f"  pytorch cnn warm-up {i + 1}/{warmup}: {time.perf_counter() - t:.2f} s", file=sys.stderr, flush=True)
    each = []
    for i in range(steps):
        t = time.perf_counter()
        step()
        each.append(time.perf_counter() - t)
        print(f"  pytorch cnn step {i + 1}/{steps}: {each[-1]:.2f} s", file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"imgPerSec": batch / statistics.median(each),  # median: robust to a disturbed step
 "bestStepImgPerSec": batch / min(each),
                      "stepSeconds": each, "peakRssBytes": peak,
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": batch}))


if __name__ == "__main__":
    main()
