"""The report's layout in headless Chromium: three datasets and four methods at 1280, 1400 and 1920
px, with run panels open. Fails when two text boxes overlap (compared as the bounding rectangles
of every text fragment the page shows), when a run panel is wider than its column, and when the
leaderboard's headers leave the view as it scrolls."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.storage import save_record
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from reports.report import build_report
from tests.conftest import TINY
from tests.reports.test_reports import CHROMIUM, fabricate

DATASETS = [("pneumoniamnist", 28, None, 240, True), ("cifar10", 32, 100.0, 300, True), ("synthetic2d", 8, None, 120, False)]
METHODS = ("bce", "aucm", "alm", "focal")
WIDTHS = (1280, 1400, 1920)

# Every text fragment on the page that is not inside a plot, clipped to the scroll boxes around it
# (text scrolled out of the leaderboard's box is not drawn), as [left, top, right, bottom, text].
TEXT_BOXES = """() => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!node.textContent.trim() || element.closest("script, style, .js-plotly-plot")) continue;
    if (!element.checkVisibility()) continue;  // e.g. inside a closed <details>
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) {
      let [left, top, right, bottom] = [rect.left, rect.top, rect.right, rect.bottom];
      for (let box = element.parentElement; box; box = box.parentElement) {
        const style = getComputedStyle(box);
        if (style.overflowX === "visible" && style.overflowY === "visible") continue;
        const clip = box.getBoundingClientRect();
        [left, top, right, bottom] = [Math.max(left, clip.left), Math.max(top, clip.top),
                                      Math.min(right, clip.right), Math.min(bottom, clip.bottom)];
      }
      if (right - left > 0 && bottom - top > 0) boxes.push([left, top, right, bottom, node.textContent.trim().slice(0, 50)]);
    }
  }
  return boxes;
}"""

# Run panels (and run bodies) whose content is wider than their box, or that reach past their grid.
OVERFLOWING_PANELS = """() => Array.from(document.querySelectorAll("details.run[open] .panel, details.run[open] .run-body"))
  .filter(panel => {
    const grid = panel.closest(".grid") || panel;
    return panel.scrollWidth > panel.clientWidth + 1
      || panel.getBoundingClientRect().right > grid.getBoundingClientRect().right + 1;
  }).map(panel => panel.closest("details").id + ": " + (panel.querySelector("h4") || panel).textContent.trim().slice(0, 40))"""


def overlaps(boxes: list) -> list[tuple[str, str]]:
    """Pairs of text boxes that overlap by more than a pixel both ways (a sweep over left edges)."""
    found = []
    boxes = sorted(boxes)
    for index, (left, top, right, bottom, text) in enumerate(boxes):
        for other_left, other_top, other_right, other_bottom, other in boxes[index + 1:]:
            if other_left >= right - 1:
                break
            if min(right, other_right) - other_left > 1 and min(bottom, other_bottom) - max(top, other_top) > 1:
                found.append((text, other))
    return found


@pytest.fixture(scope="module")
def layout_report(tmp_path_factory) -> Path:
    """A real alm run (its history carries mu and the boolean mu_frozen) and records derived from it."""
    root = tmp_path_factory.mktemp("layout")
    real = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d", method="alm", seed=0, **{**TINY, "epochs": 3})),
                         progress=False)
    save_record(real, root / "runs")
    for dataset, size, imbalance, n_test, shared in DATASETS:
        for method in METHODS:
            for seed in (0, 1):
                if (dataset, method, seed) != ("synthetic2d", "alm", 0):
                    save_record(fabricate(real, dataset, size, imbalance, n_test, seed, shared, method, {}), root / "runs")
    return build_report(root / "runs", root / "report.html")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium to run the browser test)")
def test_no_text_overlaps_and_run_panels_fit_their_columns(layout_report):
    from playwright.sync_api import sync_playwright  # the dev extra; `playwright install` is never needed

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            view = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
            view.goto(layout_report.as_uri(), wait_until="load")
            view.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=30_000)
            opened = view.evaluate("""() => {
              const runs = Array.from(document.querySelectorAll("details.run"));
              const chosen = runs.filter((run, i) => i % 4 === 0 || run.id.includes("synthetic2d-alm"));
              chosen.forEach(run => { run.open = true; });
              return chosen.map(run => run.id);
            }""")
            view.wait_for_function(f"document.querySelectorAll('details.run[open] .schedule.js-plotly-plot').length == {len(opened)}",
                                   timeout=30_000)
            found = {}
            for width in WIDTHS:
                view.set_viewport_size({"width": width, "height": 900})
                view.wait_for_timeout(300)  # plotly's responsive relayout
                found[width] = (overlaps(view.evaluate(TEXT_BOXES)), view.evaluate(OVERFLOWING_PANELS),
                                view.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
            view.set_viewport_size({"width": 1400, "height": 900})
            view.evaluate("""() => { const wrap = document.querySelector(".leaderboard-wrap");
                                     wrap.scrollLeft = wrap.scrollWidth; wrap.scrollTop = wrap.scrollHeight; }""")
            pinned = view.evaluate("""() => {
              const wrap = document.querySelector(".leaderboard-wrap").getBoundingClientRect();
              const method = document.querySelector(".leaderboard-wrap thead th.method").getBoundingClientRect();
              const head = document.querySelector(".leaderboard-wrap thead").getBoundingClientRect();
              const shown = pin => { const r = pin.getBoundingClientRect();
                                     return r.left >= method.right - 1 && r.right <= wrap.right && r.width > 0; };
              return {headTop: head.top - wrap.top,
                      blockTitles: Array.from(document.querySelectorAll(".leaderboard-wrap tr.block .pin")).every(shown),
                      datasetTitles: Array.from(document.querySelectorAll(".leaderboard-wrap th.group .pin")).filter(shown).length};
            }""")
        finally:
            browser.close()
    for width, (overlapping, overflowing, page_overflow) in found.items():
        assert overlapping == [], f"{width} px: overlapping text {overlapping[:5]}"
        assert overflowing == [], f"{width} px: run panels wider than their column: {overflowing}"
        assert page_overflow <= 0, f"{width} px: the page scrolls sideways by {page_overflow} px"
    assert len(opened) >= 4
    assert abs(pinned["headTop"]) <= 2  # scrolled down and right, the header rows stay at the top of the box
    assert pinned["blockTitles"] and pinned["datasetTitles"] >= 1  # and the block and dataset titles stay readable
