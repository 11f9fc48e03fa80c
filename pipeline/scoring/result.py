"""What a score run did (:class:`ScoreRunResult`), and its summary for the user."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec
from pipeline.rates import rate_text


def declared_outputs(outputs: tuple[OutputSpec, ...]) -> list[str]:
    """The model's declared outputs as ``name [unit] (kind)`` for the summary; none for a model whose
    only output is the default ``score``.

    >>> declared_outputs((DEFAULT_SCORE,))
    []
    """
    if tuple(outputs) == (DEFAULT_SCORE,):
        return []
    return [f"{spec.name}{f' [{spec.unit}]' if spec.unit else ''} ({spec.kind})" for spec in outputs]


@dataclass
class ScoreRunResult:
    """What a score run did."""

    out_dir: str
    store: str
    model_id: str
    n_objects: int
    n_scored: int
    n_rows_scored_now: int
    catalog_fits: str
    catalog_parquet: str
    seconds: float
    n_rows_rescored: int = 0
    seconds_read: float = 0.0
    seconds_model: float = 0.0
    flag_counts: dict[str, int] = field(default_factory=dict)
    """Objects not scored, by the flags that keep an object from being scored (UNUSABLE, SCORE_NONFINITE)."""
    input_warnings: list[str] = field(default_factory=list)
    catalog_votable: str = ""
    catalog_hats: str | None = None
    n_without_position: int = 0
    n_known_lenses: int = 0
    known_lenses: str = ""
    n_known_lenses_dropped: int = 0
    """Rows of the known-lens table left out for an unusable position."""
    known_lenses_dropped: str = ""
    """The first few names of those rows (trial: they were counted, not named)."""
    outputs: list[str] = field(default_factory=list)
    """The model's declared outputs as ``name [unit] (kind)``; empty for the default ``score``."""
    rank_by: str = "score"
    duplicates: str = ""
    """:func:`pipeline.catalog.describe_duplicates` of the catalog: objects at one sky position."""
    removed_evaluation: list[str] = field(default_factory=list)
    """The earlier catalog's metrics and report files, deleted as the run changed the catalog."""
    stale_evaluation: list[str] = field(default_factory=list)
    """Those of them that could not be deleted, each with why: they describe the earlier catalog."""
    stale_because: str = ""
    """Why the earlier evaluation no longer held, e.g. ``another threshold`` ("" when it still does)."""
    catalogs_kept: list[str] = field(default_factory=list)
    """Catalog files left as they were, holding this content already (:mod:`pipeline.catalog.digest`)."""
    catalog_date: str = ""
    """The date the catalog files record (UTC ISO 8601): when their content was first written."""
    catalog_written: tuple[str, str] = ("", "")
    """When the kept catalog files were last written (UTC ISO 8601), and by which command where it was
    not a score run (``lenshunt inspect --apply``, applying grades), else ""
    (:attr:`pipeline.catalog.CatalogPaths.kept_written`)."""
    threshold: float = 0.5
    """The score threshold recorded in the catalog (given, or the folder's earlier run's)."""
    threshold_taken: str = ""
    model_taken: str = ""
    known_taken: str = ""
    """What the summary says of a known-lens table or radius taken from the folder's earlier run."""
    """``--threshold X as the earlier score run in OUT`` where the run took it from there, else ""."""
    n_pending: int = 0
    """Objects an interrupted ingest of the store planned and did not commit, which the run does not
    score (-1: some, its plan unreadable); :func:`pipeline.store.summary.pending_plan`."""
    pending_source: str = ""
    """The source that ingest reads them from."""
    pending_writer: str = ""
    """Who held the store's writer lock as the run began (the ingest still writing them, in
    :func:`pipeline.store.lock.store_writer_elsewhere`'s words), "" where none did (interrupted)."""
    notes: list[str] = field(default_factory=list)
    """What the user may not expect of the run: the workers scored under another Keras backend than
    this process is set to (:func:`pipeline.compute.worker_backend_note`), the model is one member of
    an ensemble (:func:`pipeline.models.member_note`)."""

    def kept_line(self) -> str:
        """Which catalog files this run kept as they were, and which it wrote ("" when none was kept).

        The time is when the kept files were last written; where a command other than a score run
        wrote them (``lenshunt inspect --apply``, which keeps the catalog's date), it is named with
        the time the content was scored (trial: the score run's time was given as when they were
        written, an hour before the grades were applied).

        >>> ScoreRunResult("o", "s", "m", 1, 1, 0, "o/catalog.fits", "o/catalog.parquet", 1.0,
        ...     catalog_votable="o/catalog.vot", catalogs_kept=["catalog.fits", "catalog.vot"],
        ...     catalog_date="2026-01-02T03:04:05Z").kept_line()  # doctest: +NORMALIZE_WHITESPACE
        'catalog unchanged: kept catalog.fits, catalog.vot as written at 2026-01-02T03:04:05Z;
         wrote catalog.parquet (missing, damaged or from before content digests)'
        >>> ScoreRunResult("o", "s", "m", 1, 1, 0, "o/catalog.fits", "o/catalog.parquet", 1.0,
        ...     catalogs_kept=["catalog.fits", "catalog.parquet"], catalog_date="2026-01-02T03:04:05Z",
        ...     catalog_written=("2026-01-02T05:00:00Z", "lenshunt inspect --apply"),
        ... ).kept_line()  # doctest: +NORMALIZE_WHITESPACE
        'catalog unchanged: kept catalog.fits, catalog.parquet as written at 2026-01-02T05:00:00Z by
         lenshunt inspect --apply (scored at 2026-01-02T03:04:05Z)'
        """
        if not self.catalogs_kept:
            return ""
        files = [self.catalog_fits, self.catalog_parquet, self.catalog_votable, self.catalog_hats or ""]
        names = [Path(path).name for path in files if path]
        wrote = [name for name in names if name not in self.catalogs_kept]
        at, by = self.catalog_written
        when = f"{at} by {by} (scored at {self.catalog_date})" if at and by else at or self.catalog_date
        line = f"catalog unchanged: kept {', '.join(self.catalogs_kept)} as written at {when}"
        if wrote:
            line += f"; wrote {', '.join(wrote)} (missing, damaged or from before content digests)"
        return line

    def pending_line(self) -> str:
        """What an interrupted or running ingest left unscored, and what to do ("" when none is pending).

        >>> ScoreRunResult("o", "s", "m", 1, 1, 0, "c.fits", "c.parquet", 1.0, n_pending=700,
        ...     pending_source="cutouts").pending_line()  # doctest: +NORMALIZE_WHITESPACE
        'an interrupted ingest planned 700 more objects, not committed yet, which this run does not
         score: rerun `lenshunt ingest cutouts s` to finish it, then score again'
        """
        from pipeline.store.summary import pending_warning

        plan = (self.n_pending, self.pending_source)
        return pending_warning(
            self.store, "which this run does not score", "score again", plan, self.pending_writer
        )

    @property
    def objects_per_second(self) -> float:
        return self.n_rows_scored_now / self.seconds if self.seconds > 0 else 0.0

    def rate_text(self) -> str:
        """The pace of the rows processed now (:func:`pipeline.rates.rate_text`; trial: a rerun of a
        few objects said ``0 objects/s``).

        >>> ScoreRunResult("o", "s", "m", 4, 4, 3, "c.fits", "c.parquet", 2.5).rate_text()
        '1.2 objects/s over 2.5 s'
        >>> ScoreRunResult("o", "s", "m", 4, 4, 0, "c.fits", "c.parquet", 2.5).rate_text()
        'took 2.5 s'
        """
        return rate_text(self.n_rows_scored_now, self.seconds)

    def summary(self, *, evaluated_next: bool = False) -> str:
        """What the run did, for the user: a few lines.

        ``evaluated_next`` (the end-to-end run, which evaluates the catalog right after) leaves out
        the advice to run ``lenshunt evaluate`` for the evaluation this run removed.
        """
        again = (
            f" (of which {self.n_rows_rescored} again: objects an ingest rewrote or the store lost since, "
            "with the rest of their score part where that costs no more passes)"
            if self.n_rows_rescored
            else ""
        )
        lines = [
            f"score {self.store} with {self.model_id}: {self.n_rows_scored_now} rows processed now{again} "
            f"({self.rate_text()}), {self.n_scored}/{self.n_objects} scored in all",
            f"  catalog: {self.catalog_fits}",
            f"           {self.catalog_parquet}",
        ]
        if self.catalog_votable:
            lines.append(f"           {self.catalog_votable}")
        if self.catalog_hats:
            lines.append(f"           {self.catalog_hats} (HATS, lsdb.read_hats)")
        if self.catalogs_kept:
            lines.append(f"  {self.kept_line()}")
        taken = "; ".join(t for t in (self.model_taken, self.known_taken, self.threshold_taken) if t)
        if taken and not evaluated_next:  # the run's summary says it with the others
            lines.append(f"  options: {taken}")
        if self.outputs:
            lines.append(f"  outputs: {', '.join(self.outputs)}; ranked by {self.rank_by}")
        if self.n_without_position:
            lines.append(f"  {self.n_without_position} objects have no sky position: not in the HATS catalog")
        if self.known_lenses:
            lines.append(f"  {self.n_known_lenses} objects match a known lens of {self.known_lenses}")
        if self.n_known_lenses_dropped:  # trial: rows of impossible positions were left out unsaid
            named = f" (e.g. {self.known_lenses_dropped})" if self.known_lenses_dropped else ""
            lines.append(
                f"  WARNING: {self.n_known_lenses_dropped} rows of the known-lens table{named} have no "
                "usable position (finite ra in [-180, 360] and dec in [-90, 90] degrees) and match nothing"
            )
        if self.duplicates:
            lines.append(f"  {self.duplicates}: the same galaxies under several ids? Every row is kept")
        if self.n_scored < self.n_objects:  # new-user trial: "0/40 scored" said nothing of why
            why = ", ".join(f"{k} {n}" for k, n in sorted(self.flag_counts.items()) if k != "NOT_SCORED")
            lines.append(f"  WARNING: {self.n_objects - self.n_scored} objects not scored; by flag: {why}")
        lines.extend(f"  WARNING: {warning}" for warning in self.input_warnings)
        lines.extend(f"  note: {note}" for note in self.notes)
        if self.n_pending:  # new-user trial: a store half-written by a killed ingest was scored unsaid
            lines.append(f"  WARNING: {self.pending_line()}")
        if self.removed_evaluation and not evaluated_next:
            lines.append(
                f"  removed the earlier evaluation ({', '.join(self.removed_evaluation)}), as "
                f"{self.stale_because or 'the catalog changed'}; "
                f"`lenshunt evaluate {self.out_dir} --store {self.store}` makes it again"
            )
        lines.extend(
            f"  WARNING: {stale}: it describes the earlier catalog; remove it, or run lenshunt evaluate"
            for stale in self.stale_evaluation
        )
        return "\n".join(lines)
