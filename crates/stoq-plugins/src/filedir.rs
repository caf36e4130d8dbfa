//! `filedir`: ingest a file or a directory tree, save results to disk and
//! archive payloads to disk. One instance fills three classes:
//!
//! - **Provider**: every file under `source_dir` (or `source_dir` itself when
//!   it is a file) becomes one request with one payload whose
//!   `extra_data` is `{filename, source_dir}`. Files and directories whose
//!   names start with `.` are skipped; the order is sorted by path. Each
//!   request carries a deterministic scan id (UUIDv5 of the canonical path,
//!   size and modification time), so a re-delivered file is saved under the
//!   same name. Saved scans are appended to `<results_dir>/.filedir-journal`;
//!   with `skip_done`, a later run skips inputs found in the journal or whose
//!   result file already exists.
//! - **Connector**: `results_dir[/<date>]/<scan_id>` = the response JSON and
//!   a newline, written atomically (temp file, fsync unless `fsync = false`,
//!   link/rename) and never rewritten; or, with `jsonl`, one line per response appended to
//!   `results_dir[/<date>]/results.jsonl`.
//! - **Archiver**: payloads stored content-addressed by SHA-256 at
//!   `archive_dir/<h[0..2]>/<h[2..4]>/<h>` (or `archive_dir/<payload_id>`),
//!   written once; `get` reads them back from the `{path, sha256}` locator.
//!
//! Differences from the Python plugin: results are never half-written and a
//! re-delivered scan does not fail on the existing file; the archive is
//! sharded by SHA-256 (not five one-character levels of SHA-1); `date_mode`
//! dates come from the response's (UTC) `time`, not the local clock; hidden
//! directories are not descended into; a source file named explicitly is
//! ingested even if its name starts with `.`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde_json::{json, Value};
use stoq_core::hashing::hex;
use stoq_core::{
    async_trait, blocking, new_id, now_iso8601, to_json_compact, to_json_pretty, Archiver,
    ArchiverResponse, Connector, Delivery, ModuleDescriptor, OptionDoc, OptionError, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Provider,
    ProviderItem, ProviderQueue, Request, RequestMeta, StoqResponse,
};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The plugin's name.
pub const NAME: &str = "filedir";
/// The journal of saved scan ids, in `results_dir`.
pub const JOURNAL_FILE: &str = ".filedir-journal";
/// The results file in `jsonl` mode.
pub const JSONL_FILE: &str = "results.jsonl";

/// The UUIDv5 namespace of filedir scan ids.
const SCAN_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c2e_9d4a_5f80_a1c7_2e5d_8b90_4f13);

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "source_dir",
        "",
        "provider: file or directory to ingest (required for the provider)",
    ),
    OptionDoc::new(
        "recursive",
        "false",
        "provider: descend into subdirectories of source_dir",
    ),
    OptionDoc::new(
        "results_dir",
        "./results",
        "connector: directory results are written to (also holds the provider's journal)",
    ),
    OptionDoc::new(
        "date_mode",
        "false",
        "connector/archiver: write into a date_format subdirectory (from the response time)",
    ),
    OptionDoc::new(
        "date_format",
        "%Y/%m/%d",
        "subdirectory pattern for date_mode; supports %Y %m %d %H %%",
    ),
    OptionDoc::new(
        "compactly",
        "true",
        "connector: one-line JSON instead of JSON indented by four spaces",
    ),
    OptionDoc::new(
        "archive_dir",
        "./archive",
        "archiver: directory payloads are archived to",
    ),
    OptionDoc::new(
        "use_sha",
        "true",
        "archiver: store as archive_dir/<sha256[0..2]>/<sha256[2..4]>/<sha256> (else archive_dir/<payload_id>)",
    ),
    OptionDoc::new(
        "jsonl",
        "false",
        "connector: append one JSON line per response to results_dir/results.jsonl instead of one file per scan",
    ),
    OptionDoc::new(
        "fsync",
        "true",
        "connector/archiver: flush each result and payload file (and its directory) to disk before reporting it saved; false trades durability on power loss for throughput on small files (files are still written atomically)",
    ),
    OptionDoc::new(
        "skip_done",
        "true",
        "provider: skip inputs already saved (listed in the journal, or whose result file exists)",
    ),
];

