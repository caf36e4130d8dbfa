//! `pecarve`: real PEs embedded in junk are carved at their offsets with
//! their exact sizes, limits hold, malformed input never panics, and the
//! worker's results match a golden file.

use std::path::{Path, PathBuf};

use stoq_core::hashing::{hex, sha256};
use stoq_core::serde_json::{self, json};
use stoq_core::{Payload, PluginConfig, Request, Worker};
use stoq_engine::Stoq;
use stoq_plugins::pecarve::{self, carve, pe_size, CarveLimits, Carved};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pe")
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("STOQ_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus"));
    dir.join("pe/verdan32.exe").is_file().then_some(dir)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Pseudo-random junk that also holds stray `MZ` and `MZ...PE` lookalikes.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    for at in (0..len.saturating_sub(200)).step_by(97) {
        out[at..at + 2].copy_from_slice(b"MZ");
    }
    if len > 300 {
        // An MZ header whose e_lfanew points at a real "PE\0\0" but with
        // nothing valid after it.
        out[10..12].copy_from_slice(b"MZ");
        out[10 + 0x3c..10 + 0x40].copy_from_slice(&0x80u32.to_le_bytes());
        out[10 + 0x80..10 + 0x84].copy_from_slice(b"PE\0\0");
    }
    out
}

/// junk + cli-32.exe + junk + t64.exe + junk, and the two offsets.
fn embedded() -> (Vec<u8>, usize, usize) {
    let a = read(&testdata().join("cli-32.exe"));
    let b = read(&testdata().join("t64.exe"));
    let mut payload = junk(1000, 1);
    let off_a = payload.len();
    payload.extend_from_slice(&a);
    payload.extend(junk(3333, 2));
    let off_b = payload.len();
    payload.extend_from_slice(&b);
    payload.extend(junk(777, 3));
    (payload, off_a, off_b)
}

#[test]
fn carves_both_embedded_pes_at_their_offsets() {
    let (payload, off_a, off_b) = embedded();
    let a = read(&testdata().join("cli-32.exe"));
    let b = read(&testdata().join("t64.exe"));
    let report = carve(&payload, &CarveLimits::default());
    assert_eq!(
        report.carved,
        [
            Carved {
                offset: off_a,
                size: a.len(),
                truncated: false
            },
            Carved {
                offset: off_b,
                size: b.len(),
                truncated: false
            },
        ]
    );
    assert!(!report.limit_reached);
    for (c, original) in report.carved.iter().zip([&a, &b]) {
        assert_eq!(
            sha256(&payload[c.offset..c.offset + c.size]),
            sha256(original)
        );
    }
}

#[test]
fn every_testdata_pe_sizes_to_its_file_length() {
    for name in [
        "cli-32.exe",
        "cli-arm64.exe",
        "gui-64.exe",
        "t64.exe",
        "Microsoft.VisualC.dll",
        "nsDialogs.dll",
    ] {
        let data = read(&testdata().join(name));
        // No overlay in these files: pefile's trim() keeps them whole.
        assert_eq!(pe_size(&data, false), Some((data.len(), false)), "{name}");
        let mut padded = data.clone();
        padded.extend_from_slice(&[0xcc; 5000]);
        assert_eq!(pe_size(&padded, true), Some((data.len(), false)), "{name}");
    }
}

#[test]
fn the_payload_itself_is_not_carved_unless_asked() {
    let data = read(&testdata().join("cli-32.exe"));
    assert!(carve(&data, &CarveLimits::default()).carved.is_empty());
    let mut with_overlay = data.clone();
    with_overlay.extend(junk(500, 9));
    let limits = CarveLimits {
        carve_at_zero: true,
        ..CarveLimits::default()
    };
    assert_eq!(
        carve(&with_overlay, &limits).carved,
        [Carved {
            offset: 0,
            size: data.len(),
            truncated: false
        }]
    );
}

#[test]
fn signed_file_keeps_its_certificate_unless_trimmed_as_pefile() {
    let Some(dir) = corpus() else {
        eprintln!("note: the shared corpus is absent; verdan32.exe checks skipped");
        return;
    };
    let signed = read(&dir.join("pe/verdan32.exe"));
    let mut payload = junk(4096, 5);
    payload.extend_from_slice(&signed);
    payload.extend(junk(1024, 6));
    // Default: up to the end of the certificate table = the whole file.
    let report = carve(&payload, &CarveLimits::default());
    assert_eq!(report.carved.len(), 1);
    let c = report.carved[0];
    assert_eq!((c.offset, c.size), (4096, signed.len()));
    assert_eq!(
        sha256(&payload[c.offset..c.offset + c.size]),
        sha256(&signed)
    );
    // include_certificate=false: pefile's trim() (its overlay offset).
    let limits = CarveLimits {
        include_certificate: false,
        ..CarveLimits::default()
    };
    let c = carve(&payload, &limits).carved[0];
    assert_eq!((c.offset, c.size), (4096, 344_064));
}

