//! The `dirmon` provider against real directories, driven through the
//! engine's run mode.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stoq_core::{
    async_trait, Connector, ModuleDescriptor, PluginClass, PluginInstance, PluginResult, StoqError,
    StoqResponse,
};
use stoq_engine::{RunControl, RunSummary, Stoq};
use stoq_plugins::hash::sha256_hex;
use tokio::task::JoinHandle;

/// Tests run concurrently (shared lock); the one that counts notify's
/// threads runs alone (exclusive lock).
static THREADS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

type Responses = Arc<Mutex<Vec<StoqResponse>>>;

/// Collects every response.
struct Collect(Responses);

#[async_trait]
impl Connector for Collect {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        self.0.lock().unwrap().push(response.clone());
        Ok(())
    }
}

/// What one response says about the file it scanned.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    filename: String,
    source_dir: String,
    sha256: String,
    size: u64,
}

fn build(source_dir: &Path, opts: &[(&str, &str)]) -> Result<(Stoq, Responses), StoqError> {
    let responses = Arc::new(Mutex::new(Vec::new()));
    let mut registry = stoq_plugins::builtin_registry();
    let r = responses.clone();
    registry
        .register(ModuleDescriptor::new(
            "collect",
            &[PluginClass::Connector],
            move |_| Ok(PluginInstance::new().connector(Arc::new(Collect(r.clone())))),
        ))
        .unwrap();
    // An empty base directory: no stoq.cfg, no plugin directory.
    let base = tempfile::tempdir().unwrap();
    let mut builder = Stoq::builder()
        .registry(registry)
        .base_dir(base.path())
        .providers(["dirmon"])
        .connectors(["collect"])
        .always_dispatch(["hash"])
        .plugin_opt("dirmon", "source_dir", source_dir.to_str().unwrap());
    for (k, v) in opts {
        builder = builder.plugin_opt("dirmon", k, *v);
    }
    Ok((builder.build()?, responses))
}

/// A running monitor.
struct Monitor {
    dir: PathBuf,
    control: RunControl,
    run: JoinHandle<Result<RunSummary, StoqError>>,
    responses: Responses,
    probes: usize,
}

impl Monitor {
    /// Start monitoring `dir`, and return once the watcher is live.
    async fn start(dir: &Path, opts: &[(&str, &str)]) -> Monitor {
        let (stoq, responses) = build(dir, opts).unwrap();
        let control = RunControl::new();
        let c = control.clone();
        let run = tokio::spawn(async move { stoq.run_with(None, &[], c).await });
        let mut m = Monitor {
            dir: dir.to_path_buf(),
            control,
            run,
            responses,
            probes: 0,
        };
        m.wait_live().await;
        m
    }