// ---------------------------------------------------------------------------
// Date format
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePart {
    Literal(String),
    Year,
    Month,
    Day,
    Hour,
}

/// A `date_format`: the strftime subset `%Y %m %d %H %%`, rendered from an
/// ISO 8601 time string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat(Vec<DatePart>);

impl DateFormat {
    /// Parse a pattern. It must render to a non-empty relative path without
    /// `.`/`..` components.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let part = match chars.next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('Y') => DatePart::Year,
                Some('m') => DatePart::Month,
                Some('d') => DatePart::Day,
                Some('H') => DatePart::Hour,
                Some(other) => {
                    return Err(format!(
                        "unsupported directive %{other} (supported: %Y %m %d %H %%)"
                    ))
                }
                None => return Err("trailing % (write %% for a literal %)".into()),
            };
            if !literal.is_empty() {
                parts.push(DatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
        }
        if !literal.is_empty() {
            parts.push(DatePart::Literal(literal));
        }
        let format = DateFormat(parts);
        let sample = format.render("2000-01-01T00:00:00+00:00");
        let path = Path::new(&sample);
        if sample.is_empty()
            || path.components().next().is_none()
            || !path.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err("must render to a relative path without . or .. components".into());
        }
        Ok(format)
    }

    /// Render from an ISO 8601 time (`YYYY-MM-DDTHH...`); a time that does
    /// not have that shape is replaced by the current time.
    pub fn render(&self, time: &str) -> String {
        let now;
        let time = if time_fields(time).is_some() {
            time
        } else {
            now = now_iso8601();
            now.as_str()
        };
        let Some((y, m, d, h)) = time_fields(time) else {
            return String::new();
        };
        let mut out = String::new();
        for p in &self.0 {
            out.push_str(match p {
                DatePart::Literal(s) => s,
                DatePart::Year => y,
                DatePart::Month => m,
                DatePart::Day => d,
                DatePart::Hour => h,
            });
        }
        out
    }
}

/// Year, month, day and hour of `YYYY-MM-DDTHH...`.
fn time_fields(t: &str) -> Option<(&str, &str, &str, &str)> {
    let b = t.as_bytes();
    if b.len() < 13 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let digits =
        |r: std::ops::Range<usize>| b[r.clone()].iter().all(u8::is_ascii_digit).then(|| &t[r]);
    Some((
        digits(0..4)?,
        digits(5..7)?,
        digits(8..10)?,
        digits(11..13)?,
    ))
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// The typed options of `filedir`.
#[derive(Debug, Clone)]
pub struct FileDirOptions {
    pub source_dir: Option<PathBuf>,
    pub recursive: bool,
    pub results_dir: PathBuf,
    pub date_mode: bool,
    pub date_format: DateFormat,
    pub compactly: bool,
    pub archive_dir: PathBuf,
    pub use_sha: bool,
    pub jsonl: bool,
    pub skip_done: bool,
    pub fsync: bool,
}

/// A directory option: must not be empty; relative paths resolve as
/// [`PluginConfig::path`] does.
fn dir_option(cfg: &PluginConfig, key: &str, default: &str) -> Result<PathBuf, OptionError> {
    cfg.non_empty(key, default)?;
    Ok(cfg.path(key).unwrap_or_else(|| PathBuf::from(default)))
}

impl FileDirOptions {
    /// Parse the options; a bad value names the plugin, option and value.
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let source_dir = match cfg.get_str("source_dir") {
            Some(v) if !v.trim().is_empty() => cfg.path("source_dir"),
            _ => None,
        };
        let date_format = cfg
            .parse_with("date_format", DateFormat::parse)?
            .unwrap_or_else(|| DateFormat::parse("%Y/%m/%d").expect("valid default"));
        Ok(FileDirOptions {
            source_dir,
            recursive: cfg.bool("recursive", false)?,
            results_dir: dir_option(cfg, "results_dir", "results")?,
            date_mode: cfg.bool("date_mode", false)?,
            date_format,
            compactly: cfg.bool("compactly", true)?,
            archive_dir: dir_option(cfg, "archive_dir", "archive")?,
            use_sha: cfg.bool("use_sha", true)?,
            jsonl: cfg.bool("jsonl", false)?,
            skip_done: cfg.bool("skip_done", true)?,
            fsync: cfg.bool("fsync", true)?,
        })
    }
}

