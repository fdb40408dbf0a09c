"""VGG16 convolutional base (Keras include_top=False: 13 conv 3x3 padding 1 + ReLU, 5 max pools)
built by hand in PyTorch (no torchvision needed), as the TypeScript engine runs it: channels-last,
eval, in-place ReLU, torch.inference_mode(), uint8 NHWC batches turned into x / 255 inside the
timed call. Random weights: speed does not depend on their values. Prints one JSON line.
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large> so allocations stay in the process.

usage: pytorch_vgg16.py [size=300] [batch=16] [batches=3] [threads=all] [warmup=1] [bf16=0|1]"""
import json, statistics, sys, time, resource
import torch
import torch.nn as nn


def vgg16_features():
    layers = []
    cin = 3
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            layers += [nn.Conv2d(cin, filters, 3, padding=1), nn.ReLU(inplace=True)]
            cin = filters
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    batches = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else torch.get_num_threads()
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    bf16 = len(sys.argv) > 6 and sys.argv[6] == "1"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = vgg16_features().to(memory_format=torch.channels_last).eval()
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)

    def run(use_bf16):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            x = pixels.permute(0, 3, 1, 2).float().mul_(1 / 255)
            out = model(x)
            return out.float().permute(0, 2, 3, 1).contiguous()  # NHWC float32, as the engine returns

    def measure(use_bf16, label):
        for i in range(warmup):
            t = time.perf_counter()
            run(use_bf16)
            print(f"  pytorch vgg16 {label} warm-up {i + 1}/{warmup}: {time.perf_counter() - t:.2f} s", file=sys.stderr, flush=True)
        each = []
        for i in range(batches):
            t = time.perf_counter()
            run(use_bf16)
            each.append(time.perf_counter() - t)
            print(f"  pytorch vgg16 {label} {i + 1}/{batches}: {each[-1]:.2f} s", file=sys.stderr, flush=True)
        return batch / statistics.median(each), each  # median: robust to a disturbed batch on a shared machine

    fp32, fp32_each = measure(False, "fp32")
    out = {"fp32ImgPerSec": fp32, "fp32BatchSeconds": fp32_each, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "batch": batch}
    if bf16:
        out["bf16ImgPerSec"], out["bf16BatchSeconds"] = measure(True, "bf16")
    out["peakRssBytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
