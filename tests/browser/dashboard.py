"""Drives /dashboard in headless Chromium against a tickcast binary started
on loopback with the embedded data: every view loads with no console error
and no failed request, charts are drawn with the expected points, a
backtest and an optimisation run from the page show the API's figures, the
phone layout has no horizontal scroll, the page polls gently, and the
outage banner shows once the service is stopped.

    python3 tests/browser/dashboard.py --binary target/debug/tickcast \
        --screenshots target/dashboard-screenshots [--docs-img docs/img]

Needs `playwright` (Python) and Debian's `chromium` on PATH; no browser
download (`playwright install` is never run).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

VIEWS = ["service", "models", "forecast", "backtest", "portfolio"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary: str, port: int, state: Path) -> subprocess.Popen:
    # Only the settings below: any TICKCAST_* of the caller's would apply too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update(
        {
            "TICKCAST_MARKET__PROVIDERS": '["local"]',
            "TICKCAST_MARKET__PROBE_ON_START": "false",
            "TICKCAST_CATALOG__SUBSCRIPTIONS_DB": str(state / "subscriptions.sqlite3"),
            "TICKCAST_DATA__PRICES_DIR": str(state / "prices"),
            "TICKCAST_LOG__LEVEL": "warn",
        }
    )
    process = subprocess.Popen(
        [binary, "--port", str(port)], cwd=state, env=env, stdout=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("tickcast did not start")


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def post_status(base: str, path: str, body: dict) -> dict:
    """The JSON body of a call that may be refused."""
    try:
        return post(base, path, body)
    except urllib.error.HTTPError as e:
        return json.load(e)


def signed_pct(v: float) -> str:
    """The page's format of a return: +1.23 %."""
    r = round(v * 10000) / 100
    return f"{'+' if r > 0 else ''}{r:.2f} %"


def pct(v: float) -> str:
    return f"{v * 100:.2f} %"


class Checks:
    def __init__(self):
        self.failures = []

    def that(self, ok: bool, what: str):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)


def watch(page, problems: list, requests: list):
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    page.on("request", lambda r: requests.append((time.monotonic(), r.method, r.url, r.post_data)))


