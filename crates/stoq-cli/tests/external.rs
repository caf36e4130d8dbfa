//! Plugins in their own processes (docs/PLUGIN_PROTOCOL.md), through the
//! real `stoq` binary: stoQ v3 Python plugins run unchanged by the
//! compatibility host, every plugin class, the SDK and shell examples, the
//! failure modes (hang, crash, garbage output), and `stoq install`.
//!
//! These tests need `python3` on the PATH (the project's test script runs
//! on machines that have it); without it they say so and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const STOQ: &str = env!("CARGO_BIN_EXE_stoq");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn v3_dir() -> PathBuf {
    repo().join("testdata/plugins/v3")
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: python3 not found; external plugin tests need it");
    }
    ok
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Every JSON document on stdout (run mode prints one per result).
    fn documents(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("bad JSON stream ({e}):\n{}", self.stdout))
    }
}

/// Run `stoq` with a fresh `$STOQ_HOME` and cache directory, and a time
/// limit (a hang fails the test instead of blocking the suite).
fn stoq(home: &Path, args: &[&str]) -> Out {
    let start = Instant::now();
    let mut child = Command::new(STOQ)
        .args(args)
        .env("STOQ_HOME", home)
        .env("STOQ_CACHE_DIR", home.join("cache"))
        .env_remove("STOQ_PYTHON")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stoq");
    let deadline = start + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stoq {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn errors(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn v3_worker_runs_unchanged_with_its_options() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"The quick brown fox");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-s",
            "v3_worker",
            "--plugin-opts",
            "v3_worker:greeting=hi there",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(
        results[0]["workers"]["v3_worker"],
        serde_json::json!({"valuable_insight": "wow", "greeting": "hi there"})
    );
    assert_eq!(results[0]["plugins_run"]["workers"][0], "v3_worker");
    // The extracted payload came through the pipe with its metadata.
    assert_eq!(results.len(), 2, "{v:#}");
    assert_eq!(results[1]["size"], 11);
    assert_eq!(results[1]["extracted_by"][0], "v3_worker");
    assert_eq!(results[1]["extracted_from"][0], results[0]["payload_id"]);
    assert_eq!(
        results[1]["payload_meta"]["extra_data"]["filename"],
        "lorem.txt"
    );
    assert!(errors(&v).is_empty(), "{v:#}");
}

#[test]
fn v3_errors_and_exceptions_become_error_records() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"The quick brown fox");
    let dir = v3_dir();
    let base = ["scan", s(&f), "--plugin-dir", s(&dir), "-s", "v3_worker"];
    let mut args = base.to_vec();
    args.extend(["--plugin-opts", "v3_worker:return_errors=true"]);
    let v = stoq(h.path(), &args).json();
    let errs = v["errors"].as_array().unwrap();
    let rec = errs
        .iter()
        .find(|e| e["error"] == "Test error please ignore")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(rec["plugin_name"], "v3_worker");
    assert_eq!(rec["payload_id"], v["results"][0]["payload_id"]);

    let mut args = base.to_vec();
    args.extend(["--plugin-opts", "v3_worker:raise_exception=true"]);
    let out = stoq(h.path(), &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let errs = errors(&v);
    assert!(
        errs.iter().any(|e| e.starts_with("worker:failed to scan")
            && e.contains("Test exception please ignore")),
        "{errs:?}"
    );
    assert!(v["results"][0]["workers"].get("v3_worker").is_none());
}

#[test]
fn v3_dispatcher_routes_and_changes_payload_meta() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"some content");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-R",
            "v3_dispatcher",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let root = &v["results"][0];
    assert_eq!(
        root["workers"]["v3_worker"]["valuable_insight"], "wow",
        "{v:#}"
    );
    // The plugin set payload.results.payload_meta.should_archive = False.
    assert_eq!(root["payload_meta"]["should_archive"], false);
}

#[test]
fn v3_multiclass_plugin_serves_both_roles() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"multi");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-R",
            "v3_multiclass",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert!(
        v["results"][0]["plugins_run"]["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "v3_multiclass"),
        "{v:#}"
    );
}

#[test]
fn v3_hash_output_is_identical_to_the_builtin() {
    if !have_python() {
        return;
    }
    let h = home();
    let sample = repo().join("testdata/pe/cli-32.exe");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&sample),
            "--plugin-dir",
            s(&v3_dir()),
            "-s",
            "v3_hash",
            "hash",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let workers = &v["results"][0]["workers"];
    let ours = serde_json::to_string(&workers["v3_hash"]).unwrap();
    let builtin = serde_json::to_string(&workers["hash"]).unwrap();
    // Same keys, same order, same values.
    assert_eq!(ours, builtin);
    assert_eq!(
        workers["hash"]["sha256"],
        "32acc1bc543116cbe2cff10cb867772df2f254ff2634c870aef0b46c4b696fdb"
    );
}

