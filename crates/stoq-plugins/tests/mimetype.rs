//! `mimetype` against libmagic (`file --mime-type` 5.44, recorded in the
//! corpus's EXPECTED.json) on real files, a golden output, and the worker
//! inside a Stoq.
//!
//! The files of `testdata/types/` always run; the whole shared corpus runs
//! too when it is there (`$STOQ_CORPUS`, default `/work/shared/corpus`).
//! Set `STOQ_UPDATE_GOLDEN=1` to rewrite the golden file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stoq_engine::Stoq;
use stoq_plugins::mimetype::detect;

// ------------------------------------------------------------- helpers

fn types_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/types")
}

/// `testdata/types/expected.json`: path → libmagic and hash answers.
fn load_expected_subset() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(types_dir().join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The shared corpus and its EXPECTED.json, when present.
fn corpus() -> Option<(PathBuf, Value)> {
    let dir = PathBuf::from(
        std::env::var("STOQ_CORPUS").unwrap_or_else(|_| "/work/shared/corpus".into()),
    );
    let text = std::fs::read_to_string(dir.join("EXPECTED.json")).ok()?;
    Some((dir, serde_json::from_str(&text).unwrap()))
}

fn update_golden() -> bool {
    std::env::var_os("STOQ_UPDATE_GOLDEN").is_some()
}

fn stoq() -> Stoq {
    let empty = tempfile::tempdir().unwrap();
    Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(empty.path())
        .build()
        .unwrap()
}

// --------------------------------------------------------------- tests

/// Every file whose media type differs from libmagic 5.44's, with
/// libmagic's answer and ours. The tests assert this table is exact: a new
/// difference, or a difference that went away, fails them.
///
/// Why each one:
/// - `rtf/issue_185.rtf` starts `{\rt`, not `{\rtf`: Word opens it as RTF
///   (oletools reads its object), so it is RTF to an analyst.
/// - `office-ooxml/sample_with_external_link_to_doc.docx`: libmagic looks
///   at the first three zip members only and gives up ("Microsoft OOXML",
///   octet-stream); the central directory shows `word/` parts.
/// - `misc/cacert_class3.der`: libmagic names it ("Certificate") without a
///   media type; `application/x-x509-ca-cert` is the usual one.
/// - `swf/claque-beignet-zws.swf`: libmagic 5.44 has no rule for
///   LZMA-compressed Flash (`ZWS`); it is Flash all the same.
pub const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "misc/cacert_class3.der",
        "application/octet-stream",
        "application/x-x509-ca-cert",
    ),
    (
        "office-ooxml/sample_with_external_link_to_doc.docx",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("rtf/issue_185.rtf", "text/plain", "text/rtf"),
    (
        "swf/claque-beignet-zws.swf",
        "application/octet-stream",
        "application/x-shockwave-flash",
    ),
];

/// Detect every file of `dir` named in `libmagic` (path → media type) and
/// return the differences, sorted by path.
fn differences(dir: &Path, libmagic: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, want) in libmagic {
        let data = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let got = detect(&data).mimetype;
        if got != want {
            out.push((path.clone(), want.clone(), got.to_string()));
        }
    }
    out
}

fn expected_table(paths: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    KNOWN_DIFFERENCES
        .iter()
        .filter(|(p, _, _)| paths.contains_key(*p))
        .map(|(p, l, o)| (p.to_string(), l.to_string(), o.to_string()))
        .collect()
}

#[test]
fn testdata_matches_libmagic_or_known_differences() {
    let expected = load_expected_subset();
    let libmagic: BTreeMap<String, String> = expected
        .iter()
        .map(|(p, e)| (p.clone(), e["mime_full_file"].as_str().unwrap().to_string()))
        .collect();
    assert!(libmagic.len() >= 25);
    assert_eq!(
        differences(&types_dir(), &libmagic),
        expected_table(&libmagic)
    );
}

