"""The grading page's local web server: Python's ``http.server``, on the loopback interface only.

One static page (``static/inspect.html``, plain HTML and JavaScript, no build step and nothing
fetched from the internet) talks to six JSON endpoints of an :class:`InspectSession`:

==========================  ====================================================================
``GET /api/session``        inspector, order, run, panels, number of candidates, this inspector's
                            graded and skipped objects apart (``n_graded``, ``n_skipped``: a skip is
                            no grade), where to start
                            (``first_ungraded``: the first object not graded since the server started),
                            and why it grades no more (``catalog_rewritten``: a score run replaced the
                            run's catalog since it loaded it; null while not); a catalog that a score
                            run only grew (new objects, or objects scored since) is loaded again,
                            its new objects joining the queue (``catalog_reloaded`` says so; null
                            when none joined)
``GET /api/candidates``     ``?start=i&n=k``: k candidates of the queue from position i, each with
                            score, spread, rank, flags (and each band's, ``band_flags``, and why
                            in words, ``flag_reason``: "" when unflagged or the catalog has no such
                            column), known-lens match and this inspector's grade, its time
                            (``grade_time``) and comment
                            (``grade_comment``); i is 0 to the queue's length, k 1 to 200,
                            anything else is refused (400); refused
                            (409, as a grade) once a score run replaced the run's catalog
``GET /api/next``           ``?after=i``: the position to move forward to (the next object not
                            graded since the server started; the queue's length at its end) and how
                            many graded ones it passed; i is -1 (from the start) to the last position,
                            anything else is refused (400); refused (409) as ``/api/candidates``
``GET /api/find``           ``?q=text``: the queue position of an object id (``700012``) or a rank
                            (``r5``, ``rank 5``): ``{"position": i, "object_id": id}``; 404 saying
                            why for one the queue does not hold (not in the run, not scored, graded
                            before the server started); refused (409) as ``/api/candidates``
``POST /api/grade``         ``{"object_id": "id", "grade": "A", "replacing": time, "comment": text}``
                            (the id as its decimal string, or a JSON integer)
                            (``comment`` optional: the inspector's note, at most 1000
                            characters): saved (fsync) before the reply, which names the grade
                            it replaced (``previous``), whether the page knew it (``unseen``:
                            another tab gave it) and says so in words (``message``: e.g. a skip's
                            "grade A withdrawn") and what the run's catalog gained since the page
                            was loaded (``catalog_grown``: reload the page to see them; null when
                            nothing); refused (409) once a score run replaced the run's catalog
                            otherwise (``catalog_rewritten`` of ``/api/session`` says why)
``GET /img/<id>/<panel>``   PNG of the composite (``composite``) or one band, drawn on demand; 404
                            for an object or panel the store does not hold, 500 (saying why) for
                            pixels it cannot read
==========================  ====================================================================

Object ids are sent as decimal strings (``"9007199254740993"``), never as JSON numbers: a browser
reads those as doubles, rounding ids beyond 2**53 (trial: the page showed, fetched the images of and
graded the neighbouring id; :mod:`pipeline.inspection.ids`). The page keeps them strings.

Every answer names the queue it was given from: ``X-Queue-Generation`` (one more each time a
reloaded page took in a grown catalog: ``queue_generation`` of ``/api/session``),
``X-Inspect-Server`` (the server's ``server_id``, new at each start of ``lenshunt inspect``: a new
round served at the same address) and ``X-Queue-Length``. Every tab of an inspector shares one
queue; a tab loaded before another tab's reload, or from an earlier server, has positions of
another queue, and says to reload it (trial: it showed other objects, and "All 257 candidates were
shown" with 12 left, unsaid). The grade that tells it so, made by object id, is taken; once the
tab knows, its grade keys are not sent (a second key replaced that grade, as the tab could not move
on), and a key on its end screen asks the server, so that the end screen says it too.

The server binds 127.0.0.1 (or ::1) only and refuses requests whose ``Host`` header names
another host (a web page elsewhere cannot reach it by DNS rebinding); a grade must be posted as
``application/json``, which a cross-site form cannot send without the browser asking first. A
browser that closes a connection early (a tab closed while its images load) is normal and not
reported (:class:`QuietServer`).
"""

from __future__ import annotations

