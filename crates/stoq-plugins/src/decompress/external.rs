//! Formats without a native reader (RAR, ACE, ARJ, LZH, ISO) go through an
//! external program found on `PATH` when the plugin is loaded: `7z` (also
//! `7zz`, `7za`), `unar` or `unrar`.
//!
//! Only those programs ever run, never anything from the payload. The
//! payload is written to a fresh private directory (mode 0700) under the
//! system temp directory, the tool extracts into a subdirectory of it, the
//! files are read back and the directory is removed. Member names are used
//! as paths only inside that directory, as the tool wrote them. While the
//! tool runs, its output is measured and the tool is killed when it passes
//! `max_total_size` or `max_entries`, or when the scan is abandoned.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::detect::Format;
use super::extract::{Ctx, Extraction};
use super::limits::{read_capped, ReadOutcome, Stop};

/// Longest an external tool may run when no one cancels it.
pub const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Deepest directory level read back from a tool's output.
const WALK_DEPTH: usize = 64;
/// Password given when none is configured, so a tool never prompts.
const NO_PASSWORD: &str = "stoq-no-password";

/// The kinds of external tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// `7z`, `7zz`, `7za` (7-Zip / p7zip).
    SevenZip,
    /// `unar` (The Unarchiver).
    Unar,
    /// `unrar` (RARLAB).
    Unrar,
}

impl ToolKind {
    fn from_file_name(name: &str) -> Option<ToolKind> {
        match name {
            "7z" | "7zz" | "7za" | "7zr" => Some(ToolKind::SevenZip),
            "unar" => Some(ToolKind::Unar),
            "unrar" => Some(ToolKind::Unrar),
            _ => None,
        }
    }

    fn supports(self, f: Format) -> bool {
        match self {
            ToolKind::SevenZip => {
                matches!(f, Format::Rar | Format::Arj | Format::Lzh | Format::Iso)
            }
            ToolKind::Unar => matches!(
                f,
                Format::Rar | Format::Ace | Format::Arj | Format::Lzh | Format::Iso
            ),
            ToolKind::Unrar => f == Format::Rar,
        }
    }
}

/// One external program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    pub kind: ToolKind,
    pub path: PathBuf,
}

impl Tool {
    /// The program's file name (`7z`, `unar`, ...).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The external tools available to the plugin, found at load time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalTools {
    tools: Vec<Tool>,
}

/// Names looked for on `PATH` by `external_tools = auto`, in order.
pub const AUTO_TOOLS: &[&str] = &["7z", "7zz", "7za", "unar", "unrar"];

impl ExternalTools {
    /// No external tool.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parse the `external_tools` option: `auto` (every known tool found
    /// on `PATH`), `none`, or a comma list of tool names or paths, each of
    /// which must exist.
    pub fn from_option(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("none") || spec.is_empty() {
            return Ok(Self::none());
        }
        if spec.eq_ignore_ascii_case("auto") {
            let tools = AUTO_TOOLS
                .iter()
                .filter_map(|n| {
                    Some(Tool {
                        kind: ToolKind::from_file_name(n)?,
                        path: find_on_path(n)?,
                    })
                })
                .collect();
            return Ok(ExternalTools { tools });
        }
        let mut tools = Vec::new();
        for item in stoq_core::options::split_list(spec) {
            let p = Path::new(&item);
            let file = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = ToolKind::from_file_name(&file).ok_or_else(|| {
                format!("unknown tool {item:?} (known: 7z, 7zz, 7za, 7zr, unar, unrar)")
            })?;
            let path = if p.components().count() > 1 {
                is_executable(p).then(|| p.to_path_buf())
            } else {
                find_on_path(&item)
            }
            .ok_or_else(|| format!("{item:?} not found or not executable"))?;
            tools.push(Tool { kind, path });
        }
        Ok(ExternalTools { tools })
    }

    /// The tools, in order of preference.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The preferred tool for `format`.
    pub fn tool_for(&self, format: Format) -> Option<&Tool> {
        self.tools_for(format).into_iter().next()
    }

    /// Every tool that reads `format`, in order of preference: for RAR,
    /// `unrar` and `unar` before 7-Zip (Debian's 7-Zip is built without
    /// the RAR decoder: it lists RAR archives but cannot extract them);
    /// otherwise the configured order.
    pub fn tools_for(&self, format: Format) -> Vec<&Tool> {
        let mut v: Vec<&Tool> = self
            .tools
            .iter()
            .filter(|t| t.kind.supports(format))
            .collect();
        if format == Format::Rar {
            v.sort_by_key(|t| match t.kind {
                ToolKind::Unrar => 0,
                ToolKind::Unar => 1,
                ToolKind::SevenZip => 2,
            });
        }
        v
    }
}

