"""The experiment's CNN (FACTS.md) trained in PyTorch, tuned as the TypeScript engine is:
channels-last, in-place ReLU, Keras-equivalent Adam. Prints one JSON line of measurements.
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large> so allocations stay in the process."""
import json, sys, time, resource
import torch
import torch.nn as nn

def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else torch.get_num_threads()
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
    layers += [nn.Flatten(), nn.Linear(s * s * 128, 512), nn.ReLU(inplace=True),
               nn.Linear(512, 32), nn.ReLU(inplace=True), nn.Linear(32, 1)]
    model = nn.Sequential(*layers).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.rand(batch, 3, size, size).to(memory_format=torch.channels_last)
    y = (torch.rand(batch, 1) > 0.5).float()
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    step(); step()  # warm-up: oneDNN primitive creation, first-touch of memory
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"imgPerSec": steps * batch / dt, "peakRssBytes": peak, "torch": torch.__version__, "threads": threads}))

if __name__ == "__main__":
    main()
