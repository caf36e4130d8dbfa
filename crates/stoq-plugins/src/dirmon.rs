//! `dirmon` provider: monitor a directory and queue every file that appears
//! in it, once it is completely written.
//!
//! # How it works
//!
//! A [`notify`] watcher (inotify on Linux) is started *before* the existing
//! files are listed, so a file created during start-up is not missed. Its
//! callbacks run on notify's own thread and are bridged into an unbounded
//! tokio channel; one async loop owns all the state, so nothing is shared.
//! The watcher, the channel and the receipt tasks belong to the `ingest`
//! future: when the engine aborts the provider on shutdown, dropping the
//! future drops the watcher, which stops notify's thread.
//!
//! # When is a file ready?
//!
//! - On Linux and Android (inotify), a file that the monitor saw being
//!   created or written is ready as soon as a writer closes it
//!   (`IN_CLOSE_WRITE`, notify's `Access(Close(Write))`). However long the
//!   writer pauses between writes, a file still open for writing is not read.
//! - Every other file (moved or renamed into the directory, listed at
//!   start-up, found in a new subdirectory or by a rescan after an event
//!   queue overflow, and every file on platforms without close events) is
//!   ready when its size and modification time have not changed for
//!   `settle_ms`.
//!
//! # One scan per appearance
//!
//! The monitor remembers the size and modification time ("fingerprint") of
//! every file it queued. A ready file whose fingerprint equals the one it
//! was queued with is not queued again, so duplicate events are harmless. A
//! file that is rewritten later (its size or mtime changed) counts as a new
//! appearance and is queued again; so is a file deleted and created again.
//! The memory is dropped when a file is deleted or moved away.
//!
//! # Delivery
//!
//! Each file is read with one `std::fs::read` on the blocking pool and
//! queued as a `Request` holding one payload with `extra_data = {filename,
//! source_dir}` through `put_tracked`, so the queue's back-pressure applies
//! (events wait in the channel meanwhile). Receipts are awaited by small
//! tasks owned by the provider only to log the files that were not scanned
//! or not saved; nothing is retried and files are never deleted.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use stoq_core::{
    async_trait, blocking, Delivery, ModuleDescriptor, OptionDoc, OptionError, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Provider,
    ProviderItem, ProviderQueue, Request, RequestMeta,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "source_dir",
        "",
        "directory to monitor (required; must exist when the plugin loads)",
    ),
    OptionDoc::new(
        "recursive",
        "false",
        "also monitor subdirectories, including ones created later",
    ),
    OptionDoc::new(
        "process_existing",
        "false",
        "also queue the files already present at start-up",
    ),
    OptionDoc::new(
        "settle_ms",
        "500",
        "a file not seen being closed by its writer is ready once its size and mtime have not \
         changed for this many milliseconds",
    ),
    OptionDoc::new(
        "skip_hidden",
        "true",
        "ignore files and directories whose name starts with a dot",
    ),
    OptionDoc::new(
        "max_size",
        "0",
        "skip (with a warning) files larger than this many bytes; 0 = no limit",
    ),
];

/// Whether the platform's watcher reports `Access(Close(Write))`.
const CLOSE_EVENTS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Poll interval of notify's polling backend (platforms without a native
/// watcher).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest interval between two looks at the same settling file.
const MIN_POLL: Duration = Duration::from_millis(10);

/// Events handled before looking at ready files again.
const EVENT_BATCH: usize = 1024;

/// After a rescan, files modified this long before start-up still count as
/// new (coarse mtime granularity).
const RESCAN_SLACK: Duration = Duration::from_secs(2);

/// Largest `settle_ms`: one day.
const MAX_SETTLE_MS: u64 = 86_400_000;

/// The `dirmon` options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirmonConfig {
    /// Absolute (not canonicalised) path of the monitored directory.
    pub source_dir: PathBuf,
    pub recursive: bool,
    pub process_existing: bool,
    pub settle: Duration,
    pub skip_hidden: bool,
    /// 0: no limit.
    pub max_size: u64,
}

