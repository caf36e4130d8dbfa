//! Logs: always to stderr, and to `<log_dir>/stoq.log` (rotated by size)
//! when a log directory is configured. stdout never carries logs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::MakeWriter;

/// Parse a log level name (as `--log-level` and `[core] log_level` take it).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s.trim().to_lowercase().as_str() {
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warning" | "warn" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "trace" => LevelFilter::TRACE,
        "off" | "none" => LevelFilter::OFF,
        _ => return None,
    })
}

/// Where and how to log.
pub struct LogSettings {
    pub level: LevelFilter,
    pub json: bool,
    /// `None`: no log file.
    pub file: Option<RotatingFile>,
}

/// Install the global subscriber.
pub fn init(settings: LogSettings) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(settings.level)
        .with_ansi(false)
        .with_target(true);
    let stderr = io::stderr.with_max_level(tracing::Level::TRACE);
    // The log file gets the same records as stderr.
    let result = match (settings.file, settings.json) {
        (Some(file), true) => builder.json().with_writer(stderr.and(file)).try_init(),
        (Some(file), false) => builder.with_writer(stderr.and(file)).try_init(),
        (None, true) => builder.json().with_writer(stderr).try_init(),
        (None, false) => builder.with_writer(stderr).try_init(),
    };
    // Already installed (only possible in tests): keep the first.
    let _ = result;
}

/// A log file that rotates to `.1`, `.2`, ... when it passes `max_bytes`,
/// keeping `backups` old files (the reference's `RotatingFileHandler`).
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<RotatingInner>>,
}

struct RotatingInner {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    backups: usize,
}

impl RotatingFile {
    /// Open (append) `<dir>/stoq.log`, creating `dir` if needed.
    pub fn open(dir: &Path, max_bytes: u64, backups: usize) -> io::Result<RotatingFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("stoq.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            inner: Arc::new(Mutex::new(RotatingInner {
                path,
                file,
                written,
                max_bytes,
                backups,
            })),
        })
    }
}

impl RotatingInner {
    fn rotate(&mut self) -> io::Result<()> {
        if self.backups > 0 {
            for i in (1..self.backups).rev() {
                let from = backup_name(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, backup_name(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, backup_name(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn backup_name(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log file lock poisoned"))?;
        if inner.max_bytes > 0
            && inner.written > 0
            && inner.written + buf.len() as u64 > inner.max_bytes
        {
            inner.rotate()?;
        }
        inner.file.write_all(buf)?;
        inner.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log file lock poisoned"))?;
        inner.file.flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), 10, 2).unwrap();
        for line in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            f.write_all(line.as_bytes()).unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("stoq.log"), "dddddddd\n");
        assert_eq!(read("stoq.log.1"), "cccccccc\n");
        assert_eq!(read("stoq.log.2"), "bbbbbbbb\n");
        assert!(!dir.path().join("stoq.log.3").exists());
    }

    #[test]
    fn level_names() {
        assert_eq!(parse_level("WARNING"), Some(LevelFilter::WARN));
        assert_eq!(parse_level("critical"), Some(LevelFilter::ERROR));
        assert_eq!(parse_level("errorcrtical"), None);
    }
}
