"""What one training run produced (:class:`TrainResult`), and its summary for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.training.card_entries import epoch_label, metric_text

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What one training run produced."""

    bundle: Path
    model_id: str
    metrics: dict[str, float]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    n_train: int
    n_val: int
    images_per_s: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    own_epochs: dict[str, int] = field(default_factory=dict)
    """Output with its own trunk -> the epoch its layers were kept from (``pipeline.training.own_epochs``)."""
    kept_start: bool = False  # a fine-tune kept its starting weights: no trained epoch beat them
    warnings: list[str] = field(default_factory=list)
    """The run's warning lines, repeated under the summary (fresh-user trial: said in the log alone)."""

    def summary(self) -> str:
        """A few lines for logs and the CLI."""
        metrics = "  ".join(metric_text(name, value) for name, value in self.metrics.items())
        stop = "early stop" if self.stopped_early else "all epochs"
        own = "".join(
            f" ({name}'s own layers: epoch {epoch_label(epoch)})"
            for name, epoch in self.own_epochs.items()
            if epoch != self.best_epoch
        )
        best = epoch_label(self.best_epoch, start=self.kept_start)
        if self.kept_start:  # user trial: what to do was not said
            best += (
                ": no trained epoch beat them on the monitor's validation (--no-keep-start keeps the "
                "best trained epoch instead)"
            )
        return (
            f"model {self.model_id} -> {self.bundle}\n"
            f"  {self.n_train} training / {self.n_val} validation objects; {self.epochs_run} "
            f"epoch{'s' * (self.epochs_run != 1)} ({stop}), best epoch {best}{own}; "
            f"{self.images_per_s:.0f} training images/s; {self.seconds:.0f} s\n"
            f"  validation: {metrics}"
        ) + "".join(f"\n  WARNING: {warning}" for warning in self.warnings)