#[test]
fn limits_hold() {
    let (payload, off_a, _) = embedded();
    let one = CarveLimits {
        max_carves: 1,
        ..CarveLimits::default()
    };
    let r = carve(&payload, &one);
    assert_eq!(r.carved.len(), 1);
    assert_eq!(r.carved[0].offset, off_a);
    assert!(r.limit_reached);

    let big = CarveLimits {
        min_size: 20_000,
        ..CarveLimits::default()
    };
    let r = carve(&payload, &big);
    assert_eq!(r.carved.len(), 1, "only t64.exe is that large");

    let short_scan = CarveLimits {
        max_scan_size: off_a + 100,
        ..CarveLimits::default()
    };
    let r = carve(&payload, &short_scan);
    assert_eq!(r.carved.len(), 1);
    assert!(r.limit_reached);
}

#[test]
fn a_pe_cut_off_by_the_end_of_the_payload_is_carved_as_truncated() {
    let b = read(&testdata().join("t64.exe"));
    let mut payload = junk(600, 7);
    payload.extend_from_slice(&b[..70_000]);
    let r = carve(&payload, &CarveLimits::default());
    assert_eq!(
        r.carved,
        [Carved {
            offset: 600,
            size: 70_000,
            truncated: true
        }]
    );
}

#[test]
fn truncations_at_every_97th_length_never_panic() {
    let (payload, off_a, off_b) = embedded();
    let total = payload.len();
    for len in (0..=total).step_by(97) {
        let r = carve(&payload[..len], &CarveLimits::default());
        // A carve only starts where a real PE starts.
        assert!(
            r.carved
                .iter()
                .all(|c| c.offset == off_a || c.offset == off_b),
            "at {len}"
        );
        assert!(r.carved.iter().all(|c| c.offset + c.size <= len));
    }
}

fn build(options: &[(&str, &str)]) -> std::sync::Arc<dyn Worker> {
    let cfg = PluginConfig::new("pecarve", options.iter().copied());
    (pecarve::descriptor().build)(&cfg).unwrap().worker.unwrap()
}

#[test]
fn bad_option_values_are_refused_at_build_time() {
    let cfg = PluginConfig::new("pecarve", [("max_carves", "lots")]);
    let err = (pecarve::descriptor().build)(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("pecarve") && err.contains("max_carves") && err.contains("lots"),
        "{err}"
    );
}

/// Exact results for the embedded payload. `STOQ_UPDATE_GOLDEN=1`
/// rewrites the golden file.
#[tokio::test]
async fn golden_output_embedded() {
    let (payload, off_a, off_b) = embedded();
    let resp = build(&[])
        .scan(&Payload::new(payload.clone()), &Request::default())
        .await
        .unwrap()
        .unwrap();
    assert!(resp.errors.is_empty());
    assert_eq!(resp.extracted.len(), 2);
    for (x, off) in resp.extracted.iter().zip([off_a, off_b]) {
        assert_eq!(x.payload_meta.extra_data["offset"], json!(off));
        assert_eq!(&x.content[..], &payload[off..off + x.content.len()]);
    }
    let got = serde_json::to_string_pretty(&resp.results.unwrap()).unwrap() + "\n";
    let path = testdata().join("golden/pecarve-embedded.json");
    if std::env::var_os("STOQ_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = String::from_utf8(read(&path)).unwrap();
    assert_eq!(got, want, "pecarve output changed (see {})", path.display());

    // Nothing found: no results at all.
    let none = build(&[])
        .scan(&Payload::new(junk(5000, 4)), &Request::default())
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_scan_extracts_and_rescans_the_carved_files() {
    let (payload, off_a, off_b) = embedded();
    let empty = tempfile::tempdir().unwrap();
    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(empty.path())
        .always_dispatch(["peinfo"])
        .build()
        .unwrap();
    let response = stoq
        .scan(payload, None, None, &["pecarve".to_string()])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let root = &response.results[0];
    assert_eq!(
        root.workers["pecarve"]["carved"].as_array().unwrap().len(),
        2
    );
    assert!(!root.workers.contains_key("peinfo"), "junk is not a PE");
    let children = &response.results[1..];
    assert_eq!(children.len(), 2);
    let originals = [
        read(&testdata().join("cli-32.exe")),
        read(&testdata().join("t64.exe")),
    ];
    for ((child, off), original) in children.iter().zip([off_a, off_b]).zip(&originals) {
        assert_eq!(child.extracted_by, ["pecarve"]);
        assert_eq!(child.payload_meta.extra_data["offset"], json!(off));
        assert_eq!(child.size, original.len() as u64);
        // peinfo ran on the carved file and saw the original's imphash.
        let want = stoq_plugins::peinfo::analyse(original).results.unwrap();
        assert_eq!(child.workers["peinfo"]["imphash"], want["imphash"]);
        assert_eq!(
            child.workers["peinfo"]["sections"],
            want["sections"],
            "{}",
            hex(&sha256(original))
        );
    }
}
