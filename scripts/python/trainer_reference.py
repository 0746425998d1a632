"""PyTorch references for chess-train's tests and benchmark.

- ``resnet``: a torchvision ResNet with a 1-channel conv1; writes its
  initial weights, an input, and the outputs in train then eval mode.
- ``moco-step``: one MoCo v2 step exactly as the CheSS upstream computes it
  (``moco/builder.py`` + ``main_moco_ori.py`` with ``--mlp --moco-t 0.2``,
  SGD momentum 0.9, weight decay 1e-4, one process): writes the initial
  weights, queue and batch, then the loss and the weights/queue after.

Everything is written as safetensors (float32, CPU).
"""

import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file


def resnet(arch, num_classes=1000, mlp=False):
    """torchvision ResNet with conv1 = Conv2d(1, 64, 7, 2, 3) (Kaiming normal fan-out, as torchvision)."""
    model = getattr(torchvision.models, arch)(num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if mlp:
        dim_mlp = model.fc.weight.shape[1]
        model.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), model.fc)
    return model


def state(model):
    """state_dict without BN's num_batches_tracked counters, contiguous float32."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


class MoCo(nn.Module):
    """upstream moco/builder.py on one process (the DDP gathers are identities)."""

    def __init__(self, arch, dim=128, K=65536, m=0.999, T=0.2, mlp=True):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = resnet(arch, num_classes=dim, mlp=mlp)
        self.encoder_k = resnet(arch, num_classes=dim, mlp=mlp)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)
            param_k.requires_grad = False
        self.register_buffer("queue", torch.randn(dim, K))
        self.queue = nn.functional.normalize(self.queue, dim=0)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0
        self.queue[:, ptr : ptr + batch_size] = keys.T
        self.queue_ptr[0] = (ptr + batch_size) % self.K

    @torch.no_grad()
    def _batch_shuffle_single(self, x):
        idx_shuffle = torch.randperm(x.shape[0], device=x.device)
        idx_unshuffle = torch.argsort(idx_shuffle)
        return x[idx_shuffle], idx_unshuffle

    def forward(self, im_q, im_k):
        q = nn.functional.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            im_k, idx_unshuffle = self._batch_shuffle_single(im_k)
            k = nn.functional.normalize(self.encoder_k(im_k), dim=1)
            k = k[idx_unshuffle]
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        self._dequeue_and_enqueue(k)
        return logits, labels


def moco_parts(moco):
    out = {}
    out.update({"q." + k: v for k, v in state(moco.encoder_q).items()})
    out.update({"k." + k: v for k, v in state(moco.encoder_k).items()})
    out["queue"] = moco.queue.detach().clone().contiguous()
    return out


def cmd_resnet(a):
    torch.manual_seed(a.seed)
    model = resnet(a.arch, num_classes=a.num_classes, mlp=a.mlp)
    x = torch.randn(a.batch, 1, a.size, a.size)
    init = state(model)
    model.train()
    out_train = model(x).detach()
    model.eval()
    with torch.no_grad():
        out_eval = model(x)
    os.makedirs(a.out, exist_ok=True)
    save_file(init, os.path.join(a.out, "weights.safetensors"))
    save_file({"x": x, "train": out_train.contiguous(), "eval": out_eval.contiguous()}, os.path.join(a.out, "io.safetensors"))


def cmd_moco_step(a):
    torch.manual_seed(a.seed)
    moco = MoCo(a.arch, dim=a.dim, K=a.queue, m=a.momentum, T=a.temperature, mlp=True)
    # A queue pointer that is not 0, to check the enqueue position.
    moco.queue_ptr[0] = a.batch if a.queue > a.batch else 0
    im_q = torch.randn(a.batch, 1, a.size, a.size)
    im_k = torch.randn(a.batch, 1, a.size, a.size)
    os.makedirs(a.out, exist_ok=True)
    before = moco_parts(moco)
    before["im_q"], before["im_k"] = im_q, im_k
    before["queue_ptr"] = moco.queue_ptr.clone()
    save_file(before, os.path.join(a.out, "before.safetensors"))
    optimizer = torch.optim.SGD(moco.parameters(), a.lr, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    moco.train()
    losses = []
    for _ in range(a.steps):
        output, target = moco(im_q, im_k)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    after = moco_parts(moco)
    after["loss"] = torch.stack(losses)
    after["queue_ptr"] = moco.queue_ptr.clone()
    save_file(after, os.path.join(a.out, "after.safetensors"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("resnet")
    r.add_argument("--arch", default="resnet18")
    r.add_argument("--num-classes", type=int, default=10)
    r.add_argument("--mlp", action="store_true")
    r.add_argument("--batch", type=int, default=4)
    r.add_argument("--size", type=int, default=64)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    m = sub.add_parser("moco-step")
    m.add_argument("--arch", default="resnet18")
    m.add_argument("--dim", type=int, default=128)
    m.add_argument("--queue", type=int, default=64)
    m.add_argument("--momentum", type=float, default=0.999)
    m.add_argument("--temperature", type=float, default=0.2)
    m.add_argument("--lr", type=float, default=0.03)
    m.add_argument("--batch", type=int, default=8)
    m.add_argument("--size", type=int, default=64)
    m.add_argument("--steps", type=int, default=1)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    {"resnet": cmd_resnet, "moco-step": cmd_moco_step}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
