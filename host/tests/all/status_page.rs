//! The live status page, in a real headless Chromium (Debian's package,
//! installed by `scripts/setup.sh --tests`): the rendered
//! counters move between two loads, and a screenshot is saved to
//! `target/test-artifacts/status-page.png`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::metrics::{free_port, get, wait_for};
use crate::support::{Pipeline, plugin_dir, weir_run, workspace};

/// The Chromium binary: `$WEIR_CHROMIUM` (exported by `scripts/setup.sh
/// --tests`, which installs Debian's package before any test starts), else
/// `chromium` on the PATH. The test never installs it.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("no Chromium: run `source scripts/setup.sh --tests` (or scripts/test.sh) first")
    })
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=4000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

/// The number rendered in the element with `id`.
fn rendered(dom: &str, id: &str) -> u64 {
    let at = dom
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in the rendered page:\n{dom}"));
    let rest = &dom[at + id.len() + 6..];
    let text: String = rest[..rest.find('<').expect("element end")]
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    text.parse()
        .unwrap_or_else(|_| panic!("#{id} is not a number: {rest:.40}"))
}

#[test]
fn status_page_renders_the_pipeline_and_its_numbers_move() {
    let chromium = chromium();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["tagger"]);
    let port = free_port();
    Pipeline::new(dir)
        .top("name = \"status-demo\"")
        .source(
            "type = \"generate\"\nschema = \"card-transactions\"\nrate = 2000\ncount = 100000000\n",
        )
        .stage_with("tag", "tagger", "[stages.params]\ntag = \"t\"\n")
        .tables(&format!("[admin]\naddress = \"127.0.0.1:{port}\"\n"))
        .write(dir);
    let mut child = weir_run(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start weir");
    wait_for("/readyz", Duration::from_secs(120), || {
        get(port, "/readyz").map(|r| r.0) == Some(200)
    });
    let url = format!("http://127.0.0.1:{port}/");
    let dump = || {
        let out = headless(&chromium, &dir.join("profile"))
            .arg("--dump-dom")
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium --dump-dom failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = dump();
    std::thread::sleep(Duration::from_millis(1500));
    let second = dump();
    for dom in [&first, &second] {
        assert!(dom.contains("weir · status-demo"), "title rendered");
        assert!(dom.contains(">tag</h2>"), "the stage node");
        assert!(dom.contains("output default"), "the output node");
        assert!(dom.contains("dead letters"), "the dead-letter node");
        assert!(dom.contains("tagger @ "), "plugin and version");
    }
    let (a, b) = (
        rendered(&first, "n-source-in"),
        rendered(&second, "n-source-in"),
    );
    assert!(a > 0 && b > a, "events read moved: {a} → {b}");
    let (a, b) = (
        rendered(&first, "n-out-default"),
        rendered(&second, "n-out-default"),
    );
    assert!(b > a, "events delivered moved: {a} → {b}");

    let artifacts = workspace().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let png = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(&chromium, &dir.join("profile"))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,900")
        .arg(&url)
        .stdout(Stdio::null())
        .status()
        .expect("run chromium");
    assert!(shot.success(), "chromium --screenshot failed");
    assert!(
        std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0) > 10_000,
        "a real screenshot at {}",
        png.display()
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll").is_none() {
        assert!(std::time::Instant::now() < deadline, "weir did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