impl DirmonConfig {
    /// Parse and check the options.
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let raw = cfg.get_str("source_dir").unwrap_or("");
        let err = |reason: String| OptionError {
            plugin: cfg.name().to_string(),
            option: "source_dir".into(),
            value: raw.to_string(),
            reason,
        };
        let path = match cfg.path("source_dir") {
            Some(p) if !raw.trim().is_empty() => p,
            _ => return Err(err("required: the directory to monitor".into())),
        };
        let source_dir = std::path::absolute(&path)
            .map_err(|e| err(format!("cannot make the path absolute: {e}")))?;
        match std::fs::metadata(&source_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(err("not a directory".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(err("no such directory".into()))
            }
            Err(e) => return Err(err(format!("cannot access the directory: {e}"))),
        }
        Ok(DirmonConfig {
            source_dir,
            recursive: cfg.bool("recursive", false)?,
            process_existing: cfg.bool("process_existing", false)?,
            settle: cfg
                .parse_with("settle_ms", |v| match v.trim().parse::<u64>() {
                    Ok(ms) if ms <= MAX_SETTLE_MS => Ok(Duration::from_millis(ms)),
                    _ => Err(format!(
                        "expected a number of milliseconds from 0 to {MAX_SETTLE_MS}"
                    )),
                })?
                .unwrap_or(Duration::from_millis(500)),
            skip_hidden: cfg.bool("skip_hidden", true)?,
            max_size: cfg.number::<u64>("max_size", 0)?,
        })
    }

    /// Whether `path` is a file or directory this monitor cares about:
    /// strictly inside `source_dir`, directly inside it unless recursive,
    /// and without a hidden component when hidden files are skipped.
    fn relevant(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.source_dir) else {
            return false;
        };
        let mut depth = 0;
        for c in rel.components() {
            depth += 1;
            if self.skip_hidden && c.as_os_str().to_string_lossy().starts_with('.') {
                return false;
            }
        }
        depth == 1 || (depth > 1 && self.recursive)
    }
}

/// The `dirmon` provider.
#[derive(Debug, Clone)]
pub struct DirmonProvider {
    cfg: Arc<DirmonConfig>,
}

impl DirmonProvider {
    pub fn new(cfg: DirmonConfig) -> Self {
        DirmonProvider { cfg: Arc::new(cfg) }
    }

    pub fn config(&self) -> &DirmonConfig {
        &self.cfg
    }
}

/// Size and modification time of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    mtime: Option<SystemTime>,
}

impl Fingerprint {
    fn of(m: &std::fs::Metadata) -> Self {
        Fingerprint {
            len: m.len(),
            mtime: m.modified().ok(),
        }
    }
}

/// What a pending file waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Size and mtime unchanged for `settle`.
    Settle,
    /// A writer has it open: wait for its close.
    Writer,
    /// A writer closed it: ready now.
    Closed,
}

#[derive(Debug)]
struct Pending {
    wait: Wait,
    /// Last fingerprint seen (settling files only).
    fp: Option<Fingerprint>,
    /// When `fp` was first seen unchanged.
    stable_since: Instant,
    /// When the file was last looked at.
    checked: Instant,
}

/// What a look at a settling path found.
#[derive(Debug)]
enum Probe {
    Gone,
    /// Not a regular file, or not readable: drop it.
    Skip,
    /// A directory (recursive mode): the files inside it.
    Dir(Vec<PathBuf>),
    File(Fingerprint),
}

/// What became of a ready file.
#[derive(Debug)]
enum ReadOutcome {
    Gone,
    /// Already queued with this fingerprint.
    Unchanged,
    /// Not a regular file, or unreadable (logged).
    Failed,
    /// Larger than `max_size` (logged); remembered so it is not retried.
    TooLarge(Fingerprint),
    Content(Fingerprint, Vec<u8>),
}

