//! Shared helpers of the integration tests: test data, expected answers,
//! the live reference tools, running a worker.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use stoq_core::{Payload, PluginConfig, Request, Worker, WorkerResponse};

/// `testdata/misc-plugins`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/misc-plugins")
}

/// The bytes of a test file (path relative to `testdata/misc-plugins`).
pub fn read(rel: &str) -> Vec<u8> {
    let p = data_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `expected.json`.
pub fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).expect("expected.json is JSON")
}

/// The reference Python (with pypdf), when `STOQ_TEST_PYTHON` is set.
pub fn python(test: &str) -> Option<String> {
    match std::env::var("STOQ_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "{test}: STOQ_TEST_PYTHON is not set; skipping the live comparison \
                 (expected.json is still compared; scripts/test.sh sets it)"
            );
            None
        }
    }
}

/// Run `script` with the reference Python and parse its JSON output.
pub fn run_python(python: &str, script: &str, args: &[&Path]) -> Value {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        out.status.success(),
        "{python} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference script prints JSON")
}

/// Build the plugin `name` of this crate with `options` and return its
/// worker.
pub fn worker(name: &str, options: &[(&str, &str)]) -> Arc<dyn Worker> {
    let registry = stoq_plugins_misc::registry();
    let module = registry
        .get(name)
        .unwrap_or_else(|| panic!("no plugin {name}"));
    let cfg = PluginConfig::new(name, options.iter().map(|(k, v)| (*k, *v)));
    (module.build)(&cfg)
        .unwrap_or_else(|e| panic!("building {name}: {e}"))
        .worker
        .expect("a worker")
}

/// Scan `payload` with `worker`.
pub async fn scan(worker: &Arc<dyn Worker>, payload: &Payload) -> Option<WorkerResponse> {
    worker
        .scan(payload, &Request::default())
        .await
        .expect("the scan succeeds")
}

/// Scan bytes.
pub async fn scan_bytes(worker: &Arc<dyn Worker>, data: &[u8]) -> Option<WorkerResponse> {
    scan(worker, &Payload::new(data.to_vec())).await
}

/// Lower-case hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    stoq_core::hashing::hex(&stoq_core::hashing::sha256(data))
}

/// Every prefix length worth trying on `len` bytes: all of the first 64
/// and the last 64, and about `steps` in between.
pub fn cut_points(len: usize, steps: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(64)).collect();
    let step = (len / steps.max(1)).max(1);
    v.extend((64..len).step_by(step));
    v.extend(len.saturating_sub(64)..len);
    v.sort_unstable();
    v.dedup();
    v
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `data` with every `every`-th byte flipped, starting at `from`.
pub fn corrupt(data: &[u8], from: usize, every: usize) -> Vec<u8> {
    let mut d = data.to_vec();
    let mut i = from;
    while i < d.len() {
        d[i] ^= 0xA5;
        i += every.max(1);
    }
    d
}
