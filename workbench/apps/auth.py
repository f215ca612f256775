"""Token check for ``workbench serve``, loaded by ``panel serve --auth-module`` (Bokeh's auth hooks).

On a shared machine every local user can reach a loopback port, so the dashboards (which read the
run store and launch runs) take a secret token, as JupyterLab does: ``workbench serve`` draws a
random token (or takes ``$WORKBENCH_TOKEN``), passes it to the server in the environment (never on
the command line, which ``ps`` shows to every user) and prints ``http://host:port/?token=...``.
The first request with the right ``?token=`` sets an HTTP-only cookie holding a hash of the
token; later requests (pages, the websocket) carry the cookie. Anything else gets 403, from
Bokeh's ``@authenticated`` handlers and Panel's websocket check.

Only the standard library: Bokeh runs this file by path inside the server process.
"""

from __future__ import annotations

import hashlib
import hmac
import os

ENV = "WORKBENCH_TOKEN"
TOKEN = os.environ.get(ENV, "")
USER = "workbench"


def _digest(token: str) -> str:
    return hashlib.sha256(f"workbench-serve:{token}".encode()).hexdigest()


def cookie_name(port: int | str | None) -> str:
    """One cookie per port, so two servers on one host (two users) do not overwrite each other's."""
    return f"workbench_token_{port or ''}"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def check(handler, token: str = TOKEN) -> str | None:  # noqa: ANN001 - a tornado RequestHandler
    """The user name if the request carries the token (``?token=``, the cookie, or an
    ``Authorization: token ...`` header), else None. A valid ``?token=`` also sets the cookie."""
    if not token:
        return None
    port = handler.request.host.rsplit(":", 1)[-1] if ":" in handler.request.host else ""
    name = cookie_name(port)
    given = handler.get_argument("token", None)
    if given is not None and _same(given, token):
        try:
            handler.set_cookie(name, _digest(token), httponly=True, samesite="Strict", path="/")
        except Exception:  # noqa: BLE001 - e.g. a websocket handshake cannot set cookies; the token sufficed
            pass
        return USER
    cookie = handler.get_cookie(name)
    if cookie and _same(cookie, _digest(token)):
        return USER
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("token ") and _same(header[6:].strip(), token):
        return USER
    return None


def get_user(request_handler) -> str | None:  # noqa: ANN001 - Bokeh's auth hook
    return check(request_handler)


def get_login_url(request_handler) -> str:  # noqa: ANN001 - Bokeh's auth hook
    """There is no login page: refuse with 403 and say where the token is."""
    from tornado.web import HTTPError

    raise HTTPError(403, reason="workbench: token required; open the address printed by workbench serve "
                                "(it ends in ?token=...)")
