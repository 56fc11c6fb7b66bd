#!/usr/bin/python3
"""The same convolutional NSM dynamics and local updates as nsm-pretrain, in
PyTorch (CPU), for scripts/bench-nsm.  Reads idx.gz images, trains one pass
over the first N images and prints the wall and CPU seconds of the training loop.

usage: bench-nsm-torch.py IMAGES.idx.gz N BATCH THREADS ITERS [K SIZE]
"""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_idx(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    a = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    a = a[:n]
    if a.ndim == 3:
        a = a[:, None, :, :]
    return torch.from_numpy(a.astype(np.float32) / 255.0)


def main():
    path, n, batch, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    K = int(sys.argv[6]) if len(sys.argv) > 6 else 50
    S = int(sys.argv[7]) if len(sys.argv) > 7 else 6
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x_all = load_idx(path, n)
    C = x_all.shape[1]
    D = C * S * S
    lr, tau, eta = 0.05, 0.1, 1.0
    W = (torch.rand(K, C, S, S) * 2 - 1) / D ** 0.5
    M = torch.eye(K)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for s in range(0, n, batch):
            x = x_all[s:s + batch]
            B = x.shape[0]
            u = F.conv2d(x, W)                      # B K Ho Wo
            P = u.shape[2] * u.shape[3]
            # samples as columns: one K x K by K x (B P) product per step
            v = (eta * u).permute(1, 0, 2, 3).reshape(K, B * P).contiguous()
            A = torch.eye(K) - eta * M
            y = torch.relu(v)                      # the first step from y = 0
            t = torch.empty_like(y)
            for _ in range(iters - 1):
                torch.addmm(v, A, y, out=t)        # t = v + A y, in place
                t.clamp_(min=0)
                y, t = t, y
            y = y.reshape(K, B, P).permute(1, 0, 2)
            X = F.unfold(x, S)                      # B D P
            N = B * P
            yx = torch.einsum("bkp,bdp->kd", y, X) / N
            yy = torch.einsum("bkp,blp->kl", y, y) / N
            Wf = W.reshape(K, D)
            Wf += (4 * lr / K) * (yx - Wf)
            M += (2 * lr / (tau * K)) * (yy - M)
            W = Wf.reshape(K, C, S, S)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print("%.3f %.3f %d %.6g" % (secs, cpu, n, float(W.abs().sum())))


main()
