"""The matched drop's bootstrap: vectorised resamples against scikit-learn's weighted AUROC per resample.

:func:`pipeline.evaluation.matched_draws.matched_drop_draws` computes each resample's two matched
AUROCs (the reference's and the other set's, lenses reweighted to the reference resample's shares)
over a batch of resamples at once. The naive way computes the same two values per resample with
:func:`pipeline.evaluation.breakdown.matched_auroc` (:func:`sklearn.metrics.roc_auc_score` with
``sample_weight``) on the resampled sets. Side by side, on the same resample counts, interleaved,
``--repeats`` times (medians); the values are checked equal.

    python -m bench.bench_matched_draws --n 1000 --resamples 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.machine import record_header
from pipeline.evaluation.breakdown import VISIBILITY_EDGES, bin_fractions, matched_auroc
from pipeline.evaluation.matched_draws import MatchSet, _Matched, matched_drop_draws


def simulated(seed: int, n: int, shift: float) -> MatchSet:
    """A set with 40% lenses whose scores grow with arc visibility, sorted by score (descending)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.4).astype(int)
    values = np.where(labels == 1, np.exp(rng.uniform(np.log(25), np.log(3000), n)), np.nan)
    scores = np.where(labels == 1, 0.3 + 0.1 * np.log10(np.nan_to_num(values, nan=1)) - shift, 0.2)
    scores = np.round(scores + rng.normal(0, 0.15, n), 3)
    order = np.argsort(-scores, kind="stable")
    return MatchSet(labels[order], scores[order], values[order])


def naive(reference: MatchSet, other: MatchSet, counts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per resample: both matched AUROCs by scikit-learn on the resampled sets (``counts``: each set's
    count per object, reference first, per resample)."""
    drops = []
    for ref_counts, other_counts in counts:
        ref = [np.repeat(a, ref_counts) for a in (reference.labels, reference.scores, reference.values)]
        shares = bin_fractions(ref[0], ref[2])
        resampled = [np.repeat(a, other_counts) for a in (other.labels, other.scores, other.values)]
        drops.append(matched_auroc(*ref, shares)[0] - matched_auroc(*resampled, shares)[0])
    return np.array(drops)


def ours(reference: MatchSet, other: MatchSet, counts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The same resamples through :class:`~pipeline.evaluation.matched_draws._Matched`, all at once."""
    first, second = _Matched(reference, VISIBILITY_EDGES), _Matched(other, VISIBILITY_EDGES)

    def split(data: MatchSet, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows[:, data.labels == 1], rows[:, data.labels == 0]

    ref_rows = np.stack([c for c, _ in counts])
    other_rows = np.stack([c for _, c in counts])
    ref_auroc, shares = first.of_counts(*split(reference, ref_rows), None)
    other_auroc, _ = second.of_counts(*split(other, other_rows), shares)
    return ref_auroc - other_auroc


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="objects per set")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reference, other = simulated(1, args.n, 0.0), simulated(2, args.n, 0.15)
    rng = np.random.default_rng(0)

    def stratified(data: MatchSet) -> np.ndarray:
        counts = np.zeros(data.labels.size, dtype=np.int64)
        for label in (0, 1):
            members = np.flatnonzero(data.labels == label)
            counts[members] = np.bincount(rng.integers(0, members.size, members.size), minlength=members.size)
        return counts

    counts = [(stratified(reference), stratified(other)) for _ in range(args.resamples)]
    times: dict[str, list[float]] = {"naive": [], "ours": []}
    for _ in range(args.repeats):
        for name, function in (("naive", naive), ("ours", ours)):
            start = time.perf_counter()
            values = function(reference, other, counts)
            times[name].append(time.perf_counter() - start)
            if name == "naive":
                expected = values
            elif not np.allclose(values, expected, atol=1e-12, equal_nan=True):
                raise SystemExit("the vectorised draws differ from scikit-learn's")
    draws = matched_drop_draws(reference, other, resamples=args.resamples)
    naive_s, ours_s = statistics.median(times["naive"]), statistics.median(times["ours"])
    print(record_header("Matched drop bootstrap: vectorised against scikit-learn per resample"))
    print(f"- two sets of {args.n} objects, {args.resamples} resamples, {args.repeats} repeats (medians)")
    print(
        f"- scikit-learn per resample: {naive_s:.2f} s; vectorised: {ours_s:.3f} s; "
        f"ratio {naive_s / ours_s:.0f}x"
    )
    print(
        f"- values equal resample by resample; matched_drop_draws itself (draws included): {len(draws)} draws"
    )


if __name__ == "__main__":
    main()
