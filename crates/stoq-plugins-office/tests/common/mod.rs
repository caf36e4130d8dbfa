//! Helpers shared by the integration tests: the test data folder, its
//! `expected.json`, and the optional live run of the Python reference
//! tools (`$STOQ_TEST_PYTHON`, set by `scripts/test.sh`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `testdata/office/` of the workspace.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/office")
}

/// The content of a test file, by corpus-relative path
/// (`office-ole/x.doc`).
pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `testdata/office/expected.json`.
pub fn expected() -> Value {
    let p = testdata().join("expected.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The files of one section of `expected.json`, sorted.
pub fn section(name: &str) -> Vec<(String, Value)> {
    let e = expected();
    let mut v: Vec<(String, Value)> = e[name]
        .as_object()
        .unwrap_or_else(|| panic!("no section {name}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Run `script` with `$STOQ_TEST_PYTHON` in the test data folder and
/// parse its standard output as JSON. `None` (with a note) when the
/// variable is unset.
pub fn python(what: &str, script: &str) -> Option<Value> {
    let Ok(py) = std::env::var("STOQ_TEST_PYTHON") else {
        eprintln!(
            "note: STOQ_TEST_PYTHON is not set, skipping the live {what} comparison \
             (scripts/test.sh sets it); compared with expected.json only"
        );
        return None;
    };
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .current_dir(testdata())
        .output()
        .unwrap_or_else(|e| panic!("running {py}: {e}"));
    assert!(
        out.status.success(),
        "{what} script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("script output is JSON"))
}

/// Golden-file check: compare `actual` with `testdata/office/golden/<name>`;
/// with `STOQ_UPDATE_GOLDEN=1`, (re)write the file instead.
pub fn golden(name: &str, actual: &Value) {
    let p = testdata().join("golden").join(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("STOQ_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with STOQ_UPDATE_GOLDEN=1 to create it)",
            p.display()
        )
    });
    assert_eq!(text, want, "golden output {name} differs");
}

/// Prefixes and single-byte mutations of `data` for robustness tests:
/// `n` evenly spaced truncation points plus flips at `n` spots.
pub fn mutations(data: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let len = data.len();
    for i in 0..n {
        let cut = len * i / n;
        out.push(data[..cut].to_vec());
    }
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = data.to_vec();
        if len > 0 {
            let pos = (seed as usize) % len;
            m[pos] ^= (seed >> 32) as u8 | 1;
        }
        out.push(m);
    }
    out
}

/// The module names of `report` are oletools' `vba_modules` (a list of
/// names), leaving out the `xlm_macro.txt` pseudo-module olevba lists for
/// its BIFF plugin's output.
pub fn assert_same_modules(report: &stoq_plugins_office::VbaReport, theirs: &Value, path: &str) {
    let ours: std::collections::BTreeSet<&str> =
        report.modules.iter().map(|m| m.module.as_str()).collect();
    let theirs: std::collections::BTreeSet<&str> = theirs
        .as_array()
        .unwrap_or_else(|| panic!("{path}: vba_modules is not a list"))
        .iter()
        .map(|m| m.as_str().unwrap())
        .filter(|m| *m != "xlm_macro.txt")
        .collect();
    assert_eq!(ours, theirs, "{path}");
}