/// The monitor's state: files waiting to be ready, and what was queued.
#[derive(Debug)]
struct Tracker {
    cfg: Arc<DirmonConfig>,
    pending: HashMap<PathBuf, Pending>,
    /// Fingerprint each path was last queued with.
    seen: HashMap<PathBuf, Fingerprint>,
    /// An event queue overflowed: list the whole tree again.
    rescan: bool,
    /// The monitored directory itself was removed or moved away.
    root_gone: bool,
}

impl Tracker {
    fn new(cfg: Arc<DirmonConfig>) -> Self {
        Tracker {
            cfg,
            pending: HashMap::new(),
            seen: HashMap::new(),
            rescan: false,
            root_gone: false,
        }
    }

    /// Record that `path` needs attention.
    fn note(&mut self, path: PathBuf, wait: Wait) {
        if !self.cfg.relevant(&path) {
            return;
        }
        let now = Instant::now();
        match self.pending.get_mut(&path) {
            None => {
                self.pending.insert(
                    path,
                    Pending {
                        wait,
                        fp: None,
                        stable_since: now,
                        checked: now,
                    },
                );
            }
            Some(p) => match wait {
                Wait::Closed | Wait::Writer => p.wait = wait,
                // A change of a settling file restarts its clock; a file
                // with a known writer keeps waiting for the close.
                Wait::Settle => p.stable_since = now,
            },
        }
    }

    /// Forget `path` (and, for a directory, everything under it).
    fn forget(&mut self, path: &Path, subtree: bool) {
        if path == self.cfg.source_dir {
            self.root_gone = true;
            return;
        }
        self.pending.remove(path);
        self.seen.remove(path);
        if subtree && self.cfg.recursive {
            self.pending.retain(|k, _| !k.starts_with(path));
            self.seen.retain(|k, _| !k.starts_with(path));
        }
    }

    fn handle(&mut self, event: notify::Result<Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                warn!(
                    "dirmon: watcher error on {}: {e}",
                    self.cfg.source_dir.display()
                );
                return;
            }
        };
        if event.need_rescan() {
            self.rescan = true;
        }
        let writer = if CLOSE_EVENTS {
            Wait::Writer
        } else {
            Wait::Settle
        };
        let paths = event.paths;
        match event.kind {
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
                paths.into_iter().for_each(|p| self.note(p, writer));
            }
            EventKind::Create(CreateKind::Folder) if !self.cfg.recursive => {}
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                paths.into_iter().for_each(|p| self.note(p, Wait::Closed));
            }
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => {}
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                paths.iter().for_each(|p| self.forget(p, true));
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = &paths[..] {
                    self.forget(from, true);
                    self.note(to.clone(), Wait::Settle);
                }
            }
            EventKind::Remove(kind) => {
                let subtree = kind != RemoveKind::File;
                paths.iter().for_each(|p| self.forget(p, subtree));
            }
            // Creations of other kinds, renames of unknown direction, other
            // modifications, unknown events: look at the path (a vanished
            // path is forgotten then).
            _ => paths.into_iter().for_each(|p| self.note(p, Wait::Settle)),
        }
    }

    /// Take the files their writer closed.
    fn take_closed(&mut self) -> Vec<PathBuf> {
        let closed: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| p.wait == Wait::Closed)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &closed {
            self.pending.remove(k);
        }
        closed
    }

    /// When the next settling file is due for a look.
    fn due_at(&self, p: &Pending) -> Option<Instant> {
        if p.wait != Wait::Settle {
            return None;
        }
        Some(match p.fp {
            None => p.checked,
            Some(_) => (p.stable_since + self.cfg.settle).max(p.checked + MIN_POLL),
        })
    }

    fn next_wake(&self) -> Option<Instant> {
        self.pending.values().filter_map(|p| self.due_at(p)).min()
    }

    fn due(&self, now: Instant) -> Vec<PathBuf> {
        self.pending
            .iter()
            .filter(|(_, p)| self.due_at(p).is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Apply the looks at settling files; return the ready ones.
    fn apply(&mut self, probes: Vec<(PathBuf, Probe)>, now: Instant) -> Vec<PathBuf> {
        let mut ready = Vec::new();
        for (path, probe) in probes {
            match probe {
                Probe::Gone => self.forget(&path, true),
                Probe::Skip => {
                    self.pending.remove(&path);
                }
                Probe::Dir(children) => {
                    self.pending.remove(&path);
                    for c in children {
                        self.note(c, Wait::Settle);
                    }
                }
                Probe::File(fp) => {
                    let Some(p) = self.pending.get_mut(&path) else {
                        continue;
                    };
                    p.checked = now;
                    if p.fp != Some(fp) {
                        p.fp = Some(fp);
                        p.stable_since = now;
                    } else if now.duration_since(p.stable_since) >= self.cfg.settle {
                        self.pending.remove(&path);
                        ready.push(path);
                    }
                }
            }
        }
        ready
    }
}

/// Look at a settling path (blocking).
fn probe(path: &Path, cfg: &DirmonConfig) -> Probe {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Probe::File(Fingerprint::of(&m)),
        Ok(m) if m.is_dir() && cfg.recursive => Probe::Dir(list_files(path, cfg)),
        Ok(_) => Probe::Skip,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Probe::Gone,
        Err(e) => {
            warn!("dirmon: cannot access {}: {e}", path.display());
            Probe::Skip
        }
    }
}

