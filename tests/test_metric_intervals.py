"""95% intervals where users read the metrics: ``lenshunt evaluate`` (metrics.json, its summary, the
report), the domain check (its table, its verdict, the card entries it writes) and ``lenshunt info``.

Fresh-user trial: every metric was a point value, and the domain check's verdict compared the largest
drop's point value with the goal of 0.05 while an independent-simulator set of 1000 objects had the
AUROC 0.901 [0.882, 0.919].
"""

from __future__ import annotations

import json
import shutil

import numpy as np
from cutouts import write_set
from test_inspect import write_run
from test_training import LAYOUT

from flows.cli import main
from flows.evaluate import evaluation_summary
from pipeline import paths
from pipeline.evaluation import ci_text, evaluate, evaluate_run, interval_text, read_metrics
from pipeline.store import ingest
from pipeline.training.domain_card import earlier_check
from pipeline.training.domain_intervals import auroc_draws, drop_interval
from pipeline.training.domains import DomainReport
from pipeline.training.heldout import record_metrics

IDS = list(range(650000, 650024))


def test_an_evaluation_gives_each_metric_with_its_interval_in_metrics_json_the_summary_and_the_page(
    tmp_path, dask_client
):
    labels = {object_id: object_id % 2 for object_id in IDS}  # 12 lenses, 12 non-lenses
    source = write_set(LAYOUT, tmp_path / "src", IDS, labels)
    store = tmp_path / "store.zarr"
    ingest(LAYOUT, source, store, dask_client, chunk_objects=8)
    run = write_run(store, tmp_path / "run", seed=2)  # its scores rank a non-lens above a lens
    result = evaluate_run(run, store, top_n=2)
    saved = json.loads(paths.metrics_file(run).read_text())
    metrics = read_metrics(paths.metrics_file(run))
    assert saved["ci95"]["resamples"] == 1000 and saved["auroc"] == metrics.auroc  # old keys as they were
    low, high = saved["ci95"]["auroc"]
    assert low < metrics.auroc < high and high - low > 0.1  # 24 objects: a wide interval
    line = evaluation_summary(result).splitlines()[0]
    assert line.startswith(f"metrics: auroc={result.metrics.auroc:.4g} {interval_text((low, high))}, ")
    assert f"tpr0={result.metrics.tpr0:.4g} {interval_text(metrics.ci95.tpr0)}" in line
    assert line.endswith("(at score >= 0.5, beta=1; [ ]: 95% intervals, 1000 bootstrap resamples)")
    assert "note:    only 12 labelled lenses and 12 labelled non-lenses: the 95% intervals are rough" in (
        evaluation_summary(result)
    )
    page = result.report_path.read_text()
    assert f'<span class="ci"> ({ci_text((low, high))})</span>' in page


