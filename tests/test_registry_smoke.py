"""Every registered model: builds with defaults, runs forward/loss, one engine step changes its
weights, and its weights round-trip through safetensors with identical outputs."""

import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.registry import create_model, list_models
from reprlab.train.checkpoint import apply_weights, load_weights, save_weights
from reprlab.train.engine import Trainer, seed_everything

# smaller-than-default sizes where the defaults would make this test slow
SMOKE_OVERRIDES: dict[str, dict] = {}


def _outputs(model, batch):
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.eval_step(batch) if hasattr(model, "eval_step") else model.loss(batch)
    return {k: v.detach().clone() for k, v in out.items()}


@pytest.mark.parametrize("name", list_models())
def test_model_smoke(name, tmp_path):
    seed_everything(0)
    model = create_model(name, **SMOKE_OVERRIDES.get(name, {}))
    batch = model.example_batch(8, torch.Generator().manual_seed(0))
    out = _outputs(model, batch)
    assert "loss" in out and all(torch.isfinite(v).all() for v in out.values())

    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    Trainer(TrainerConfig(epochs=1, max_steps=1, batch_size=8, progress=False, tensorboard=False)).fit(
        model, TensorBatches(batch, 8, shuffle=False)
    )
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, f"{name}: one training step changed no weights"

    save_weights(tmp_path / "m.safetensors", model)
    twin = create_model(name, **SMOKE_OVERRIDES.get(name, {}))
    apply_weights(twin, load_weights(tmp_path / "m.safetensors"), "test")
    a, b = _outputs(model, batch), _outputs(twin, batch)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{name}: {k} differs after a save/load round trip"
