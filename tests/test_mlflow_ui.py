"""The MLflow UI shows a search: the link `nas search` prints (`nas.mlflow_layout.ui_hint`) opened
in headless Chromium (Debian's /usr/bin/chromium driven by Playwright, no browser download) on
`mlflow server` over the tiny search's store: the trials and their val_acc / macs / params show
without a click. Fast tests of the hint and the experiment tags come first.

The browser test skips when Chromium or Playwright is missing, unless NAS_REQUIRE_BROWSER=1 (set
by .ci/run), where that is a failure. The screenshot lands in .nas/test-artifacts/mlflow_ui.png
(git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nas import mlflow_layout as layout

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / ".nas" / "test-artifacts" / "mlflow_ui.png"
TIMEOUT_MS = 60_000


# ----------------------------------------------------------------------------- hint and tags (fast)

def test_ui_hint_for_a_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hint = layout.ui_hint("sqlite:///mlflow.db?timeout=60", "7")
    command, link = hint.splitlines()
    assert command == f"MLflow UI: mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}"
    assert link.strip() == ("then open http://127.0.0.1:5000/#/experiments/7/runs"
                            "?workflowType=machine_learning&viewStateShareKey=nas")
    spaced = layout.ui_hint("sqlite:////data/my runs/mlflow.db", "1").splitlines()[0]
    assert spaced.endswith("--backend-store-uri 'sqlite:////data/my runs/mlflow.db'")  # pastes into a shell


def test_ui_hint_for_a_server():
    assert layout.ui_hint("http://mlflow.lab:5000/", "12") == (
        "MLflow UI: http://mlflow.lab:5000/#/experiments/12/runs?workflowType=machine_learning"
        "&viewStateShareKey=nas")


def test_experiment_tags_hold_the_runs_view():
    tags = layout.experiment_tags()
    assert tags[layout.EXPERIMENT_KIND] == "custom_model_development"
    view = json.loads(tags[layout.SHARED_VIEW_PREFIX + layout.VIEW_KEY])
    assert view["selectedColumns"] == ["metrics.`val_acc`", "metrics.`test_acc`", "metrics.`macs`",
                                       "metrics.`params`"]
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": layout.KIND}]
    assert view["groupsExpanded"] == {"tag.nas.kind.search": False, "tag.nas.kind.ablation": False}
    assert not {"searchFilter", "runsExpanded"} & set(view)  # a filter would hide runs; MLflow ignores the other


def test_tag_experiment_writes_only_what_differs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("nas", artifact_location=(tmp_path / "a").as_uri())
    layout.tag_experiment(client, experiment)
    tags = client.get_experiment(experiment).tags
    assert {k: tags[k] for k in layout.experiment_tags()} == layout.experiment_tags()

    class Recording:
        calls = []

        def set_experiment_tag(self, *args):
            self.calls.append(args)

    layout.tag_experiment(Recording(), experiment, tags)
    assert Recording.calls == []  # reopening an experiment costs no write
    layout.tag_experiment(Recording(), experiment, {**tags, layout.SHARED_VIEW_PREFIX + "nas": "{}"})
    assert [key for _, key, _ in Recording.calls] == [layout.SHARED_VIEW_PREFIX + "nas"]


# ----------------------------------------------------------------------------- the browser (slow)


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


@pytest.mark.slow
def test_search_runs_and_metrics_in_the_mlflow_ui(mlflow_server, chromium, search_store):
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{search_store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nas")
    missing = {k: v for k, v in layout.experiment_tags().items() if experiment.tags.get(k) != v}
    assert not missing, ("the search's experiment lacks the UI view: the writers must call "
                         f"nas.mlflow_layout.tag_experiment when they create it (missing {sorted(missing)})")
    trials = client.search_runs([experiment.experiment_id], f"tags.`{layout.KIND}` = '{layout.KIND_TRIAL}'")
    assert len(trials) >= 4
    # the link as `nas search` prints it, on this test's server instead of 127.0.0.1:5000
    hint = layout.ui_hint(f"sqlite:///{search_store / 'mlflow.db'}", experiment.experiment_id)
    link = re.search(r"http://\S+", hint).group(0).replace(layout.UI_DEFAULT, mlflow_server)
    metrics = [m for m in layout.UI_METRICS if any(m in r.data.metrics for r in trials)]
    assert {layout.VAL_ACC, layout.MACS, layout.PARAMS} <= set(metrics)
    check_runs_page(link, chromium, [r.info.run_name for r in trials], metrics)
    assert SCREENSHOT.stat().st_size > 20_000


def check_runs_page(link: str, chromium: str, trials: list[str], metrics: list[str]) -> None:
    """Open `link` and, without a click, see every trial as a row with its metric columns."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(link)
            for name in trials:  # rows of their own, not folded under the search's parent run
                page.get_by_text(name, exact=True).first.wait_for()
            page.locator("[role=gridcell][col-id*='val_acc']").first.wait_for()
            headers = [h.inner_text().strip() for h in page.locator("[role=columnheader]").all()]
            assert set(metrics) <= set(headers), headers
            values = [c.inner_text().strip() for c in page.locator("[role=gridcell][col-id*='val_acc']").all()]
            assert sum(bool(re.fullmatch(r"0\.\d+", v)) for v in values) >= 2, values
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
