"""End to end in a real headless browser (Debian's chromium driven by Playwright).

Starts ``clinsynth dashboard``'s server on a free localhost port, uploads a CSV, trains the
Gaussian copula, generates rows, sees the comparison plots and downloads the CSV. Every step
waits until each table and chart shown is drawn (a canvas with content, a chart with its traces:
not a blank box), then takes a screenshot, saved under the test's ``tmp_path`` and, when
``CLINSYNTH_TEST_ARTIFACTS`` names a folder, kept there as the run's artefacts.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import clinsynth

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`make install` or "
        "`apt-get install chromium` installs it).",
    ),
]


def _next(page, number: int, step: str) -> None:  # noqa: ANN001 - a Playwright page
    """Click 'Next: <number>. <step>' and wait until that page has finished running.

    A click on a button of the new page while Streamlit still runs the previous one can be
    lost (seen under load), so wait for the app to be idle.
    """
    from playwright.sync_api import expect

    main = page.get_by_role("main")
    main.get_by_role("button", name=f"Next: {number}. {step}").click()
    expect(main.get_by_role("heading", name=re.compile(rf"^{number}\. "))).to_be_visible()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The dashboard server exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"The dashboard server did not answer within {timeout} s:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``clinsynth dashboard`` on a free 127.0.0.1 port; stopped after the test."""
    port = _free_port()
    log = tmp_path / "server.log"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}  # no user-level Streamlit config or credentials
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("clinsynth")), "dashboard", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,  # its own process group: the server goes with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def page(server: str, tmp_path: Path) -> Iterator:
    """A headless chromium page on the dashboard's first step; screenshots go to
    ``tmp_path / "screenshots"``."""
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "screenshots").mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(server)
            expect(page.get_by_role("main").get_by_role("heading", name="1. Data")).to_be_visible()
            yield page
            assert not page.locator(".stException").count(), "a stack trace is on the page"
        finally:
            browser.close()


#: The tables and plotly charts shown on the page that are not drawn yet: a grid's canvas must be
#: wide and hold more than a few colours (a blank box has one or two); a chart must be wide and
#: hold at least one trace (bars, boxes, lines) or heatmap. Returns the counts and the blank ones.
_DRAWN = """() => {
  // Only what is shown: a table in a closed expander is drawn when it is opened.
  const shown = (e) => e.checkVisibility();
  const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(shown);
  const blank = [];
  grids.forEach((g, i) => {
    const c = g.querySelector('canvas');
    if (!c || c.width < 100 || c.height < 30) {
      blank.push(`table ${i + 1}: no canvas or ${c ? c.width + 'x' + c.height : 'none'}`);
      g.scrollIntoView({block: 'center'}); // a grid out of view may wait to draw
      return;
    }
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let k = 0; k < d.length && seen.size <= 5; k += 4 * 97) {
      seen.add(d[k] + ',' + d[k + 1] + ',' + d[k + 2]);
    }
    if (seen.size <= 5) blank.push(`table ${i + 1}: ${seen.size} colours`);
  });
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(shown);
  plots.forEach((p, i) => {
    const r = p.getBoundingClientRect();
    const title = (p.querySelector('.gtitle') || {}).textContent || '';
    if (r.width < 100 || r.height < 100) {
      blank.push(`chart ${i + 1} '${title}': ${Math.round(r.width)}x${Math.round(r.height)}`);
    } else if (!p.querySelector('.main-svg .trace, .main-svg .hm')) {
      blank.push(`chart ${i + 1} '${title}': no trace drawn`);
    }
  });
  return {grids: grids.length, plots: plots.length, blank: blank};
}"""


def _drawn(page, grids: int, plots: int) -> dict:  # noqa: ANN001 - a Playwright page
    """Wait until the page holds at least ``grids`` tables and ``plots`` charts and every one is
    drawn; their counts (fails naming the missing or blank ones after 30 s)."""
    # The page has finished running (tables and charts are added after the messages above).
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    deadline = time.monotonic() + 30
    while True:
        state = page.evaluate(_DRAWN)
        short = []
        if state["grids"] < grids:
            short.append(f"{state['grids']} of {grids} tables on the page")
        if state["plots"] < plots:
            short.append(f"{state['plots']} of {plots} charts on the page")
        if not state["blank"] and not short:
            page.evaluate("window.scrollTo(0, 0)")
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"Not drawn within 30 s: {'; '.join(short + state['blank'])}")
        page.wait_for_timeout(250)