def gzipped_bytes(method: str, url: str, body) -> int:
    """The size of one answer as the page receives it with gzip on."""
    request = urllib.request.Request(
        url,
        data=body.encode() if body else None,
        method=method,
        headers={"Accept-Encoding": "gzip", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(response.read())


def points(page, chart: str) -> int:
    return int(page.get_attribute(f"#{chart}", "data-points") or "0")


def painted(page, chart: str) -> int:
    """Pixels drawn on the chart's canvas (0 for a blank canvas)."""
    return page.evaluate(
        """(id) => {
            const c = document.querySelector('#' + id + ' canvas');
            if (!c || !c.width || !c.height) return 0;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        }""",
        chart,
    )


def wait_points(page, chart: str, at_least: int, timeout_ms: int = 30000):
    page.wait_for_function(
        "([id, n]) => Number(document.getElementById(id).dataset.points) >= n",
        arg=[chart, at_least],
        timeout=timeout_ms,
    )


def no_bad_text(page) -> bool:
    body = page.inner_text("main")
    return "NaN" not in body and "undefined" not in body


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
    )


def figure(page, view: str, label: str) -> str:
    return page.locator(f"#{view}-figures div", has_text=label).first.locator("dd").inner_text()


def run(args) -> int:
    check = Checks()
    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="tickcast-dashboard-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(str(Path(args.binary).resolve()), port, state)
    stocks = json.load(urllib.request.urlopen(base + "/api/catalog/stocks"))["stocks"]
    first = [s["yfinance_symbol"] for s in stocks[:5]]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
            )
            for name, viewport in [("desktop", (1280, 800)), ("phone", (390, 844))]:
                context = browser.new_context(
                    viewport={"width": viewport[0], "height": viewport[1]}
                )
                page = context.new_page()
                problems, requests = [], []
                watch(page, problems, requests)
                page.goto(f"{base}/dashboard#service")

                # Service: two health samples drawn, gentle polling.
                wait_points(page, "chart-success", 2, 15000)
                check.that(painted(page, "chart-success") > 100, f"{name}: success-rate chart drawn")
                check.that(painted(page, "chart-latency") > 100, f"{name}: latency chart drawn")
                check.that(
                    page.locator("#providers tbody tr").count() >= 1, f"{name}: provider table filled"
                )
                check.that(
                    page.inner_text("#last-updated") != "never", f"{name}: last-updated time shown"
                )
                check.that(
                    page.locator("meta[name=viewport]").count() == 1, f"{name}: viewport meta tag"
                )
                page.keyboard.press("Tab")
                focused = page.evaluate("() => document.activeElement.tagName")
                check.that(focused in ("BUTTON", "A"), f"{name}: keyboard reaches the controls ({focused})")
                since = len(requests)
                page.wait_for_timeout(10000)
                polled = len(requests) - since
                check.that(polled <= 5, f"{name}: {polled} requests in 10 s idle (under 1/s)")
                page.screenshot(path=str(shots / f"{name}-service.png"), full_page=True)

                # Models: listed with their held-out figures.
                page.click("nav button[data-view=models]")
                page.wait_for_function(
                    "() => document.querySelectorAll('#models tbody tr').length > 0", timeout=30000
                )
                check.that(
                    page.locator("#models tbody tr").count() >= 4, f"{name}: models table filled"
                )
                check.that(no_bad_text(page), f"{name}: models view has no NaN or undefined")
                page.screenshot(path=str(shots / f"{name}-models.png"), full_page=True)

                # Forecast: the first stock's 120 closes and a forecast ahead.
                page.click("nav button[data-view=forecast]")
                wait_points(page, "chart-forecast", 120, 60000)
                check.that(
                    page.input_value("#forecast-symbol") == stocks[0]["yfinance_symbol"],
                    f"{name}: forecast defaults to the first listed stock",
                )
                check.that(points(page, "chart-forecast") == 120, f"{name}: 120 closes plotted")
                check.that(painted(page, "chart-forecast") > 100, f"{name}: forecast chart drawn")
                check.that(no_bad_text(page), f"{name}: forecast view has no NaN or undefined")
                page.screenshot(path=str(shots / f"{name}-forecast.png"), full_page=True)

                # Backtest: run from the page, figures as the API answers them.
                page.click("nav button[data-view=backtest]")
                page.wait_for_function(
                    "() => document.getElementById('backtest-model').options.length > 0"
                )
                page.select_option("#backtest-period", "3mo")
                page.click("#backtest-form button[type=submit]")
                wait_points(page, "chart-equity", 2, 60000)
                symbol = page.input_value("#backtest-symbol")
                model = page.input_value("#backtest-model")
                answer = post(
                    base,
                    "/api/catalog/backtest",
                    {"model_id": model, "stock_symbol": symbol, "period": "3mo"},
                )["backtest_result"]
                check.that(
                    points(page, "chart-equity") == answer["days"],
                    f"{name}: equity curve has the backtest's {answer['days']} days",
                )
                check.that(
                    figure(page, "backtest", "Total return") == signed_pct(answer["total_return"]),
                    f"{name}: backtest total return {signed_pct(answer['total_return'])} shown",
                )
                check.that(
                    figure(page, "backtest", "Max drawdown") == pct(answer["max_drawdown"]),
                    f"{name}: backtest drawdown shown",
                )
                check.that(painted(page, "chart-drawdown") > 100, f"{name}: drawdown chart drawn")
                check.that(
                    page.locator("#monthly tbody tr").count() == len(answer["monthly_returns"]),
                    f"{name}: monthly returns table",
                )
                check.that(no_bad_text(page), f"{name}: backtest view has no NaN or undefined")
                page.screenshot(path=str(shots / f"{name}-backtest.png"), full_page=True)

                # Portfolio: the first five stocks optimised on load.
                page.click("nav button[data-view=portfolio]")
                wait_points(page, "chart-weights-bar", 5, 60000)
                wait_points(page, "chart-frontier", 2, 60000)
                optimised = post(
                    base,
                    "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                    {"params": {"symbols": first, "method": "min_variance"}},
                )
                check.that(
                    figure(page, "portfolio", "Annual volatility")
                    == pct(optimised["annualized"]["volatility"]),
                    f"{name}: portfolio volatility {pct(optimised['annualized']['volatility'])} shown",
                )
                check.that(painted(page, "chart-weights-bar") > 100, f"{name}: weights chart drawn")
                check.that(painted(page, "chart-frontier") > 100, f"{name}: frontier drawn")
                check.that(no_bad_text(page), f"{name}: portfolio view has no NaN or undefined")
                page.screenshot(path=str(shots / f"{name}-portfolio.png"), full_page=True)

                if name == "phone":
                    for view in VIEWS:
                        page.click(f"nav button[data-view={view}]")
                        page.wait_for_timeout(300)
                        check.that(no_horizontal_scroll(page), f"phone: {view} has no horizontal scroll")
                check.that(not problems, f"{name}: no console error or failed request {problems}")
                if name == "desktop":
                    loaded = [r for r in requests if r[2].startswith(base)]
                    weight = sum(gzipped_bytes(m, u, b) for _, m, u, b in loaded)
                    print(f"page weight: {weight / 1024:.1f} KiB gzipped over {len(loaded)} requests")
                    check.that(weight < 150 * 1024, "all five views load under 150 KiB gzipped")
                context.close()

            # An API error shows the API's own words (a real refusal: no
            # embedded stock beats a zero risk-free rate over 2022 alone).
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{base}/dashboard#portfolio")
            wait_points(page, "chart-weights-bar", 1, 60000)
            for box in page.locator("#portfolio-symbols input").all():
                box.set_checked(box.get_attribute("value") == "AAPL")
            page.select_option("#portfolio-method", "max_sharpe")
            page.click("#portfolio-form button[type=submit]")
            page.wait_for_selector("#portfolio-status.error", timeout=30000)
            refusal = post_status(
                base,
                "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                {"params": {"symbols": ["AAPL"], "method": "max_sharpe"}},
            )
            shown = page.inner_text("#portfolio-status")
            check.that(
                refusal["error"] in shown and "undefined" not in shown,
                f"an API error shows its text: {shown!r}",
            )
            context.close()

            # Outage: the banner within 10 s of the service stopping.
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{base}/dashboard#service")
            wait_points(page, "chart-success", 1, 15000)
            server.terminate()
            server.wait(timeout=30)
            stopped = time.monotonic()
            page.wait_for_selector("#outage:not([hidden])", timeout=10000)
            check.that(True, f"outage banner after {time.monotonic() - stopped:.1f} s")
            check.that(
                "not answering" in page.inner_text("#outage"), "the banner says the service is not answering"
            )
            page.screenshot(path=str(shots / "desktop-outage.png"))
            browser.close()
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(state, ignore_errors=True)
    if args.docs_img:
        target = Path(args.docs_img)
        target.mkdir(parents=True, exist_ok=True)
        for view in VIEWS:
            shutil.copy(shots / f"desktop-{view}.png", target / f"dashboard-{view}.png")
        shutil.copy(shots / "phone-portfolio.png", target / "dashboard-phone-portfolio.png")
    print(f"{len(check.failures)} failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--docs-img")
    sys.exit(run(parser.parse_args()))
