#!/usr/bin/env python3
"""PyTorch peer of fwprune's zoo models (src/zoo.ts): residual-net and separable-net on the CPU.

Same layers, shapes and parameter counts as the tfjs builders (asserted below), and the same definition as
fwprune's zoo bench: training = forward (batch norm in training mode) + backward + SGD(momentum 0.9) update at
batch 64 on 28x28x1 inputs and 10 classes; inference (eval mode) at batch 1000; both after a warm-up. Prints one
JSON line per model.
Needs Debian's python3-torch: run with /usr/bin/python3, not another python3 on PATH.
Usage: /usr/bin/python3 scripts/bench/torch_model_bench.py [--threads N] [--samples N] [--model NAME]
"""
import argparse, json, time
import torch
import torch.nn as nn

# Trainable parameters, and with batch norm's running mean and variance: src/zoo.ts's zooParamCounts.
EXPECTED = {"residual-net": (77754, 78426), "separable-net": (67338, 69258)}


def conv_bn(cin, cout, k, stride, relu, groups=1):
    # tfjs 'same' padding; batch norm with Keras's epsilon and momentum (1 - 0.99).
    layers = [nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.inner = nn.Sequential(conv_bn(cin, cout, 3, stride, True), conv_bn(cout, cout, 3, 1, False))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, False)

    def forward(self, x):
        return torch.relu(self.inner(x) + self.shortcut(x))


def residual_net():
    blocks, cin = [], 16
    for cout, stride in [(16, 1), (32, 2), (64, 2)]:
        blocks.append(Residual(cin, cout, stride))
        cin = cout
    return nn.Sequential(conv_bn(1, 16, 3, 1, True), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def separable_net():
    layers, cin = [conv_bn(1, 32, 3, 1, True)], 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2)]:
        layers += [conv_bn(cin, cin, 3, stride, True, groups=cin), conv_bn(cin, cout, 1, 1, True)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))


def counts(model):
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, trainable + stats


def bench(name, model, samples, threads):
    assert counts(model) == EXPECTED[name], f"{name}: parameters {counts(model)}, expected {EXPECTED[name]}"
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(max(samples, 1000), 1, 28, 28)
    y = torch.randint(0, 10, (samples,))

    def train(n):
        model.train()
        for i in range(0, n, 64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()

    train(512)  # warm-up
    t0 = time.perf_counter()
    train(samples)
    train_rate = samples / (time.perf_counter() - t0)

    model.eval()
    with torch.no_grad():
        model(x[:1000])  # warm-up
        batches = max(2, -(-samples // 1000))
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x[:1000])
        infer_rate = batches * 1000 / (time.perf_counter() - t0)
    return {"backend": f"torch-{torch.__version__}-cpu-{threads}t", "model": name, "batch": 64,
            "params": counts(model)[0], "trainSamplesPerSec": round(train_rate, 1),
            "inferSamplesPerSec": round(infer_rate, 1)}


p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--samples", type=int, default=2048)
p.add_argument("--model", choices=sorted(EXPECTED), action="append")
a = p.parse_args()
if a.samples < 2000:
    p.error(f"--samples {a.samples}: expected at least 2000")
torch.set_num_threads(a.threads)
torch.manual_seed(0)
for name in a.model or sorted(EXPECTED):
    print(json.dumps(bench(name, residual_net() if name == "residual-net" else separable_net(), a.samples, a.threads)), flush=True)
