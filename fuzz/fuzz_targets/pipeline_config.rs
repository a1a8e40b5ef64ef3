//! The pipeline file (`config/`: `PipelineConfig::from_str`, what `weir run`
//! calls on the file's text: TOML syntax, the typed tables with their spans,
//! the tagged `[source]` / `[outputs.*]` re-read for the offending field,
//! stage params to JSON, then every `validate`), on arbitrary text.
//!
//! Checked: never a panic or a hang; a refusal is `Invalid` (the text was
//! given, nothing is read) and is located, by a field path or by a line
//! within the text, and its message says something; an accepted pipeline
//! has its default output and validates again, and a text accepted once is
//! accepted again the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::{ConfigError, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match PipelineConfig::from_str(src, "/fuzz") {
        Ok(config) => {
            assert!(config.outputs.contains_key("default"));
            config
                .validate()
                .expect("an accepted pipeline validates again");
            let again = PipelineConfig::from_str(src, "/fuzz").expect("accepted again");
            // Debug, not ==: a NaN in a stage's params is not equal to itself.
            assert_eq!(format!("{again:?}"), format!("{config:?}"));
            assert!(config.plugin_dir_path().is_absolute());
        }
        Err(ConfigError::Read { .. }) => panic!("read a file while parsing text"),
        Err(e @ ConfigError::Invalid { .. }) => {
            if let ConfigError::Invalid { message, .. } = &e {
                assert!(!message.trim().is_empty(), "no message: {e}");
            }
            let lines = src.split('\n').count();
            if let Some(line) = e.line() {
                assert!(line >= 1 && line <= lines, "line {line} of {lines}: {e}");
            }
            assert!(
                !e.field().is_empty() || e.line().is_some(),
                "neither a field nor a line: {e}"
            );
            let _ = e.to_string();
        }
    }
});
