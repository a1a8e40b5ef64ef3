//! Language detection.

use super::*;

#[test]
fn detects_the_language_from_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        detect(dir)
            .unwrap_err()
            .to_string()
            .contains("not a plugin folder")
    );
    std::fs::write(dir.join("pyproject.toml"), "").unwrap();
    assert_eq!(detect(dir).unwrap(), Lang::Python);
    std::fs::write(dir.join("package.json"), "{}").unwrap();
    let err = detect(dir).unwrap_err().to_string();
    assert!(err.contains("python, js"), "{err}");
    std::fs::remove_file(dir.join("pyproject.toml")).unwrap();
    assert_eq!(detect(dir).unwrap(), Lang::Js);
}
