//! `stdin` provider: reads standard input line by line until end of file.
//!
//! - `mode = paths` (default): each non-blank line is a file path; the file
//!   is read and queued as one payload with `extra_data`
//!   `{filename, source_dir}` (as `filedir`). A path that cannot be read is
//!   reported and skipped. Lines are taken verbatim apart from the line
//!   ending (`\n` or `\r\n`), so paths may contain spaces; on Unix they may
//!   be any bytes.
//! - `mode = tasks`: each non-blank line is a JSON object
//!   `{"archiver": "<source archiver>", "task": {...}}`, queued as a task
//!   for that source archiver (`ArchiverResponse { results: task }`). A line
//!   that is not such an object is reported with its line number and
//!   skipped.
//!
//! The reading is generic over [`AsyncBufRead`] ([`ingest_lines`]), so any
//! byte stream can be fed to it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, blocking, ArchiverResponse, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginError, PluginInstance, PluginResult, Provider, ProviderQueue,
};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

/// The plugin's name.
pub const NAME: &str = "stdin";

const OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "mode",
    "paths",
    "paths: each line is a file to scan; tasks: each line is {\"archiver\": NAME, \"task\": {...}} for a source archiver",
)];

/// What a line of input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdinMode {
    /// A file path.
    #[default]
    Paths,
    /// A source-archiver task as JSON.
    Tasks,
}

impl StdinMode {
    /// `paths` or `tasks`, any case.
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "paths" => Ok(StdinMode::Paths),
            "tasks" => Ok(StdinMode::Tasks),
            _ => Err("expected paths or tasks".into()),
        }
    }
}

/// What [`ingest_lines`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Items queued.
    pub queued: u64,
    /// Non-blank lines skipped (unreadable file, invalid task).
    pub skipped: u64,
}

/// The `stdin` provider.
#[derive(Debug, Default)]
pub struct StdinProvider {
    pub mode: StdinMode,
}

#[async_trait]
impl Provider for StdinProvider {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        ingest_lines(BufReader::new(tokio::io::stdin()), self.mode, &queue)
            .await
            .map(|_| ())
    }
}

/// Read `reader` to its end and queue one item per usable line. Fails only
/// when the input cannot be read or the queue is closed.
pub async fn ingest_lines<R>(
    mut reader: R,
    mode: StdinMode,
    queue: &ProviderQueue,
) -> PluginResult<IngestCounts>
where
    R: AsyncBufRead + Unpin,
{
    let mut counts = IngestCounts::default();
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| PluginError::new(format!("{NAME}: cannot read input: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let mut line = buf.as_slice();
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let queued = match mode {
            StdinMode::Paths => queue_path(line, line_no, queue).await?,
            StdinMode::Tasks => queue_task(line, line_no, queue).await?,
        };
        if queued {
            counts.queued += 1;
        } else {
            counts.skipped += 1;
        }
    }
    Ok(counts)
}

#[cfg(unix)]
fn path_from_bytes(b: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

#[cfg(not(unix))]
fn path_from_bytes(b: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(b).ok().map(PathBuf::from)
}

/// The payload for the file at `path`: its content, base name and
/// (absolute) directory.
fn read_payload(path: &Path) -> std::io::Result<Payload> {
    let content = fs::read(path)?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut meta = PayloadMeta::default();
    let filename = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = absolute
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    meta.extra_data.insert("filename".into(), json!(filename));
    meta.extra_data.insert("source_dir".into(), json!(dir));
    Ok(Payload::with_meta(content, meta))
}

async fn queue_path(line: &[u8], line_no: u64, queue: &ProviderQueue) -> PluginResult<bool> {
    let Some(path) = path_from_bytes(line) else {
        tracing::warn!("line {line_no}: not a valid path; skipped");
        return Ok(false);
    };
    let p = path.clone();
    match blocking(move || read_payload(&p)).await? {
        Ok(payload) => {
            queue.put_payload(payload).await?;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(
                "line {line_no}: cannot read {}: {e}; skipped",
                path.display()
            );
            Ok(false)
        }
    }
}

/// `{"archiver": NAME, "task": {...}}` → (archiver, task).
pub fn parse_task(line: &str) -> Result<(String, Value), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("expected a JSON object {\"archiver\": NAME, \"task\": {...}}".into());
    };
    let archiver = match obj.get("archiver") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err("\"archiver\" must be a plugin name".into()),
    };
    match obj.remove("task") {
        Some(task @ Value::Object(_)) => Ok((archiver, task)),
        Some(_) => Err("\"task\" must be a JSON object".into()),
        None => Err("missing \"task\"".into()),
    }
}

async fn queue_task(line: &[u8], line_no: u64, queue: &ProviderQueue) -> PluginResult<bool> {
    let parsed = std::str::from_utf8(line)
        .map_err(|_| "not UTF-8".to_string())
        .and_then(parse_task);
    match parsed {
        Ok((archiver, task)) => {
            queue
                .put_task(
                    archiver,
                    ArchiverResponse {
                        results: Some(task),
                        errors: Vec::new(),
                    },
                )
                .await?;
            Ok(true)
        }
        Err(reason) => {
            tracing::warn!("line {line_no}: {reason}; skipped");
            Ok(false)
        }
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Provider], |cfg| {
        let mode = cfg
            .parse_with("mode", StdinMode::parse)?
            .unwrap_or_default();
        Ok(PluginInstance::new().provider(Arc::new(StdinProvider { mode })))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Read file paths or source-archiver tasks from STDIN, one per line")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_parsed_strictly() {
        let (a, t) = parse_task(r#"{"archiver": "filedir", "task": {"path": "/x"}}"#).unwrap();
        assert_eq!(a, "filedir");
        assert_eq!(t, json!({"path": "/x"}));
        for bad in [
            "not json",
            "[1]",
            r#"{"task": {}}"#,
            r#"{"archiver": "", "task": {}}"#,
            r#"{"archiver": "a"}"#,
            r#"{"archiver": "a", "task": "x"}"#,
        ] {
            assert!(parse_task(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mode_option() {
        assert_eq!(StdinMode::parse(" Tasks ").unwrap(), StdinMode::Tasks);
        assert!(StdinMode::parse("lines").is_err());
        let e =
            (descriptor().build)(&stoq_core::PluginConfig::new(NAME, [("mode", "x")])).unwrap_err();
        assert!(
            e.to_string().contains("mode") && e.to_string().contains("\"x\""),
            "{e}"
        );
    }
}
