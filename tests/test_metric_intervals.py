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
    old = {key: value for key, value in old.items() if "_ci_" not in key}  # as a card from before intervals
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


def test_info_lists_the_checks_reference_as_in_domain_and_the_drop_matched_in_visibility(tmp_path, capsys):
    """Review of a user trial: ``lenshunt info`` listed the domain check's reference (the shipped card's
    ``randomised``, the set every drop is from) among the shifted domains, and left out the card's
    ``max_auroc_drop_matched``. A new check marks its reference (``<domain>_is_reference``); an older
    card's is the one domain whose AUROC less the lowest other is its ``max_auroc_drop``."""
    shipped = _info(capsys, paths.shipped_model())
    [in_domain] = [line for line in shipped if line.startswith("in-domain ")]
    assert in_domain.startswith("in-domain  randomised: auroc 0.9863 [0.980, 0.992]  tpr0 0.6745")
    assert in_domain.endswith("(the domain check's reference)")
    assert not [line for line in shipped if " randomised: " in line and line != in_domain]
    unmarked = shutil.copytree(paths.shipped_model(), tmp_path / "unmarked")  # a card from before the mark
    card = json.loads((unmarked / "card.json").read_text())
    assert card["metrics"].pop("randomised_is_reference") == 1.0
    (unmarked / "card.json").write_text(json.dumps(card))
    assert [line for line in _info(capsys, unmarked) if line.startswith("in-domain ")] == [in_domain]
    at = shipped.index(next(line for line in shipped if line.startswith("max drop")))
    assert shipped[at + 1] == (
        "           auroc 0.1091 [0.080, 0.145] with each domain's lenses reweighted to the in-domain set's "
        "arc visibility (max_auroc_drop_matched): the part of the drop not due to fainter or brighter arcs"
    )
    rng = np.random.default_rng(8)
    report = _report({"indomain": _set(rng, 300, 3.0), "othersim": _set(rng, 300, 1.8)})
    entries = report.card_metrics()
    assert entries["indomain_is_reference"] == 1.0 and "othersim_is_reference" not in entries
    checked = shutil.copytree(paths.shipped_model(), tmp_path / "checked")
    card = json.loads((checked / "card.json").read_text())
    card["metrics"] = {key: value for key, value in card["metrics"].items() if key.startswith("val_")}
    (checked / "card.json").write_text(json.dumps(card))
    entries["max_auroc_drop"] = 0.0  # a mark is taken over the drop's arithmetic
    record_metrics(checked, entries)
    lines = _info(capsys, checked)
    assert [line.split(":")[0] for line in lines if line.startswith(("in-domain", "shifted"))] == [
        "in-domain  indomain",
        "shifted    othersim",
    ]


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


def test_validation_out_of_fold_and_held_out_entries_carry_their_intervals(tmp_path, capsys):
    """User trial: the card had 95% intervals for the shifted domains only; training's validation
    (``val_``), an ensemble's out-of-fold (``oof_``) and a held-out measure (``heldout_``) gave point
    values, though ``evaluate`` had bootstrapped them."""
    from pipeline.models import save_ensemble
    from pipeline.training.card_entries import card_metrics
    from pipeline.training.out_of_fold import out_of_fold_text, record_out_of_fold, write_validation_scores

    rng = np.random.default_rng(5)
    labels, scores = _set(rng, 200, 2.0)
    scores = 1 / (1 + np.exp(-scores))  # probabilities
    measured = evaluate(labels, scores)
    entries = card_metrics(measured, "val")  # as training records its validation (run.py)
    assert (entries["val_auroc_ci_low"], entries["val_auroc_ci_high"]) == measured.ci95.auroc
    assert (entries["val_tpr10_ci_low"], entries["val_average_precision_ci_high"]) == (
        measured.ci95.tpr10[0],
        measured.ci95.average_precision[1],
    )
    assert card_metrics(evaluate(labels, scores), "val") == entries  # seeded: the same set, the same ends
    from pipeline.training.card_entries import entries_text, stale_entries

    low, high = measured.ci95.auroc
    assert f"val_auroc {measured.auroc:.4f} [{low:.3f}, {high:.3f}]  val_tpr0 " in entries_text(entries)
    assert "_ci_" not in entries_text(entries)
    assert not [key for key in card_metrics(evaluate(labels, scores, resamples=0), "val") if "_ci_" in key]
    # an ensemble's pooled out-of-fold entries (k-fold members' validation scores)
    ensemble = tmp_path / "folds"
    members = [shutil.copytree(paths.shipped_model(), ensemble / name) for name in ("fold-0", "fold-1")]
    for k, member in enumerate(members):
        rows = slice(k, None, 2)
        (member / "training").mkdir(exist_ok=True)
        write_validation_scores(member / "training", np.arange(400)[rows] + 1000, labels[rows], scores[rows])
    save_ensemble(ensemble, members)
    oof = record_out_of_fold(ensemble, members)
    o_low, o_high = oof["oof_auroc_ci_low"], oof["oof_auroc_ci_high"]
    assert o_low < oof["oof_auroc"] < o_high
    assert out_of_fold_text(ensemble).startswith(
        f"oof_auroc {oof['oof_auroc']:.4f} [{o_low:.3f}, {o_high:.3f}]"
    )
    [line] = [line for line in _info(capsys, ensemble) if line.startswith("out-of-fold")]
    assert line.startswith(f"out-of-fold auroc {oof['oof_auroc']:.4f} [{o_low:.3f}, {o_high:.3f}]  tpr0 ")
    # a held-out measure replaces an earlier one's value and interval (a set too small leaves none)
    bundle = shutil.copytree(paths.shipped_model(), tmp_path / "bundle")
    record_metrics(bundle, card_metrics(measured, "heldout"))
    few = evaluate(np.r_[np.ones(3, int), np.zeros(30, int)], rng.random(33))
    record_metrics(bundle, card_metrics(few, "heldout"), remove=stale_entries("heldout"))
    assert not [
        key
        for key in json.loads((bundle / "card.json").read_text())["metrics"]
        if "heldout_" in key and "_ci_" in key
    ]