    /// Drop probe files until one is scanned: from then on the watcher
    /// sees every new file. Probes are left out of [`Monitor::seen`].
    async fn wait_live(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            std::fs::write(self.dir.join(format!("probe-{}", self.probes)), b"probe").unwrap();
            self.probes += 1;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let scanned = self
                    .responses
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|r| filename(r).starts_with("probe-"));
                if scanned {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the monitor did not start"
            );
        }
    }

    /// Every scanned file except the probes, in scan order.
    fn seen(&self) -> Vec<Seen> {
        self.responses
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !filename(r).starts_with("probe-"))
            .map(|r| {
                let p = &r.results[0];
                let extra = &p.payload_meta.extra_data;
                Seen {
                    filename: extra["filename"].as_str().unwrap().to_string(),
                    source_dir: extra["source_dir"].as_str().unwrap().to_string(),
                    sha256: p.workers["hash"]["sha256"].as_str().unwrap().to_string(),
                    size: p.size,
                }
            })
            .collect()
    }

    fn seen_named(&self, name: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.filename == name)
            .collect()
    }

    /// Wait until `name` has been scanned `n` times (2 s at most).
    async fn wait_for(&self, name: &str, n: usize) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let seen = self.seen_named(name);
            if seen.len() >= n {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was not scanned {n} time(s); scanned: {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shut the run down; it must end promptly.
    async fn stop(self) -> RunSummary {
        self.control.shutdown();
        let summary = tokio::time::timeout(Duration::from_secs(2), self.run)
            .await
            .expect("the run ends promptly after a shutdown")
            .unwrap()
            .unwrap();
        assert!(summary.interrupted);
        assert_eq!(summary.provider_errors, 0, "{summary:?}");
        summary
    }
}

fn filename(r: &StoqResponse) -> &str {
    r.results[0].payload_meta.extra_data["filename"]
        .as_str()
        .unwrap_or_default()
}

/// Long enough for anything the monitor would still do to happen.
async fn quiet() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_file_is_scanned_once_with_its_hash_and_name() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(outside.path().join("sample.bin"), &content).unwrap();
    let m = Monitor::start(dir.path(), &[]).await;

    std::fs::copy(
        outside.path().join("sample.bin"),
        dir.path().join("sample.bin"),
    )
    .unwrap();
    m.wait_for("sample.bin", 1).await;
    quiet().await;
    assert_eq!(
        m.seen(),
        [Seen {
            filename: "sample.bin".into(),
            source_dir: dir.path().to_str().unwrap().into(),
            sha256: sha256_hex(&content),
            size: content.len() as u64,
        }]
    );
    m.stop().await;
}

/// A file kept open while written in chunks, with pauses longer than
/// settle_ms, is read once, complete, after its writer closes it.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowly_written_file_is_scanned_once_complete() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(dir.path(), &[("settle_ms", "20")]).await;

    let mut f = std::fs::File::create(dir.path().join("slow.txt")).unwrap();
    let mut all = Vec::new();
    for i in 0..3 {
        let chunk = format!("chunk {i} {}\n", "x".repeat(1000));
        f.write_all(chunk.as_bytes()).unwrap();
        f.flush().unwrap();
        all.extend_from_slice(chunk.as_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(m.seen().is_empty(), "read before the writer closed it");
    drop(f);
    m.wait_for("slow.txt", 1).await;
    quiet().await;
    let seen = m.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sha256, sha256_hex(&all));
    assert_eq!(seen[0].size, all.len() as u64);
    m.stop().await;
}

/// A file moved in (no close event) is read once its size and mtime
/// settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_in_file_is_scanned_after_settling() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    // Same file system, so the move is a rename.
    let staging = dir.path().join(".staging");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("moved.txt"), b"moved in").unwrap();
    let m = Monitor::start(dir.path(), &[("settle_ms", "50")]).await;

    std::fs::rename(staging.join("moved.txt"), dir.path().join("moved.txt")).unwrap();
    let seen = m.wait_for("moved.txt", 1).await;
    assert_eq!(seen[0].sha256, sha256_hex(b"moved in"));
    quiet().await;
    assert_eq!(m.seen().len(), 1);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_files_are_processed_only_when_asked() {
    let _g = THREADS.read().await;
    for process_existing in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.txt"), b"already there").unwrap();
        let m = Monitor::start(
            dir.path(),
            &[
                ("settle_ms", "20"),
                ("process_existing", &process_existing.to_string()),
            ],
        )
        .await;
        std::fs::write(dir.path().join("new.txt"), b"new").unwrap();
        m.wait_for("new.txt", 1).await;
        if process_existing {
            let old = m.wait_for("old.txt", 1).await;
            assert_eq!(old[0].sha256, sha256_hex(b"already there"));
        }
        quiet().await;
        let n = m.seen_named("old.txt").len();
        assert_eq!(n, usize::from(process_existing), "{:?}", m.seen());
        assert_eq!(m.seen_named("new.txt").len(), 1);
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_sees_new_subdirectories() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(dir.path(), &[("settle_ms", "20"), ("recursive", "true")]).await;

    // Files written at once into new directories, before or after the
    // monitor had a chance to watch them.
    let deep = dir.path().join("sub").join("deep");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("inner.txt"), b"inner").unwrap();
    let seen = m.wait_for("inner.txt", 1).await;
    assert_eq!(seen[0].source_dir, deep.to_str().unwrap());
    assert_eq!(seen[0].sha256, sha256_hex(b"inner"));
    // Later files in an already watched subdirectory.
    std::fs::write(dir.path().join("sub").join("later.txt"), b"later").unwrap();
    m.wait_for("later.txt", 1).await;
    quiet().await;
    assert_eq!(m.seen().len(), 2, "{:?}", m.seen());
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_recursive_ignores_subdirectories() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(dir.path(), &[("settle_ms", "20")]).await;

    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inner.txt"), b"inner").unwrap();
    std::fs::write(dir.path().join("marker.txt"), b"marker").unwrap();
    m.wait_for("marker.txt", 1).await;
    quiet().await;
    let names: Vec<String> = m.seen().into_iter().map(|s| s.filename).collect();
    assert_eq!(names, ["marker.txt"]);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_files_are_skipped_unless_asked() {
    let _g = THREADS.read().await;
    for skip_hidden in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let m = Monitor::start(
            dir.path(),
            &[
                ("settle_ms", "20"),
                ("skip_hidden", &skip_hidden.to_string()),
            ],
        )
        .await;
        std::fs::write(dir.path().join(".hidden"), b"hidden").unwrap();
        std::fs::write(dir.path().join("visible.txt"), b"visible").unwrap();
        m.wait_for("visible.txt", 1).await;
        if !skip_hidden {
            m.wait_for(".hidden", 1).await;
        }
        quiet().await;
        assert_eq!(m.seen_named(".hidden").len(), usize::from(!skip_hidden));
        m.stop().await;
    }
}

