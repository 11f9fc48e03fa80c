"""``lenshunt inspect RUN_DIR``: grade a run's candidates by eye on a local page, and use the grades.

Serves one page on 127.0.0.1 (no build step, nothing from the internet) that shows the
candidates of the run in ``--order`` (score, uncertainty for active learning, random for an
unbiased sample, or ood: by score with those unlike the training set last), each with its colour
composite, band panels, score, spread, flags, ``ood_score`` (UNLIKE_TRAINING above 1) and
known-lens match. Keys grade: A sure lens, B probable, C possible, X not a lens, S skip; the left
arrow or Backspace goes back. Each grade is saved to ``RUN_DIR/grades/<inspector>.jsonl`` before
the page moves on (nothing is lost if the browser or the server dies). Without serving:

* ``--export``: the latest grades of all inspectors to ``grades/grades.parquet`` and ``.fits``;
* ``--apply``: the grade consensus into the run's catalogs (columns ``grade_n``, ``grade_mean``,
  ``grade_std``, ``grade_mode``, ``grade_agreement``) and the inspectors' comments
  (``grade_comments``: ``name: text`` joined by `` | ``);
* ``--select N``: the next N objects of ``--order`` that the inspector (``--inspector`` or
  ``$USER``) has not graded to ``grades/selection-<inspector>-<order>.csv`` (object_id, ra, dec,
  score, rank, and ood_score where the catalog has it);
* ``--compare BEFORE_RUN``: what fine-tuning on BEFORE_RUN's grades changed in this run.

Examples
--------
::

    lenshunt inspect runs/demo/score --inspector ann            # grade by score
    lenshunt inspect runs/demo/score --order uncertainty         # the next active-learning round
    lenshunt inspect runs/demo/score --order ood                 # UNLIKE_TRAINING candidates last
    lenshunt inspect runs/demo/score --apply                     # consensus into the catalog
    lenshunt train runs/sim.zarr runs/models/round1 --init runs/models/demo --grades runs/demo/score
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from pipeline import paths
from pipeline.inspection import (
    ORDERS,
    GradeError,
    InspectError,
    InspectSession,
    apply_grades,
    export_grades,
    grade_notes,
    graded_run_rewrites,
    make_server,
    read_grades,
    round_change,
    round_grade_labels,
    round_lines,
    round_model_notes,
    server_url,
)
from schemas.catalog import Provenance

USES_PREFECT = False  # a local web page; no flow runs
WRITES_IN = "run_dir"  # its grades; a full disk's error names it (flows.cli)
HELP = "grade a run's candidates by eye on a local page (A/B/C/X), and apply or export the grades"


def consensus_line(summary: dict) -> str:
    """One line of :func:`~pipeline.inspection.apply_grades`' summary (``12 objects graded (...)``)."""
    grades = ", ".join(f"{grade} {summary[f'n_{grade}']}" for grade in ("A", "B", "C", "X"))
    line = f"{summary['n_graded']} object{'s' * (summary['n_graded'] != 1)} graded (modal grade: {grades}"
    if summary.get("n_ties"):  # trial: X vs A counted as an A
        line += f"; {summary['n_ties']} of them a tie, the lower grade taken"
    line += ")"
    if summary["n_multiple"]:
        line += (
            f"; {summary['n_multiple']} by several inspectors, {summary['n_unanimous']} of them unanimous, "
            f"mean agreement {summary['mean_agreement']:.2f}"
        )
    else:
        line += "; none by more than one inspector yet"
    if summary.get("n_commented"):  # a skip's comment too: an object can have one and no grade
        n = summary["n_commented"]
        line += f"; {n} object{'s' * (n != 1)} with inspectors' comments (column grade_comments)"
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="output directory of a score run (holds catalog.parquet)")
    parser.add_argument(
        "--inspector",
        default=None,
        help="your name in the grade table; serving and --select need one (default: $USER)",
    )
    parser.add_argument(
        "--store", type=Path, default=None, help="the store that was scored (default: the catalog's)"
    )
    parser.add_argument(
        "--order",
        choices=ORDERS,
        default="score",
        help="candidate order (default score); ood: by score, the candidates unlike the training set "
        "(UNLIKE_TRAINING, ood_score > 1) after all others (needs a catalog with ood_score)",
    )
    parser.add_argument(
        "--seed", type=_int_from(0), default=0, help="seed of --order random (an integer >= 0; default 0)"
    )
    parser.add_argument("--regrade", action="store_true", help="also show objects you graded before")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to serve on, 127.0.0.1 or ::1 (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=_int_from(0, 65535),
        default=8765,
        help="port to serve the page on, 0-65535 (default 8765; 0: any free port)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--export", action="store_true", help="write grades.parquet and grades.fits, exit")
    actions.add_argument("--apply", action="store_true", help="write the grade consensus into the catalogs")
    actions.add_argument(
        "--select",
        type=_int_from(1),
        metavar="N",
        default=None,
        help="write the next N (>= 1) objects of --order that --inspector (or $USER) has not graded "
        "(object_id, ra, dec, score, rank) to a CSV",
    )
    actions.add_argument("--compare", type=Path, metavar="BEFORE_RUN", default=None, help="report a round")


