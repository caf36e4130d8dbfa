//! `filedir` end to end: a `Stoq` run with filedir as provider, connector and
//! dest archiver over temporary directories.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};
use stoq_core::{ArchiverResponse, Payload, PluginConfig, PluginInstance, Request};
use stoq_engine::{RunSummary, Stoq};
use stoq_plugins::filedir::{scan_id_for_file, JOURNAL_FILE, JSONL_FILE};
use stoq_plugins::hash::sha256_hex;

const CORPUS: &str = "/work/shared/corpus";

struct Dirs {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    src: PathBuf,
    results: PathBuf,
    archive: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let d = Dirs {
        base: root.join("base"),
        src: root.join("src"),
        results: root.join("results"),
        archive: root.join("archive"),
        _tmp: tmp,
    };
    fs::create_dir_all(&d.base).unwrap();
    fs::create_dir_all(&d.src).unwrap();
    d
}

/// Copy a corpus file into `dir`, or write stand-in bytes when the corpus
/// is not there.
fn corpus_file(dir: &Path, rel: &str) -> PathBuf {
    let from = Path::new(CORPUS).join(rel);
    let to = dir.join(from.file_name().unwrap());
    match fs::read(&from) {
        Ok(data) => fs::write(&to, data).unwrap(),
        Err(_) => fs::write(&to, format!("stand-in for {rel}")).unwrap(),
    }
    to
}

fn write(path: &Path, data: &[u8]) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    path.to_path_buf()
}

fn engine(d: &Dirs, opts: &[(&str, &str)]) -> Stoq {
    let mut b = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(&d.base)
        .providers(["filedir"])
        .connectors(["filedir"])
        .always_dispatch(["hash"])
        .dest_archivers(["filedir"])
        .plugin_opt("filedir", "source_dir", d.src.to_string_lossy())
        .plugin_opt("filedir", "results_dir", d.results.to_string_lossy())
        .plugin_opt("filedir", "archive_dir", d.archive.to_string_lossy());
    for (k, v) in opts {
        b = b.plugin_opt("filedir", k, *v);
    }
    b.build().unwrap()
}

async fn run(d: &Dirs, opts: &[(&str, &str)]) -> RunSummary {
    engine(d, opts).run(None, &[]).await.unwrap()
}

/// Every file under `dir` (hidden ones included), recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Result files (not hidden) under `dir`, by name.
fn result_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| !name(p).starts_with('.'))
        .map(|p| (name(&p), p))
        .collect()
}

fn assert_no_temp_files(dir: &Path) {
    let tmp: Vec<_> = all_files(dir)
        .into_iter()
        .filter(|p| name(p).ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
}

fn journal(d: &Dirs) -> Vec<String> {
    fs::read_to_string(d.results.join(JOURNAL_FILE))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn snapshot(files: &BTreeMap<String, PathBuf>) -> BTreeMap<String, (SystemTime, Vec<u8>)> {
    files
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                (
                    fs::metadata(p).unwrap().modified().unwrap(),
                    fs::read(p).unwrap(),
                ),
            )
        })
        .collect()
}

fn read_json(p: &Path) -> Value {
    let text = fs::read_to_string(p).unwrap();
    assert!(text.ends_with('\n'), "{} ends with a newline", p.display());
    serde_json::from_str(&text).unwrap()
}