#[test]
fn v3_archiver_decorator_and_connector() {
    if !have_python() {
        return;
    }
    let h = home();
    let archive = h.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let saved = h.path().join("results.jsonl");
    let f = write(h.path(), "sample.txt", b"archive me");
    let opts_a = format!("v3_archiver:archive_dir={}", archive.display());
    let opts_c = format!("v3_connector:output_file={}", saved.display());
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-s",
            "v3_worker",
            "-A",
            "v3_archiver",
            "-D",
            "v3_decorator",
            "-C",
            "v3_connector",
            "--plugin-opts",
            &opts_a,
            &opts_c,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // With a connector, scan prints nothing; the connector wrote one line.
    assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
    let text = std::fs::read_to_string(&saved).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let root = &v["results"][0];
    let stored = root["archivers"]["v3_archiver"]["path"].as_str().unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), b"archive me");
    assert_eq!(root["plugins_run"]["archivers"][0], "v3_archiver");
    let deco = &v["decorators"]["v3_decorator"];
    assert_eq!(deco["payload_count"], 2, "{v:#}");
    assert_eq!(deco["workers_seen"], serde_json::json!(["v3_worker"]));
}

#[test]
fn v3_provider_feeds_run_and_archiver_tasks_come_back() {
    if !have_python() {
        return;
    }
    let h = home();
    let src = h.path().join("in");
    std::fs::create_dir(&src).unwrap();
    for (name, body) in [
        ("a.txt", "first"),
        ("b.txt", "second file"),
        ("c.txt", "third"),
    ] {
        write(&src, name, body.as_bytes());
    }
    let opt = format!("v3_provider:source_dir={}", src.display());
    let out = stoq(
        h.path(),
        &[
            "run",
            "--plugin-dir",
            s(&v3_dir()),
            "-P",
            "v3_provider",
            "-a",
            "hash",
            "--plugin-opts",
            &opt,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = out.documents();
    let mut names: Vec<String> = docs.iter().map(|d| filename(d).to_string()).collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt", "c.txt"]);

    // The same files as archiver tasks: the v3 archiver's get() loads them.
    let arc = format!("v3_archiver:archive_dir={}", h.path().display());
    let out = stoq(
        h.path(),
        &[
            "run",
            "--plugin-dir",
            s(&v3_dir()),
            "-P",
            "v3_provider",
            "-S",
            "v3_archiver",
            "-a",
            "hash",
            "--plugin-opts",
            &opt,
            "v3_provider:as_tasks=true",
            &arc,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = out.documents();
    assert_eq!(docs.len(), 3, "{}", out.stdout);
    let mut sizes: Vec<u64> = docs
        .iter()
        .map(|d| d["results"][0]["size"].as_u64().unwrap())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [5, 5, 11]);
    for d in &docs {
        let path = d["results"][0]["payload_meta"]["extra_data"]["path"]
            .as_str()
            .unwrap();
        assert!(path.starts_with(src.to_str().unwrap()), "{d:#}");
    }
}

/// The `filename` a v3_provider item carried.
fn filename(doc: &Value) -> &str {
    doc["results"][0]["payload_meta"]["extra_data"]["filename"]
        .as_str()
        .unwrap()
}

/// `stoq run` over two files through v3_provider with `-a worker`, one
/// scan at a time (so the second call waits for no one and must get a
/// fresh process after the first broke it): the results for `1-bad.txt`
/// (content `bad`) and `2-ok.txt`, in that order.
fn run_bad_then_ok(h: &Path, worker: &str, bad: &[u8], opts: &[&str]) -> (Out, Value, Value) {
    let src = h.join("in");
    std::fs::create_dir(&src).unwrap();
    write(&src, "1-bad.txt", bad);
    write(&src, "2-ok.txt", b"fine");
    write(h, "stoq.cfg", b"[core]\nprovider_consumers = 1\n");
    let source = format!("v3_provider:source_dir={}", src.display());
    let plugins = v3_dir();
    let mut args = vec![
        "run",
        "--plugin-dir",
        s(&plugins),
        "-P",
        "v3_provider",
        "-a",
        worker,
        "--plugin-opts",
        &source,
    ];
    args.extend_from_slice(opts);
    let out = stoq(h, &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = out.documents();
    let names: Vec<&str> = docs.iter().map(filename).collect();
    assert_eq!(names, ["1-bad.txt", "2-ok.txt"], "{}", out.stdout);
    let (bad, ok) = (docs[0].clone(), docs[1].clone());
    (out, bad, ok)
}

#[test]
fn a_hanging_plugin_is_killed_at_its_timeout_and_replaced() {
    if !have_python() {
        return;
    }
    let h = home();
    let (out, hung, ok) = run_bad_then_ok(
        h.path(),
        "v3_hang",
        b"hang here",
        &["v3_hang:timeout=2", "v3_hang:processes=1"],
    );
    assert!(out.took < Duration::from_secs(30), "took {:?}", out.took);
    let errs = errors(&hung);
    assert!(
        errs.iter().any(|e| e.contains("timed out after 2s")),
        "{errs:?}"
    );
    // The next call got a fresh process.
    assert_eq!(ok["results"][0]["workers"]["v3_hang"]["ok"], true, "{ok:#}");
}

#[test]
fn a_crashing_plugin_becomes_an_error_record_and_is_restarted() {
    if !have_python() {
        return;
    }
    let h = home();
    let (_, crashed, ok) = run_bad_then_ok(
        h.path(),
        "v3_crash",
        b"crash now",
        &["v3_crash:processes=1"],
    );
    let errs = errors(&crashed);
    assert!(
        errs.iter()
            .any(|e| e.contains("external plugin v3_crash exited") && e.contains('3')),
        "{errs:?}"
    );
    assert_eq!(
        ok["results"][0]["workers"]["v3_crash"]["ok"], true,
        "{ok:#}"
    );
}

#[test]
fn garbage_output_and_early_exit_are_reported() {
    let h = home();
    let f = write(h.path(), "sample.txt", b"anything");
    let dir = repo().join("testdata/plugins/external");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&dir),
            "-s",
            "garbage",
            "exits",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let errs = errors(&v);
    assert!(
        errs.iter()
            .any(|e| e.contains("external plugin garbage broke the protocol")
                && e.contains("this is not json")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("external plugin exits exited") && e.contains('7')),
        "{errs:?}"
    );
}

#[test]
fn shell_example_plugin_counts_like_wc() {
    let h = home();
    let sample = repo().join("testdata/misc/stoq-scan_rules.yar");
    let dir = repo().join("examples/plugins");
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&sample),
            "--plugin-dir",
            s(&dir),
            "-s",
            "linecount",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let wc = |flag: &str| -> u64 {
        let o = Command::new("wc").arg(flag).arg(&sample).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let r = &v["results"][0]["workers"]["linecount"];
    assert_eq!(r["lines"], wc("-l"), "{v:#}");
    assert_eq!(r["bytes"], wc("-c"), "{v:#}");
}

#[test]
fn python_sdk_example_plugin() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "words.txt", b"one two three\nfour five\n");
    let dir = repo().join("examples/plugins");
    let out = stoq(
        h.path(),
        &["scan", s(&f), "--plugin-dir", s(&dir), "-s", "wordcount"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let r = &v["results"][0]["workers"]["wordcount"];
    assert_eq!(r["words"], 5, "{v:#}");
    assert_eq!(r["lines"], 2);
    assert_eq!(r["bytes"], 24);
}

#[test]
fn list_shows_external_plugins_with_their_classes() {
    let h = home();
    let out = stoq(
        h.path(),
        &[
            "list",
            "--plugin-dir",
            s(&v3_dir()),
            s(&repo().join("examples/plugins")),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let classes_of = |name: &str| -> String {
        let i = lines
            .iter()
            .position(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", out.stdout));
        lines[i + 1]
            .trim()
            .trim_start_matches("- ")
            .trim()
            .to_string()
    };
    assert_eq!(classes_of("hash"), "Worker");
    assert_eq!(classes_of("v3_worker"), "Worker");
    assert_eq!(classes_of("v3_archiver"), "Archiver");
    assert_eq!(classes_of("v3_provider"), "Provider");
    assert_eq!(classes_of("v3_multiclass"), "Worker, Dispatcher");
    assert_eq!(classes_of("linecount"), "Worker");
}

#[test]
fn a_module_without_a_plugin_class_fails_to_load_with_the_reference_message() {
    if !have_python() {
        return;
    }
    let h = home();
    let dir = h.path().join("plugins/notaplugin");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "notaplugin.stoq",
        b"[Core]\nName = notaplugin\nModule = notaplugin\n",
    );
    write(
        &dir,
        "notaplugin.py",
        b"class RandomClassNotAPlugin:\n    pass\n",
    );
    let f = write(h.path(), "x.txt", b"x");
    let out = stoq(h.path(), &["scan", s(&f), "-s", "notaplugin"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let errs = errors(&out.json());
    assert!(
        errs.iter()
            .any(|e| e.contains("Worker plugin notaplugin failed to load")
                && e.contains("No valid plugin classes found")),
        "{errs:?}"
    );
}

#[test]
fn install_into_a_private_venv_then_refuse_then_upgrade() {
    if !have_python() {
        return;
    }
    let h = home();
    let plugins = h.path().join("plugins");
    let src = v3_dir().join("v3_needs_pkg");
    // Default install dir: $STOQ_HOME/plugins (created).
    let out = stoq(h.path(), &["install", s(&src)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Successfully installed"),
        "{}",
        out.stdout
    );
    let installed = plugins.join("v3_needs_pkg");
    assert!(installed.join(".venv/bin/python").exists());
    // The package is in the plugin's venv only: the plugin imports it.
    let f = write(h.path(), "x.txt", b"x");
    let out = stoq(h.path(), &["scan", s(&f), "-s", "v3_needs_pkg"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(
        v["results"][0]["workers"]["v3_needs_pkg"]["pkg"], "from the venv",
        "{v:#}"
    );

    // Again without --upgrade: refused, nothing touched.
    let marker = installed.join("marker");
    std::fs::write(&marker, b"old").unwrap();
    let out = stoq(h.path(), &["install", s(&src)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("already exists") && out.stderr.contains("--upgrade"),
        "{}",
        out.stderr
    );
    assert!(marker.exists());
    // With --upgrade: replaced (the marker is gone).
    let out = stoq(
        h.path(),
        &[
            "install",
            s(&src),
            "--upgrade",
            "--install-dir",
            s(&plugins),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!marker.exists());
    assert!(installed.join("v3_needs_pkg.stoq").exists());
    // No staging leftovers.
    let left: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("v3_needs_pkg")]);
}

#[test]
fn install_failures_are_honest_and_change_nothing() {
    if !have_python() {
        return;
    }
    let h = home();
    let plugins = h.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // A requirement that cannot be satisfied offline.
    let src = h.path().join("broken_plugin");
    std::fs::create_dir(&src).unwrap();
    write(
        &src,
        "broken.stoq",
        b"[Core]\nName = broken\nModule = broken\n",
    );
    write(
        &src,
        "broken.py",
        b"from stoq.plugins import WorkerPlugin\nclass B(WorkerPlugin):\n    pass\n",
    );
    write(
        &src,
        "requirements.txt",
        b"--no-index\n./wheels/missing-0.1-py3-none-any.whl\n",
    );
    let out = stoq(
        h.path(),
        &["install", s(&src), "--install-dir", s(&plugins)],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("pip install -r requirements.txt failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was installed"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(&plugins).unwrap().count(), 0);

    // Not a directory; no manifest; a missing explicit install dir.
    let out = stoq(h.path(), &["install", s(&h.path().join("nope"))]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Given plugin directory does not exist"),
        "{}",
        out.stderr
    );
    let empty = h.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = stoq(h.path(), &["install", s(&empty)]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no plugin manifest"), "{}", out.stderr);
    let out = stoq(
        h.path(),
        &[
            "install",
            s(&src),
            "--install-dir",
            s(&h.path().join("missing")),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Install directory does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn python_side_unit_tests_pass() {
    if !have_python() {
        return;
    }
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "python/tests"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python unit tests failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_plugin_that_cannot_start_is_reported_on_every_call_but_started_once() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"two payloads");
    // v3_archiver refuses to start without archive_dir (as the public
    // plugins do): a `fatal` answer to hello.
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-s",
            "v3_worker",
            "-A",
            "v3_archiver",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let errs = errors(&v);
    let start_failures = errs
        .iter()
        .filter(|e| {
            e.starts_with("archiver:failed to archive: external plugin v3_archiver failed to start")
                && e.contains("StoqPluginException: archive_dir has not been defined")
        })
        .count();
    // One record per payload (the root and the extracted one)...
    assert_eq!(start_failures, 2, "{errs:?}");
    // ...from a single attempt to start the plugin.
    assert_eq!(
        out.stderr
            .matches("Traceback (most recent call last)")
            .count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn one_scan_starts_one_process() {
    if !have_python() {
        return;
    }
    let h = home();
    let f = write(h.path(), "sample.txt", b"The quick brown fox");
    // v3_worker runs twice (the file, then the payload it extracts): the
    // process started ahead of the first call serves both.
    let out = stoq(
        h.path(),
        &[
            "scan",
            s(&f),
            "--plugin-dir",
            s(&v3_dir()),
            "-a",
            "v3_worker",
            "--log-level",
            "debug",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(
        out.stderr
            .matches("started external plugin v3_worker")
            .count(),
        1,
        "{}",
        out.stderr
    );
}