// ---------------------------------------------------------------------------
// File helpers
// ---------------------------------------------------------------------------

/// Removes a temp file when dropped, unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Make the directory entry of a newly placed file durable (best effort).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Write `data` to `target` (in `dir`) unless it exists: a temp file in the
/// same directory (`.<name>.<uuid>.tmp`), fsync, then a hard link (which
/// never replaces an existing file) or, where links are unsupported, a
/// rename. Returns whether the file was written. A crash can leave a stale
/// `.tmp` file but never a partial `target`.
fn write_once(dir: &Path, target: &Path, data: &[u8], durable: bool) -> io::Result<bool> {
    if target.exists() {
        return Ok(false);
    }
    fs::create_dir_all(dir)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_path = dir.join(format!(".{name}.{}.tmp", new_id()));
    let mut tmp = TempFile(Some(tmp_path.clone()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
    }
    match fs::hard_link(&tmp_path, target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(_) => {
            // No hard links here (e.g. FAT, some network file systems).
            if target.exists() {
                return Ok(false);
            }
            fs::rename(&tmp_path, target)?;
            tmp.0 = None;
        }
    }
    drop(tmp);
    if durable {
        sync_dir(dir);
    }
    Ok(true)
}

/// Check that `name` is usable as one file name.
fn check_file_name(what: &str, name: &str) -> PluginResult<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PluginError::new(format!(
            "{NAME}: {what} {name:?} cannot be used as a file name"
        )))
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent)?;
        }
    }
    OpenOptions::new().create(true).append(true).open(path)
}

// ---------------------------------------------------------------------------
// Provider helpers
// ---------------------------------------------------------------------------

/// The scan id filedir gives a file: UUIDv5 over its canonical path, size
/// and modification time in nanoseconds since the Unix epoch.
pub fn scan_id_for(canonical_path: &Path, size: u64, mtime_ns: i128) -> String {
    let mut name = Vec::with_capacity(canonical_path.as_os_str().len() + 48);
    name.extend_from_slice(canonical_path.as_os_str().as_encoded_bytes());
    name.push(0);
    name.extend_from_slice(size.to_string().as_bytes());
    name.push(0);
    name.extend_from_slice(mtime_ns.to_string().as_bytes());
    Uuid::new_v5(&SCAN_ID_NAMESPACE, &name).to_string()
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}

/// The scan id the provider gives the file at `path` now.
pub fn scan_id_for_file(path: &Path) -> io::Result<String> {
    let meta = fs::metadata(path)?;
    let canonical = fs::canonicalize(path)?;
    Ok(scan_id_for(&canonical, meta.len(), mtime_ns(&meta)))
}

/// One file to ingest.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    dir: PathBuf,
    name: String,
    scan_id: String,
}

fn input_for(path: PathBuf, meta: &fs::Metadata) -> Input {
    let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let scan_id = scan_id_for(&canonical, meta.len(), mtime_ns(meta));
    Input {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path,
        scan_id,
    }
}

