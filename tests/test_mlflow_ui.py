"""The MLflow UI shows a search: `mlflow server` on the tiny search's store, opened in headless
Chromium (Debian's /usr/bin/chromium driven by Playwright, no browser download).

Skips when Chromium or Playwright is missing, unless NAS_REQUIRE_BROWSER=1 (set by .ci/run),
where that is a failure. The screenshot lands in .nas/test-artifacts/mlflow_ui.png (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / ".nas" / "test-artifacts" / "mlflow_ui.png"
TIMEOUT_MS = 60_000


def _unavailable(reason: str) -> None:
    if os.environ.get("NAS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (NAS_REQUIRE_BROWSER=1: .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(search_store):
    """`mlflow server` on the store, in its own process group: mlflow 3 starts uvicorn and
    job consumers beside itself, and teardown must end all of them."""
    port = _free_port()
    log = open(search_store / "mlflow_server.log", "w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{search_store / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], cwd=search_store, stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"mlflow server did not come up: "
                            f"{(search_store / 'mlflow_server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                os.killpg(proc.pid, 0)  # children of the group may outlive the leader
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        log.close()


def test_search_runs_and_metrics_in_the_mlflow_ui(mlflow_server, chromium, search_store):
    import mlflow
    from playwright.sync_api import sync_playwright

    client = mlflow.tracking.MlflowClient(f"sqlite:///{search_store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nas").experiment_id
    trials = [r.info.run_name for r in client.search_runs([experiment], "tags.`nas.kind` = 'trial'")]
    assert len(trials) >= 4
    # the runs page of the experiment (MLflow 3 opens new experiments on its GenAI overview),
    # filtered to the search: its parent run, with the trials nested under it
    query = urllib.parse.urlencode({"workflowType": "machine_learning",
                                    "searchFilter": "tags.`nas.search` = 'tiny'"},
                                   quote_via=urllib.parse.quote)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 700})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{mlflow_server}/#/experiments/{experiment}/runs?{query}")
            page.get_by_text("tiny", exact=True).first.wait_for()
            assistant = page.get_by_role("button", name="Close")  # the side panel hides columns
            if assistant.count():
                assistant.first.click()
            # metric columns: the runs table starts with attributes only; pick them as a user does
            page.get_by_role("button", name="Columns").click()
            for column in ("Dataset", "Source", "Models", "val_acc", "macs", "params"):
                page.get_by_placeholder("Search columns").fill(column)
                item = page.locator(".du-bois-light-tree-title", has_text=re.compile(f"^{column}$")).first
                item.wait_for()
                page.wait_for_timeout(300)  # the tree re-renders after the filter
                item.click()
            page.keyboard.press("Escape")
            page.locator("[role=row]", has_text="tiny").first.locator("button").first.click()  # expand
            for name in trials:
                page.get_by_text(name, exact=True).first.wait_for()
            headers = [h.inner_text().strip() for h in page.locator("[role=columnheader]").all()]
            assert {"val_acc", "macs", "params"} <= set(headers), headers
            values = [c.inner_text().strip() for c in page.locator("[role=gridcell][col-id*='val_acc']").all()]
            assert sum(bool(re.fullmatch(r"0\.\d+", v)) for v in values) >= 2, values
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 20_000
