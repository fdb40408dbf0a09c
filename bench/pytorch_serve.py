"""PyTorch's warm bench process: the same line protocol as bench/serve.ts (see bench/protocol.ts),
one JSON command per stdin line, one JSON reply per stdout line. Models are built as the engine
runs them and tuned the same way: channels-last, in-place ReLU, uint8 NHWC batches turned into
x / 255 inside the step, Adam with Keras's epsilon, BCE from logits; bf16 is
torch.autocast('cpu', dtype=torch.bfloat16). Modules are grouped into Keras layers (Conv2D with its
relu, Dense with its relu) and named as Keras names them, so per-layer times line up with ours.
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large> so allocations stay in the process."""
import json, resource, sys, time
import torch
import torch.nn as nn


class FlattenNHWC(nn.Module):
    """Keras's Flatten order (height, width, channel): a free view of channels-last activations."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.size(0), -1)


def keras_names(kinds):
    seen = {}
    names = []
    for k in kinds:
        n = seen.get(k, 0)
        names.append(k if n == 0 else f"{k}_{n}")
        seen[k] = n + 1
    return names


def cnn(size):
    units, kinds = [], []
    cin = 3
    for f in (32, 32, 64, 64, 128):
        units += [nn.Sequential(nn.Conv2d(cin, f, 3), nn.ReLU(inplace=True)), nn.MaxPool2d(2)]
        kinds += ["conv2d", "max_pooling2d"]
        cin = f
    s = size
    for _ in range(5):
        s = (s - 2) // 2
    units += [FlattenNHWC(), nn.Sequential(nn.Linear(s * s * 128, 512), nn.ReLU(inplace=True)),
              nn.Sequential(nn.Linear(512, 32), nn.ReLU(inplace=True)), nn.Linear(32, 1)]
    kinds += ["flatten", "dense", "dense", "dense"]
    return units, keras_names(kinds)


def vgg16():
    units, names = [], []
    cin = 3
    for block, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        for i in range(convs):
            units.append(nn.Sequential(nn.Conv2d(cin, filters, 3, padding=1), nn.ReLU(inplace=True)))
            names.append(f"block{block}_conv{i + 1}")
            cin = filters
        units.append(nn.MaxPool2d(2, 2))
        names.append(f"block{block}_pool")
    return units, names


class Bench:
    def __init__(self):
        self.step = None
        self.timer = None

    def setup(self, cmd):
        size, batch = cmd.get("size", 300), cmd.get("batch", 64)
        torch.set_num_threads(cmd.get("threads") or torch.get_num_threads())
        torch.manual_seed(0)
        bf16 = cmd.get("precision") == "bf16"
        pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)  # NHWC, as batches arrive
        units, names = cnn(size) if cmd["workload"] == "cnn" else vgg16()
        model = nn.Sequential(*units).to(memory_format=torch.channels_last)
        self.timer = LayerTimer(units, names)
        timer = self.timer

        def inputs():
            t = time.perf_counter()
            x = pixels.permute(0, 3, 1, 2).float().mul_(1 / 255)  # channels-last NCHW view, no copy
            timer.forward("(input)", t)
            return x

        if cmd["workload"] == "cnn":
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
            loss_fn = nn.BCEWithLogitsLoss()
            y = (torch.arange(batch) % 2).float().view(batch, 1)

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = model(inputs())
                loss = loss_fn(out.float(), y)
                timer.backward_begin()
                loss.backward()
                timer.backward_end()
                t = time.perf_counter()
                opt.step()
                timer.forward("(optimizer)", t)
                return loss.item()
        elif cmd["workload"] == "vgg16":
            model.eval()

            def step():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = model(inputs())
                    return out.float().permute(0, 2, 3, 1).contiguous()  # NHWC float32, as the engine returns
        else:
            raise ValueError(f"unknown workload {cmd['workload']!r}: use cnn or vgg16")
        self.step = step
        return {"ok": True}

    def run(self, steps):
        if self.step is None:
            raise ValueError("send a setup command before run")
        each = []
        for _ in range(steps):
            t = time.perf_counter()
            self.step()
            each.append(time.perf_counter() - t)
        return each

    def layer_times(self, steps):
        self.timer.start()
        try:
            self.run(steps)
        finally:
            rows = self.timer.stop()
        return [{"layer": n, "forwardMs": f * 1000 / steps, "backwardMs": b * 1000 / steps} for n, f, b in rows]


class LayerTimer:
    """Forward: module pre/post hooks. Backward: a gradient hook on each layer's output fires when
    that layer's backward starts; the next hook (or the end of backward) when it has finished."""

    def __init__(self, units, names):
        self.units, self.names = units, names
        self.handles, self.times, self.events, self.on = [], {}, [], False

    def start(self):
        self.on, self.times = True, {}
        for unit, name in zip(self.units, self.names):
            self.handles.append(unit.register_forward_pre_hook(lambda m, i, name=name: self._begin(name)))
            self.handles.append(unit.register_forward_hook(lambda m, i, out, name=name: self._end(name, out)))

    def stop(self):
        self.on = False
        for h in self.handles:
            h.remove()
        self.handles = []
        return [(n, f, b) for n, (f, b) in self.times.items()]

    def _add(self, name, f=0.0, b=0.0):
        old = self.times.get(name, (0.0, 0.0))
        self.times[name] = (old[0] + f, old[1] + b)

    def _begin(self, name):
        self.t0 = time.perf_counter()

    def _end(self, name, out):
        self._add(name, f=time.perf_counter() - self.t0)
        if out.requires_grad:
            out.register_hook(lambda g, name=name: self.events.append((name, time.perf_counter())))

    def forward(self, name, t):
        if self.on:
            self._add(name, f=time.perf_counter() - t)

    def backward_begin(self):
        self.events = [("(loss)", time.perf_counter())]

    def backward_end(self):
        if not self.on:
            return
        end = time.perf_counter()
        for i, (name, t) in enumerate(self.events):
            self._add(name, b=(self.events[i + 1][1] if i + 1 < len(self.events) else end) - t)


def roof_flops(n, steps):
    """The best FLOP/s of one large bf16 3x3 convolution (n x 256 x 56 x 56, 256 filters, channels-last,
    no grad) over `steps` timed runs: the rate oneDNN reaches on this CPU for the kind of layer VGG16
    is made of, set against VGG16's whole bf16 feature pass. (torch.matmul in bf16 does not go
    through oneDNN in 1.13, so a matrix product would understate it.)"""
    x = torch.randn(n, 256, 56, 56).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.no_grad():
        torch.nn.functional.conv2d(x, w, padding=1)
        for _ in range(steps):
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - t)
    return 2 * n * 56 * 56 * 256 * 256 * 9 / best


def main():
    bench = Bench()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "setup":
                reply = bench.setup(cmd)
            elif op == "run":
                reply = {"seconds": bench.run(cmd.get("steps", 1))}
            elif op == "layerTimes":
                reply = {"layers": bench.layer_times(cmd.get("steps", 1))}
            elif op == "roof":
                reply = {"flops": roof_flops(cmd.get("n", 16), cmd.get("steps", 5))}
            elif op == "stats":
                reply = {"peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                         "torchVersion": torch.__version__, "threads": torch.get_num_threads()}
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as e:  # the process stays up for the next command
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
