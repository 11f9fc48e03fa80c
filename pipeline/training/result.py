"""What one training run produced (:class:`TrainResult`), and its summary for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.training.card_entries import entries_text, epoch_label

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What one training run produced: :func:`pipeline.training.train` returns it.

    Epochs are counted two ways. Keras, :attr:`history`, :attr:`best_epoch` and :attr:`own_epochs`
    count trained epochs from 0; the log (``epoch   1/3 ...``), :meth:`summary` and the card's notes
    count them from 1 and call a fine-tune's starting weights epoch 0. :attr:`logged_best_epoch` is
    :attr:`best_epoch` as the log counts it.

    Attributes
    ----------
    bundle : pathlib.Path
        The bundle folder written (``out``): give it to :func:`pipeline.scoring.score_store` or
        :func:`pipeline.models.bundle.load_bundle`.
    model_id : str
        The model id in the card (``TrainConfig.model_id``; default ``<architecture>-<UTC time>-s<seed>``).
    metrics : dict of str to float
        The card's validation metrics of the weights the bundle holds: ``val_auroc``, ``val_tpr0``,
        ``val_tpr10`` (left out with fewer than ten validation non-lenses), ``val_average_precision``,
        the counts ``val_n_pos``, ``val_n_neg``, ``val_n_unscored``, and per regression output its
        ``val_<name>_...`` measures (:mod:`pipeline.evaluation.regression`). Undefined metrics are left out.
    epochs_run : int
        Epochs trained: ``TrainConfig.epochs``, or fewer after an early stop. A fine-tune's validation
        of its starting weights is not an epoch run.
    best_epoch : int
        The trained epoch whose weights the bundle holds, counted from 0 as Keras counts: the index of
        its entry in :attr:`history`, and the log's epoch ``best_epoch + 1``. ``-1`` where the bundle
        holds no trained epoch: with :attr:`kept_start`, a fine-tune's starting weights (the log's
        "best epoch 0 (the starting weights)"); without it, no epoch had a validation value (the
        log's "best epoch none"). So with ``keep_start=False`` (or a new model), ``best_epoch == 0``
        is the log's epoch 1. :attr:`logged_best_epoch` gives the log's number.
    stopped_early : bool
        Training stopped before ``TrainConfig.epochs``: ``patience`` epochs without a gain.
    n_train, n_val : int
        Training and validation objects of the split (``training/split.json``).
    images_per_s : float
        Median over epochs of training images per second (validation time excluded).
    seconds : float
        Wall time of building, training and saving the bundle (the split and the recipe's statistics
        before it are not counted).
    history : list of dict of str to float
        One dict per trained epoch, in order: Keras's logs (``loss``, ``acc`` or ``score_acc``, ``val_loss``,
        ``val_auroc``, ``val_auroc_improved`` 1.0 where the epoch was the best so far, ``images_per_s``,
        ``train_seconds``, ``val_seconds``, ...), also in ``training/history.json``. The validation of
        a fine-tune's starting weights is not in it (``training/start.json``).
    own_epochs : dict of str to int
        Output with a trunk of its own -> the epoch its own layers were kept from, counted as
        :attr:`best_epoch` is (``-1``: the starting weights); outputs with none kept are left out.
    kept_start : bool
        A fine-tune kept its starting weights (``TrainConfig.keep_start``): no trained epoch beat them
        on the monitored validation, and :attr:`best_epoch` is ``-1``.
    warnings : list of str
        The run's warning lines (also in the log), repeated under :meth:`summary`.
    """

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
    grades: str = ""
    """What ``--grades`` gave (:func:`pipeline.training.grades.grade_line`); ``""`` without grades."""

    @property
    def logged_best_epoch(self) -> int | None:
        """The kept epoch as the log, :meth:`summary` and the card's notes number it: ``best_epoch + 1``
        for a trained epoch, 0 for a fine-tune's starting weights (:attr:`kept_start`), None where no
        epoch was kept (no validation value). Fresh-user trial: the log said "best epoch 0 (the
        starting weights)" where :attr:`best_epoch` was -1.

        Examples
        --------
        >>> kept = TrainResult(Path("m"), "m", {}, 2, -1, False, 32, 8, 20.0, 9.0, kept_start=True)
        >>> kept.best_epoch, kept.logged_best_epoch
        (-1, 0)
        """
        if self.best_epoch >= 0:
            return self.best_epoch + 1
        return 0 if self.kept_start else None

    def summary(self) -> str:
        """A few lines for logs and the CLI."""
        metrics = entries_text(self.metrics)  # each value with its 95% interval where recorded
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
            f"  validation: {metrics}" + (f"\n  {self.grades}" if self.grades else "")
        ) + "".join(f"\n  WARNING: {warning}" for warning in self.warnings)