/// Collect the files of `dir` (and, when `recursive`, of its non-hidden
/// subdirectories). Symbolic links to files are followed; links to
/// directories are not descended into (no cycles).
fn walk(dir: &Path, recursive: bool, out: &mut Vec<Input>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("cannot list {}: {e}", dir.display());
                continue;
            }
        };
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", path.display());
                continue;
            }
        };
        if file_type.is_dir() {
            if recursive {
                if let Err(e) = walk(&path, true, out) {
                    tracing::warn!("cannot list {}: {e}", path.display());
                }
            }
            continue;
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => out.push(input_for(path, &meta)),
            Ok(_) => tracing::debug!("skipping {}: not a regular file", path.display()),
            Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
        }
    }
    Ok(())
}

/// What the provider will queue.
struct Plan {
    inputs: Vec<Input>,
    skipped: usize,
}

fn plan_inputs(
    source: &Path,
    recursive: bool,
    skip_done: bool,
    results_dir: &Path,
    check_result_files: bool,
) -> PluginResult<Plan> {
    let meta = fs::metadata(source).map_err(|e| {
        PluginError::new(format!(
            "{NAME}: source_dir {} is not readable: {e}",
            source.display()
        ))
    })?;
    let root = fs::canonicalize(source)
        .map_err(|e| PluginError::new(format!("{NAME}: source_dir {}: {e}", source.display())))?;
    let mut inputs = Vec::new();
    if meta.is_dir() {
        walk(&root, recursive, &mut inputs).map_err(|e| {
            PluginError::new(format!(
                "{NAME}: cannot list source_dir {}: {e}",
                root.display()
            ))
        })?;
        inputs.sort_by(|a, b| a.path.cmp(&b.path));
    } else if meta.is_file() {
        inputs.push(input_for(root, &meta));
    } else {
        return Err(PluginError::new(format!(
            "{NAME}: source_dir {} is neither a file nor a directory",
            source.display()
        )));
    }
    let total = inputs.len();
    if skip_done {
        let done = read_journal(&results_dir.join(JOURNAL_FILE))?;
        inputs.retain(|i| {
            !(done.contains(&i.scan_id)
                || (check_result_files && results_dir.join(&i.scan_id).exists()))
        });
    }
    Ok(Plan {
        skipped: total - inputs.len(),
        inputs,
    })
}