fn is_executable(p: &Path) -> bool {
    match fs::metadata(p) {
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        }
        #[cfg(not(unix))]
        Ok(m) => m.is_file(),
        Err(_) => false,
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// A fresh directory only we can read, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> io::Result<Self> {
        let base = std::env::temp_dir();
        let mut last = io::Error::other("no attempt");
        for _ in 0..8 {
            let p = base.join(format!("stoq-decompress-{}", stoq_core::new_id()));
            let mut b = fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            match b.create(&p) {
                Ok(()) => return Ok(PrivateDir(p)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.0).is_err() {
            // A tool may have restored read-only directory modes.
            make_writable(&self.0, 0);
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn make_writable(dir: &Path, depth: usize) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    if depth > WALK_DEPTH {
        return;
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path(), depth + 1);
            }
        }
    }
}

/// Total size and number of entries under `dir` (not following links).
fn measure(dir: &Path, depth: usize, acc: &mut (u64, u64)) {
    if depth > WALK_DEPTH {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        acc.1 += 1;
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            measure(&e.path(), depth + 1, acc);
        } else {
            acc.0 += m.len();
        }
    }
}

enum Ran {
    Exited(ExitStatus),
    Killed,
    Timeout,
}

/// Run a tool to completion while watching `watch` (its output directory).
fn supervise(mut child: Child, watch: Option<&Path>, ctx: &Ctx<'_>) -> io::Result<Ran> {
    let started = Instant::now();
    let mut last_measure = Instant::now();
    let remaining = ctx
        .budget
        .limits
        .max_total_size
        .saturating_sub(ctx.budget.decoded());
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ran::Exited(status));
        }
        if ctx.budget.check().is_err() {
            break Ran::Killed;
        }
        if started.elapsed() > EXTERNAL_TIMEOUT {
            break Ran::Timeout;
        }
        if let Some(dir) = watch {
            if last_measure.elapsed() >= Duration::from_millis(50) {
                last_measure = Instant::now();
                let mut acc = (0, 0);
                measure(dir, 0, &mut acc);
                if acc.0 > remaining {
                    ctx.budget.stop(Stop::TotalSize);
                    break Ran::Killed;
                }
                if acc.1 > ctx.budget.limits.max_entries {
                    ctx.budget.stop(Stop::Entries);
                    break Ran::Killed;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(outcome)
}

fn spawn(tool: &Tool, args: &[String], log: &Path) -> io::Result<Child> {
    let log_file = fs::File::create(log)?;
    Command::new(&tool.path)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
}

fn read_log(log: &Path) -> String {
    let mut s = Vec::new();
    if let Ok(f) = fs::File::open(log) {
        let _ = f.take(16 << 20).read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// The most telling line of a tool's output: its first error line, else
/// its last line.
fn last_line(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("7-Zip") && !l.starts_with("p7zip"))
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("ERROR") || l.contains("rror:"))
        .or(lines.last())
        .copied()
        .unwrap_or("no output")
        .chars()
        .take(300)
        .collect()
}

fn extract_args(tool: &Tool, password: &str, input: &Path, out: &Path) -> Vec<String> {
    let (i, o) = (input.display().to_string(), out.display().to_string());
    match tool.kind {
        ToolKind::SevenZip => vec![
            "x".into(),
            "-y".into(),
            "-bd".into(),
            format!("-p{password}"),
            format!("-o{o}"),
            "--".into(),
            i,
        ],
        ToolKind::Unar => vec![
            "-q".into(),
            "-f".into(),
            "-D".into(),
            "-nr".into(),
            "-o".into(),
            o,
            "-p".into(),
            password.into(),
            i,
        ],
        ToolKind::Unrar => vec![
            "x".into(),
            "-y".into(),
            "-idq".into(),
            format!("-p{password}"),
            "--".into(),
            i,
            format!("{o}/"),
        ],
    }
}

/// 7-Zip's technical listing: (entries, any encrypted).
fn list_7z(tool: &Tool, dir: &Path, input: &Path, ctx: &Ctx<'_>) -> Option<(u64, bool)> {
    let log = dir.join("list.txt");
    let args = vec![
        "l".to_string(),
        "-slt".into(),
        "-bd".into(),
        format!("-p{NO_PASSWORD}"),
        "--".into(),
        input.display().to_string(),
    ];
    let child = spawn(tool, &args, &log).ok()?;
    supervise(child, None, ctx).ok()?;
    let text = read_log(&log);
    let body = text.split_once("\n----------")?.1;
    let entries = body.lines().filter(|l| l.starts_with("Path = ")).count() as u64;
    let encrypted = body.lines().any(|l| l.trim() == "Encrypted = +");
    Some((entries, encrypted))
}

pub(crate) fn extract(format: Format, data: &[u8], ctx: &Ctx<'_>, out: &mut Extraction) {
    let tools: Vec<&Tool> = ctx
        .external
        .map(|t| t.tools_for(format))
        .unwrap_or_default();
    if tools.is_empty() {
        out.error(format!(
            "{format}: not read natively and no external tool for it is available \
             (external_tools; install 7z or unar)"
        ));
        return;
    }
    // Each capable tool in turn, until one extracts something (a 7-Zip
    // built without RAR support lists RAR archives but cannot extract them).
    let mut failed: Vec<String> = Vec::new();
    for (n, tool) in tools.iter().enumerate() {
        let mut attempt = Extraction::new(format);
        attempt.tool = Some(tool.name());
        let ok = match run(tool, format, data, ctx, &mut attempt) {
            Ok(ok) => ok,
            Err(e) => {
                attempt.error(format!("{format}: external tool {}: {e}", tool.name()));
                false
            }
        };
        let last = n + 1 == tools.len();
        if !ok && !last && ctx.budget.stopped().is_none() {
            failed.push(tool.name());
            continue;
        }
        if !failed.is_empty() {
            tracing::debug!(
                format = format.as_str(),
                failed = failed.join(", "),
                used = tool.name(),
                "decompress: external tool fallback"
            );
        }
        out.absorb(attempt);
        return;
    }
}

/// Run one tool and read its output back; `Ok(false)` when the tool
/// reported a failure.
fn run(
    tool: &Tool,
    format: Format,
    data: &[u8],
    ctx: &Ctx<'_>,
    out: &mut Extraction,
) -> io::Result<bool> {
    let dir = PrivateDir::create()?;
    let input = dir.0.join(format!("archive.{}", format.as_str()));
    fs::write(&input, data)?;
    let target = dir.0.join("out");
    let log = dir.0.join("log.txt");

    let listing = if tool.kind == ToolKind::SevenZip {
        list_7z(tool, &dir.0, &input, ctx)
    } else {
        None
    };
    let encrypted = listing.is_some_and(|l| l.1);
    let mut candidates: Vec<Option<usize>> = (0..ctx.passwords.len()).map(Some).collect();
    if candidates.is_empty() || (listing.is_some() && !encrypted) {
        candidates = vec![None];
    }
    let tries = candidates.len();
    let mut used: Option<usize> = None;
    let mut failure: Option<String> = None;
    for (n, cand) in candidates.into_iter().enumerate() {
        if target.exists() {
            make_writable(&target, 0);
            fs::remove_dir_all(&target)?;
        }
        fs::create_dir(&target)?;
        let password = cand.map_or(NO_PASSWORD, |i| ctx.passwords[i].as_str());
        let child = spawn(tool, &extract_args(tool, password, &input, &target), &log)?;
        match supervise(child, Some(&target), ctx)? {
            Ran::Exited(status) if status.success() => {
                used = cand;
                failure = None;
                break;
            }
            Ran::Exited(status) => {
                failure = Some(format!("failed ({status}): {}", last_line(&read_log(&log))));
                // Another password may do; keep going unless it was the last.
                if n + 1 < tries {
                    continue;
                }
            }
            Ran::Killed => return Ok(true), // the budget message says why
            Ran::Timeout => {
                return Err(io::Error::other(format!(
                    "killed after {} s",
                    EXTERNAL_TIMEOUT.as_secs()
                )))
            }
        }
    }
    let ok = failure.is_none();
    if let Some(f) = failure {
        out.error(format!("{format}: external tool {}: {f}", tool.name()));
    }
    // Only a listing (7-Zip) tells whether the password was needed.
    let with_password = used.is_some() && encrypted;
    if with_password {
        out.password = used.map(|i| ctx.passwords[i].clone());
    }
    let mut found: Vec<(String, PathBuf, fs::Metadata)> = Vec::new();
    collect(&target, "", 0, &mut found);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() && listing.is_none_or(|l| l.0 > 0) {
        out.error(format!(
            "{format}: external tool {} extracted nothing",
            tool.name()
        ));
    }
    out.members = listing.map_or(found.len() as u64, |l| l.0.max(found.len() as u64));
    let limits = ctx.budget.limits.clone();
    for (path, full, meta) in found {
        if ctx.budget.entry().is_err() {
            break;
        }
        let ft = meta.file_type();
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            out.skip(path, "symlink");
            continue;
        }
        if !ft.is_file() {
            out.skip(path, "not a regular file");
            continue;
        }
        if meta.len() > limits.maximum_size {
            if ctx.budget.add(meta.len()).is_err() {
                break;
            }
            out.member_stopped(&path, Stop::MemberSize, &limits);
            continue;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&full, fs::Permissions::from_mode(0o600));
        }
        let content = match fs::File::open(&full) {
            Ok(f) => match read_capped(f, limits.maximum_size, meta.len()) {
                ReadOutcome::Data(v) => v,
                ReadOutcome::TooLarge => {
                    out.member_stopped(&path, Stop::MemberSize, &limits);
                    continue;
                }
                ReadOutcome::Failed(e) => {
                    out.corrupt(&path, e);
                    continue;
                }
            },
            Err(e) => {
                out.corrupt(&path, e);
                continue;
            }
        };
        if ctx.budget.add(content.len() as u64).is_err() {
            break;
        }
        out.push(path, content, with_password);
    }
    Ok(ok)
}

/// Every entry under `dir`, with its path relative to the output root.
fn collect(
    dir: &Path,
    prefix: &str,
    depth: usize,
    found: &mut Vec<(String, PathBuf, fs::Metadata)>,
) {
    if depth > WALK_DEPTH {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            collect(&e.path(), &rel, depth + 1, found);
        }
        found.push((rel, e.path(), meta));
    }
}
