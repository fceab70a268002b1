"""Callbacks that the commands attach to the engine (the engine itself runs none of them by default)."""

from __future__ import annotations

from .engine import Callback


class SampleGrid(Callback):
    """After each epoch, a generative model's images from fixed noise (its ``fixed_grid()``) go to
    RUN/samples/epoch_NNN.png, so a run's progress can be watched."""

    def on_epoch_end(self, trainer, model, epoch, metrics) -> None:
        if trainer.run_dir is None or not trainer.fabric.is_global_zero:
            return
        from ..plots import image_grid

        folder = trainer.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        image_grid(model.fixed_grid(), folder / f"epoch_{epoch + 1:03d}.png", title=f"epoch {epoch + 1}")


__all__ = ["SampleGrid"]
