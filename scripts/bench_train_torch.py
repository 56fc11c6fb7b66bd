"""PyTorch peer for scripts/bench-train: the same networks, data, batch,
thread count and recipe as simkit's run, timed the way users run it.

usage: bench_train_torch.py NET train|infer|acc THREADS DATA_PREFIX [N] [EPOCHS]
DATA_PREFIX.x.npy (u8, N x C x H x W) and DATA_PREFIX.y.npy (i4) are the data;
prints one line: `images_per_s X peak_rss_kb Y [test_acc Z]`.
"""
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        s = x
        if self.stride != 1 or self.pad:
            s = x[:, :, ::self.stride, ::self.stride]
            s = F.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(y + s)


def net(name):
    if name == "zoo-cnn":
        return nn.Sequential(nn.Conv2d(1, 16, 3, 2), nn.ReLU(), nn.Conv2d(16, 16, 3, 2), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(16, 10))
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name == "resnet20":
        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        cin = 16
        for w, s in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Block(cin, w, s if i == 0 else 1))
                cin = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        return nn.Sequential(*layers)
    raise SystemExit("unknown net " + name)


def prep(name, x):
    x = torch.from_numpy(x).float()
    if name == "zoo-cnn":
        return x / 127.5 - 1.0
    return x / 255.0


def main():
    name, mode, threads, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    epochs = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    xs = np.load(prefix + ".x.npy")
    ys = np.load(prefix + ".y.npy")
    if n:
        xs, ys = xs[:n], ys[:n]
    x = prep(name, xs)
    y = torch.from_numpy(ys.astype(np.int64))
    model = net(name)
    out = {}
    if mode in ("train", "acc"):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        bs = 64
        g = torch.Generator().manual_seed(1)
        t0 = time.perf_counter()
        seen = 0
        for e in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), bs):
                idx = perm[i:i + bs]
                opt.zero_grad()
                loss = F.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                seen += len(idx)
        out["images_per_s"] = seen / (time.perf_counter() - t0)
        if mode == "acc":
            tx = prep(name, np.load(prefix + ".tx.npy"))
            ty = torch.from_numpy(np.load(prefix + ".ty.npy").astype(np.int64))
            model.eval()
            with torch.no_grad():
                pred = torch.cat([model(tx[i:i + 256]).argmax(1) for i in range(0, len(tx), 256)])
            out["test_acc"] = float((pred == ty).float().mean())
    else:
        model.eval()
        with torch.no_grad():
            model(x[:256])
            t0 = time.perf_counter()
            for i in range(0, len(x), 256):
                model(x[i:i + 256])
        out["images_per_s"] = len(x) / (time.perf_counter() - t0)
    out["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(" ".join("%s %s" % (k, v) for k, v in out.items()))


main()
