"""Train pythae's VAE the way its docs do (BaseTrainer over a BaseDataset); runs in pythae's own venv.

Usage (called by bench_vae.py): python _pythae_vae.py DATA.pt OUT.pt EPOCHS BATCH LR THREADS SEED
DATA.pt holds {"x": (N, 1, 28, 28) binary float32, "hidden": [...], "latent": L}. The script
prints one JSON line {"seconds": ..., "samples": ...} and saves the trained weights to OUT.pt
under reprlab's parameter names (the layer layout is the same), so the caller scores both
models with one NLL estimator.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import torch
from torch import nn


def main() -> None:
    data_path, out_path, epochs, batch, lr, threads, seed = sys.argv[1:8]
    torch.set_num_threads(int(threads))
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    d = torch.load(data_path)
    x, hidden, latent = d["x"], list(d["hidden"]), int(d["latent"])
    dim = x[0].numel()

    def mlp(sizes, last_act=False):
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2 or last_act:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class Encoder(BaseEncoder):  # same layout as reprlab's vae_mlp
        def __init__(self):
            super().__init__()
            self.encoder = mlp([dim, *hidden], last_act=True)
            self.to_params = nn.Linear(hidden[-1], 2 * latent)

        def forward(self, x):
            mu, logvar = self.to_params(self.encoder(x.flatten(1))).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.decoder = mlp([latent, *reversed(hidden), dim])

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.decoder(z)).view(-1, *x.shape[1:]))

    torch.manual_seed(int(seed))
    cfg = VAEConfig(input_dim=tuple(x.shape[1:]), latent_dim=latent, reconstruction_loss="bce")
    model = VAE(cfg, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as tmp:
        tcfg = BaseTrainerConfig(
            output_dir=tmp,
            num_epochs=int(epochs),
            learning_rate=float(lr),
            per_device_train_batch_size=int(batch),
            per_device_eval_batch_size=int(batch),
            seed=int(seed),
            no_cuda=True,
        )
        trainer = BaseTrainer(model=model, train_dataset=BaseDataset(x, torch.zeros(len(x))), training_config=tcfg)
        t = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t
    state = {k.split(".", 1)[1]: v for k, v in model.state_dict().items() if k.startswith(("encoder.", "decoder."))}
    torch.save(state, out_path)
    print(json.dumps({"seconds": seconds, "samples": int(epochs) * len(x)}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