import json
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline.evaluation.grades import GradeError
from pipeline.inspection.ids import id_in_path
from pipeline.inspection.images import ImageReadError, UnknownObjectError
from pipeline.inspection.server import (
    CandidateRangeError,
    CatalogRewrittenError,
    InspectError,
    InspectSession,
)

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_BODY = 16384
"""The most bytes of a posted grade: a comment's 1000 characters, JSON-escaped, fit."""


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that leaves a client's disconnect off the console.

    ``socketserver`` prints the traceback of every error a request raises (trial: a
    ``BrokenPipeError`` or ``ConnectionResetError`` from ``http.server`` on each tab closed while
    its images loaded); a :class:`ConnectionError` there only says the browser went away.
    """

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class QuietServer6(QuietServer):
    """:class:`QuietServer` on an IPv6 address (``::1``)."""

    address_family = socket.AF_INET6


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
            # the queue this answer's positions belong to: a tab whose queue is older says to reload it
            self.send_header("X-Queue-Generation", str(session.generation))
            self.send_header("X-Queue-Length", str(len(session.queue)))
            self.send_header("X-Inspect-Server", session.server_id)  # a new server: another queue
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
                elif parts == ["api", "session"]:  # a page loaded: a catalog that only grew is taken in
                    self._send(HTTPStatus.OK, session.info(reload=True))
                elif parts == ["api", "find"]:  # the page's "go to": an id or a rank (GotoError: 404)
                    self._send(HTTPStatus.OK, session.find(query.get("q", [""])[0]))
                elif parts == ["api", "candidates"]:
                    try:
                        start, n = (
                            int(query.get(key, [default])[0])
                            for key, default in (("start", "0"), ("n", "20"))
                        )
                    except ValueError:
                        self._send(HTTPStatus.BAD_REQUEST, {"error": "start and n must be integers"})
                        return
                    try:  # a rewritten catalog's 409 first (as /api/next), then the range's 400
                        candidates = session.candidates(start, n)
                    except CandidateRangeError as error:  # trial: start=-5 answered the first ones
                        self._send(HTTPStatus.BAD_REQUEST, {"error": _message(error)})
                        return
                    self._send(HTTPStatus.OK, candidates)
                elif parts == ["api", "next"]:
                    try:
                        after = int(query.get("after", ["-1"])[0])
                    except ValueError:
                        self._send(HTTPStatus.BAD_REQUEST, {"error": "after must be an integer"})
                        return
                    session.check_current()  # the old queue's positions: 409 first, as /api/candidates
                    try:
                        position = session.next_position(after)
                    except CandidateRangeError as error:
                        self._send(HTTPStatus.BAD_REQUEST, {"error": _message(error)})
                        return
                    self._send(HTTPStatus.OK, {"position": position, "passed": max(position - after - 1, 0)})
                elif len(parts) == 3 and parts[0] == "img" and parts[2].endswith(".png"):
                    object_id = id_in_path(parts[1])  # exact: the page's decimal string of the id
                    if object_id is None:  # trial: Python's "invalid literal for int()" was the answer
                        raise UnknownObjectError(f"no object {parts[1]!r}: object ids are integers")
                    self._send(HTTPStatus.OK, session.images.png(object_id, parts[2][:-4]), "image/png")
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": f"no such page {url.path}"})
            except CatalogRewrittenError as error:  # the queue is the old catalog's: as a grade is refused
                self._send(HTTPStatus.CONFLICT, {"error": _message(error)})
            except ImageReadError as error:  # the store holds the object, its pixels are damaged
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": _message(error)})
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
                saved = session.grade(
                    body.get("object_id"),
                    body.get("grade"),
                    replacing=body.get("replacing"),
                    comment=body.get("comment"),
                )
            except CatalogRewrittenError as error:  # the page's catalog is not the run's any more
                self._send(HTTPStatus.CONFLICT, {"error": _message(error)})
                return
            except (GradeError, UnknownObjectError) as error:
                self._send(HTTPStatus.BAD_REQUEST, {"error": _message(error)})
                return
            self._send(HTTPStatus.OK, {**saved, **session.counts()})

        def _json_body(self) -> dict:
            """The request's JSON object: ``{"object_id": "<id>", "grade": "A"}`` (or an integer id)."""
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
                raise GradeError('send a JSON object {"object_id": "<decimal id>", "grade": "A"}')
            return body

    return Handler


def _message(error: Exception) -> str:
    """The error's text (a KeyError's ``str`` would add quotes)."""
    return str(error.args[0]) if len(error.args) == 1 else str(error)


def _no_constant(name: str) -> float:
    raise GradeError(f"{name} is not JSON: give the object's id as a string of its decimal digits")


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
    server_class = QuietServer6 if ":" in host else QuietServer
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