def test_info_shows_the_validation_interval_the_largest_drop_and_a_held_out_set_apart(tmp_path, capsys):
    """User trial: ``lenshunt info`` left out ``max_auroc_drop`` (the domain check's headline) and its
    interval, and listed a ``heldout_`` set, of the training simulator, among the shifted domains."""
    older = shutil.copytree(paths.shipped_model(), tmp_path / "older")  # as a card from before intervals
    card = json.loads((older / "card.json").read_text())
    card["metrics"] = {key: value for key, value in card["metrics"].items() if "_ci_" not in key}
    (older / "card.json").write_text(json.dumps(card))
    old = _info(capsys, older)  # a card without intervals: as before, no brackets
    [validation] = [line for line in old if line.startswith("validation ")]
    assert "[" not in validation.split(";")[0] and "[ ]: 95% intervals" not in "\n".join(old)
    [drop] = [line for line in old if line.startswith("max drop")]
    assert drop == (
        "max drop   auroc 0.1571 (the largest drop from the in-domain set to thirdsim, "
        "max_auroc_drop; goal < 0.05: missed by its value)"
    )
    rng = np.random.default_rng(6)
    checked = shutil.copytree(paths.shipped_model(), tmp_path / "checked")
    val, heldout = evaluate(*_set(rng, 300, 3.0)), evaluate(*_set(rng, 200, 2.5))
    from pipeline.training.card_entries import card_metrics

    entries = card_metrics(val, "val") | card_metrics(heldout, "heldout") | card_metrics(heldout, "heldout_b")
    entries |= {"max_auroc_drop_ci_low": 0.121, "max_auroc_drop_ci_high": 0.193}
    record_metrics(checked, entries)
    lines = _info(capsys, checked)
    [validation] = [line for line in lines if line.startswith("validation ")]
    low, high = val.ci95.auroc
    assert validation.startswith(f"validation auroc {val.auroc:.4f} [{low:.3f}, {high:.3f}]  tpr0 ")
    at = lines.index(validation)
    low, high = heldout.ci95.auroc
    assert lines[at + 1].startswith(f"held-out   heldout: auroc {heldout.auroc:.4f} [{low:.3f}, {high:.3f}]")
    assert lines[at + 2].startswith("           heldout_b: auroc ")
    assert lines[at + 3].startswith("in-domain  randomised: ")  # the check's reference
    assert lines[at + 4].startswith("shifted    randomised_v3: ")
    assert not [line for line in lines[at + 3 :] if "heldout" in line]
    [drop] = [line for line in lines if line.startswith("max drop")]
    assert drop == (
        "max drop   auroc 0.1571 [0.121, 0.193] (the largest drop from the in-domain set to thirdsim, "
        "max_auroc_drop; goal < 0.05: missed, the whole interval above it)"  # trial: the domain unnamed
    )
    assert "           [ ]: 95% intervals (stratified bootstrap of the set's lenses and non-lenses)" in lines
