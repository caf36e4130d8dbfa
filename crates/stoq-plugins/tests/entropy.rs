//! `entropy` against the values Python computed for the corpus
//! (EXPECTED.json, 6 decimals), the public plugin's vectors, a golden
//! output, and the worker inside a Stoq (small and large payloads).
//!
//! The files of `testdata/types/` always run; the whole shared corpus runs
//! too when it is there (`$STOQ_CORPUS`, default `/work/shared/corpus`).
//! Set `STOQ_UPDATE_GOLDEN=1` to rewrite the golden file.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use stoq_engine::Stoq;
use stoq_plugins::entropy::shannon_entropy;

fn types_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/types")
}

fn expected_subset() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(types_dir().join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["files"].as_object().unwrap().clone()
}

fn corpus() -> Option<(PathBuf, Value)> {
    let dir = PathBuf::from(
        std::env::var("STOQ_CORPUS").unwrap_or_else(|_| "/work/shared/corpus".into()),
    );
    let text = std::fs::read_to_string(dir.join("EXPECTED.json")).ok()?;
    Some((dir, serde_json::from_str(&text).unwrap()))
}

/// Python's `round(x, 6)` for the values at hand (no ties at 6 decimals).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn assert_matches(dir: &Path, path: &str, expected: f64) {
    let data = std::fs::read(dir.join(path)).unwrap();
    let got = shannon_entropy(&data);
    assert!(
        (round6(got) - expected).abs() < 1e-9,
        "{path}: {got} rounds to {}, Python says {expected}",
        round6(got)
    );
}

#[test]
fn public_plugin_vectors() {
    assert_eq!(shannon_entropy(&[b'a'; 256]), 0.0);
    assert_eq!(shannon_entropy(&b"abc".repeat(256)), 1.584962500721156);
}

#[test]
fn testdata_matches_python() {
    let expected = expected_subset();
    assert!(expected.len() >= 25);
    for (path, e) in &expected {
        assert_matches(&types_dir(), path, e["entropy"].as_f64().unwrap());
    }
}

#[test]
fn whole_corpus_matches_python() {
    let Some((dir, expected)) = corpus() else {
        eprintln!("shared corpus not found: skipped");
        return;
    };
    let hashes = expected["hashes"].as_object().unwrap();
    assert!(hashes.len() >= 100);
    for (path, h) in hashes {
        assert_matches(&dir, path, h["entropy"].as_f64().unwrap());
    }
}

/// The worker's results for every file of `testdata/types/`, compared
/// exactly with the committed golden file (full f64 precision).
#[test]
fn golden_output() {
    let mut all = serde_json::Map::new();
    for path in expected_subset().keys() {
        let data = std::fs::read(types_dir().join(path)).unwrap();
        all.insert(path.clone(), json!({ "entropy": shannon_entropy(&data) }));
    }
    let got = Value::Object(all);
    let golden = types_dir().join("golden/entropy.json");
    if std::env::var_os("STOQ_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, stoq_core::to_json_pretty(&got) + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_in_a_stoq_small_and_large() {
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(empty.path())
        .build()
        .unwrap();
    let small = std::fs::read(types_dir().join("pe/cli-32.exe")).unwrap();
    // 3 MiB: counted on the blocking pool.
    let large: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for data in [small, large] {
        let want = shannon_entropy(&data);
        let r = stoq.scan(data, None, None, &["entropy".to_string()]).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.results[0].workers["entropy"], json!({ "entropy": want }));
    }
}
