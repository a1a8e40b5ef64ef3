//! Compiled plugins are cached on disk: a second start skips compilation.

use crate::support::{Pipeline, files_under, plugin_dir, weir};

#[test]
fn second_start_loads_the_compiled_plugin_from_the_cache() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["upper"]);
    std::fs::write(dir.join("in.jsonl"), "{\"a\":\"b\"}\n").expect("write input");
    Pipeline::new(dir)
        .file_source("in.jsonl")
        .stage("up", "upper")
        .output(
            "default",
            "type = \"file\"\npath = \"out.jsonl\"\nformat = \"value\"\n",
        )
        .dead_letter(None)
        .write(dir);
    let run = || {
        let out = weir()
            .args(["run", "--quiet"])
            .arg(dir.join("pipeline.toml"))
            .output()
            .expect("run weir");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let first = run();
    assert!(first.contains("cache=Miss"), "{first}");
    let second = run();
    assert!(second.contains("cache=Hit"), "{second}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).expect("output"),
        "{\"A\":\"B\"}\n"
    );
    let artifacts: Vec<_> = files_under(&dir.join("cache"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
}
