"""The PyTorch side of the pretraining benchmark: the same MoCo v2 step as
chess-train (CheSS upstream's builder, one process, SGD momentum 0.9, wd
1e-4) on random input, timed like `chess-train bench`; prints one JSON line.

    python scripts/bench/pretrain_reference.py --arch resnet50 --batch-size 32 --size 224 --device cpu
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from trainer_reference import MoCo  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--queue", type=int, default=4096)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="CUDA autocast bfloat16 + channels_last (= --precision bf16 --channels-last)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="autocast dtype; fp16 with a GradScaler, as chess-train")
    p.add_argument("--channels-last", action="store_true", help="model and inputs in NHWC memory order")
    a = p.parse_args()
    if a.bf16:
        a.precision, a.channels_last = "bf16", True
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = MoCo(a.arch, K=a.queue).to(dev)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), 0.03, momentum=0.9, weight_decay=1e-4)
    crit = torch.nn.CrossEntropyLoss()
    unit = torch.rand(a.batch_size, 1, a.size, a.size, device=dev)
    q = (unit - 0.658) / 0.221
    k = (unit.flip(3) - 0.658) / 0.221
    if a.channels_last:
        q, k = q.contiguous(memory_format=torch.channels_last), k.contiguous(memory_format=torch.channels_last)
    model.train()

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    scaler = torch.amp.GradScaler(dev.type, enabled=a.precision == "fp16")

    def step():
        with torch.autocast(device_type=dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out, target = model(q, k)
            loss = crit(out, target)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({
        "impl": "pytorch " + torch.__version__, "arch": a.arch, "batch": a.batch_size, "size": a.size,
        "queue": a.queue, "device": a.device, "bf16": a.precision == "bf16",
        "precision": a.precision, "channels_last": a.channels_last, "threads": torch.get_num_threads(),
        "median_step_s": med, "images_per_s": a.batch_size / med, "steps": a.steps,
    }))


if __name__ == "__main__":
    main()
