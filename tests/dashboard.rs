//! `/dashboard` in a real browser: `tests/browser/dashboard.py` drives
//! headless Chromium against this build's binary (see the script for what
//! it checks). Skipped, saying what is missing, without Debian's `chromium`
//! or Python's playwright; `.ci/run` installs both. Screenshots land in
//! `target/dashboard-screenshots/`.

use std::process::Command;

fn works(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_dashboard_works_in_headless_chromium() {
    let python = std::env::var("DASHBOARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    if !works(Command::new("chromium").arg("--version")) {
        eprintln!("skipped: the dashboard browser test needs Debian's `chromium` on PATH");
        return;
    }
    if !works(Command::new(&python).args(["-c", "import playwright"])) {
        eprintln!(
            "skipped: the dashboard browser test needs Python's playwright ({python} cannot import it; set DASHBOARD_TEST_PYTHON)"
        );
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(&python)
        .arg(format!("{root}/tests/browser/dashboard.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_tickcast")])
        .args([
            "--screenshots",
            &format!("{root}/target/dashboard-screenshots"),
        ])
        .status()
        .expect("the browser script runs");
    assert!(
        status.success(),
        "the dashboard's browser checks failed (see above)"
    );
}
