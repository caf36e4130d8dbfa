//! `stoq run` with real processes, real files and real signals.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const STOQ: &str = env!("CARGO_BIN_EXE_stoq");

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A scratch area: `$STOQ_HOME`, the working directory, and helpers.
struct Area {
    dir: tempfile::TempDir,
}

impl Area {
    fn new() -> Self {
        let a = Area {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        fs::create_dir_all(a.home()).unwrap();
        a
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(STOQ);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("STOQ_HOME", self.home())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// Wait for a child with a deadline; kill it and fail if it overruns.
fn wait(mut child: Child, limit: Duration) -> (i32, String, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), out, err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stoq did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Result files in `dir` (dotfiles are the journal and temp files).
fn results(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// filename → (sha256 from the hash worker), over every result file; fails
/// on an incomplete (unparsable) result.
fn hashes_by_filename(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in results(dir) {
        let text = fs::read_to_string(&p).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not complete JSON: {e}", p.display()));
        let root = &v["results"][0];
        let name = root["payload_meta"]["extra_data"]["filename"]
            .as_str()
            .unwrap()
            .to_string();
        let sha = root["workers"]["hash"]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        map.entry(name).or_default().push(sha);
    }
    map
}

/// The seeds' run-mode example, as written: dirmon → hash → filedir.
#[test]
fn seeds_dirmon_example_end_to_end() {
    let a = Area::new();
    fs::create_dir_all(a.path("monitor")).unwrap();
    fs::create_dir_all(a.path("results")).unwrap();
    let child = a
        .command(&[
            "run",
            "-P",
            "dirmon",
            "-C",
            "filedir",
            "-a",
            "hash",
            "--plugin-opts",
            "dirmon:source_dir=monitor",
            "filedir:results_dir=results",
        ])
        .spawn()
        .expect("spawn stoq run");
    // Probe until the watcher is live.
    let mut n = 0;
    let live = poll_until(Duration::from_secs(15), || {
        if results(&a.path("results")).is_empty() {
            n += 1;
            fs::write(
                a.path(&format!("monitor/probe-{n}.txt")),
                format!("probe {n}"),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            false
        } else {
            true
        }
    });
    assert!(live, "dirmon never picked up a probe file");
    // Probes written before the watcher started are (rightly) never seen.
    let probes = results(&a.path("results")).len();
    let inputs = ["pe/cli-32.exe", "pe/nsDialogs.dll", "misc/jquery.min.js"];
    for rel in inputs {
        let from = testdata().join(rel);
        fs::copy(&from, a.path("monitor").join(from.file_name().unwrap())).unwrap();
    }
    let want = probes + inputs.len();
    assert!(
        poll_until(Duration::from_secs(15), || results(&a.path("results"))
            .len()
            >= want),
        "expected {want} results, have {}",
        results(&a.path("results")).len()
    );
    signal(&child, "-TERM");
    let (code, _out, err) = wait(child, Duration::from_secs(15));
    assert_eq!(code, 0, "graceful stop exits 0: {err}");
    assert!(err.contains("run stopped"), "summary logged: {err}");
    let by_name = hashes_by_filename(&a.path("results"));
    for rel in inputs {
        let f = testdata().join(rel);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(by_name.get(&name), Some(&vec![sha256sum(&f)]), "{name}");
    }
    assert!(probes >= 1 && probes <= n);
    assert_eq!(
        results(&a.path("results")).len(),
        want,
        "each file scanned once"
    );
}

/// A directory tree through filedir: one complete result per file; a second
/// run with the same settings writes nothing new.
#[test]
fn directory_through_filedir_then_resume_writes_nothing() {
    let a = Area::new();
    let args = [
        "run",
        "-P",
        "filedir",
        "-C",
        "filedir",
        "-a",
        "hash",
        "--plugin-opts",
    ];
    let src = testdata();
    let opts = [
        format!("filedir:source_dir={}", src.display()),
        "filedir:recursive=true".to_string(),
        format!("filedir:results_dir={}", a.path("results").display()),
    ];
    let mut all: Vec<&str> = args.to_vec();
    all.extend(opts.iter().map(String::as_str));
    let (code, _out, err) = wait(a.command(&all).spawn().unwrap(), Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");

    let mut inputs = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let hidden = p.file_name().unwrap().to_string_lossy().starts_with('.');
            if p.is_dir() && !hidden {
                stack.push(p);
            } else if p.is_file() && !hidden {
                inputs.push(p);
            }
        }
    }
    let by_name = hashes_by_filename(&a.path("results"));
    let files = results(&a.path("results"));
    assert_eq!(files.len(), inputs.len(), "one result per input");
    for p in &inputs {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            by_name
                .get(&name)
                .is_some_and(|v| v.contains(&sha256sum(p))),
            "{name}"
        );
    }
    let mtimes: Vec<_> = files
        .iter()
        .map(|f| fs::metadata(f).unwrap().modified().unwrap())
        .collect();

    let (code, _out, err) = wait(a.command(&all).spawn().unwrap(), Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    let again = results(&a.path("results"));
    assert_eq!(again, files, "no new result files");
    let mtimes2: Vec<_> = again
        .iter()
        .map(|f| fs::metadata(f).unwrap().modified().unwrap())
        .collect();
    assert_eq!(mtimes, mtimes2, "nothing rewritten");
}

/// kill -9 in the middle of a run, then a restart with the same settings:
/// every input ends with exactly one complete result file.
#[test]
fn kill_9_mid_run_then_restart_gives_exactly_one_result_per_input() {
    let a = Area::new();
    let n_inputs = 600;
    fs::create_dir_all(a.path("src")).unwrap();
    for i in 0..n_inputs {
        fs::write(
            a.path(&format!("src/f{i:05}.txt")),
            format!("input number {i}\n"),
        )
        .unwrap();
    }
    // One consumer and a short queue keep the run long enough to interrupt.
    fs::write(
        a.home().join("stoq.cfg"),
        "[core]\nprovider_consumers = 1\nmax_queue = 2\n",
    )
    .unwrap();
    let args = [
        "run",
        "-P",
        "filedir",
        "-C",
        "filedir",
        "-a",
        "hash",
        "--plugin-opts",
        "filedir:source_dir=src",
        "filedir:results_dir=results",
    ];
    let mut child = a.command(&args).spawn().unwrap();
    let started = poll_until(Duration::from_secs(30), || {
        results(&a.path("results")).len() >= 20
    });
    assert!(started, "no results appeared");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let at_kill = results(&a.path("results")).len();
    assert!(
        at_kill < n_inputs,
        "the kill landed mid-run ({at_kill} results)"
    );
    // Whatever was written before the kill is complete JSON.
    let partial = hashes_by_filename(&a.path("results"));
    assert_eq!(partial.values().map(Vec::len).sum::<usize>(), at_kill);

    let (code, _out, err) = wait(a.command(&args).spawn().unwrap(), Duration::from_secs(120));
    assert_eq!(code, 0, "{err}");
    let by_name = hashes_by_filename(&a.path("results"));
    assert_eq!(by_name.len(), n_inputs, "every input has a result");
    for (name, shas) in &by_name {
        assert_eq!(shas.len(), 1, "{name} has {} results", shas.len());
    }
    assert_eq!(results(&a.path("results")).len(), n_inputs);
    eprintln!("killed after {at_kill} of {n_inputs} results");
}

/// An item that makes a plugin fail (a source archiver that cannot fetch
/// it) is logged and counted; the other items are scanned; exit 4.
#[test]
fn failing_item_is_logged_and_the_run_goes_on() {
    let a = Area::new();
    let good = testdata().join("pe/cli-32.exe");
    let lines = format!(
        "{{\"archiver\": \"filedir\", \"task\": {{\"path\": \"{}\"}}}}\n\
         {{\"archiver\": \"filedir\", \"task\": {{\"path\": \"/nonexistent/file\"}}}}\n\
         {{\"archiver\": \"filedir\", \"task\": {{\"path\": \"{}\"}}}}\n",
        good.display(),
        testdata().join("pe/nsDialogs.dll").display()
    );
    let mut cmd = a.command(&[
        "run",
        "-P",
        "stdin",
        "-S",
        "filedir",
        "-a",
        "hash",
        "-C",
        "stdout",
        "--plugin-opts",
        "stdin:mode=tasks",
        "stdout:compactly=true",
    ]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
    }
    let (code, out, err) = wait(child, Duration::from_secs(30));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("/nonexistent/file"),
        "the failure is logged: {err}"
    );
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "the two good items were scanned: {out}");
    let mut shas: Vec<&str> = docs
        .iter()
        .map(|d| {
            d["results"][0]["workers"]["hash"]["sha256"]
                .as_str()
                .unwrap()
        })
        .collect();
    shas.sort();
    let mut want = vec![
        sha256sum(&good),
        sha256sum(&testdata().join("pe/nsDialogs.dll")),
    ];
    want.sort();
    assert_eq!(shas, want);
}

/// A connector that fails on every save: each failure is logged with its
/// scan id, the run finishes, and the exit code is 3.
#[test]
fn failing_connector_is_reported_with_exit_3() {
    let a = Area::new();
    fs::create_dir_all(a.path("src")).unwrap();
    fs::write(a.path("src/one.txt"), b"one").unwrap();
    fs::write(a.path("src/two.txt"), b"two").unwrap();
    // results_dir is a regular file: every save fails.
    fs::write(a.path("not-a-dir"), b"x").unwrap();
    let args = [
        "run",
        "-P",
        "filedir",
        "-C",
        "filedir",
        "-a",
        "hash",
        "--plugin-opts",
        "filedir:source_dir=src",
        "filedir:results_dir=not-a-dir",
    ];
    let (code, _out, err) = wait(a.command(&args).spawn().unwrap(), Duration::from_secs(30));
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        err.matches("Failed to save results using filedir").count(),
        2,
        "{err}"
    );
    assert!(err.contains("2 unsaved"), "{err}");
}

/// A sparse file large enough that hashing it keeps a scan in flight for a
/// while.
fn big_sparse_file(a: &Area, mib: u64) -> PathBuf {
    let p = a.path("big.bin");
    let f = fs::File::create(&p).unwrap();
    f.set_len(mib << 20).unwrap();
    p
}

/// A running `stoq` whose stderr is collected live by a thread.
struct Live {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Live {
    fn start(mut child: Child) -> Live {
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Live {
            child,
            stderr,
            reader,
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.stderr.lock().unwrap().matches(needle).count()
    }

    /// Wait for exit (killing it past `limit`): exit code and stderr.
    fn finish(mut self, limit: Duration) -> (i32, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("stoq did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = self.reader.join();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), err)
    }
}

/// `stoq run -P stdin` (debug logs on) reading the given paths, stdin kept
/// open so the provider never ends by itself.
fn run_stdin_provider(a: &Area, paths: &[&Path]) -> Live {
    let mut cmd = a.command(&[
        "run",
        "-P",
        "stdin",
        "-a",
        "hash",
        "-C",
        "filedir",
        "--log-level",
        "debug",
        "--plugin-opts",
        "filedir:results_dir=results",
    ]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    let stdin = child.stdin.as_mut().unwrap();
    for p in paths {
        writeln!(stdin, "{}", p.display()).unwrap();
    }
    stdin.flush().unwrap();
    Live::start(child)
}

/// One SIGTERM during a scan: intake stops, the scan in flight finishes and
/// is saved, the summary is logged, exit 0.
#[test]
fn sigterm_finishes_the_scan_in_flight() {
    let a = Area::new();
    let small = testdata().join("pe/cli-32.exe");
    let big = big_sparse_file(&a, 256);
    let live = run_stdin_provider(&a, &[&small, &big]);
    // The engine logs "Request received" when a scan starts: the second
    // one is the big file.
    assert!(poll_until(Duration::from_secs(30), || live
        .count("Request received")
        >= 2));
    signal(&live.child, "-TERM");
    let (code, err) = live.finish(Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Signal received"), "{err}");
    assert!(err.contains("run stopped: 2 items (2 scanned"), "{err}");
    let by_name = hashes_by_filename(&a.path("results"));
    assert_eq!(
        by_name.get("big.bin"),
        Some(&vec![sha256sum(&big)]),
        "the scan in flight was finished and saved: {err}"
    );
}

/// A second signal aborts at once with exit 130.
#[test]
fn second_signal_aborts_with_130() {
    let a = Area::new();
    let big = big_sparse_file(&a, 1024);
    let live = run_stdin_provider(&a, &[&big]);
    assert!(poll_until(Duration::from_secs(30), || live
        .count("Request received")
        >= 1));
    signal(&live.child, "-INT");
    assert!(poll_until(Duration::from_secs(10), || live
        .count("Signal received")
        >= 1));
    signal(&live.child, "-INT");
    let started = Instant::now();
    let (code, err) = live.finish(Duration::from_secs(20));
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("second signal"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        results(&a.path("results")).is_empty(),
        "the aborted scan saved nothing"
    );
}

/// On a terminal, a live progress line is shown on stderr; without one,
/// only log lines (checked by every other test's stderr having none).
#[test]
fn progress_line_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let a = Area::new();
    let big = big_sparse_file(&a, 256);
    let list = a.path("list.txt");
    fs::write(&list, format!("{}\n", big.display())).unwrap();
    // `script` gives stoq a pseudo-terminal; the typescript goes to stdout.
    let cmd_line = format!(
        "{STOQ} run -P stdin -a hash -C filedir --plugin-opts filedir:results_dir=results < {}",
        list.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &cmd_line, "/dev/null"])
        .current_dir(a.dir.path())
        .env("STOQ_HOME", a.home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (code, out, err) = wait(cmd.spawn().unwrap(), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("items/s"), "progress line expected: {out}");
    assert!(
        !results(&a.path("results")).is_empty(),
        "the scan completed: {out}"
    );
}