#[test]
fn whole_corpus_matches_libmagic_or_known_differences() {
    let Some((dir, expected)) = corpus() else {
        eprintln!("shared corpus not found: skipped");
        return;
    };
    let libmagic: BTreeMap<String, String> = expected["magic"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, m)| (p.clone(), m["mime_full_file"].as_str().unwrap().to_string()))
        .collect();
    assert!(libmagic.len() >= 100);
    assert_eq!(differences(&dir, &libmagic), expected_table(&libmagic));
    // Every entry of the table is a corpus file.
    for (p, _, _) in KNOWN_DIFFERENCES {
        assert!(libmagic.contains_key(*p), "{p} is not in the corpus");
    }
}

#[test]
fn public_plugin_vector() {
    assert_eq!(detect(b"This is a magical string").mimetype, "text/plain");
}

/// The worker's results for every file of `testdata/types/`, compared
/// exactly with the committed golden file.
#[test]
fn golden_output() {
    let expected = load_expected_subset();
    let mut all = serde_json::Map::new();
    for path in expected.keys() {
        let data = std::fs::read(types_dir().join(path)).unwrap();
        all.insert(path.clone(), detect(&data).to_json());
    }
    let got = Value::Object(all);
    let golden = types_dir().join("golden/mimetype.json");
    if update_golden() {
        std::fs::write(&golden, stoq_core::to_json_pretty(&got) + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    assert_eq!(got, want);
    // Key order is part of the output.
    let keys: Vec<&String> = got["pe/cli-32.exe"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["mimetype", "label", "extension"]);
}

#[test]
fn labels_tell_apart_what_media_types_do_not() {
    let label = |p: &str| detect(&std::fs::read(types_dir().join(p)).unwrap()).label;
    assert_eq!(label("pe/cli-32.exe"), "PE32 executable");
    assert_eq!(label("pe/gui-64.exe"), "PE32+ executable");
    assert_eq!(label("pe/nsDialogs.dll"), "PE32 executable (DLL)");
    assert_eq!(
        label("office-ooxml/oleform-PR314.docm"),
        "Microsoft Word 2007+ document (macro-enabled)"
    );
    assert_eq!(
        label("office-ooxml/embedded-simple-2007.xlsm"),
        "Microsoft Excel 2007+ workbook"
    );
}

#[tokio::test]
async fn worker_in_a_stoq() {
    let stoq = stoq();
    let data = std::fs::read(types_dir().join("pdf/crazyones.pdf")).unwrap();
    let r = stoq.scan(data, None, None, &["mimetype".to_string()]).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.results[0].workers["mimetype"],
        serde_json::json!({"mimetype": "application/pdf", "label": "PDF document", "extension": "pdf"})
    );
}

/// No input makes `detect` panic: every prefix of every test file, and
/// those files with bytes overwritten by noise.
#[test]
fn no_panic_on_truncated_or_mangled_files() {
    let expected = load_expected_subset();
    let mut x: u32 = 0x1234_5678;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for path in expected.keys() {
        let data = std::fs::read(types_dir().join(path)).unwrap();
        let mut cuts: Vec<usize> = (0..256.min(data.len())).collect();
        cuts.extend((0..64).map(|_| rnd() as usize % (data.len() + 1)));
        for cut in cuts {
            let _ = detect(&data[..cut]);
        }
        for _ in 0..32 {
            let mut m = data.clone();
            for _ in 0..16 {
                let i = rnd() as usize % m.len();
                m[i] = rnd() as u8;
            }
            let _ = detect(&m);
        }
    }
}

/// Every file of `testdata/types/` is listed in its README and still has
/// the sha256 recorded there and in expected.json.
#[test]
fn testdata_files_are_the_recorded_ones() {
    let readme = std::fs::read_to_string(types_dir().join("README.md")).unwrap();
    for (path, e) in load_expected_subset() {
        let data = std::fs::read(types_dir().join(&path)).unwrap();
        let sha = stoq_core::hashing::hex(&stoq_core::hashing::sha256(&data));
        assert_eq!(e["sha256"], sha.as_str(), "{path}");
        assert_eq!(e["size"], data.len(), "{path}");
        assert!(
            readme.contains(&format!("- `{path}` | `{sha}` |")),
            "{path}"
        );
    }
}
