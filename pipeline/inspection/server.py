"""The grading page's local web server: Python's ``http.server``, on the loopback interface only.

One static page (``static/inspect.html``, plain HTML and JavaScript, no build step and nothing
fetched from the internet) talks to four JSON endpoints:

==========================  ====================================================================
``GET /api/session``        inspector, order, run, panels, number of candidates, first ungraded
``GET /api/candidates``     ``?start=i&n=k``: k candidates of the queue from position i, each with
                            score, spread, rank, flags (and each band's, ``band_flags``), known-lens
                            match and this inspector's grade
``POST /api/grade``         ``{"object_id": id, "grade": "A"}``: saved (fsync) before the reply
``GET /img/<id>/<panel>``   PNG of the composite (``composite``) or one band, drawn on demand
==========================  ====================================================================

The server binds 127.0.0.1 (or ::1) only and refuses requests whose ``Host`` header names
another host (a web page elsewhere cannot reach it by DNS rebinding); a grade must be posted as
``application/json``, which a cross-site form cannot send without the browser asking first.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from pipeline.errors import LenshuntError
from pipeline.evaluation.grades import (
    GRADES,
    GradeError,
    GradeLog,
    check_grade,
    empty_grades,
    grades_dir,
    latest_grades,
    read_grades,
)
from pipeline.evaluation.outdated import split_outdated, store_rewrites
from pipeline.evaluation.outputs_view import output_caption
from pipeline.flags import UNUSABLE, describe, documentation
from pipeline.inspection.images import ObjectImages, UnknownObjectError
from pipeline.inspection.queue import candidate_order
from pipeline.inspection.rewrites import RewriteWatch, rewritten_since_scored
from pipeline.models.outputs import DEFAULT_SCORE, OutputSpec
from schemas.catalog import band_flags_column

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_BATCH = 200
MAX_BODY = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class InspectError(LenshuntError, ValueError):
    """The inspection cannot start: not a scored run, no store, a non-loopback host."""


@dataclass
class InspectSession:
    """What one inspection serves: the queue, the catalog rows, the images and the grade log."""

    run_dir: Path
    catalog: pd.DataFrame
    queue: np.ndarray
    images: ObjectImages
    log: GradeLog
    order: str
    model_id: str
    my_grades: dict[int, str] = field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()
    """The model's declared outputs shown beside the score (e.g. ``theta_e``)."""
    n_bad_lines: int = 0
    """Unreadable lines (torn by a kill) of this inspector's log, skipped."""
    band_flag_columns: dict[str, str] = field(default_factory=dict)
    """Band -> its ``flags_<band>`` column, in the store's band order, for the bands the catalog has
    one of (none in a catalog written before these columns existed)."""
    n_rewritten: int = 0
    """Objects an ingest re-read into the store (changed files) since the run was scored: their
    images are new, their scores and flags are not (:func:`rewritten_since_scored`)."""
    watch: RewriteWatch | None = None
    """Which objects an ingest rewrote after the page opened (their grades are refused)."""
    n_outdated: int = 0
    """This inspector's grades made before an ingest re-read their objects' images: not counted as
    graded, so the queue offers those objects again (:mod:`pipeline.evaluation.outdated`)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        inspector: str,
        *,
        store: str | Path | None = None,
        order: str = "score",
        seed: int = 0,
        regrade: bool = False,
    ) -> InspectSession:
        """The session of ``inspector`` on the run in ``run_dir`` (store: the one it scored)."""
        from pipeline.catalog import check_same_store, read_catalog, read_provenance, run_store
        from pipeline.catalog.columns import table_layout
        from pipeline.paths import catalog_parquet
        from pipeline.store import read_attributes

        run_dir = Path(run_dir)
        if not catalog_parquet(run_dir).is_file():
            raise InspectError(
                f"{run_dir} has no catalog.parquet: give the output directory of `lenshunt score` or "
                "`lenshunt run`"
            )
        catalog = read_catalog(catalog_parquet(run_dir))
        provenance = read_provenance(catalog_parquet(run_dir))
        store = Path(store or run_store(run_dir, provenance))  # a copy beside the run first
        if not store.exists():
            raise InspectError(
                f"the store {store} that {run_dir} scored is not there; give its new place with --store"
            )
        # the run's object ids name objects of the store it scored only: refuse another set's images
        check_same_store(provenance, store, read_attributes(store).created, run=str(run_dir))
        log = GradeLog(grades_dir(run_dir), inspector)
        mine = read_grades(log.path) if log.path.is_file() else empty_grades()
        n_bad_lines = int(mine.attrs["n_bad_lines"])
        # grades of images an ingest has replaced since no longer count: those objects are offered again
        mine, outdated = split_outdated(latest_grades(mine), store_rewrites(store))
        my_grades = dict(zip(mine["object_id"].tolist(), mine["grade"].tolist()))
        queue = candidate_order(catalog, order, seed=seed, exclude=() if regrade else my_grades)
        images = ObjectImages(store)
        if not band_flag_columns(catalog, images.layout.band_names):  # scored before it had them (review)
            catalog = catalog.join(store_band_flags(store), on="object_id").pipe(_with_attrs, catalog.attrs)
        return cls(
            run_dir=run_dir,
            catalog=catalog.set_index("object_id", drop=False),
            queue=queue,
            images=images,
            log=log,
            order=order,
            model_id=provenance.model_id,
            my_grades=my_grades,
            outputs=tuple(spec for spec in table_layout(catalog).outputs if spec != DEFAULT_SCORE),
            n_bad_lines=n_bad_lines,
            band_flag_columns=band_flag_columns(catalog, images.layout.band_names),
            n_rewritten=rewritten_since_scored(run_dir, store),
            n_outdated=len(outdated),
            watch=RewriteWatch.start(store),
        )

    def info(self) -> dict:
        first = next(
            (i for i, oid in enumerate(self.queue.tolist()) if oid not in self.my_grades), len(self.queue)
        )
        return {
            "inspector": self.log.inspector,
            "order": self.order,
            "run": str(self.run_dir),
            "model_id": self.model_id,
            "panels": self.images.panels,
            "n_candidates": len(self.queue),
            "n_graded": len(self.my_grades),
            "first_ungraded": first,
            "grades": list(GRADES),
            "no_pixel_flags": describe(int(UNUSABLE)),
            "flag_meanings": documentation(),
            "outputs": [
                {"name": spec.name, "kind": spec.kind, "unit": spec.unit, "description": spec.description}
                for spec in self.outputs
            ],
        }

    def candidates(self, start: int, n: int) -> list[dict]:
        ids = self.queue[max(start, 0) : max(start, 0) + min(max(n, 0), MAX_BATCH)]
        return [self._candidate(int(object_id), max(start, 0) + i) for i, object_id in enumerate(ids)]

    def _candidate(self, object_id: int, position: int) -> dict:
        row = self.catalog.loc[object_id]

        def number(value) -> float | None:
            value = float(value)
            return value if math.isfinite(value) else None

        return {
            "position": position,
            "object_id": object_id,
            "score": number(row["score"]),
            "score_std": number(row["score_std"]),
            "rank": int(row["rank"]),
            "flags": describe(int(row["flags"])),
            "band_flags": {  # left out where the store has none for it (an id it lost)
                band: describe(int(value))
                for band, name in self.band_flag_columns.items()
                if (value := row[name]) >= 0
            },
            "ra": number(row["ra"]),
            "dec": number(row["dec"]),
            "known_lens": str(row["known_lens"]),
            "known_lens_grade": str(row["known_lens_grade"]),
            "known_lens_sep": number(row["known_lens_sep"]),
            "outputs": [output_caption(spec, row) for spec in self.outputs],
            "grade": self.my_grades.get(object_id),
        }

    def grade(self, object_id: int, grade: str) -> dict:
        """Save one grade (durably) and remember it for the page.

        Raises
        ------
        GradeError
            For an ``object_id`` that is not an integer (a bool or a float included), a grade not
            of :data:`~pipeline.evaluation.grades.GRADES`, an object the run did not score (not in
            the queue), or an object whose images an ingest rewrote after the page opened.
        UnknownObjectError
            For an id the run's catalog does not hold.
        """
        if not isinstance(object_id, int | np.integer) or isinstance(object_id, bool):
            raise GradeError(
                f"object_id {object_id!r} is not an integer: give the object's id as a JSON integer"
            )
        object_id = int(object_id)
        if not INT64_MIN <= object_id <= INT64_MAX or object_id not in self.catalog.index:
            raise UnknownObjectError(f"object {object_id} is not in the run's catalog")
        score = float(self.catalog.loc[object_id, "score"])
        if not math.isfinite(score):  # trial: saved, and counted as a graded object
            flags = ", ".join(describe(int(self.catalog.loc[object_id, "flags"]))) or "none"
            raise GradeError(
                f"object {object_id} is not in the queue: it has no score in this run (flags: {flags}); "
                "only scored objects are graded"
            )
        grade = check_grade(grade)
        changed = self.watch.rewritten(object_id) if self.watch is not None else None
        if changed is not None:  # trial: a grade of the old images, made on a page opened before
            raise GradeError(
                f"the images of object {object_id} were re-read by an ingest at {changed:%Y-%m-%d %H:%M:%S} "
                "UTC, after this page opened: restart `lenshunt inspect` to see them, then grade it"
            )
        with self.lock:
            row = self.log.append(object_id, grade, score=score, model_id=self.model_id)
            self.my_grades[object_id] = grade
        return row


def band_flag_columns(catalog: pd.DataFrame, bands: list[str]) -> dict[str, str]:
    """Band -> name of its per-band flags column (``flags_<band>``), for each of ``bands`` (in their
    order) that ``catalog`` has one for; empty for a catalog written before these columns existed.

    Parameters
    ----------
    catalog : pandas.DataFrame
        The run's catalog.
    bands : list of str
        The store's band names, in its order.

    Returns
    -------
    dict of str to str
        Band name -> column name.

    Examples
    --------
    >>> band_flag_columns(pd.DataFrame(columns=["flags", "flags_VIS", "flags_H"]), ["VIS", "Y", "H"])
    {'VIS': 'flags_VIS', 'H': 'flags_H'}
    """
    names = {band: band_flags_column(band).name for band in bands}
    return {band: name for band, name in names.items() if name in catalog.columns}


def _with_attrs(table: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    """``table`` with ``attrs`` (the catalog's layout, which a join drops)."""
    table.attrs = dict(attrs)
    return table


def store_band_flags(store: Path) -> pd.DataFrame:
    """Each band's ingest flags in the store, as the ``flags_<band>`` columns of a score run's catalog.

    For a run scored before its catalog had them (2026-12-02): the page still shows which band of a
    candidate is flagged. Indexed by object id (rows with a lost id, or one seen twice, left out).

    Returns
    -------
    pandas.DataFrame
        One int32 column ``flags_<band>`` per band, in the store's order (:func:`read_band_flags`).
    """
    from pipeline.store import open_store
    from pipeline.store.columns import read_band_flags
    from pipeline.store.zarr_store import read_column

    dataset = open_store(store, chunks=None)
    per_band = read_band_flags(dataset, store)
    frame = pd.DataFrame(
        {band_flags_column(band).name: values for band, values in per_band.items()},
        index=pd.Index(read_column(dataset, "object_id"), name="object_id"),
    )
    return frame[(frame.index >= 0) & ~frame.index.duplicated(keep=False)]


def _handler(session: InspectSession) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lenshunt-inspect"

        def log_message(self, format: str, *args) -> None:
            pass  # quiet: the terminal shows the URL and the grades count

        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if host in LOOPBACK:
                return True
            self._send(HTTPStatus.FORBIDDEN, {"error": f"host {host!r} refused: this server is local only"})
            return False

        def _send(self, status: HTTPStatus, body: object, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store" if content_type != "image/png" else "max-age=3600")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if not self._host_ok():
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            parts = [part for part in url.path.split("/") if part]
            try:
                if not parts or parts == ["index.html"]:
                    self._send(
                        HTTPStatus.OK, (STATIC / "inspect.html").read_bytes(), "text/html; charset=utf-8"
                    )
                elif parts == ["api", "session"]:
                    self._send(HTTPStatus.OK, session.info())
                elif parts == ["api", "candidates"]:
                    try:
                        start, n = (
                            int(query.get(key, [default])[0])
                            for key, default in (("start", "0"), ("n", "20"))
                        )
                    except ValueError:
                        self._send(HTTPStatus.BAD_REQUEST, {"error": "start and n must be integers"})
                        return
                    self._send(HTTPStatus.OK, session.candidates(start, n))
                elif len(parts) == 3 and parts[0] == "img" and parts[2].endswith(".png"):
                    if not parts[1].isdigit():  # trial: Python's "invalid literal for int()" was the answer
                        raise UnknownObjectError(f"no object {parts[1]!r}: object ids are integers")
                    self._send(HTTPStatus.OK, session.images.png(int(parts[1]), parts[2][:-4]), "image/png")
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": f"no such page {url.path}"})
            except (UnknownObjectError, ValueError) as error:
                self._send(HTTPStatus.NOT_FOUND, {"error": _message(error)})

        def do_POST(self) -> None:
            if not self._host_ok():
                return
            if urlsplit(self.path).path != "/api/grade":
                self._send(HTTPStatus.NOT_FOUND, {"error": "post grades to /api/grade"})
                return
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the grade as application/json"})
                return
            try:
                body = self._json_body()
                row = session.grade(body.get("object_id"), body.get("grade"))
            except (GradeError, UnknownObjectError) as error:
                self._send(HTTPStatus.BAD_REQUEST, {"error": _message(error)})
                return
            self._send(HTTPStatus.OK, {"saved": row, "n_graded": len(session.my_grades)})

        def _json_body(self) -> dict:
            """The request's JSON object: ``{"object_id": <integer>, "grade": "A"}``."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise GradeError("Content-Length is not a number") from None
            if not 0 < length <= MAX_BODY:
                raise GradeError(f"send a JSON object of 1 to {MAX_BODY} bytes, not {length}")
            try:
                body = json.loads(self.rfile.read(length), parse_constant=_no_constant)
            except ValueError as error:  # not JSON, not UTF-8, or an integer of too many digits
                raise GradeError(f"the body is not JSON: {error}") from None
            if not isinstance(body, dict) or not {"object_id", "grade"} <= body.keys():
                raise GradeError('send a JSON object {"object_id": <integer>, "grade": "A"}')
            return body

    return Handler


def _message(error: Exception) -> str:
    """The error's text (a KeyError's ``str`` would add quotes)."""
    return str(error.args[0]) if len(error.args) == 1 else str(error)


def _no_constant(name: str) -> float:
    raise GradeError(f"{name} is not JSON: give the object's id as a JSON integer")


def make_server(session: InspectSession, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server of ``session`` on a loopback ``host`` (port 0: any free port); not started.

    Once the port is bound, the inspector's grade-log lock is taken (:meth:`GradeLog.claim`) and
    held until ``session.log.close()`` or the process ends.

    Raises
    ------
    InspectError
        For a host that is not a loopback address, a port outside 0-65535 or already in use.
    GradeLockError
        If another server already grades as this inspector in this run.
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InspectError(f"port {port!r} is not a port number: give 0-65535 (0: any free port)")
    if host not in LOOPBACK:
        raise InspectError(
            f"host {host!r} refused: the grading page is served on 127.0.0.1 or ::1 only (reach it "
            "from another machine through an SSH tunnel: ssh -L PORT:127.0.0.1:PORT host)"
        )
    if host == "localhost":
        host = "127.0.0.1"
    server_class = ThreadingHTTPServer
    if ":" in host:
        import socket

        class V6Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server_class.daemon_threads = True
    try:
        server = server_class((host, port), _handler(session))
    except OSError as error:
        raise InspectError(
            f"cannot serve on {host}:{port}: {error.strerror or error}; another inspect may be running "
            "there: give another --port, or --port 0 for any free one"
        ) from error
    try:
        session.log.claim()
    except GradeError:
        server.server_close()
        raise
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
