"""The workloads of shared/BENCHMARKS.md in plain eager PyTorch, the peer the book's bench is
measured against, and the parity check of the crate's hand-written backward passes.

    python bench/pytorch_bench.py WORKLOAD|all [--steps N] [--warmup N] [--threads N]
    python bench/pytorch_bench.py all --parity DIR

Timing prints one JSON line per workload in the format of `cargo run --release --example bench`.
`--parity DIR` reads the files the Rust bench wrote with `--parity DIR` (initial weights, batch,
dropout masks or VAE noise, loss and every gradient, float32), recomputes the loss and the
gradients with PyTorch's autograd from the same weights and draws, and prints one JSON line per
workload with the relative error of the loss and the largest norm-wise relative error of any
gradient; it exits with status 1 if the loss differs by more than 1e-5 (relative) or any gradient
by more than 1e-4.

Weights are stored as the crate stores them, `W` of shape [in, out] and `y = x W + b`, so both
sides compute the same products. The models are written out with tensors and `@` rather than
`nn.Module`s for the same reason.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

LOGVAR_MIN, LOGVAR_MAX = -20.0, 20.0  # the VAE chapter's clamp (src/vae/mod.rs)


def he(fan_in, fan_out, gen):
    return torch.randn(fan_in, fan_out, generator=gen) * math.sqrt(2.0 / fan_in)


def mlp_params(sizes, gen, prefix="layers"):
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"{prefix}.{i}.w"] = he(a, b, gen)
        p[f"{prefix}.{i}.b"] = torch.zeros(b)
    return p


def mlp_forward(p, x, layers, prefix="layers", masks=None, drop=0.0):
    """ReLU between layers; after each hidden ReLU, `masks[i]` if given, else fresh dropout."""
    h = x
    for i in range(layers):
        h = h @ p[f"{prefix}.{i}.w"] + p[f"{prefix}.{i}.b"]
        if i + 1 < layers:
            h = torch.relu(h)
            if masks is not None:
                h = h * masks[i]
            elif drop > 0.0:
                h = F.dropout(h, drop, training=True)
    return h


# --- the workloads: parameters, a fixed batch, and the loss of one step ---------------------


def classifier(drop):
    def make(gen):
        params = mlp_params([784, 256, 256, 10], gen)
        batch = {
            "input.x": torch.randn(128, 784, generator=gen),
            "input.labels": torch.randint(0, 10, (128,), generator=gen).float(),
        }
        return params, batch

    def loss(p, batch):
        masks = None
        if "mask.0" in batch:
            masks = [batch["mask.0"], batch["mask.1"]]
        logits = mlp_forward(p, batch["input.x"], 3, masks=masks, drop=drop)
        return F.cross_entropy(logits, batch["input.labels"].long())

    return make, loss, [(784, 256), (256, 256), (256, 10)], 128


def vae():
    def make(gen):
        params = mlp_params([784, 400, 40], gen, "encoder.layers")
        params.update(mlp_params([20, 400, 784], gen, "decoder.layers"))
        batch = {"input.x": (torch.rand(128, 784, generator=gen) < 0.3).float()}
        return params, batch

    def loss(p, batch):
        x = batch["input.x"]
        h = mlp_forward(p, x, 2, "encoder.layers")
        mu, raw = h[:, :20], h[:, 20:]
        logvar = torch.clamp(raw, LOGVAR_MIN, LOGVAR_MAX)
        eps = batch["eps"] if "eps" in batch else torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = mlp_forward(p, z, 2, "decoder.layers")
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1)
        return (rec + kl).mean()

    return make, loss, [(784, 400), (400, 40), (20, 400), (400, 784)], 128


def lstm(batch=32, time_=100, hidden=128):
    """The adding problem's model with PyTorch's own fused `torch.lstm` (what a PyTorch user
    would write), fed the crate's weights: PyTorch stores `weight_ih` as `[4H, in]` with the
    same gate order (input, forget, cell, output), so it is the crate's `w_x` transposed."""

    def make(gen):
        bound = math.sqrt(6.0 / (2 + 4 * hidden))
        bound_h = math.sqrt(6.0 / (hidden + 4 * hidden))
        params = {
            "rnn.w_x": (torch.rand(2, 4 * hidden, generator=gen) * 2 - 1) * bound,
            "rnn.w_h": (torch.rand(hidden, 4 * hidden, generator=gen) * 2 - 1) * bound_h,
            "rnn.b_x": torch.zeros(4 * hidden),
            "rnn.b_h": torch.zeros(4 * hidden),
            "head.w": he(hidden, 1, gen),
            "head.b": torch.zeros(1),
        }
        values = torch.rand(batch, time_, generator=gen) * 2 - 1
        markers = torch.zeros(batch, time_)
        for b in range(batch):
            first = torch.randint(0, 10, (1,), generator=gen).item()
            second = torch.randint(0, time_ // 2, (1,), generator=gen).item()
            if second == first:
                second = (second + 1) % (time_ // 2)
            markers[b, first] = markers[b, second] = 1.0
        x = torch.stack([values, markers], dim=2)
        y = 0.5 + (values * markers).sum(1, keepdim=True) / 4.0
        return params, {"input.x": x, "input.y": y}

    def loss(p, b):
        x = b["input.x"]
        h0 = torch.zeros(1, x.shape[0], hidden)
        weights = [p["rnn.w_x"].t(), p["rnn.w_h"].t(), p["rnn.b_x"], p["rnn.b_h"]]
        out, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, True, False, True)
        pred = out[:, -1, :] @ p["head.w"] + p["head.b"]
        return F.mse_loss(pred, b["input.y"])

    layers = [(2, 4 * hidden)] * time_ + [(hidden, 4 * hidden)] * time_
    # As the Rust side counts: the input projection and the recurrent product at every step
    # (per row of the batch), and the head on the last step only.
    return make, loss, (layers, 2 * batch * hidden), batch


def made(dims=784, hidden=500, batch=100):
    def make(gen):
        params = mlp_params([dims, hidden, dims], gen)
        params = {k.replace("layers.0", "hidden.0").replace("layers.1", "output"): v for k, v in params.items()}
        degrees = torch.randint(1, dims, (hidden,), generator=gen)  # 1 ..= D - 1
        inputs = torch.arange(1, dims + 1)  # the natural ordering
        batch_ = {
            "input.x": (torch.rand(batch, dims, generator=gen) < 0.3).float(),
            "mask.hidden": (degrees[None, :] >= inputs[:, None]).float(),
            "mask.output": (inputs[None, :] > degrees[:, None]).float(),
        }
        return params, batch_

    def loss(p, b):
        x = b["input.x"]
        h = torch.relu(x @ (p["hidden.0.w"] * b["mask.hidden"]) + p["hidden.0.b"])
        logits = h @ (p["output.w"] * b["mask.output"]) + p["output.b"]
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()

    return make, loss, [(dims, hidden), (hidden, dims)], batch


def mha_params(params, prefix, d, gen):
    """Q, K, V and O, each `[d, d]` with a zero bias, under `{prefix}.w{q,k,v,o}`."""
    for name in ["wq", "wk", "wv", "wo"]:
        params[f"{prefix}.{name}.w"] = torch.randn(d, d, generator=gen) / math.sqrt(d)
        params[f"{prefix}.{name}.b"] = torch.zeros(d)


def causal_mha(p, prefix, x, heads):
    """Causal multi-head self-attention of `x` (`[batch, time, d]`), output projection included."""
    n, t, d = x.shape
    dk = d // heads

    def project(name):
        y = x @ p[f"{prefix}.{name}.w"] + p[f"{prefix}.{name}.b"]
        return y.view(n, t, heads, dk).transpose(1, 2)  # [batch, heads, time, d_k]

    q, k, v = project("wq"), project("wk"), project("wv")
    scores = q @ k.transpose(-1, -2) / math.sqrt(dk)
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    weights = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(n, t, d)
    return merged @ p[f"{prefix}.wo.w"] + p[f"{prefix}.wo.b"]


def char_output(params, d, vocab, batch, time_, gen, name="output"):
    """Adds the untied output layer's parameters (`name.w`, `name.b`, as the crate's model names
    its output layer); returns a random batch of ids and targets."""
    params[f"{name}.w"] = torch.randn(d, vocab, generator=gen) / math.sqrt(d)
    params[f"{name}.b"] = torch.zeros(vocab)
    return {
        "input.ids": torch.randint(0, vocab, (batch, time_), generator=gen).float(),
        "input.targets": torch.randint(0, vocab, (batch, time_), generator=gen).float(),
    }


def char_loss(p, h, targets, name="output"):
    """Cross-entropy of the output layer `name`'s logits on `h` (`[batch, time, d]`)."""
    n, t, d = h.shape
    logits = h.reshape(n * t, d) @ p[f"{name}.w"] + p[f"{name}.b"]
    return F.cross_entropy(logits, targets.reshape(-1))


def embedded(p, ids, positions):
    """Token embedding plus the positions table `positions`, for `ids` (`[batch, time]`)."""
    return p["tokens.table"][ids] + p[positions][torch.arange(ids.shape[1])]


def attention(vocab=65, d=128, heads=4, batch=32, time_=64):
    def make(gen):
        params = {
            "tokens.table": torch.randn(vocab, d, generator=gen) / math.sqrt(d),
            "positions.table": torch.randn(time_, d, generator=gen) / math.sqrt(d),
        }
        mha_params(params, "attention", d, gen)
        return params, char_output(params, d, vocab, batch, time_, gen)

    def loss(p, b):
        ids, targets = b["input.ids"].long(), b["input.targets"].long()
        x = embedded(p, ids, "positions.table")
        return char_loss(p, x + causal_mha(p, "attention", x, heads), targets)

    b = batch * time_
    layers = [(d, d)] * 4 + [(d, vocab)]
    # The scores and the weighted sum, counted as two [time, d] x [d, time]-sized products per
    # sequence, as the Rust side counts them: 2 * 2 * batch * time * time * d.
    extra = 2 * 2 * batch * time_ * time_ * d

    return make, loss, (layers, extra), b


def transformer(vocab=65, d=128, heads=4, blocks=2, ff=512, batch=32, time_=64, eps=1e-5):
    """The decoder-only character model of the Transformer chapter: token embedding plus learned
    positions, `blocks` pre-LayerNorm blocks (x + MHA(LN(x)) with a causal mask, then
    x + W2 GELU(W1 LN(x)), exact erf GELU), a final LayerNorm, and an untied output layer."""

    def make(gen):
        params = {
            "tokens.table": torch.randn(vocab, d, generator=gen) / math.sqrt(d),
            "positions.learned.table": torch.randn(time_, d, generator=gen) / math.sqrt(d),
        }
        for i in range(blocks):
            pre = f"blocks.{i}"
            for norm in ["ln1", "ln2"]:
                params[f"{pre}.{norm}.gamma"] = torch.ones(d)
                params[f"{pre}.{norm}.beta"] = torch.zeros(d)
            mha_params(params, f"{pre}.attention", d, gen)
            params[f"{pre}.ff.lin1.w"] = he(d, ff, gen)
            params[f"{pre}.ff.lin1.b"] = torch.zeros(ff)
            params[f"{pre}.ff.lin2.w"] = he(ff, d, gen)
            params[f"{pre}.ff.lin2.b"] = torch.zeros(d)
        params["ln_f.gamma"] = torch.ones(d)
        params["ln_f.beta"] = torch.zeros(d)
        return params, char_output(params, d, vocab, batch, time_, gen, name="out")

    def loss(p, b):
        ids, targets = b["input.ids"].long(), b["input.targets"].long()
        x = embedded(p, ids, "positions.learned.table")
        for i in range(blocks):
            pre = f"blocks.{i}"
            h = F.layer_norm(x, (d,), p[f"{pre}.ln1.gamma"], p[f"{pre}.ln1.beta"], eps)
            x = x + causal_mha(p, f"{pre}.attention", h, heads)
            h = F.layer_norm(x, (d,), p[f"{pre}.ln2.gamma"], p[f"{pre}.ln2.beta"], eps)
            h = F.gelu(h @ p[f"{pre}.ff.lin1.w"] + p[f"{pre}.ff.lin1.b"], approximate="none")
            x = x + h @ p[f"{pre}.ff.lin2.w"] + p[f"{pre}.ff.lin2.b"]
        x = F.layer_norm(x, (d,), p["ln_f.gamma"], p["ln_f.beta"], eps)
        return char_loss(p, x, targets, name="out")

    b = batch * time_
    layers = ([(d, d)] * 4 + [(d, ff), (ff, d)]) * blocks + [(d, vocab)]
    extra = blocks * 2 * 2 * batch * time_ * time_ * d  # as the attention workload counts
    return make, loss, (layers, extra), b

WORKLOADS = {
    "mlp": classifier(0.0),
    "dropout": classifier(0.5),
    "lstm": lstm(),
    "made": made(),
    "attention": attention(),
    "transformer": transformer(),
    "vae": vae(),
}


def flops(layers, batch):
    extra = 0
    if isinstance(layers, tuple):
        layers, extra = layers
    return 3 * (sum(2 * batch * k * n for k, n in layers) + extra)


def time_workload(name, steps, warmup, threads):
    make, loss_fn, layers, batch_size = WORKLOADS[name]
    gen = torch.Generator().manual_seed(0)
    params, batch = make(gen)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(leaves.values(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(leaves, batch)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    ms = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        ms.append((time.perf_counter() - start) * 1e3)
    return {
        "workload": name,
        "step_ms_median": round(statistics.median(ms), 3),
        "step_ms_min": round(min(ms), 3),
        "steps": steps,
        "threads": threads,
        "params": sum(v.numel() for v in leaves.values()),
        "flops_per_step": flops(layers, batch_size),
        "impl": "pytorch",
    }


def peak(m, k, n, repeats, threads):
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    rates = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        s = time.perf_counter() - start
        if r > 0:
            rates.append(2.0 * m * k * n / s / 1e9)
    return {
        "workload": f"{m} x {k} x {n}",
        "gflops": round(statistics.median(rates), 1),
        "threads": threads,
        "impl": "pytorch",
    }


def rel(a, b):
    """Norm-wise relative error of a against the reference b."""
    return (torch.linalg.vector_norm(a - b) / max(torch.linalg.vector_norm(b).item(), 1e-30)).item()


def parity(name, directory):
    from safetensors.torch import load_file

    tensors = load_file(f"{directory}/{name}.safetensors")
    _, loss_fn, _, _ = WORKLOADS[name]
    leaves = {
        k[len("param."):]: v.clone().requires_grad_(True)
        for k, v in tensors.items()
        if k.startswith("param.")
    }
    batch = {k: v for k, v in tensors.items() if not k.startswith(("param.", "grad.", "loss"))}
    loss = loss_fn(leaves, batch)
    loss.backward()
    ours = tensors["loss"][0].item()
    # A gradient that is exactly zero in exact arithmetic (the key bias of attention: softmax
    # ignores a constant added to a whole row of scores) is rounding noise on both sides; it is
    # listed, and compared by its size against the largest gradient rather than by a ratio.
    largest = max(torch.linalg.vector_norm(v.grad).item() for v in leaves.values())
    errors, zero = {}, []
    for k, v in leaves.items():
        ours_grad = tensors[f"grad.{k}"]
        tiny = 1e-6 * largest
        if torch.linalg.vector_norm(v.grad) < tiny and torch.linalg.vector_norm(ours_grad) < tiny:
            zero.append(k)
        else:
            errors[k] = rel(ours_grad, v.grad)
    worst = max(errors, key=errors.get)
    loss_rel = abs(ours - loss.item()) / max(abs(loss.item()), 1e-30)
    ok = loss_rel <= 1e-5 and errors[worst] <= 1e-4
    return {
        "workload": name,
        "loss_rel_error": loss_rel,
        "max_grad_rel_error": errors[worst],
        "worst_tensor": worst,
        "tensors": len(errors) + len(zero),
        "zero_in_both": zero,
        "ok": ok,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", help="a workload name or `all`")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parity", metavar="DIR", default=None)
    ap.add_argument("--peak", action="store_true", help="also time two plain matrix products")
    args = ap.parse_args()
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    for n in names:
        if n not in WORKLOADS:
            sys.exit(f"error: unknown workload `{n}`: {', '.join(WORKLOADS)} or `all`")
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    failed = False
    for n in names:
        if args.parity:
            if not os.path.exists(f"{args.parity}/{n}.safetensors"):
                print(f"{n}: no parity file (the crate's bench does not build it yet)", file=sys.stderr)
                continue
            line = parity(n, args.parity)
            failed |= not line["ok"]
        else:
            line = time_workload(n, args.steps, args.warmup, threads)
        print(json.dumps(line), flush=True)
    if args.peak and not args.parity:
        print(json.dumps(peak(2048, 2048, 2048, 10, threads)))
        print(json.dumps(peak(128, 784, 256, 200, threads)), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