def _shot(page, folder: Path, name: str, *, grids: int = 0, plots: int = 0) -> dict:  # noqa: ANN001
    """Screenshot of the whole page once at least ``grids`` tables and ``plots`` charts are there
    and every table and chart is drawn; the counts.

    Screenshots go to ``folder/screenshots`` and, when ``CLINSYNTH_TEST_ARTIFACTS`` names a
    folder, are kept there too (``<folder>/<test>/<step>.png``: the CI's test artefacts).
    """
    counts = _drawn(page, grids, plots)
    path = folder / "screenshots" / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("CLINSYNTH_TEST_ARTIFACTS")
    if keep:
        test = os.environ.get("PYTEST_CURRENT_TEST", "test").split("::")[-1].split(" ")[0]
        target = Path(keep) / test
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    return counts


def test_upload_train_generate_compare_download(page, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    from clinsynth.simulate import simulate_cohort

    real, _ = simulate_cohort(150, seed=3)
    csv_path = tmp_path / "patients.csv"
    real.to_csv(csv_path, index=False)

    main = page.get_by_role("main")

    def shot(name: str, grids: int = 0, plots: int = 0) -> dict:
        return _shot(page, tmp_path, name, grids=grids, plots=plots)

    shot("0_start")

    # 1. Data: upload the CSV.
    page.locator("input[type=file]").set_input_files(str(csv_path))
    expect(main.get_by_text("Using the file 'patients.csv'")).to_be_visible()
    expect(main.get_by_text("150 rows and 21 columns")).to_be_visible()
    expect(main.get_by_test_id("stDataFrame")).to_be_visible()
    assert shot("1_data", grids=1)["grids"] == 1  # the preview, drawn (not a blank box)

    # 2. Metadata: detected types, all fine.
    _next(page, 2, "Metadata")
    expect(main.get_by_text("The metadata fits the data")).to_be_visible()
    shot("2_metadata", grids=1)  # the columns (and the rules, if any), drawn

    # 3. Model: the default (fast) model.
    _next(page, 3, "Model")
    main.get_by_role("button", name="Train the model").click()
    expect(main.get_by_text("trained on 120 patients")).to_be_visible()
    shot("3_model")

    # 4. Generate 200 rows, with a condition.
    _next(page, 4, "Generate")
    rows = main.get_by_role("spinbutton", name="Number of synthetic patients")
    rows.fill("200")
    rows.press("Enter")
    main.get_by_role("textbox", name="Conditions (optional), one per line").fill("age >= 40")
    main.get_by_role("button", name="Generate synthetic patients").click()
    generated = main.get_by_text("200 synthetic patients generated with age")
    expect(generated).to_be_visible()
    shot("4_generate", grids=1)  # the synthetic rows, drawn

    # 5. Compare: scores and plots.
    _next(page, 5, "Compare")
    main.get_by_role("button", name="Compare real and synthetic data").click()
    expect(main.get_by_text("Fidelity", exact=True)).to_be_visible()
    plots = main.locator(".js-plotly-plot")
    expect(plots).to_have_count(3)  # one column (histogram + box) and two heatmaps
    expect(main.get_by_text("How the numbers move together")).to_be_visible()
    main.get_by_text("Privacy risks in detail").click()  # its table is drawn once shown
    assert shot("5_compare", grids=1, plots=3)["plots"] == 3  # bars, boxes, heatmaps drawn

    # 6. Download the synthetic CSV.
    _next(page, 6, "Download")
    with page.expect_download() as info:
        main.get_by_role("button", name="Synthetic data (CSV)").click()
    download = tmp_path / "synthetic.csv"
    info.value.save_as(download)
    files = {}
    for label, name in (
        ("Synthetic data (Excel)", "synthetic.xlsx"),
        ("Report (HTML", "report.html"),
        ("Metadata (JSON)", "metadata.json"),
        ("Model (zip", "model.zip"),
    ):
        with page.expect_download() as info:
            main.get_by_role("button", name=label).click()
        files[name] = tmp_path / name
        info.value.save_as(files[name])
    shot("6_download")

    # Back to step 1 from the sidebar: the data is still there.
    page.get_by_role("radiogroup", name="Steps").get_by_text("1. Data").click()
    expect(main.get_by_text("Using the file 'patients.csv'")).to_be_visible()

    synthetic = pd.read_csv(download)
    assert synthetic.shape == (200, real.shape[1])
    assert list(synthetic.columns) == list(real.columns)
    assert (synthetic["age"] >= 40).all()
    pd.testing.assert_frame_equal(pd.read_excel(files["synthetic.xlsx"]), synthetic)
    assert "<html" in files["report.html"].read_text(encoding="utf-8")[:500].lower()
    metadata = clinsynth.Metadata.load_from_json(files["metadata.json"])
    assert list(metadata.columns) == list(real.columns)
    model = clinsynth.load(files["model.zip"])
    assert model.sample(5).shape == (5, real.shape[1])


def test_linked_tables_upload_train_generate_compare_download(page, tmp_path: Path) -> None:  # noqa: ANN001
    """Three CSV files of the hospital simulator: links detected, HMA trained, ZIP downloaded."""
    import json
    import zipfile

    from playwright.sync_api import expect

    from clinsynth.simulate import simulate_hospital

    tables, _ = simulate_hospital(30, seed=2)
    paths = []
    for name, frame in tables.items():
        paths.append(tmp_path / f"{name}.csv")
        frame.to_csv(paths[-1], index=False)

    main = page.get_by_role("main")

    def shot(name: str, grids: int = 0, plots: int = 0) -> dict:
        return _shot(page, tmp_path, name, grids=grids, plots=plots)

    main.get_by_text("Upload linked tables (several CSV files)").click()
    expect(main.get_by_text("Your tables (select all the CSV files at once)")).to_be_visible()
    page.locator("input[type=file][multiple]").set_input_files([str(p) for p in paths])
    expect(main.get_by_text("Using the uploaded files: 3 linked tables — patients")).to_be_visible()
    expect(main.get_by_test_id("stDataFrame")).to_be_visible()
    assert shot("t1_data", grids=1)["grids"] == 1  # the preview of the chosen table, drawn

    _next(page, 2, "Metadata")
    expect(main.get_by_text("How the tables are linked")).to_be_visible()
    expect(main.get_by_text("The metadata fits the data")).to_be_visible()
    # The links with their evidence, editable, and the columns of the chosen table.
    expect(main.get_by_text("Edit the links.")).to_be_visible()
    shot("t2_metadata", grids=2)

    _next(page, 3, "Model")
    expect(main.get_by_text("Training will take")).to_be_visible()  # said before the click
    main.get_by_role("button", name="Train the model").click()
    expect(main.get_by_text("trained on 3 linked tables")).to_be_visible()
    shot("t3_model")

    _next(page, 4, "Generate")
    main.get_by_role("button", name="Generate synthetic tables").click()
    expect(main.get_by_text("Synthetic tables generated")).to_be_visible()
    shot("t4_generate", grids=1)

    _next(page, 5, "Compare")
    main.get_by_role("button", name="Compare real and synthetic tables").click()
    expect(main.get_by_text("Keys and links", exact=True)).to_be_visible()
    expect(main.get_by_text("How many rows each parent has")).to_be_visible()
    # Children per parent (bars), one column's histogram and box plot; the scores table.
    shot("t5_compare", grids=1, plots=2)

    _next(page, 6, "Download")
    with page.expect_download() as info:
        main.get_by_role("button", name="All tables (ZIP of CSV files").click()
    archive_path = tmp_path / "synthetic_tables.zip"
    info.value.save_as(archive_path)
    with page.expect_download() as info:
        main.get_by_role("button", name="Report (HTML").click()
    report_path = tmp_path / "tables_report.html"
    info.value.save_as(report_path)
    shot("t6_download")

    with zipfile.ZipFile(archive_path) as archive:
        assert set(archive.namelist()) == {
            "patients.csv",
            "visits.csv",
            "lab_results.csv",
            "metadata.json",
            "report.json",
        }
        patients = pd.read_csv(archive.open("patients.csv"))
        visits = pd.read_csv(archive.open("visits.csv"))
        metadata = clinsynth.Metadata.from_dict(json.loads(archive.read("metadata.json")))
        scores = json.loads(archive.read("report.json"))
    assert len(patients) == 30
    assert visits["patient_id"].isin(patients["patient_id"]).all()
    assert len(metadata.relationships) == 3
    assert scores  # the comparison's scores travel with the tables
    assert "<html" in report_path.read_text(encoding="utf-8")[:500].lower()
