"""PyTorch reference for chess-train's data-parallel MoCo (trainer/tests/dist.rs).

Upstream's distributed MoCo v2 (``moco/builder.py``: ``_batch_shuffle_ddp``,
``_batch_unshuffle_ddp``, ``concat_all_gather`` before the enqueue) wrapped
in ``DistributedDataParallel`` on torch.distributed's Gloo backend, in
WORLD processes on the CPU. It starts from the weights, queue and batches
in ``--init`` (written by the Rust test), seeds torch before step s with
``7 + s + 100·rank`` (rank 0's permutation is the one broadcast), and
writes rank 0's weights and queue after ``--steps`` steps to ``--out``.

    python moco_ddp_reference.py --init init.safetensors --out ddp.safetensors --port P
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer_reference import resnet  # noqa: E402


@torch.no_grad()
def concat_all_gather(tensor):
    gathered = [torch.ones_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor, async_op=False)
    return torch.cat(gathered, dim=0)


class MoCo(nn.Module):
    """upstream moco/builder.py (distributed), CheSS settings (--mlp)."""

    def __init__(self, arch, dim, K, m, T):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = resnet(arch, num_classes=dim, mlp=True)
        self.encoder_k = resnet(arch, num_classes=dim, mlp=True)
        for param_k in self.encoder_k.parameters():
            param_k.requires_grad = False
        self.register_buffer("queue", torch.zeros(dim, K))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        keys = concat_all_gather(keys)
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0
        self.queue[:, ptr : ptr + batch_size] = keys.T
        self.queue_ptr[0] = (ptr + batch_size) % self.K

    @torch.no_grad()
    def _batch_shuffle_ddp(self, x):
        batch_size_this = x.shape[0]
        x_gather = concat_all_gather(x)
        batch_size_all = x_gather.shape[0]
        num_gpus = batch_size_all // batch_size_this
        idx_shuffle = torch.randperm(batch_size_all)
        dist.broadcast(idx_shuffle, src=0)
        idx_unshuffle = torch.argsort(idx_shuffle)
        idx_this = idx_shuffle.view(num_gpus, -1)[dist.get_rank()]
        return x_gather[idx_this], idx_unshuffle

    @torch.no_grad()
    def _batch_unshuffle_ddp(self, x, idx_unshuffle):
        batch_size_this = x.shape[0]
        x_gather = concat_all_gather(x)
        batch_size_all = x_gather.shape[0]
        num_gpus = batch_size_all // batch_size_this
        idx_this = idx_unshuffle.view(num_gpus, -1)[dist.get_rank()]
        return x_gather[idx_this]

    def forward(self, im_q, im_k):
        q = nn.functional.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            im_k, idx_unshuffle = self._batch_shuffle_ddp(im_k)
            k = nn.functional.normalize(self.encoder_k(im_k), dim=1)
            k = self._batch_unshuffle_ddp(k, idx_unshuffle)
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)
        self._dequeue_and_enqueue(k)
        return logits, labels


def worker(rank, a):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(a.port)
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    init = load_file(a.init)
    moco = MoCo(a.arch, a.dim, a.queue, a.momentum, a.temperature)
    for prefix, enc in (("q.", moco.encoder_q), ("k.", moco.encoder_k)):
        sd = {k[len(prefix):]: v for k, v in init.items() if k.startswith(prefix)}
        missing, unexpected = enc.load_state_dict(sd, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    moco.queue.copy_(init["queue"])
    model = nn.parallel.DistributedDataParallel(moco)
    optimizer = torch.optim.SGD(moco.encoder_q.parameters(), a.lr, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    model.train()
    b = a.batch
    for s in range(a.steps):
        im_q, im_k = init[f"im_q.{s}"], init[f"im_k.{s}"]
        torch.manual_seed(7 + s + 100 * rank)
        output, target = model(im_q[rank * b : (rank + 1) * b], im_k[rank * b : (rank + 1) * b])
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if rank == 0:
        out = {}
        for prefix, enc in (("q.", moco.encoder_q), ("k.", moco.encoder_k)):
            out.update({prefix + n: p.detach().clone().contiguous() for n, p in enc.named_parameters()})
        out["queue"] = moco.queue.detach().clone().contiguous()
        save_file(out, a.out)
    dist.destroy_process_group()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--init", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--batch", type=int, default=4, help="per process")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--queue", type=int, default=32)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=0.03)
    a = p.parse_args(argv)
    mp.spawn(worker, args=(a,), nprocs=a.world, join=True)


if __name__ == "__main__":
    sys.exit(main())
