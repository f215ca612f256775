"""`workbench serve` on a shared machine (issue 12): an index page never read from the shared temp
dir, the token, the refusal of a public address without one, and user text rendered as text in a
real browser (a CSV header such as `<img src=x onerror=...>` must not run script)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, Server, console_errors
from playwright.sync_api import Locator, Page

from workbench.apps import APPS, check_token, index_template, is_loopback, serve_command, token_by_default
from workbench.errors import WorkbenchError

SHOTS = ROOT / "docs" / "screenshots"
PLANT = "{{ 7 * 191 }} PLANTED-BY-ANOTHER-USER {% import os %}{{ os.system('touch /tmp/wb-planted') }}"


def get(url: str, headers: dict | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=180) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def old_temp_names() -> list[str]:
    """The file names the index page used to be written to (and read back from) in the temp dir."""
    info = {a.path: [a.title, a.description] for a in APPS.values()}
    texts = [index_template().read_text(), index_template().read_text().replace("__INFO__", json.dumps(info))]
    return [f"workbench-index-{hashlib.md5(t.encode()).hexdigest()[:10]}.html" for t in texts]


def test_index_template_is_package_data_and_nothing_is_written(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cmd = serve_command(port=5999)
    index = Path(cmd[cmd.index("--index") + 1])
    assert index == Path(__file__).resolve().parents[1] / "workbench" / "apps" / "templates" / "index.html"
    assert list(tmp_path.iterdir()) == []
    assert "__INFO__" not in index.read_text()


def test_token_defaults_and_refusals() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("gpu-box")
    assert token_by_default("0.0.0.0", {"me"})[0]
    assert token_by_default("127.0.0.1", {"me", "you"}) == (True, "2 users can log in to this machine")
    assert not token_by_default("127.0.0.1", {"me"})[0]
    with pytest.raises(WorkbenchError, match="without a token"):
        check_token("0.0.0.0", False)
    check_token("0.0.0.0", None)
    check_token("127.0.0.1", False)
    assert "--auth-module" in serve_command(token=True) and "--auth-module" not in serve_command()


def test_login_users_reads_passwd(tmp_path) -> None:
    from workbench.apps import login_users

    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
                      "alice:x:1000:1000::/home/alice:/bin/bash\nsvc:x:1001:1001::/:/usr/sbin/nologin\n"
                      "bob:x:1002:1002::/home/bob:/bin/zsh\n")
    assert {"alice", "bob"} <= login_users(passwd) and not {"root", "nobody", "svc"} & login_users(passwd)


def test_cli_refuses_a_public_address_without_a_token(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "workbench", "serve", "--address", "0.0.0.0", "--no-token",
                          "--store", str(tmp_path / "r.db")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "without a token" in out.stderr and "--no-token" in out.stderr
    assert not (tmp_path / "r.db").exists()  # refused before anything was touched


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory):
    """All apps with a token, with files planted where the index page used to be read from."""
    d = tmp_path_factory.mktemp("tokserve")
    tmp = d / "tmp"
    tmp.mkdir()
    for name in [*old_temp_names(), "workbench-index.html"]:
        (tmp / name).write_text(PLANT)
    srv = Server(d / "runs.db", token="s3cret-Token_1", env={"TMPDIR": str(tmp)})
    yield srv
    srv.stop()


def test_token_is_required_and_sufficient(token_server) -> None:
    url = token_server.url
    for path in ("/", "/laws", "/monitor", "/sweeps", "/schedules"):
        code, body, _ = get(url + path)
        assert code == 403 and "token required" in body, (path, code)
        assert get(url + path + "?token=wrong")[0] == 403
        assert get(url + path, {"Cookie": f"workbench_token_{token_server.port}=forged"})[0] == 403
    assert get(url + "/laws/autoload.js?bokeh-autoload-element=x&bokeh-app-path=/laws")[0] == 403  # embedding
    code, body, headers = get(url + "/laws?token=s3cret-Token_1")
    assert code == 200 and "Set-Cookie" in headers and "HttpOnly" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "s3cret" not in cookie  # the cookie holds a hash, not the token
    assert get(url + "/sweeps", {"Cookie": cookie})[0] == 200
    assert get(url + "/monitor", {"Authorization": "token s3cret-Token_1"})[0] == 200
    assert "s3cret" not in " ".join(Path(f"/proc/{token_server.proc.pid}/cmdline").read_text().split("\0"))


def test_index_page_comes_from_the_package_not_the_temp_dir(token_server) -> None:
    code, body, _ = get(token_server.url + "/?token=s3cret-Token_1")
    assert code == 200
    assert "PLANTED" not in body and "1337" not in body
    for info in APPS.values():
        assert info.title in body and info.description in body
    assert not Path("/tmp/wb-planted").exists()


@pytest.mark.browser
def test_pages_work_in_a_browser_with_the_token(token_server, page) -> None:
    errors = console_errors(page)
    page.goto(token_server.url + "/" + token_server.query, timeout=120_000)
    assert page.locator("#apps a").count() == len(APPS)
    page.set_viewport_size({"width": 1100, "height": 520})
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "index-token.png"))
    page.locator("#apps a").filter(has_text="Scaling-law fitter").click()  # the cookie carries the token on
    page.wait_for_selector("text=or upload a CSV", timeout=60_000)  # rendered: the websocket was accepted
    assert not [e for e in errors if "favicon" not in e], errors


EVIL = "<img src=x onerror=window.__wb_xss=(window.__wb_xss||0)+1>"


def open_upload(page: Page, url: str, selector: str) -> Locator:
    """Open a page at 1300x1000 and wait until its file input `selector` is attached; returns that input."""
    page.set_viewport_size({"width": 1300, "height": 1000})
    page.goto(url, timeout=120_000)
    page.wait_for_selector(f"{selector} input[type='file']", state="attached", timeout=90_000)
    page.wait_for_timeout(1000)  # let the page's first render settle before the upload
    return page.locator(f"{selector} input[type='file']")


@pytest.mark.browser
def test_malicious_csv_text_is_shown_as_text(server, page, tmp_path) -> None:
    errors = console_errors(page)
    upload = open_upload(page, server.url + "/laws", ".wb-csv-upload")
    # 1. in the error message (a ragged CSV lists the header)
    bad = tmp_path / "bad.csv"
    bad.write_text(f'"{EVIL}",loss\n1,2,3\n')
    upload.set_input_files(str(bad))
    page.wait_for_selector("text=line 2 has 3 fields", timeout=60_000)
    assert page.get_by_text(EVIL, exact=False).first.is_visible()
    # 2. in the data table: as a column name and as a cell
    good = tmp_path / "evil.csv"
    good.write_text(f'"{EVIL}",loss,note\n1,2,"{EVIL}"\n2,3,x\n3,4,y\n')
    upload.set_input_files(str(good))
    page.wait_for_selector("text=Loaded evil.csv", timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.locator(".tabulator-col-title", has_text=EVIL).count() >= 1
    assert page.locator(".tabulator-cell", has_text=EVIL).count() >= 1
    page.screenshot(path=str(SHOTS / "law-fitter-escaped.png"), full_page=True)
    assert page.evaluate("window.__wb_xss") is None  # no onerror ran anywhere
    assert page.locator("img[src='x']").count() == 0
    assert not [e for e in errors if "favicon" not in e], errors


@pytest.mark.browser
def test_malicious_curve_names_are_shown_as_text(server, page, tmp_path) -> None:
    """Loss-curve CSVs are uploaded on the curve-law fitter (/curves) since the law fitter split."""
    errors = console_errors(page)
    upload = open_upload(page, server.url + "/curves", ".wb-curve-upload")
    # 3. as curve names: the loss-curve list and the "Fit on" choices
    curves = tmp_path / "curves.csv"
    rows = ["step,lr,loss,curve"] + [f'{s},0.001,{3 - s / 100},"{n}"' for n in (EVIL, "plain") for s in range(0, 100, 10)]
    curves.write_text("\n".join(rows) + "\n")
    upload.set_input_files(str(curves))
    page.wait_for_selector("text=Loaded 2 loss curve(s)", timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.locator(".choices__item", has_text=EVIL).count() >= 1
    assert page.get_by_text(f"{EVIL} (91 steps)", exact=False).count() >= 1
    page.screenshot(path=str(SHOTS / "law-fitter-escaped-curves.png"), full_page=True)
    assert page.evaluate("window.__wb_xss") is None  # no onerror ran anywhere
    assert page.locator("img[src='x']").count() == 0
    assert not [e for e in errors if "favicon" not in e], errors


@pytest.mark.browser
def test_derived_columns_box_never_runs_code(server, page, tmp_path) -> None:
    """The exploit of the issue, through the page: the box used to reach DataFrame.eval."""
    target = tmp_path / "X"
    upload = open_upload(page, server.url + "/laws", ".wb-csv-upload")
    good = tmp_path / "good.csv"
    good.write_text("size,loss\n" + "\n".join(f"{x},{1.5 + 4 * x ** -0.5}" for x in (10, 30, 100, 300, 1e3, 3e3)))
    upload.set_input_files(str(good))
    page.wait_for_selector("text=Loaded good.csv", timeout=60_000)
    page.get_by_role("button", name="Confirm mapping").click()  # an uploaded file's mapping is confirmed first
    page.wait_for_selector("text=Mapping confirmed", timeout=60_000)
    box = page.locator(".bk-input-group").filter(has_text="Derived columns").locator("textarea").first
    box.fill(f"z = __import__('os').system('touch {target}')")
    box.press("Tab")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Fit", exact=True).click()
    page.wait_for_selector("text=is not allowed", timeout=60_000)
    msg = page.get_by_text("is not allowed", exact=False).first.inner_text()
    assert "calling" in msg and "__import__" in msg and "allowed are" in msg, msg
    page.screenshot(path=str(SHOTS / "law-fitter-derived-refused.png"), full_page=True)
    assert not target.exists()