/// The regular files under `root` (blocking): directly inside it, or in the
/// whole tree when recursive. Symbolic links to files are included;
/// symbolic links to directories are not followed.
fn list_files(root: &Path, cfg: &DirmonConfig) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                warn!("dirmon: cannot list {}: {e}", dir.display());
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if cfg.skip_hidden && entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if cfg.recursive {
                    dirs.push(path);
                }
            } else if ft.is_file() || std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                files.push(path);
            }
        }
    }
    files
}

/// Read a ready file (blocking).
fn read_ready(path: &Path, known: Option<Fingerprint>, max_size: u64) -> ReadOutcome {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ReadOutcome::Gone,
        Err(e) => {
            warn!("dirmon: cannot access {}: {e}", path.display());
            return ReadOutcome::Failed;
        }
    };
    if !m.is_file() {
        return ReadOutcome::Failed;
    }
    let fp = Fingerprint::of(&m);
    if known == Some(fp) {
        return ReadOutcome::Unchanged;
    }
    if max_size > 0 && fp.len > max_size {
        warn!(
            "dirmon: skipping {}: {} bytes is more than max_size ({max_size})",
            path.display(),
            fp.len
        );
        return ReadOutcome::TooLarge(fp);
    }
    match std::fs::read(path) {
        Ok(data) => ReadOutcome::Content(fp, data),
        Err(e) if e.kind() == io::ErrorKind::NotFound => ReadOutcome::Gone,
        Err(e) => {
            warn!("dirmon: cannot read {}: {e}", path.display());
            ReadOutcome::Failed
        }
    }
}

/// The request for one file.
fn request_for(path: &Path, content: Vec<u8>) -> Request {
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut meta = PayloadMeta::with_extra("filename", filename);
    meta.extra_data.insert("source_dir".into(), dir.into());
    Request::new(
        vec![Payload::with_meta(content, meta)],
        RequestMeta::default(),
    )
}

type EventTx = mpsc::UnboundedSender<notify::Result<Event>>;