def _set(rng: np.random.Generator, n: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.r_[np.ones(n, int), np.zeros(n, int)]
    return labels, np.r_[rng.normal(separation, 1, n), rng.normal(0, 1, n)]


def _report(sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> DomainReport:
    """A domain check's report as ``evaluate_domains`` makes it of the scored sets (the first the
    reference)."""
    return DomainReport(
        reference=next(iter(sets)),
        metrics={name: evaluate(*scored) for name, scored in sets.items()},
        auroc_draws={name: auroc_draws(*scored) for name, scored in sets.items()},
    )


def test_the_domain_check_gives_each_auroc_and_drop_an_interval_and_judges_the_goal_by_it():
    rng = np.random.default_rng(9)
    reference = _set(rng, 500, 3.0)  # AUROC 0.983
    met = _report({"indomain": reference, "noise": _set(rng, 500, 3.0)})
    assert met.verdict().endswith(": meets the goal of < 0.05, the whole interval below it.")
    missed = _report({"indomain": reference, "noise": _set(rng, 500, 3.0), "othersim": _set(rng, 500, 1.6)})
    low, high = (
        missed.card_metrics()["max_auroc_drop_ci_low"],
        missed.card_metrics()["max_auroc_drop_ci_high"],
    )
    assert 0.05 < low < missed.max_auroc_drop < high
    assert missed.verdict() == (
        f"Largest AUROC drop {missed.max_auroc_drop:.3f} (95% interval [{low:.3f}, {high:.3f}]): misses the "
        "goal of < 0.05, the whole interval above it."
    )
    # a drop near the goal on small sets: the point value alone would have decided (trial)
    small = _report({"indomain": _set(rng, 40, 3.0), "psf": _set(rng, 40, 2.1)})
    low, high = small.card_metrics()["max_auroc_drop_ci_low"], small.card_metrics()["max_auroc_drop_ci_high"]
    assert low < 0.05 <= high
    verdict = "meets" if small.max_auroc_drop < 0.05 else "misses"
    assert small.verdict().endswith(
        f"{verdict} the goal of < 0.05 by its value, but the interval reaches "
        f"{'above' if verdict == 'meets' else 'below'} it: these sets cannot tell whether the model meets "
        "it (larger sets would narrow the interval)."
    )
    table = missed.table()
    auroc = missed.metrics["othersim"].auroc
    a_low, a_high = missed.metrics["othersim"].ci95.auroc
    d_low, d_high = drop_interval(missed, "othersim")
    assert (
        f"| othersim | 1000 | 500 | {auroc:.3f} [{a_low:.3f}, {a_high:.3f}] | "
        f"{missed.auroc_drop('othersim'):.3f} [{d_low:.3f}, {d_high:.3f}] | "
    ) in table
    assert "\n[ ]: 95% intervals: a stratified bootstrap of each set" in table
    # a set too small to resample: its drop has no interval, and the verdict says why
    tiny = _report(
        {"indomain": reference, "few": (np.r_[np.ones(3, int), np.zeros(30, int)], rng.random(33))}
    )
    assert tiny.verdict().endswith(
        "the goal of < 0.05. No 95% interval of it: a set (few) has too few lenses or non-lenses to resample."
    )
    assert "max_auroc_drop_ci_low" not in tiny.card_metrics()


def test_the_card_keeps_the_intervals_and_lenshunt_info_shows_them(tmp_path, capsys):
    rng = np.random.default_rng(4)
    report = _report({"indomain": _set(rng, 300, 3.0), "othersim": _set(rng, 500, 1.8)})
    entries = report.card_metrics()
    m = report.metrics["othersim"]
    assert (entries["othersim_auroc_ci_low"], entries["othersim_auroc_ci_high"]) == m.ci95.auroc
    assert (entries["othersim_tpr0_ci_low"], entries["othersim_tpr0_ci_high"]) == m.ci95.tpr0
    assert {"indomain_tpr10_ci_low", "othersim_average_precision_ci_high", "max_auroc_drop_ci_low"} <= set(
        entries
    )
    removed = earlier_check(entries)[1]  # by the next check of the bundle
    assert {"max_auroc_drop_ci_low", "max_auroc_drop_ci_high", "othersim_auroc_ci_high"} <= set(removed)
    checked = shutil.copytree(paths.shipped_model(), tmp_path / "checked")
    card = json.loads((checked / "card.json").read_text())
    old = {key: value for key, value in card["metrics"].items() if not key.startswith(("othersim_", "max_"))}
    card["metrics"] = old  # the earlier check's othersim entries and maxima, as a re-check removes them
    (checked / "card.json").write_text(json.dumps(card))
    before = "\n".join(_info(capsys, checked))
    assert "[ ]: 95% intervals" not in before and "[0." not in before  # an older card: nothing extra
    record_metrics(checked, entries)
    lines = _info(capsys, checked)
    [othersim] = [line for line in lines if " othersim: " in line]
    low, high = m.ci95.auroc
    assert f"othersim: auroc {m.auroc:.4f} [{low:.3f}, {high:.3f}]  tpr0 {m.tpr0:.4f} [" in othersim
    assert "           [ ]: 95% intervals (stratified bootstrap of the set's lenses and non-lenses)" in lines
    randomised = next(line for line in lines if " randomised: " in line)
    assert randomised.split(";")[0].count("[") == 0  # the shipped check's, recorded without intervals


def _info(capsys, path) -> list[str]:
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_report_of_point_values_keeps_the_point_verdict():
    """A report made of metrics alone (no resamples: ``evaluate(..., resamples=0)``, no draws) says the
    point value as before, with no interval."""
    rng = np.random.default_rng(2)
    sets = {"a": _set(rng, 200, 3.0), "b": _set(rng, 200, 1.0)}
    report = DomainReport("a", {name: evaluate(*s, resamples=0) for name, s in sets.items()})
    assert report.verdict() == f"Largest AUROC drop {report.auroc_drop('b'):.3f}: misses the goal of < 0.05."
    assert "[" not in report.table() and not [key for key in report.card_metrics() if "_ci_" in key]