/// (a) one result per input, right content and metadata, no temp files;
/// (b) a second run neither adds nor rewrites anything; (c) a crash between
/// saving and journaling does not cause duplicates; with skip_done=false
/// everything is scanned again but no result file is rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_ingest_is_saved_once_and_resumes() {
    let d = dirs();
    let inputs = [
        corpus_file(&d.src, "pe/cli-32.exe"),
        corpus_file(&d.src, "misc/vim.lnk"),
        write(&d.src.join("notes.txt"), b"The quick brown fox"),
    ];
    write(&d.src.join(".hidden"), b"dotfiles are skipped");
    write(&d.src.join("sub/nested.bin"), b"not recursive by default");

    let summary = run(&d, &[]).await;
    assert_eq!(summary.provider_errors, 0, "{summary:?}");
    assert_eq!((summary.items, summary.scanned), (3, 3), "{summary:?}");

    let files = result_files(&d.results);
    let expected: BTreeMap<String, &PathBuf> = inputs
        .iter()
        .map(|p| (scan_id_for_file(p).unwrap(), p))
        .collect();
    assert_eq!(
        files.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect::<BTreeSet<_>>()
    );
    let canonical_src = fs::canonicalize(&d.src).unwrap();
    for (scan_id, input) in &expected {
        let v = read_json(&files[scan_id]);
        assert_eq!(v["scan_id"], json!(scan_id));
        let r = &v["results"][0];
        let data = fs::read(input).unwrap();
        assert_eq!(r["workers"]["hash"]["sha256"], json!(sha256_hex(&data)));
        assert_eq!(r["size"], json!(data.len()));
        assert_eq!(
            r["payload_meta"]["extra_data"]["filename"],
            json!(name(input))
        );
        assert_eq!(
            r["payload_meta"]["extra_data"]["source_dir"],
            json!(canonical_src.to_string_lossy())
        );
        // Compact by default: one line.
        assert_eq!(
            fs::read_to_string(&files[scan_id]).unwrap().lines().count(),
            1
        );
    }
    let mut j = journal(&d);
    j.sort();
    assert_eq!(j, expected.keys().cloned().collect::<Vec<_>>());
    assert_no_temp_files(&d.results);
    assert_no_temp_files(&d.archive);

    // (b) Same settings again: nothing queued, nothing written.
    let before = snapshot(&files);
    let summary = run(&d, &[]).await;
    assert_eq!(
        (summary.items, summary.provider_errors),
        (0, 0),
        "{summary:?}"
    );
    assert_eq!(snapshot(&result_files(&d.results)), before);

    // (c) Crash after saving, before journaling: the result files alone
    // are enough to skip.
    fs::remove_file(d.results.join(JOURNAL_FILE)).unwrap();
    let summary = run(&d, &[]).await;
    assert_eq!(
        (summary.items, summary.provider_errors),
        (0, 0),
        "{summary:?}"
    );
    assert_eq!(snapshot(&result_files(&d.results)), before);

    // Re-delivery of everything: scanned again, same scan ids, but the
    // existing results are not rewritten.
    let summary = run(&d, &[("skip_done", "false")]).await;
    assert_eq!((summary.items, summary.scanned), (3, 3), "{summary:?}");
    assert_eq!(snapshot(&result_files(&d.results)), before);
    assert_eq!(journal(&d).len(), 3);
    assert_no_temp_files(&d.results);

    // A modified input is new work.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&inputs[2], b"The quick brown fox jumps").unwrap();
    let summary = run(&d, &[]).await;
    assert_eq!((summary.items, summary.scanned), (1, 1), "{summary:?}");
    assert_eq!(result_files(&d.results).len(), 4);
}

/// recursive=true descends into subdirectories but not hidden ones; the
/// source_dir of a nested file is its own directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_ingest() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"a");
    let nested = write(&d.src.join("sub/deeper/b.txt"), b"b");
    write(&d.src.join(".git/c.txt"), b"c");
    write(&d.src.join("sub/.d.txt"), b"d");

    let summary = run(&d, &[("recursive", "true")]).await;
    assert_eq!((summary.items, summary.scanned), (2, 2), "{summary:?}");
    let id = scan_id_for_file(&nested).unwrap();
    let v = read_json(&d.results.join(&id));
    assert_eq!(
        v["results"][0]["payload_meta"]["extra_data"],
        json!({
            "filename": "b.txt",
            "source_dir": fs::canonicalize(d.src.join("sub/deeper")).unwrap().to_string_lossy(),
        })
    );
}

/// A single file as source_dir is ingested on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_source() {
    let d = dirs();
    let f = write(&d.src.join("one.txt"), b"one");
    write(&d.src.join("two.txt"), b"two");
    let summary = run(&d, &[("source_dir", &f.to_string_lossy())]).await;
    assert_eq!(summary.scanned, 1, "{summary:?}");
    assert!(d.results.join(scan_id_for_file(&f).unwrap()).is_file());
}

fn build(opts: &[(&str, &str)]) -> PluginInstance {
    let cfg = PluginConfig::new("filedir", opts.iter().copied());
    (stoq_plugins::filedir::descriptor().build)(&cfg).unwrap()
}

