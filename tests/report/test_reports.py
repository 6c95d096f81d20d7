"""report.html in a real browser (Debian's headless Chromium, driven by chromedriver), and the
verdicts checked against numbers computed here from the folders' own data files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from hivemind.cli import main
from hivemind.report import build
from tests.helpers import scenario_text

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per worker. `make test` installs Debian's chromium and
    chromium-driver where they are missing: a machine without them fails here, by name."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert shutil.which("chromium") and shutil.which("chromedriver"), "chromium and chromedriver (make test installs them)"
    options = Options()
    options.binary_location = CHROMIUM
    # The closed network refuses Chromium's background connections; none of them is needed.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1300,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def open_page(driver, path):
    driver.get(path.resolve().as_uri())
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def by_id(driver, ident):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, ident)


def test_the_harness_sees_a_script_error(browser, tmp_path):
    """The console check below can fail: a page that throws is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    errors = open_page(browser, page)
    assert errors and "undefinedFunction" in errors[0]["message"]


def test_a_run_folder_report(browser, tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(graph={"kind": "cycle", "n": 12}, run={"seeds": [0, 1]}, dynamics={"steps": 400}))
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    ds = xr.open_dataset(out / "run.nc")
    from hivemind.report.folders import _mean_over_agents

    # Read in blocks of a few steps (as for a file-backed run), the same as xarray's mean of the whole.
    np.testing.assert_array_equal(_mean_over_agents(ds.distance_to_anchor, values=50), ds.distance_to_anchor.mean("agent").values)
    final = ds.distance_to_anchor.isel(step=-1)
    mobile = [a for a in range(ds.sizes["agent"]) if a != 0]  # node 0 is the anchor
    within = int((final.isel(agent=mobile) < 1e-3).all("seed").sum())
    assert printed[0].startswith("verdict: the hivemind formed" if within == 11 else "verdict: the hivemind did not form")
    assert f"{within}/11 agents within 0.001" in printed[0]
    assert (out / "report.txt").read_text().startswith(printed[0])
    assert open_page(browser, out / "report.html") == []
    assert by_id(browser, "verdict").text.splitlines()[1] == printed[0]
    from selenium.webdriver.common.by import By

    lines = browser.find_elements(By.CSS_SELECTOR, "#figures svg polyline")
    assert len(lines) == 3  # two seeds and the linearised theory
    assert "[manifold]" in by_id(browser, "scenario").text


def test_a_sweep_folder_report(browser, tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(graph={"kind": "cycle", "n": 8}, dynamics={"steps": 300}))
    out = tmp_path / "sweep"
    argv = ["sweep", str(path), "--grid", "dynamics.step_size=0.05,0.2,0.45", "--seeds", "2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    ds = xr.open_dataset(out / "sweep.nc")
    reached = int(np.isfinite(ds.steps_to_tolerance.values).all(axis=-1).sum())  # every seed of a point
    assert printed[0].startswith(f"verdict: the hivemind formed at {reached} of 3 points")
    assert open_page(browser, out / "report.html") == []
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "#points tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["0.05", "0.2", "0.45"]
    assert browser.find_element(By.CSS_SELECTOR, "#phase-diagram img").get_attribute("src").startswith("data:image/png;base64,")


def test_a_live_folder_report_browses_by_round_and_agent(browser, tmp_path):
    from hivemind.live.backends import FakeBackend
    from hivemind.live.run import run_live
    from tests.live.test_live import scenario

    out = tmp_path / "live"
    run_live(scenario(), out, backend=FakeBackend(), say=lambda s: None, formats=("png",))
    report = build(out)
    (out / "report.html").write_text(report.html)
    assert open_page(browser, out / "report.html") == []
    recs = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()[1:]]
    said = {(r["decoding"], r["round"], r["agent"]): r["text"] for r in recs if r["kind"] == "message"}
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def rows():
        return [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#messages tbody tr")
        ]

    # The page opens on the last round (3) of the first decoding, every agent: 4 rows.
    assert [r[:2] for r in rows()] == [["3", a] for a in ("1", "2", "3", "4")]
    by_id(browser, "prev").click()
    by_id(browser, "prev").click()  # round 1
    Select(by_id(browser, "decoding")).select_by_value("stochastic")
    assert by_id(browser, "round-label").text == "round 1 of 3"
    shown = {r[1]: r[3] for r in rows()}
    assert shown == {a: said[("stochastic", 1, a)] for a in ("1", "2", "3", "4")}
    # Heard by: agent 2's message goes to 1 and 3 on the path 1-2-3-4.
    assert {r[1]: r[2] for r in rows()}["2"] == "1 3"
    # One agent through every round, its distance beside each message, as in agents.csv.
    browser.find_element(By.ID, "node-2").click()  # agent "3"
    ds = xr.open_dataset(out / "live.nc")
    expected = ds.distance_to_anchor.sel(decoding="stochastic", agent="3").values
    got = rows()
    assert [r[1] for r in got] == ["3"] * 4
    assert [r[3] for r in got] == [said[("stochastic", k, "3")] for k in range(4)]
    assert [float(r[4]) for r in got] == pytest.approx(expected, abs=6e-4)
    assert browser.find_element(By.CSS_SELECTOR, "#messages tr.sel").find_element(By.TAG_NAME, "td").text == "1"
    assert by_id(browser, "node-2").get_attribute("stroke") == "#e63946"


def test_a_fit_folder_report(browser, tmp_path, capsys):
    # 20 two-agent discussions pulled together at 0.3 per round: the peer model should beat persistence.
    rng = np.random.default_rng(0)
    lines = ["conversation,round,agent,opinion"]
    for c in range(20):
        x = rng.uniform(-2, 2, 2)
        for t in range(5):
            lines += [f"d{c},{t},{a},{x[a]:.6f}" for a in range(2)]
            x = x + 0.3 * (x[::-1] - x) + rng.normal(0, 0.05, 2)
    path = tmp_path / "talk.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fit"
    assert main(["fit", str(path), "--out", str(out), "--models", "peer,peer+decay", "--folds", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    doc = json.loads((out / "fit.json").read_text())
    assert printed[0].startswith("verdict: 20 discussions") and f": {doc['best']}" in printed[1]
    assert len(printed) <= 8 and not any("chosen by (training data)" in line for line in printed)  # the table is in report.txt
    text = (out / "report.txt").read_text()
    assert "chosen by (training data)" in text and "  peer+decay " in text and " cv +" in text
    assert open_page(browser, out / "report.html") == []
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    names = [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in rows]  # after the conversation's column
    assert names == list(doc["models"])


def test_report_rebuilds_and_refuses_other_folders(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"{tmp_path}: not a hivemind output folder (no run.nc, sweep.nc, summary.json, fit.json or design.json)\n"
    assert main(["report", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'none'}: not a folder\n"
    # Files of the right names that hivemind did not write (or an older one did): one line naming
    # the file and the schema version.
    (tmp_path / "fit.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'fit.json'}: written by an older hivemind (schema_version 0; this one reads 2): rerun hivemind fit\n"
    )
    other = tmp_path / "run"
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    (other / "run.nc").write_text("not NetCDF")
    assert main(["report", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{other / 'manifest.json'}: written by an older hivemind (schema_version 0; this one reads 1)")
    assert err.count("\n") == 1