def _int_from(low: int, high: int | None = None):
    """An argparse type: an integer in ``low..high`` (no upper end without ``high``)."""
    span = f"{low}..{high}" if high is not None else f">= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer (give one {span})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: give an integer {span}")
        return value

    parse.__name__ = f"integer {span}"
    return parse


def check(args: argparse.Namespace) -> None:
    from flows.preflight import score_run_directory

    score_run_directory(args.run_dir, "score run directory")
    if not args.export and not paths.catalog_parquet(args.run_dir).is_file():  # a stopped score run's
        from pipeline.scoring import unfinished_run

        if (hint := unfinished_run(args.run_dir)) is not None:
            raise InspectError(f"{args.run_dir} has no catalog.parquet: {hint}")
    if args.compare is not None:
        score_run_directory(args.compare, "score run directory to compare with")


def inspector_name(args: argparse.Namespace) -> str:
    name = args.inspector or os.environ.get("USER") or os.environ.get("LOGNAME")
    if not name:  # trial: --select said only this, as if it needed no inspector
        why = (
            "--select leaves out the objects that inspector graded"
            if args.select is not None
            else "the page saves the grades under that name"
        )
        raise InspectError(f"no inspector name: give --inspector NAME (or set $USER): {why}")
    return name


def run(args: argparse.Namespace) -> int:
    if args.export:
        rows = read_grades(args.run_dir)  # trial: skipped lines unsaid; a crash on a bad id
        if rows.empty and not paths.catalog_parquet(args.run_dir).is_file():  # trial: empty tables written
            from pipeline.scoring import unfinished_run

            hint = unfinished_run(args.run_dir) or "grade its catalog first"
            raise InspectError(f"{args.run_dir} has no catalog.parquet and no grades to export: {hint}")
        parquet, fits_path = export_grades(args.run_dir, store=args.store, rows=rows)
        print(f"grades: {parquet}\n        {fits_path}")
        _warn(grade_notes(rows))
        return 0
    if args.apply:
        summary = apply_grades(args.run_dir, store=args.store)
        if not summary.get("applied", True):  # trial: rewritten with "0 objects graded"
            print(
                f"no grades yet: catalog {args.run_dir} left as it is "
                f"(grade with `lenshunt inspect {args.run_dir}` first)"
            )
            _warn(summary["notes"])
            return 0
        print(f"catalog {args.run_dir} now has the grade consensus: {consensus_line(summary)}")
        report = paths.report_dir(args.run_dir) / paths.REPORT_FILE
        if report.is_file():  # trial: its Visual grades section was not the catalog's, without a word
            print(
                f"  its report {report} shows the grades of its last evaluation: `lenshunt evaluate` "
                "updates it"
            )
        _warn([summary.get("outdated_note"), summary.get("unknown_note"), *summary.get("notes", [])])
        return 0
    if args.compare is not None:
        return _compare(args)
    session = InspectSession.open(
        args.run_dir,
        inspector_name(args),
        store=args.store,
        order=args.order,
        seed=args.seed,
        regrade=args.regrade,
    )
    if session.n_bad_lines:  # which and why (trial: a damaged line was called torn by a kill)
        _warn(grade_notes(read_grades(session.log.path)))
    if session.n_rewritten:  # trial: a repaired band was shown as missing, a new damage not at all
        print(
            f"lenshunt inspect: warning: {session.n_rewritten} object(s) were re-read from changed files "
            "since this run was scored: their images are new, their scores and flags are not; score "
            "into the same --out again first",
            file=sys.stderr,
        )
    if session.n_outdated:  # trial: grades of images an ingest replaced counted as made on the new ones
        print(
            f"lenshunt inspect: warning: {session.n_outdated} of your grades were made before an ingest "
            "re-read their objects' images (band files replaced or arrived late): they no longer count, "
            "and the page offers those objects again",
            file=sys.stderr,
        )
    if args.select is not None:
        return _select(args, session)
    try:
        server = make_server(session, args.host, args.port)
    except BaseException:
        session.log.close()
        raise
    url = server_url(server)
    previous = signal.signal(signal.SIGTERM, _stop)  # before the URL: a SIGTERM then stops cleanly
    try:
        print(
            f"lenshunt inspect: {_queue_text(session)} by {args.order} for "
            f"{session.log.inspector} at {url}\n  grades go to {session.log.path}; {stop_hint()}"
            + ("" if len(session.queue) else f"\n  nothing to grade: {_why_empty(session)}"),
            flush=True,
        )
        if args.open:
            import webbrowser

            webbrowser.open(url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        session.log.close()
    who = session.log.inspector
    try:
        rows = read_grades(args.run_dir)
    except GradeError as error:  # e.g. logs of names differing only in case: this one's grades are saved
        print(f"lenshunt inspect: stopped; {session.counted()} by {who} in {session.log.path}")
        _warn([f"the grades table was not written: {error}"])
        return 0
    parquet, _ = export_grades(args.run_dir, store=args.store, rows=rows)
    print(f"lenshunt inspect: stopped; {session.counted()} by {who}; table {parquet}")
    _warn(grade_notes(rows))  # every inspector's logs, as --export says them
    return 0


def _warn(notes: list[str | None]) -> None:
    """Print each note (None left out) as one warning line on stderr."""
    for note in notes:
        if note:
            print(f"lenshunt inspect: warning: {note}", file=sys.stderr)


def _why_empty(session: InspectSession) -> str:
    """Why the queue is empty, as the page says it (trial: "0 candidates" alone)."""
    counts = session.counts()
    if counts["n_skipped"]:  # a skip is no grade
        return (
            f"you have graded or skipped all {len(session.my_grades)} of its candidates "
            f"({session.counted()}; --regrade shows them again)"
        )
    if session.my_grades:
        return f"you have graded all {len(session.my_grades)} of its candidates (--regrade shows them again)"
    return "no object of this run has a score (its catalog's flags and report say why)"


def stop_hint() -> str:
    """How to stop this server, as its start line says it: Ctrl-C only where SIGINT reaches it.

    A job started in the background from a script (``lenshunt inspect RUN &``) inherits an ignored
    SIGINT from the shell (trial: "Ctrl-C stops" was printed, and Ctrl-C did nothing); SIGTERM
    stops it either way, and the grades table is exported.
    """
    kill = f"`kill {os.getpid()}` (SIGTERM)"
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        return f"stop it with {kill}: SIGINT (Ctrl-C) is ignored here (started in the background)"
    return f"Ctrl-C or {kill} stops it"


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C: the grades table is exported


SELECTION_COLUMNS = ("object_id", "ra", "dec", "score", "rank")
"""Columns of a ``--select`` list, from the run's catalog (trial: object ids alone said nothing), and
``ood_score`` where the catalog has one."""


def _select(args: argparse.Namespace, session: InspectSession) -> int:
    ids = session.queue[: args.select]
    # one file per inspector (trial: bob's selection-score.csv replaced ann's without a word)
    path = session.log.path.parent / f"selection-{session.log.inspector}-{args.order}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [*SELECTION_COLUMNS, *(name for name in ("ood_score",) if name in session.catalog.columns)]
    session.catalog.loc[ids, columns].to_csv(path, index=False)
    print(f"{len(ids)} objects by {args.order} (not yet graded by {session.log.inspector}): {path}")
    session.log.close()
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pipeline.catalog import read_catalog

    path = args.run_dir / "grade-round.json"
    with contextlib.suppress(OSError):  # a read-only run: said below, once the round is printed
        path.unlink(missing_ok=True)  # an earlier comparison's, not left as this one's if it fails (trial)
    before, after = read_catalog(args.compare), read_catalog(args.run_dir)
    recorded = [Provenance.model_validate(table.attrs["provenance"]) for table in (before, after)]
    grades = read_grades(args.compare)
    rewritten = graded_run_rewrites(args.compare, recorded[0])  # trial: outdated grades counted
    trained, grade_notes = round_grade_labels(recorded[1], grades, args.compare, rewritten)
    change = round_change(before, after, grades, labels=trained, rewritten=rewritten)
    change["before_run"] = str(Path(args.compare).resolve())  # trial: which run it compared with
    change["models"], model_notes = round_model_notes(*recorded)
    change["notes"] = [*model_notes, *grade_notes, *change["notes"]]
    for note in change["notes"]:  # trial: a round that kept its starting weights was not said
        print(f"lenshunt inspect: warning: {note}", file=sys.stderr)
    print("\n".join(round_lines(change)))  # words, not the JSON (trial)
    try:
        path.write_text(json.dumps(change, indent=2, allow_nan=False) + "\n")  # JSON (trial: bare NaN)
    except OSError as error:  # trial: a run shared read-only printed nothing of the round
        stale = " (an earlier comparison's file is left there, not this one's)" if path.is_file() else ""
        print(
            f"lenshunt inspect: warning: {path} not written ({error.strerror or error}){stale}: the "
            "lines above are the round; copy the run somewhere writable for the file",
            file=sys.stderr,
        )
        return 0
    print(f"every number, the notes and both models: {path}")
    return 0


def _queue_text(session: InspectSession) -> str:
    """How many objects the page offers, and how many of them are candidates by the threshold the
    report uses: its latest evaluation's, else the score run's (trial: "200 candidates by score" said
    of every scored object, where the report said 78; then 0 by the score run's 0.5 where the report,
    after ``evaluate --threshold 0.4``, said 4)."""
    from pipeline.catalog import read_provenance
    from pipeline.errors import LenshuntError
    from pipeline.evaluation import earlier_options

    count = f"{len(session.queue)} object{'' if len(session.queue) == 1 else 's'} to grade"
    if "score" not in session.catalog.columns:
        return count
    try:
        threshold = earlier_options(session.run_dir, ["threshold"]).get("threshold")
    except LenshuntError:  # a damaged evaluation.json: the score run's (evaluate says what is wrong)
        threshold = None
    if threshold is None:
        threshold = read_provenance(paths.catalog_parquet(session.run_dir)).threshold
    offered = session.catalog["object_id"].isin(session.queue)  # the queue holds object ids
    scores = session.catalog.loc[offered, "score"].to_numpy(dtype=float)
    n_candidates = int((scores >= threshold).sum())
    return f"{count} ({n_candidates} candidate{'' if n_candidates == 1 else 's'}, score >= {threshold:g})"