/// (d) archived payloads land at the sharded SHA-256 path, duplicates are
/// stored once, and `get` reads them back from the locator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiver_is_content_addressed_and_get_reads_back() {
    let d = dirs();
    let exe = corpus_file(&d.src, "pe/cli-32.exe");
    write(&d.src.join("copy.exe"), &fs::read(&exe).unwrap());
    write(&d.src.join("other.txt"), b"something else");

    let summary = run(&d, &[]).await;
    assert_eq!(summary.scanned, 3, "{summary:?}");
    let archived = all_files(&d.archive);
    assert_eq!(
        archived.len(),
        2,
        "duplicate content is archived once: {archived:?}"
    );

    let archive_abs = std::path::absolute(&d.archive).unwrap();
    let mut locators = Vec::new();
    for p in result_files(&d.results).values() {
        let v = read_json(p);
        let r = &v["results"][0];
        let h = r["workers"]["hash"]["sha256"].as_str().unwrap().to_string();
        let expected_path = archive_abs.join(&h[0..2]).join(&h[2..4]).join(&h);
        let loc = &r["archivers"]["filedir"];
        assert_eq!(
            loc,
            &json!({"path": expected_path.to_string_lossy(), "sha256": h})
        );
        assert_eq!(r["plugins_run"]["archivers"], json!(["filedir"]));
        let content = fs::read(&expected_path).unwrap();
        assert_eq!(sha256_hex(&content), h);
        locators.push((loc.clone(), content));
    }
    assert_no_temp_files(&d.archive);

    let plugin = build(&[("archive_dir", &d.archive.to_string_lossy())]);
    let archiver = plugin.archiver.unwrap();
    for (loc, content) in &locators {
        let p = archiver
            .get(&ArchiverResponse::with_results(loc.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&p.content[..], &content[..]);
        assert_eq!(&Value::Object(p.meta().extra_data.clone()), loc);
    }

    // Invalid locators are errors.
    let path = locators[0].0["path"].as_str().unwrap();
    for bad in [
        ArchiverResponse::default(),
        ArchiverResponse::with_results(json!({"sha256": "00"})),
        ArchiverResponse::with_results(json!({"path": 7})),
        ArchiverResponse::with_results(json!({"path": d.archive.join("nope").to_string_lossy()})),
        ArchiverResponse::with_results(json!({"path": path, "sha256": "00"})),
    ] {
        let e = archiver.get(&bad).await.unwrap_err();
        assert!(e.to_string().starts_with("filedir: "), "{e}");
    }
}

/// use_sha=false stores by payload id; archiving the same payload twice
/// writes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiver_by_payload_id() {
    let d = dirs();
    let plugin = build(&[
        ("archive_dir", &d.archive.to_string_lossy()),
        ("use_sha", "false"),
    ]);
    let archiver = plugin.archiver.unwrap();
    let payload = Payload::new(&b"by id"[..]).with_id("payload-1");
    let r = archiver
        .archive(&payload, &Request::default())
        .await
        .unwrap()
        .unwrap();
    let path = std::path::absolute(d.archive.join("payload-1")).unwrap();
    assert_eq!(
        r.results.as_ref().unwrap()["path"],
        json!(path.to_string_lossy())
    );
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let again = Payload::new(&b"different"[..]).with_id("payload-1");
    archiver.archive(&again, &Request::default()).await.unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"by id");
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    // A payload id that is not a file name is refused.
    let bad = Payload::new(&b"x"[..]).with_id("../escape");
    assert!(archiver.archive(&bad, &Request::default()).await.is_err());
}

/// (e) jsonl mode: one valid JSON line per input, in one file; many items
/// in flight through a small queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_mode_appends_one_line_per_response() {
    let d = dirs();
    let n = 25;
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let p = write(
            &d.src.join(format!("f{i:02}")),
            format!("file {i}").as_bytes(),
        );
        ids.insert(scan_id_for_file(&p).unwrap());
    }
    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(&d.base)
        .providers(["filedir"])
        .connectors(["filedir"])
        .always_dispatch(["hash"])
        .plugin_opt("filedir", "source_dir", d.src.to_string_lossy())
        .plugin_opt("filedir", "results_dir", d.results.to_string_lossy())
        .plugin_opt("filedir", "jsonl", "true")
        .max_queue(2)
        .provider_consumers(3)
        .build()
        .unwrap();
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!((summary.items, summary.scanned), (n, n), "{summary:?}");

    let text = fs::read_to_string(d.results.join(JSONL_FILE)).unwrap();
    assert!(text.ends_with('\n'));
    let seen: BTreeSet<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["scan_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text.lines().count(), n);
    assert_eq!(seen, ids);
    // Only the JSONL file and the journal.
    assert_eq!(
        all_files(&d.results)
            .iter()
            .map(|p| name(p))
            .collect::<Vec<_>>(),
        [JOURNAL_FILE, JSONL_FILE]
    );
    assert_eq!(journal(&d).len(), n);

    // Resume: nothing appended.
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!(summary.items, 0, "{summary:?}");
    assert_eq!(
        fs::read_to_string(d.results.join(JSONL_FILE)).unwrap(),
        text
    );
}

