//! The `yara` plugin: the public plugin's test vectors, rule directories,
//! externals, the compiled-rules cache, concurrency through the engine and
//! a golden output on a real PE.

#![cfg(feature = "yara")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stoq_core::hashing::{hex, sha256};
use stoq_core::serde_json::{self, json, Value};
use stoq_core::{DispatcherResponse, Payload, PayloadMeta, PluginConfig, PluginInstance, Request};
use stoq_engine::Stoq;
use stoq_plugins::yara::{self, CompileOptions, Origin, RuleSet};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/yara")
}

fn data(name: &str) -> String {
    data_dir().join(name).to_string_lossy().into_owned()
}

/// Build the plugin from options; a fresh cache directory unless given.
fn build(opts: &[(&str, &str)]) -> Result<(PluginInstance, tempfile::TempDir), String> {
    let cache = tempfile::tempdir().unwrap();
    let mut all: Vec<(String, String)> = vec![(
        "cache_dir".into(),
        cache.path().to_string_lossy().into_owned(),
    )];
    all.extend(opts.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = PluginConfig::new("yara", all);
    (yara::descriptor().build)(&cfg)
        .map(|i| (i, cache))
        .map_err(|e| e.to_string())
}

async fn worker_results(instance: &PluginInstance, payload: &Payload) -> Value {
    let worker = instance.worker.as_ref().expect("worker role");
    worker
        .scan(payload, &Request::default())
        .await
        .unwrap()
        .unwrap()
        .results
        .unwrap()
}

async fn dispatch(instance: &PluginInstance, payload: &Payload) -> DispatcherResponse {
    let d = instance.dispatcher.as_ref().expect("dispatcher role");
    d.get_dispatches(payload, &Request::default())
        .await
        .unwrap()
        .unwrap_or_default()
}

/// `testtesttest` followed by `_stoQ_` repeated.
fn generic(repeat: usize) -> Vec<u8> {
    let mut v = b"testtesttest".to_vec();
    v.extend("_stoQ_".repeat(repeat).bytes());
    v
}

/// Rule text unique to one test, so the process-wide rule sharing never
/// links two tests.
fn unique_rule(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rule r_{tag}_{nanos} {{ strings: $a = \"{tag}\" condition: $a }}\n")
}

#[test]
fn copied_files_keep_their_sha256() {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).unwrap();
    let mut checked = 0;
    for line in readme.lines().filter(|l| l.starts_with("- `")) {
        let cells: Vec<&str> = line[2..].split(" | ").collect();
        if cells.len() != 4 {
            continue;
        }
        let path = cells[0].trim_matches('`');
        let want = cells[1].trim_matches('`');
        let got = hex(&sha256(&std::fs::read(data_dir().join(path)).unwrap()));
        assert_eq!(got, want, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

// --- The public plugin's vectors -------------------------------------

#[tokio::test]
async fn scan_matches_test_scan_rule() {
    let (p, _c) = build(&[("worker_rules", &data("stoq-scan_rules.yar"))]).unwrap();
    assert!(
        p.dispatcher.is_none(),
        "no dispatch_rules, no dispatcher role"
    );
    let r = worker_results(&p, &Payload::new(generic(10000))).await;
    assert_eq!(r["matches"][0]["rule"], "test_scan_rule");
    assert_eq!(r["matches"][0]["namespace"], "default");
    assert_eq!(r["matches"].as_array().unwrap().len(), 1);
    let first = &r["matches"][0]["strings"][0];
    assert_eq!(
        first,
        &json!({"identifier": "$a", "offset": 0, "length": 12, "data": "testtesttest", "encoding": "text"})
    );
    let sha = r["rules_sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert!(r["matches"][0].get("strings_truncated").is_none());
}

#[tokio::test]
async fn strings_limit_caps_strings_per_rule() {
    let (p, _c) = build(&[
        ("worker_rules", &data("stoq-scan_rules.yar")),
        ("strings_limit", "5"),
    ])
    .unwrap();
    let r = worker_results(&p, &Payload::new(generic(10000).repeat(10))).await;
    let m = &r["matches"][0];
    assert_eq!(m["rule"], "test_scan_rule");
    assert_eq!(m["strings"].as_array().unwrap().len(), 5);
    assert_eq!(m["strings_truncated"], true);
    // The first five by offset.
    let offsets: Vec<u64> = m["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["offset"].as_u64().unwrap())
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort();
    assert_eq!(offsets, sorted);
    assert_eq!(offsets[0], 0);

    // The default limit is 100; `none` lists all.
    let many = b"testtesttest".repeat(300);
    let (p, _c) = build(&[("worker_rules", &data("stoq-scan_rules.yar"))]).unwrap();
    let r = worker_results(&p, &Payload::new(many.clone())).await;
    assert_eq!(r["matches"][0]["strings"].as_array().unwrap().len(), 100);
    let (p, _c) = build(&[
        ("worker_rules", &data("stoq-scan_rules.yar")),
        ("strings_limit", "none"),
    ])
    .unwrap();
    let r = worker_results(&p, &Payload::new(many)).await;
    // "testtesttest" occurs at every multiple of 4 up to 3600 - 12.
    assert_eq!(r["matches"][0]["strings"].as_array().unwrap().len(), 898);
    assert!(r["matches"][0].get("strings_truncated").is_none());
}

#[tokio::test]
async fn meta_bytes_and_strings() {
    let (p, _c) = build(&[("worker_rules", &data("stoq-scan_rules.yar"))]).unwrap();
    let r = worker_results(&p, &Payload::new(&b"meta_bytes"[..])).await;
    let m = &r["matches"][0];
    assert_eq!(m["rule"], "test_scan_metadata_bytes");
    assert_eq!(m["meta"]["bytes"], "ANeato");
    assert_eq!(m["meta"]["author"], "Peter Rabbit");
    assert_eq!(m["meta"]["plugin"], "save_false");
}

#[tokio::test]
async fn no_match_still_reports_the_rule_set() {
    let (p, _c) = build(&[("worker_rules", &data("stoq-scan_rules.yar"))]).unwrap();
    let r = worker_results(&p, &Payload::new(&b"nothing to see"[..])).await;
    assert_eq!(r["matches"], json!([]));
    assert_eq!(r["rules_sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn dispatcher_routes_on_meta() {
    let (p, _c) = build(&[("dispatch_rules", &data("stoq-dispatch_rules.yar"))]).unwrap();
    assert!(p.worker.is_none(), "no worker_rules, no worker role");
    let dr = dispatch(&p, &Payload::new(generic(10))).await;
    assert_eq!(dr.plugin_names, ["test_dispatch_plugin"]);
    let m = &dr.meta["test_dispatch_plugin"];
    assert_eq!(m["rule"], "test_dispatch_rule");
    assert_eq!(m["meta"]["plugin"], "test_dispatch_plugin");
    assert_eq!(m["meta"]["save"], "True");
    assert_eq!(m["tags"], json!(["tag1", "tag2"]));
    assert_eq!(dr.payload_meta_update.should_archive, None);
    assert!(dr.errors.is_empty());

    let dr = dispatch(&p, &Payload::new(&b"save_false"[..])).await;
    assert_eq!(dr.plugin_names, ["save_false"]);
    assert_eq!(dr.meta["save_false"]["meta"]["save"], "False");
    assert_eq!(dr.payload_meta_update.should_archive, Some(false));

    // Nothing matches: no dispatch at all.
    let d = p.dispatcher.as_ref().unwrap();
    let none = d
        .get_dispatches(&Payload::new(&b"plain"[..]), &Request::default())
        .await
        .unwrap();
    assert!(none.is_none());
}

/// `This program_` + "This program" XOR 0x15.
fn xor_input() -> Vec<u8> {
    let mut v = b"This program_".to_vec();
    v.extend(b"This program".iter().map(|b| b ^ 0x15));
    v
}

#[tokio::test]
async fn dispatcher_recovers_xor_keys() {
    let (p, _c) = build(&[("dispatch_rules", &data("stoq-dispatch_rules.yar"))]).unwrap();
    let dr = dispatch(&p, &Payload::new(xor_input())).await;
    assert_eq!(dr.plugin_names, ["xordecode"]);
    assert_eq!(dr.meta["xordecode"]["meta"]["xorkey"], 21);
    assert!(dr.meta["xordecode"]["meta"].get("xor_info").is_none());

    // Every match, with a two-byte key recovered from the plain text.
    let (p, _c) = build(&[
        ("dispatch_rules", &data("stoq-dispatch_rules.yar")),
        ("xor_first_match", "false"),
    ])
    .unwrap();
    let mut input = xor_input();
    input.push(b'_');
    input.extend(
        b"This program"
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [0x11, 0x10][i % 2]),
    );
    let dr = dispatch(&p, &Payload::new(input)).await;
    let meta = &dr.meta["xordecode"]["meta"];
    assert_eq!(dr.meta["xordecode"]["rule"], "test_xor_info_creation");
    assert_eq!(
        meta["xor_info"],
        json!([[13, "$this_prog", [21]], [26, "$this_prog_2b", [17, 16]]])
    );
    assert!(meta.get("xorkey").is_none());
}

#[tokio::test]
async fn shipped_dispatcher_rules_compile_and_route() {
    let (p, _c) = build(&[("dispatch_rules", &data("stoq-dispatcher.yar"))]).unwrap();
    let exe = std::fs::read(data("samples/cli-32.exe")).unwrap();
    let dr = dispatch(&p, &Payload::new(exe)).await;
    assert_eq!(dr.plugin_names, ["pecarve"]);
    let ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest of an OLE file".to_vec();
    let dr = dispatch(&p, &Payload::new(ole)).await;
    assert_eq!(dr.plugin_names, ["ole"]);
    assert_eq!(dr.payload_meta_update.should_archive, Some(false));
    // The shipped xor rule names its plain text without `for_string_`, so
    // the key comes from yara-x.
    let dr = dispatch(&p, &Payload::new(xor_input())).await;
    assert_eq!(dr.plugin_names, ["xordecode"]);
    assert_eq!(dr.meta["xordecode"]["meta"]["xorkey"], 21);
}

// --- Loading ---------------------------------------------------------

#[test]
fn invalid_rules_name_the_file_and_line() {
    let err = build(&[("worker_rules", &data("stoq-invalid_rules.yar"))]).unwrap_err();
    assert!(err.contains("worker_rules"), "{err}");
    assert!(err.contains("stoq-invalid_rules.yar:20:"), "{err}");
    assert!(err.contains("syntax error"), "{err}");

    let err = build(&[("dispatch_rules", &data("nonexistent.yar"))]).unwrap_err();
    assert!(err.contains("Nonexistent yara rules file"), "{err}");
    assert!(err.contains("nonexistent.yar"), "{err}");

    let err = build(&[]).unwrap_err();
    assert!(
        err.contains("worker_rules") && err.contains("dispatch_rules"),
        "{err}"
    );

    let err = build(&[
        ("worker_rules", &data("stoq-scan_rules.yar")),
        ("strings_limit", "-1"),
    ])
    .unwrap_err();
    assert!(
        err.contains("strings_limit") && err.contains("\"-1\""),
        "{err}"
    );
}

#[test]
fn every_error_of_a_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yar"), "rule ok { condition: true }\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/b.yara"),
        "\n\nrule bad { condition: undefined_thing }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.yar"), "rule bad2 {\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
    let err = RuleSet::load(dir.path(), &CompileOptions::default(), None).unwrap_err();
    assert!(err.contains("b.yara:3:"), "{err}");
    assert!(err.contains("c.yar:2:"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = RuleSet::load(empty.path(), &CompileOptions::default(), None).unwrap_err();
    assert!(err.contains("no *.yar or *.yara rule files"), "{err}");
}

#[tokio::test]
async fn a_directory_is_one_namespace_per_file() {
    let (p, _c) = build(&[("worker_rules", &data("rules"))]).unwrap();
    let exe = std::fs::read(data("samples/cli-32.exe")).unwrap();
    let r = worker_results(&p, &Payload::new(exe)).await;
    let got: Vec<(String, String)> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["namespace"].as_str().unwrap().to_string(),
                m["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Sorted files, rules in file order; no externals set, so the rules on
    // the file name do not match.
    assert_eq!(
        got,
        [
            ("launcher.yara", "setuptools_launcher"),
            ("pe/windows_pe.yar", "pe_dos_stub"),
            ("pe/windows_pe.yar", "pe_i386_console"),
            ("pe/windows_pe.yar", "pe_process_apis"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[tokio::test]
async fn externals_come_from_extra_data() {
    let (p, _c) = build(&[("worker_rules", &data("externals.yar"))]).unwrap();
    let rules = |r: Value| -> Vec<String> {
        r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["rule"].as_str().unwrap().to_string())
            .collect()
    };
    let bare = worker_results(&p, &Payload::new(&b"x"[..])).await;
    assert_eq!(rules(bare), ["any_content"]);

    let mut meta = PayloadMeta::with_extra("filename", "invoice.pdf.exe");
    let named = worker_results(&p, &Payload::with_meta(&b"x"[..], meta.clone())).await;
    assert_eq!(rules(named), ["filename_is_set"]);

    meta.extra_data
        .insert("filename".into(), json!("C:\\in\\Invoice.PDF.EXE"));
    let upper = worker_results(&p, &Payload::with_meta(&b"x"[..], meta.clone())).await;
    assert!(rules(upper).is_empty(), "filename is case-sensitive");

    meta.extra_data
        .insert("filename".into(), json!("invoice.pdf.exe"));
    meta.extra_data.insert("owner".into(), json!("alice"));
    meta.extra_data.insert("filetype".into(), json!("EXE"));
    meta.extra_data
        .insert("source_dir".into(), json!("/srv/in"));
    let all = worker_results(&p, &Payload::with_meta(&b"x"[..], meta)).await;
    assert_eq!(rules(all), ["filename_is_set", "owner_and_filetype"]);

    let e = yara::Externals::from_extra_data(
        &PayloadMeta::with_extra("filename", "dir/archive.TAR.GZ").extra_data,
    );
    assert_eq!(
        (
            e.filename.as_str(),
            e.extension.as_str(),
            e.filepath.as_str()
        ),
        ("archive.TAR.GZ", ".gz", "dir/archive.TAR.GZ")
    );
    let e = yara::Externals::from_extra_data(
        &PayloadMeta::with_extra("filename", ".bashrc").extra_data,
    );
    assert_eq!(e.extension, "");
}

// --- Cache and sharing -----------------------------------------------

#[test]
fn compiled_rules_are_cached_on_disk() {
    let rules = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let a = rules.path().join("a.yar");
    let b = rules.path().join("b.yar");
    std::fs::write(&a, unique_rule("alpha")).unwrap();
    std::fs::write(&b, unique_rule("bravo")).unwrap();
    let opts = CompileOptions::default();
    let load = |p: &Path| RuleSet::load(p, &opts, Some(cache.path())).unwrap();
    let scan = |set: &RuleSet, data: &[u8]| -> Vec<String> {
        let ext = yara::Externals::default();
        let params = yara::ScanParams {
            timeout: std::time::Duration::from_secs(10),
            strings_limit: Some(1),
            max_matches_per_pattern: None,
            xor_only: false,
            externals: &ext,
        };
        set.scan(data, &params)
            .unwrap()
            .into_iter()
            .map(|m| m.rule)
            .collect()
    };

    let fresh = |p: &Path| RuleSet::load_unshared(p, &opts, Some(cache.path())).unwrap();

    // First load compiles and writes <key>.yarc.
    let set_a = fresh(&a);
    assert_eq!(set_a.origin(), Origin::Compiled);
    let file_a = cache.path().join(format!("{}.yarc", set_a.cache_key()));
    assert!(file_a.is_file());
    let (sha_a, key_a) = (set_a.sha256().to_string(), set_a.cache_key().to_string());
    assert_eq!(scan(&set_a, b"alpha").len(), 1);

    // The next load in a new process reads the cache file.
    let again = fresh(&a);
    assert_eq!(again.origin(), Origin::Cache);
    assert_eq!(
        (again.sha256(), again.cache_key()),
        (sha_a.as_str(), key_a.as_str())
    );
    assert_eq!(scan(&again, b"alpha").len(), 1);

    // Within a process, loads share one compiled rule set.
    let shared = load(&a);
    assert_eq!(shared.origin(), Origin::Cache);
    assert!(Arc::ptr_eq(&shared, &load(&a)));

    // Proof that the cache file is what is used: put b's compiled rules
    // under a's key; loading a then behaves like b.
    let set_b = fresh(&b);
    let file_b = cache.path().join(format!("{}.yarc", set_b.cache_key()));
    std::fs::copy(&file_b, &file_a).unwrap();
    let poisoned = fresh(&a);
    assert_eq!(poisoned.origin(), Origin::Cache);
    assert!(scan(&poisoned, b"alpha").is_empty());
    assert_eq!(scan(&poisoned, b"bravo").len(), 1);

    // A corrupt cache file is ignored and replaced.
    let mut bytes = std::fs::read(&file_a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file_a, &bytes).unwrap();
    let set_a = fresh(&a);
    assert_eq!(set_a.origin(), Origin::Compiled);
    assert_eq!(scan(&set_a, b"alpha").len(), 1);
    std::fs::write(&file_a, b"garbage").unwrap();
    assert_eq!(fresh(&a).origin(), Origin::Compiled);
    assert_eq!(fresh(&a).origin(), Origin::Cache);

    // Changing a rule file changes both hashes and the cache file.
    std::fs::write(&a, unique_rule("charlie")).unwrap();
    let changed = fresh(&a);
    assert_eq!(changed.origin(), Origin::Compiled);
    assert_ne!(changed.sha256(), sha_a);
    assert_ne!(changed.cache_key(), key_a);
    assert!(cache
        .path()
        .join(format!("{}.yarc", changed.cache_key()))
        .is_file());

    // Other compile options, another cache entry for the same sources.
    let strict = RuleSet::load_unshared(
        &a,
        &CompileOptions {
            relaxed_re_syntax: false,
        },
        Some(cache.path()),
    )
    .unwrap();
    assert_eq!(strict.sha256(), changed.sha256());
    assert_ne!(strict.cache_key(), changed.cache_key());
}

#[test]
fn reused_scanners_start_afresh() {
    // Scans on one thread reuse one scanner: nothing of a scan's settings
    // may leak into the next.
    let set = RuleSet::load(
        &data_dir().join("externals.yar"),
        &CompileOptions::default(),
        None,
    )
    .unwrap();
    let named = yara::Externals::from_extra_data(
        &PayloadMeta::with_extra("filename", "invoice.pdf.exe").extra_data,
    );
    let bare = yara::Externals::default();
    let params = |externals| yara::ScanParams {
        timeout: std::time::Duration::from_secs(10),
        strings_limit: None,
        max_matches_per_pattern: None,
        xor_only: false,
        externals,
    };
    let rules = |e| -> Vec<String> {
        set.scan(b"x", &params(e))
            .unwrap()
            .into_iter()
            .map(|m| m.rule)
            .collect()
    };
    for _ in 0..2 {
        assert_eq!(rules(&named), ["filename_is_set"]);
        assert_eq!(rules(&bare), ["any_content"]);
    }

    let scan_rules = RuleSet::load(
        &data_dir().join("stoq-scan_rules.yar"),
        &CompileOptions::default(),
        None,
    )
    .unwrap();
    let count = |max| {
        let p = yara::ScanParams {
            max_matches_per_pattern: max,
            ..params(&bare)
        };
        scan_rules.scan(&b"testtesttest".repeat(50), &p).unwrap()[0]
            .strings
            .len()
    };
    assert_eq!(count(Some(3)), 3);
    assert_eq!(count(None), 148);
}

#[test]
fn included_files_are_part_of_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.yar");
    let inc = dir.path().join("inc.yar");
    std::fs::write(&main, "include \"inc.yar\"\n").unwrap();
    std::fs::write(&inc, unique_rule("delta")).unwrap();
    let opts = CompileOptions::default();
    let first = RuleSet::load(&main, &opts, None).unwrap();
    assert_eq!(first.rule_count(), 1);
    let sha = first.sha256().to_string();
    std::fs::write(&inc, unique_rule("echo")).unwrap();
    let second = RuleSet::load(&main, &opts, None).unwrap();
    assert_ne!(second.sha256(), sha);
}

#[test]
fn plugin_instances_share_compiled_rules() {
    let cache = tempfile::tempdir().unwrap();
    let cfg = PluginConfig::new(
        "yara",
        [
            ("worker_rules", data("stoq-scan_rules.yar")),
            ("dispatch_rules", data("stoq-scan_rules.yar")),
            ("cache_dir", cache.path().to_string_lossy().into_owned()),
        ],
    );
    let cfg = yara::YaraConfig::from_config(&cfg).unwrap();
    let one = yara::YaraPlugin::new(&cfg).unwrap();
    let two = yara::YaraPlugin::new(&cfg).unwrap();
    assert!(Arc::ptr_eq(
        one.worker_rules().unwrap(),
        two.worker_rules().unwrap()
    ));
    assert!(Arc::ptr_eq(
        one.worker_rules().unwrap(),
        one.dispatch_rules().unwrap()
    ));
}

// --- Through the engine ----------------------------------------------

fn engine(opts: &[(&str, String)], dispatchers: &[&str]) -> (Stoq, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(dir.path())
        .dispatchers(dispatchers.iter().copied())
        .plugin_opt(
            "yara",
            "cache_dir",
            dir.path().join("cache").to_string_lossy(),
        );
    for (k, v) in opts {
        b = b.plugin_opt("yara", k, v.clone());
    }
    (b.build().unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_agree() {
    let (stoq, _d) = engine(&[("worker_rules", data("stoq-scan_rules.yar"))], &[]);
    let content = stoq_core::Bytes::from(generic(1000));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let stoq = stoq.clone();
            let content = content.clone();
            tokio::spawn(async move { stoq.scan(content, None, None, &["yara".to_string()]).await })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        all.push(r.results[0].workers["yara"].clone());
    }
    assert_eq!(all[0]["matches"][0]["rule"], "test_scan_rule");
    assert!(all.iter().all(|r| r == &all[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_applies_save_false_and_dispatch() {
    let (stoq, _d) = engine(
        &[
            ("dispatch_rules", data("stoq-dispatch_rules.yar")),
            ("worker_rules", data("stoq-scan_rules.yar")),
        ],
        &["yara"],
    );
    // Routed to `save_false`, which does not exist: an error, and the
    // payload is not to be archived.
    let r = stoq.scan(&b"save_false"[..], None, None, &[]).await;
    assert!(!r.results[0].payload_meta.should_archive);
    assert!(r
        .errors
        .iter()
        .any(|e| e.plugin_name.as_deref() == Some("save_false")));

    // The yara worker as a start dispatch next to the yara dispatcher.
    let r = stoq
        .scan(&b"meta_bytes"[..], None, None, &["yara".to_string()])
        .await;
    assert!(r.results[0].payload_meta.should_archive);
    assert_eq!(
        r.results[0].workers["yara"]["matches"][0]["rule"],
        "test_scan_metadata_bytes"
    );
}

// --- Golden output ---------------------------------------------------

#[tokio::test]
async fn golden_output_on_a_real_pe() {
    let (p, _c) = build(&[
        ("worker_rules", &data("rules")),
        ("dispatch_rules", &data("stoq-dispatcher.yar")),
        ("strings_limit", "3"),
    ])
    .unwrap();
    let exe = std::fs::read(data("samples/cli-32.exe")).unwrap();
    let mut meta = PayloadMeta::with_extra("filename", "cli-32.exe");
    // Relative to the testdata directory, so the output does not depend on
    // where the repository is checked out.
    meta.extra_data
        .insert("source_dir".into(), json!("testdata/yara/samples"));
    let payload = Payload::with_meta(exe, meta);
    let worker = worker_results(&p, &payload).await;
    let dr = dispatch(&p, &payload).await;
    let got = json!({
        "worker": worker,
        "dispatch": {
            "plugin_names": dr.plugin_names,
            "meta": dr.meta,
            "should_archive": dr.payload_meta_update.should_archive,
            "errors": dr.errors.len(),
        },
    });
    let text = stoq_core::to_json_pretty(&got) + "\n";
    let golden = data_dir().join("golden/cli-32.exe.json");
    if std::env::var_os("STOQ_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (STOQ_BLESS=1 writes it)");
    assert_eq!(
        text, want,
        "golden output changed; review and STOQ_BLESS=1 to accept"
    );
    let parsed: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(parsed["worker"]["matches"].as_array().unwrap().len(), 6);
}

// --- Throughput (run by bench/yara.sh) ---------------------------------

/// Raw yara-x scan rate (RuleSet::scan, no engine) beside the plugin's
/// rate through the engine, on the same data and rules. Ignored by
/// default; `cargo test --release -p stoq-plugins --test yara -- --ignored
/// --nocapture throughput` runs it. `YARA_BENCH_RULES` sets the rules
/// (default: the shipped dispatcher rules), `YARA_BENCH_FILE` the data
/// (default: `YARA_BENCH_MB` MiB, 64, of generated bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let rules = std::env::var("YARA_BENCH_RULES").unwrap_or_else(|_| data("stoq-dispatcher.yar"));
    let mb: usize = std::env::var("YARA_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // The given file, or deterministic pseudo-random bytes with some text
    // sprinkled in.
    let mut content = match std::env::var_os("YARA_BENCH_FILE") {
        Some(f) => std::fs::read(f).unwrap(),
        None => Vec::with_capacity(mb << 20),
    };
    let mb = if content.is_empty() {
        mb
    } else {
        content.len() >> 20
    };
    let mut x: u32 = 0x1234_5678;
    while content.len() < mb << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        content.extend_from_slice(&x.to_le_bytes());
        if x.is_multiple_of(4096) {
            content.extend_from_slice(b"This program cannot be run in DOS mode");
        }
    }
    let set = RuleSet::load(Path::new(&rules), &CompileOptions::default(), None).unwrap();
    let ext = yara::Externals::default();
    let params = yara::ScanParams {
        timeout: std::time::Duration::from_secs(600),
        strings_limit: Some(100),
        max_matches_per_pattern: None,
        xor_only: false,
        externals: &ext,
    };
    set.scan(&content, &params).unwrap();
    let runs = 3;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        set.scan(&content, &params).unwrap();
    }
    let raw = (runs * content.len()) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64();

    let (stoq, _d) = engine(&[("worker_rules", rules.clone())], &[]);
    let content = stoq_core::Bytes::from(content);
    let start_dispatch = ["yara".to_string()];
    stoq.scan(content.clone(), None, None, &start_dispatch)
        .await;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        let r = stoq
            .scan(content.clone(), None, None, &start_dispatch)
            .await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
    let plugin = (runs * content.len()) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64();

    // Per-scan overhead: creating a Scanner and scanning 1 KiB.
    let small = vec![0u8; 1024];
    let n = 2000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        set.scan(&small, &params).unwrap();
    }
    let per_scan_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    // The same with the yara-x API directly: a new Scanner per scan, and
    // one Scanner reused.
    let src = std::fs::read_to_string(&rules).unwrap_or_default();
    if let Ok(raw_rules) = yara_x::compile(src.as_str()) {
        let start = std::time::Instant::now();
        for _ in 0..n {
            let mut sc = yara_x::Scanner::new(&raw_rules);
            sc.scan(&small).unwrap();
        }
        let new_each = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        let mut sc = yara_x::Scanner::new(&raw_rules);
        let start = std::time::Instant::now();
        for _ in 0..n {
            sc.scan(&small).unwrap();
        }
        let reused = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "yara-x API, 1 KiB scans: new Scanner each {new_each:.0} us, reused Scanner {reused:.0} us"
        );
    }
    println!(
        "yara throughput on {mb} MiB, rules {rules}: raw yara-x {raw:.1} MiB/s, \
         plugin through the engine {plugin:.1} MiB/s; 1 KiB scan incl. scanner setup \
         {per_scan_us:.0} us"
    );
}

#[tokio::test]
async fn yara_x_aborts_a_scan_at_scan_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.yar");
    std::fs::write(
        &slow,
        format!(
            "// {}\nrule slow {{ condition: for all i in (0..filesize) : \
             (for all j in (0..filesize) : (uint8(i) != 0xFF or uint8(j) != 0xFE)) }}\n",
            unique_rule("slow")
        ),
    )
    .unwrap();
    let (p, _c) = build(&[
        ("worker_rules", &slow.to_string_lossy()),
        ("scan_timeout", "1"),
    ])
    .unwrap();
    let started = std::time::Instant::now();
    let err = p
        .worker
        .as_ref()
        .unwrap()
        .scan(&Payload::new(vec![0u8; 200_000]), &Request::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
