"""pytorch-adapt's DANN on the data and initial weights written by bench_adaptation.py.

Runs inside the peer's own venv (benchmarks/.venv-pytorch-adapt): it imports neither reprlab
nor anything reprlab needs. Usage: python _adapt_peer.py WORKDIR; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn


def build(cfg: dict) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The same G (features), C (head) and D (discriminator) layout as reprlab's da_dann."""
    c, h, w = cfg["input_shape"]
    layers: list[nn.Module] = []
    for ch in cfg["channels"]:
        layers += [nn.Conv2d(c, ch, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = ch, h // 2, w // 2
    G = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, cfg["feature_dim"]), nn.ReLU())
    C = nn.Linear(cfg["feature_dim"], cfg["num_classes"])
    D = nn.Sequential(
        nn.Linear(cfg["feature_dim"], cfg["disc_hidden"]),
        nn.ReLU(),
        nn.Linear(cfg["disc_hidden"], 1),
        nn.Flatten(start_dim=0),
    )
    return G, C, D


def main(work: Path) -> None:
    from pytorch_adapt.hooks import DANNHook

    torch.set_num_threads(int(json.loads((work / "cfg.json").read_text())["threads"]))
    cfg = json.loads((work / "cfg.json").read_text())
    data = torch.load(work / "data.pt", weights_only=True)
    init = torch.load(work / "init.pt", weights_only=True)
    G, C, D = build(cfg)
    # reprlab's parameter names: features.*, head.*, criterion.discriminator.*
    G.load_state_dict({k[len("features.") :]: v for k, v in init.items() if k.startswith("features.")})
    C.load_state_dict({k[len("head.") :]: v for k, v in init.items() if k.startswith("head.")})
    D.load_state_dict(
        {k[len("criterion.discriminator.") :]: v for k, v in init.items() if k.startswith("criterion.discriminator.")},
        strict=False,
    )
    models = {"G": G, "C": C, "D": D}
    opts = [torch.optim.Adam(m.parameters(), lr=cfg["lr"]) for m in models.values()]
    hook = DANNHook(opts=opts)
    xs, ys, xt = data["x_s"], data["y_s"], data["x_t"]
    bs, steps = cfg["batch"], cfg["steps"]
    g = torch.Generator().manual_seed(cfg["seed"])
    order_s = torch.cat([torch.randperm(len(xs), generator=g) for _ in range(-(-steps * bs // len(xs)) + 1)])
    order_t = torch.cat([torch.randperm(len(xt), generator=g) for _ in range(-(-steps * bs // len(xt)) + 1)])
    for m in models.values():
        m.train()
    t0 = time.perf_counter()
    for i in range(steps):
        i_s, i_t = order_s[i * bs : (i + 1) * bs], order_t[i * bs : (i + 1) * bs]
        batch = {
            "src_imgs": xs[i_s],
            "src_labels": ys[i_s],
            "target_imgs": xt[i_t],
            "src_domain": torch.zeros(len(i_s)),
            "target_domain": torch.ones(len(i_t)),
        }
        hook({**models, **batch})
    seconds = time.perf_counter() - t0
    G.eval(), C.eval()
    with torch.no_grad():
        pred = torch.cat([C(G(x)).argmax(1) for x in data["x_test"].split(2048)])
    acc = float((pred == data["y_test"]).float().mean())
    print(json.dumps({"target_acc": acc, "seconds": seconds, "samples_per_s": steps * bs / seconds}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