/// The scan ids in the journal (none when it does not exist). A truncated
/// last line simply matches nothing.
///
/// The journal only saves work: when it cannot be read, every input is
/// scanned (and the connector still never rewrites an existing result).
fn read_journal(path: &Path) -> PluginResult<HashSet<String>> {
    match fs::read(path) {
        Ok(data) => Ok(String::from_utf8_lossy(&data)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => {
            tracing::warn!(
                "{NAME}: cannot read the journal {}: {e}; scanning every input",
                path.display()
            );
            Ok(HashSet::new())
        }
    }
}

/// Append saved scan ids to the journal as they arrive, batching what is
/// waiting; ends when every sender is gone.
async fn journal_writer(
    path: PathBuf,
    mut rx: mpsc::UnboundedReceiver<String>,
) -> PluginResult<()> {
    let mut file: Option<File> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        batch.push('\n');
        while let Ok(id) = rx.try_recv() {
            batch.push_str(&id);
            batch.push('\n');
        }
        let f = file.take();
        let p = path.clone();
        let written = blocking(move || -> io::Result<File> {
            let mut f = match f {
                Some(f) => f,
                None => open_append(&p)?,
            };
            f.write_all(batch.as_bytes())?;
            f.flush()?;
            Ok(f)
        })
        .await?;
        match written {
            Ok(f) => file = Some(f),
            Err(e) => {
                return Err(PluginError::new(format!(
                    "{NAME}: cannot write the journal {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------

/// The open `results.jsonl` (path, file), shared by concurrent saves.
type JsonlFile = Arc<Mutex<Option<(PathBuf, File)>>>;

/// The `filedir` provider, connector and archiver.
#[derive(Debug)]
pub struct FileDir {
    opts: FileDirOptions,
    jsonl_file: JsonlFile,
    /// Set by the first `save`: this instance is also a loaded connector.
    /// The provider journals only scans that this connector saved, so a run
    /// with other connectors leaves no journal behind.
    saves_results: Arc<AtomicBool>,
}

impl FileDir {
    pub fn new(opts: FileDirOptions) -> Self {
        FileDir {
            opts,
            jsonl_file: Arc::default(),
            saves_results: Arc::default(),
        }
    }

    pub fn options(&self) -> &FileDirOptions {
        &self.opts
    }

    /// `results_dir`, plus the date subdirectory in date mode.
    fn results_dir_for(&self, time: &str) -> PathBuf {
        if self.opts.date_mode {
            self.opts
                .results_dir
                .join(self.opts.date_format.render(time))
        } else {
            self.opts.results_dir.clone()
        }
    }
}

/// Append one line with a single write under the lock, then flush. A crash
/// mid-write can leave a truncated last line: readers should ignore a final
/// line without a newline.
fn append_line(state: &Mutex<Option<(PathBuf, File)>>, path: &Path, line: &[u8]) -> io::Result<()> {
    let mut guard = state
        .lock()
        .map_err(|_| io::Error::other("jsonl lock poisoned"))?;
    if guard.as_ref().is_none_or(|(p, _)| p != path) {
        *guard = Some((path.to_path_buf(), open_append(path)?));
    }
    let result = match guard.as_mut() {
        Some((_, f)) => f.write_all(line).and_then(|()| f.flush()),
        None => Ok(()),
    };
    if result.is_err() {
        // Reopen on the next save.
        *guard = None;
    }
    result
}

#[async_trait]
impl Provider for FileDir {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        let source = self.opts.source_dir.clone().ok_or_else(|| {
            PluginError::new(format!(
                "{NAME}: source_dir is not set; the {NAME} provider needs it \
                 (--plugin-opts {NAME}:source_dir=PATH)"
            ))
        })?;
        let recursive = self.opts.recursive;
        let skip_done = self.opts.skip_done;
        let results_dir = self.opts.results_dir.clone();
        let check_result_files = !self.opts.date_mode;
        let rd = results_dir.clone();
        let plan =
            blocking(move || plan_inputs(&source, recursive, skip_done, &rd, check_result_files))
                .await??;
        if plan.skipped > 0 {
            tracing::debug!("skipping {} input(s) already saved", plan.skipped);
        }
        queue.expect(plan.inputs.len() as u64);

        let (tx, rx) = mpsc::unbounded_channel::<String>();
        let journal = tokio::spawn(journal_writer(results_dir.join(JOURNAL_FILE), rx));
        for input in plan.inputs {
            let path = input.path.clone();
            let content = match blocking(move || fs::read(&path)).await? {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("skipping {}: {e}", input.path.display());
                    queue.stats().expected.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
            };
            let mut meta = PayloadMeta::default();
            meta.extra_data.insert("filename".into(), json!(input.name));
            meta.extra_data
                .insert("source_dir".into(), json!(input.dir.to_string_lossy()));
            let request = Request::new(
                vec![Payload::with_meta(content, meta)],
                RequestMeta::default(),
            )
            .with_scan_id(input.scan_id);
            let receipt = queue.put_tracked(ProviderItem::Request(request)).await?;
            let tx = tx.clone();
            let path = input.path;
            let journaled = self.saves_results.clone();
            // Not joined: receipts of scans in flight are still journaled if
            // this provider is stopped.
            tokio::spawn(async move {
                match receipt.wait().await {
                    // Connectors save before the receipt resolves, so the
                    // flag is set by now if filedir is one of them.
                    Some(Delivery::Saved { scan_id }) if journaled.load(Ordering::Relaxed) => {
                        let _ = tx.send(scan_id);
                    }
                    Some(Delivery::Saved { .. }) => {}
                    Some(Delivery::Unsaved {
                        scan_id,
                        failed_connectors,
                    }) => tracing::warn!(
                        "{}: scan {scan_id} was not saved by {}; it will be scanned again",
                        path.display(),
                        failed_connectors.join(", ")
                    ),
                    Some(Delivery::Failed { reason }) => {
                        tracing::warn!("{}: not scanned: {reason}", path.display())
                    }
                    None => {}
                }
            });
        }
        drop(tx);
        journal
            .await
            .map_err(|e| PluginError::new(format!("{NAME}: journal task failed: {e}")))?
    }
}

#[async_trait]
impl Connector for FileDir {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        self.saves_results.store(true, Ordering::Relaxed);
        let dir = self.results_dir_for(&response.time);
        if self.opts.jsonl {
            let mut line = to_json_compact(response);
            line.push('\n');
            let path = dir.join(JSONL_FILE);
            let state = self.jsonl_file.clone();
            return blocking(move || {
                append_line(&state, &path, line.as_bytes()).map_err(|e| {
                    PluginError::new(format!("{NAME}: cannot append to {}: {e}", path.display()))
                })
            })
            .await?;
        }
        check_file_name("scan id", &response.scan_id)?;
        let mut text = if self.opts.compactly {
            to_json_compact(response)
        } else {
            to_json_pretty(response)
        };
        text.push('\n');
        let target = dir.join(&response.scan_id);
        let durable = self.opts.fsync;
        let written = blocking(move || {
            write_once(&dir, &target, text.as_bytes(), durable)
                .map(|w| (w, target.clone()))
                .map_err(|e| {
                    PluginError::new(format!("{NAME}: cannot write {}: {e}", target.display()))
                })
        })
        .await??;
        if !written.0 {
            tracing::debug!("{} exists; not rewritten", written.1.display());
        }
        Ok(())
    }
}

#[async_trait]
impl Archiver for FileDir {
    async fn archive(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        let sha = hex(&payload.sha256());
        let dir = if self.opts.use_sha {
            self.opts.archive_dir.join(&sha[0..2]).join(&sha[2..4])
        } else if self.opts.date_mode {
            self.opts
                .archive_dir
                .join(self.opts.date_format.render(&now_iso8601()))
        } else {
            self.opts.archive_dir.clone()
        };
        let name = if self.opts.use_sha {
            sha.clone()
        } else {
            check_file_name("payload id", payload.id())?;
            payload.id().to_string()
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let target = dir.join(name);
        let content = payload.content.clone();
        let t = target.clone();
        let durable = self.opts.fsync;
        let written = blocking(move || write_once(&dir, &t, &content, durable))
            .await?
            .map_err(|e| {
                PluginError::new(format!(
                    "{NAME}: cannot archive to {}: {e}",
                    target.display()
                ))
            })?;
        if !written {
            tracing::debug!("{} already archived", target.display());
        }
        Ok(Some(ArchiverResponse::with_results(json!({
            "path": target.to_string_lossy(),
            "sha256": sha,
        }))))
    }

    async fn get(&self, task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        let results = task
            .results
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| {
                PluginError::new(format!(
                    "{NAME}: the task has no results object with a \"path\""
                ))
            })?;
        let path = results
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                PluginError::new(format!(
                    "{NAME}: the task's results have no \"path\" string"
                ))
            })?;
        let expected = results
            .get("sha256")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let meta = PayloadMeta {
            extra_data: results.clone(),
            ..PayloadMeta::default()
        };
        let path = PathBuf::from(path);
        blocking(move || {
            let data = fs::read(&path).map_err(|e| {
                PluginError::new(format!(
                    "{NAME}: cannot read archived payload {}: {e}",
                    path.display()
                ))
            })?;
            let payload = Payload::with_meta(data, meta);
            if let Some(expected) = expected {
                let actual = hex(&payload.sha256());
                if actual != expected {
                    return Err(PluginError::new(format!(
                        "{NAME}: {} has sha256 {actual}, the task expects {expected}",
                        path.display()
                    )));
                }
            }
            Ok(Some(payload))
        })
        .await?
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        NAME,
        &[
            PluginClass::Provider,
            PluginClass::Archiver,
            PluginClass::Connector,
        ],
        |cfg| {
            let plugin = Arc::new(FileDir::new(FileDirOptions::from_config(cfg)?));
            Ok(PluginInstance::new()
                .provider(plugin.clone())
                .archiver(plugin.clone())
                .connector(plugin))
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Ingest a file or directory; save results and payloads to disk")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_format_renders_from_the_response_time() {
        let f = DateFormat::parse("%Y/%m/%d").unwrap();
        assert_eq!(f.render("2026-11-23T00:13:23.874654+00:00"), "2026/11/23");
        let f = DateFormat::parse("day-%Y%m%d/%H%%").unwrap();
        assert_eq!(f.render("2026-01-02T07:00:00+00:00"), "day-20260102/07%");
        // A malformed time falls back to now: still a date-shaped path.
        let now = DateFormat::parse("%Y-%m-%d").unwrap().render("garbage");
        assert!(time_fields(&format!("{now}T00")).is_some(), "{now}");
    }

    #[test]
    fn bad_date_formats_are_refused() {
        for bad in ["%Y/%q", "%Y%", "", "../%Y", "/%Y", "%Y/../x", "."] {
            assert!(DateFormat::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_and_errors() {
        let cfg = PluginConfig::new(NAME, [("recursive", "yes"), ("date_format", "%H")]);
        let o = FileDirOptions::from_config(&cfg).unwrap();
        assert!(o.recursive && o.compactly && o.use_sha && o.skip_done && !o.jsonl && o.fsync);
        assert_eq!(o.source_dir, None);
        let o =
            FileDirOptions::from_config(&PluginConfig::new(NAME, [("fsync", "false")])).unwrap();
        assert!(!o.fsync);
        assert_eq!(o.results_dir, PathBuf::from("results"));
        let e = FileDirOptions::from_config(&PluginConfig::new(NAME, [("use_sha", "maybe")]))
            .unwrap_err();
        assert_eq!(
            (e.plugin.as_str(), e.option.as_str(), e.value.as_str()),
            (NAME, "use_sha", "maybe")
        );
        let e = FileDirOptions::from_config(&PluginConfig::new(NAME, [("date_format", "%s")]))
            .unwrap_err();
        assert_eq!(e.option, "date_format");
        let e = FileDirOptions::from_config(&PluginConfig::new(NAME, [("results_dir", " ")]))
            .unwrap_err();
        assert_eq!(e.option, "results_dir");
    }

    #[test]
    fn scan_ids_are_deterministic_uuids() {
        let a = scan_id_for(Path::new("/x/y"), 3, 1_700_000_000_123_456_789);
        assert_eq!(
            a,
            scan_id_for(Path::new("/x/y"), 3, 1_700_000_000_123_456_789)
        );
        assert_ne!(
            a,
            scan_id_for(Path::new("/x/y"), 4, 1_700_000_000_123_456_789)
        );
        assert_ne!(
            a,
            scan_id_for(Path::new("/x/y"), 3, 1_700_000_000_123_456_788)
        );
        assert_ne!(
            a,
            scan_id_for(Path::new("/x/z"), 3, 1_700_000_000_123_456_789)
        );
        let u = Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 5);
    }

    #[test]
    fn file_names_are_checked() {
        for ok in ["6b1f3c2e-9d4a-5f80-a1c7-2e5d8b904f13", "abc"] {
            assert!(check_file_name("scan id", ok).is_ok());
        }
        for bad in ["", ".", "..", "a/b", "a\\b", ".hidden", "a\0b"] {
            assert!(check_file_name("scan id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_once_never_replaces() {
        // The same guarantees with and without fsync.
        for durable in [true, false] {
            let d = tempfile::tempdir().unwrap();
            let t = d.path().join("sub").join("f");
            assert!(write_once(&d.path().join("sub"), &t, b"one", durable).unwrap());
            assert!(!write_once(&d.path().join("sub"), &t, b"two", durable).unwrap());
            assert_eq!(fs::read(&t).unwrap(), b"one");
            let names: Vec<_> = fs::read_dir(d.path().join("sub"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["f"]);
        }
    }
}