/// Start watching `source_dir` (blocking work on the blocking pool).
async fn start_watcher(
    cfg: &DirmonConfig,
    tx: EventTx,
) -> PluginResult<notify::RecommendedWatcher> {
    let dir = cfg.source_dir.clone();
    let mode = if cfg.recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    let d = dir.clone();
    blocking(move || {
        let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
        // The callback runs on notify's thread; an unbounded send never
        // blocks it. A failed send means the monitor is gone.
        let mut w = notify::RecommendedWatcher::new(
            move |event| {
                let _ = tx.send(event);
            },
            config,
        )?;
        w.watch(&d, mode)?;
        Ok::<_, notify::Error>(w)
    })
    .await?
    .map_err(|e| PluginError::new(format!("dirmon: cannot watch {}: {e}", dir.display())))
}

impl DirmonProvider {
    /// Read a ready file and queue it.
    async fn submit(
        &self,
        path: PathBuf,
        tracker: &mut Tracker,
        queue: &ProviderQueue,
        receipts: &mut JoinSet<()>,
    ) -> PluginResult<()> {
        let known = tracker.seen.get(&path).copied();
        let max_size = self.cfg.max_size;
        let p = path.clone();
        match blocking(move || read_ready(&p, known, max_size)).await? {
            ReadOutcome::Gone => tracker.forget(&path, false),
            ReadOutcome::Unchanged | ReadOutcome::Failed => {}
            ReadOutcome::TooLarge(fp) => {
                tracker.seen.insert(path, fp);
            }
            ReadOutcome::Content(fp, content) => {
                tracker.seen.insert(path.clone(), fp);
                let request = request_for(&path, content);
                let receipt = queue.put_tracked(ProviderItem::Request(request)).await?;
                receipts.spawn(async move {
                    match receipt.wait().await {
                        Some(Delivery::Failed { reason }) => {
                            warn!("dirmon: {} was not scanned: {reason}", path.display());
                        }
                        Some(Delivery::Unsaved {
                            failed_connectors, ..
                        }) => warn!(
                            "dirmon: results for {} were not saved by: {}",
                            path.display(),
                            failed_connectors.join(", ")
                        ),
                        // Saved, or dropped by a shutdown.
                        _ => {}
                    }
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for DirmonProvider {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        let cfg = self.cfg.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Dropped with this future: notify's thread stops.
        let _watcher = start_watcher(&cfg, tx).await?;
        tracing::info!(
            "dirmon: monitoring {} for newly created files{}",
            cfg.source_dir.display(),
            if cfg.recursive { " (recursively)" } else { "" }
        );
        let started = SystemTime::now();
        let mut tracker = Tracker::new(cfg.clone());
        if cfg.process_existing {
            let c = cfg.clone();
            for path in blocking(move || list_files(&c.source_dir, &c)).await? {
                tracker.note(path, Wait::Settle);
            }
        }
        // Receipt waiters; aborted when this future is dropped.
        let mut receipts: JoinSet<()> = JoinSet::new();
        loop {
            if tracker.root_gone {
                return Err(PluginError::new(format!(
                    "dirmon: {} was removed or moved away",
                    cfg.source_dir.display()
                )));
            }
            for path in tracker.take_closed() {
                self.submit(path, &mut tracker, &queue, &mut receipts)
                    .await?;
            }
            if std::mem::take(&mut tracker.rescan) {
                warn!(
                    "dirmon: events were lost; looking at every file in {} again",
                    cfg.source_dir.display()
                );
                let c = cfg.clone();
                let files = blocking(move || {
                    list_files(&c.source_dir, &c)
                        .into_iter()
                        .filter(|p| {
                            c.process_existing
                                || std::fs::metadata(p)
                                    .and_then(|m| m.modified())
                                    .is_ok_and(|t| t + RESCAN_SLACK >= started)
                        })
                        .collect::<Vec<_>>()
                })
                .await?;
                for path in files {
                    tracker.note(path, Wait::Settle);
                }
            }
            let wake = tracker.next_wake();
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else {
                        return Err(PluginError::new(format!(
                            "dirmon: the watcher of {} stopped",
                            cfg.source_dir.display()
                        )));
                    };
                    tracker.handle(event);
                    for _ in 0..EVENT_BATCH {
                        match rx.try_recv() {
                            Ok(event) => tracker.handle(event),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    let due = tracker.due(Instant::now());
                    let c = cfg.clone();
                    let probes = blocking(move || {
                        due.into_iter()
                            .map(|p| {
                                let probe = probe(&p, &c);
                                (p, probe)
                            })
                            .collect::<Vec<_>>()
                    })
                    .await?;
                    for path in tracker.apply(probes, Instant::now()) {
                        self.submit(path, &mut tracker, &queue, &mut receipts)
                            .await?;
                    }
                }
                Some(_) = receipts.join_next(), if !receipts.is_empty() => {}
            }
        }
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("dirmon", &[PluginClass::Provider], |cfg| {
        let cfg = DirmonConfig::from_config(cfg)?;
        Ok(PluginInstance::new().provider(Arc::new(DirmonProvider::new(cfg))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Monitor a directory for newly created files for processing")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(recursive: bool, skip_hidden: bool) -> DirmonConfig {
        DirmonConfig {
            source_dir: PathBuf::from("/m"),
            recursive,
            process_existing: false,
            settle: Duration::from_millis(500),
            skip_hidden,
            max_size: 0,
        }
    }

    #[test]
    fn relevant_paths() {
        let flat = cfg(false, true);
        assert!(flat.relevant(Path::new("/m/a.bin")));
        assert!(!flat.relevant(Path::new("/m")));
        assert!(!flat.relevant(Path::new("/other/a.bin")));
        assert!(!flat.relevant(Path::new("/m/sub/a.bin")));
        assert!(!flat.relevant(Path::new("/m/.a.bin")));
        let deep = cfg(true, true);
        assert!(deep.relevant(Path::new("/m/sub/a.bin")));
        assert!(!deep.relevant(Path::new("/m/.sub/a.bin")));
        assert!(cfg(true, false).relevant(Path::new("/m/.sub/.a.bin")));
    }

    #[test]
    fn options_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let build = |pairs: &[(&str, &str)]| {
            DirmonConfig::from_config(&PluginConfig::new(
                "dirmon",
                pairs.iter().map(|(k, v)| (*k, *v)),
            ))
        };
        let d = dir.path().to_str().unwrap();
        let c = build(&[("source_dir", d)]).unwrap();
        assert_eq!(c.settle, Duration::from_millis(500));
        assert!(!c.recursive && !c.process_existing && c.skip_hidden);
        assert_eq!(build(&[]).unwrap_err().option, "source_dir");
        let e = build(&[("source_dir", file.to_str().unwrap())]).unwrap_err();
        assert_eq!(e.reason, "not a directory");
        let e = build(&[("source_dir", d), ("settle_ms", "soon")]).unwrap_err();
        assert_eq!((e.option.as_str(), e.value.as_str()), ("settle_ms", "soon"));
        assert!(build(&[("source_dir", d), ("settle_ms", "86400001")]).is_err());
        assert!(build(&[("source_dir", d), ("settle_ms", "0")]).is_ok());
    }

    #[test]
    fn closed_files_are_ready_and_settling_files_wait() {
        let mut t = Tracker::new(Arc::new(cfg(false, true)));
        let a = PathBuf::from("/m/a");
        t.note(a.clone(), Wait::Writer);
        assert!(t.take_closed().is_empty());
        assert_eq!(t.next_wake(), None, "a file being written is not polled");
        t.note(a.clone(), Wait::Closed);
        assert_eq!(t.take_closed(), vec![a.clone()]);
        t.note(a.clone(), Wait::Settle);
        let now = Instant::now();
        let fp = Fingerprint {
            len: 1,
            mtime: None,
        };
        assert!(t.apply(vec![(a.clone(), Probe::File(fp))], now).is_empty());
        let later = now + Duration::from_millis(600);
        assert_eq!(t.apply(vec![(a.clone(), Probe::File(fp))], later), [a]);
    }
}