/// A rewritten file is a new appearance; so is a file deleted and created
/// again. Touching nothing queues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_and_recreated_files_are_scanned_again() {
    let _g = THREADS.read().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(dir.path(), &[("settle_ms", "20")]).await;
    let path = dir.path().join("a.txt");

    std::fs::write(&path, b"first").unwrap();
    m.wait_for("a.txt", 1).await;
    std::fs::write(&path, b"second, longer").unwrap();
    m.wait_for("a.txt", 2).await;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"third").unwrap();
    let seen = m.wait_for("a.txt", 3).await;
    let hashes: Vec<String> = seen.into_iter().map(|s| s.sha256).collect();
    assert_eq!(
        hashes,
        [
            sha256_hex(b"first"),
            sha256_hex(b"second, longer"),
            sha256_hex(b"third")
        ]
    );
    // Reading or changing permissions is no new appearance.
    let _ = std::fs::read(&path).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    quiet().await;
    assert_eq!(m.seen().len(), 3, "{:?}", m.seen());
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_invalid_source_dir_fails_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let e = build(&missing, &[])
        .err()
        .expect("a missing directory is refused")
        .to_string();
    assert!(
        e.contains("dirmon") && e.contains("source_dir") && e.contains("nowhere"),
        "{e}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = build(&file, &[])
        .err()
        .expect("a file is refused")
        .to_string();
    assert!(
        e.contains("source_dir") && e.contains("not a directory"),
        "{e}"
    );
    let e = build(dir.path(), &[("settle_ms", "soon")])
        .err()
        .expect("a bad number is refused")
        .to_string();
    assert!(e.contains("settle_ms") && e.contains("soon"), "{e}");
}

/// Names of this process's threads that are notify's inotify loops
/// (`comm` is cut to 15 bytes).
#[cfg(target_os = "linux")]
fn notify_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("notify-rs inoti"))
        })
        .count()
}

/// After a shutdown, `run_with` returns promptly and the watcher's thread
/// ends.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_watcher_thread() {
    let _g = THREADS.write().await;
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(dir.path(), &[]).await;
    assert!(notify_threads() >= 1);
    let summary = m.stop().await;
    assert!(summary.scanned >= 1, "{summary:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while notify_threads() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "notify's thread still runs after the shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