/// date_mode writes under the response's date; pretty output when not
/// compact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_mode_and_pretty_output() {
    let d = dirs();
    let f = write(&d.src.join("a.txt"), b"dated");
    let summary = run(
        &d,
        &[
            ("date_mode", "true"),
            ("date_format", "%Y/%m/%d/%H"),
            ("compactly", "false"),
        ],
    )
    .await;
    assert_eq!(summary.scanned, 1, "{summary:?}");
    let files = result_files(&d.results);
    assert_eq!(files.len(), 1);
    let (id, path) = files.iter().next().unwrap();
    assert_eq!(id, &scan_id_for_file(&f).unwrap());
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains("\n    \"results\": ["), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let t = v["time"].as_str().unwrap();
    let rel = path.strip_prefix(&d.results).unwrap();
    assert_eq!(
        rel,
        Path::new(&t[0..4])
            .join(&t[5..7])
            .join(&t[8..10])
            .join(&t[11..13])
            .join(id)
    );
    // Resume in date mode relies on the journal.
    let summary = run(&d, &[("date_mode", "true")]).await;
    assert_eq!(summary.items, 0, "{summary:?}");
}

/// (f) a source_dir that does not exist, or none at all, is a provider
/// error reported by the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_source_dir_is_a_provider_error() {
    let d = dirs();
    let missing = d.src.join("does-not-exist");
    let summary = run(&d, &[("source_dir", &missing.to_string_lossy())]).await;
    assert_eq!(summary.provider_errors, 1, "{summary:?}");
    assert_eq!(summary.items, 0);

    let stoq = Stoq::builder()
        .registry(stoq_plugins::builtin_registry())
        .base_dir(&d.base)
        .providers(["filedir"])
        .build()
        .unwrap();
    let summary = stoq.run(None, &[]).await.unwrap();
    assert_eq!(summary.provider_errors, 1, "{summary:?}");

    // The provider's own message.
    let plugin = build(&[("source_dir", &missing.to_string_lossy())]);
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let queue = stoq_core::ProviderQueue::new(tx, Default::default());
    let e = plugin.provider.unwrap().ingest(queue).await.unwrap_err();
    assert!(
        e.to_string().contains("source_dir") && e.to_string().contains("does-not-exist"),
        "{e}"
    );
}

/// Bad option values fail the build, naming plugin, option and value.
#[test]
fn bad_options_fail_the_build() {
    for (k, v) in [
        ("recursive", "sometimes"),
        ("date_format", "%Y/%j"),
        ("jsonl", "2"),
    ] {
        let cfg = PluginConfig::new("filedir", [(k, v)]);
        let e = (stoq_plugins::filedir::descriptor().build)(&cfg).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("filedir") && msg.contains(k) && msg.contains(&format!("{v:?}")),
            "{msg}"
        );
    }
}

/// An unreadable file is skipped; the others are scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_file_is_skipped() {
    let d = dirs();
    write(&d.src.join("ok.txt"), b"ok");
    let locked = write(&d.src.join("locked.txt"), b"locked");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    }
    let readable = fs::read(&locked).is_ok(); // root reads anyway
    let summary = run(&d, &[]).await;
    assert_eq!(summary.provider_errors, 0, "{summary:?}");
    assert_eq!(summary.scanned, if readable { 2 } else { 1 }, "{summary:?}");
}

/// Counts the scans it is asked to save.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

#[stoq_core::async_trait]
impl stoq_core::Connector for Count {
    async fn save(&self, _response: &stoq_core::StoqResponse) -> stoq_core::PluginResult<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// With another connector than filedir, the provider keeps no journal: a
/// second run scans everything again (results were not written by filedir,
/// so there is nothing to resume from).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_journal_without_the_filedir_connector() {
    let d = dirs();
    write(&d.src.join("a.txt"), b"first");
    write(&d.src.join("b.txt"), b"second");
    let count = std::sync::Arc::new(Count::default());
    for round in 1..=2 {
        let mut registry = stoq_plugins::builtin_registry();
        let c = count.clone();
        registry
            .register(stoq_core::ModuleDescriptor::new(
                "count",
                &[stoq_core::PluginClass::Connector],
                move |_| Ok(PluginInstance::new().connector(c.clone())),
            ))
            .unwrap();
        let stoq = Stoq::builder()
            .registry(registry)
            .base_dir(&d.base)
            .providers(["filedir"])
            .connectors(["count"])
            .plugin_opt("filedir", "source_dir", d.src.to_string_lossy())
            .plugin_opt("filedir", "results_dir", d.results.to_string_lossy())
            .build()
            .unwrap();
        let summary = stoq.run(None, &[]).await.unwrap();
        assert_eq!(summary.scanned, 2, "round {round}");
        assert!(!d.results.join(JOURNAL_FILE).exists(), "round {round}");
    }
    assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 4);
}
