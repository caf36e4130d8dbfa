//! The Python side shipped inside the binary: the SDK (`stoq_plugin`), the
//! stoQ v3 compatibility package (`stoq`) and its host (`stoq_host.py`).
//!
//! The files are written once to a cache directory named after their
//! content hash and put first on `PYTHONPATH` of every external process, so
//! `import stoq` and `import stoq_plugin` work for any Python plugin
//! without installing anything.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stoq_core::PluginClass;

/// Relative path and content of every shipped Python file.
pub const FILES: &[(&str, &str)] = &[
    (
        "stoq_plugin.py",
        include_str!("../../../../python/stoq_plugin.py"),
    ),
    (
        "stoq_host.py",
        include_str!("../../../../python/stoq_host.py"),
    ),
    (
        "stoq/__init__.py",
        include_str!("../../../../python/stoq/__init__.py"),
    ),
    (
        "stoq/data_classes.py",
        include_str!("../../../../python/stoq/data_classes.py"),
    ),
    (
        "stoq/exceptions.py",
        include_str!("../../../../python/stoq/exceptions.py"),
    ),
    (
        "stoq/helpers.py",
        include_str!("../../../../python/stoq/helpers.py"),
    ),
    (
        "stoq/config.py",
        include_str!("../../../../python/stoq/config.py"),
    ),
    (
        "stoq/plugins/__init__.py",
        include_str!("../../../../python/stoq/plugins/__init__.py"),
    ),
];

/// FNV-1a over every file's path and content: the cache directory's name.
fn content_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, text) in FILES {
        for b in path.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("STOQ_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("stoq");
    }
    if let Some(d) = std::env::var_os("HOME") {
        return PathBuf::from(d).join(".cache").join("stoq");
    }
    std::env::temp_dir().join("stoq-cache")
}

/// The directory holding the shipped Python files, written on first use.
pub fn runtime_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| write_runtime(&cache_root())).clone()
}

fn write_runtime(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(format!("python-{:016x}", content_hash()));
    if dir.join("stoq_host.py").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create the cache directory {}: {e}", root.display()))?;
    // Write into a private directory, then rename it into place: readers
    // never see half-written files, and two processes racing both succeed.
    let staging = tempfile::Builder::new()
        .prefix(".python-")
        .tempdir_in(root)
        .map_err(|e| format!("cannot create a directory in {}: {e}", root.display()))?;
    for (rel, text) in FILES {
        let path = staging.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Someone else won the race; theirs is identical.
        let _ = std::fs::remove_dir_all(&staged);
        if !dir.join("stoq_host.py").is_file() {
            return Err(format!("cannot create {}", dir.display()));
        }
    }
    Ok(dir)
}

/// `PYTHONPATH` for an external process: the runtime first.
pub fn python_path(runtime: &Path) -> String {
    match std::env::var_os("PYTHONPATH") {
        Some(old) if !old.is_empty() => {
            format!("{}:{}", runtime.display(), old.to_string_lossy())
        }
        _ => runtime.display().to_string(),
    }
}

/// The interpreter for a Python plugin in `plugin_dir`: `explicit` (the
/// manifest's `[Core] Python`), else the plugin's own virtual environment,
/// else `$STOQ_PYTHON`, else `python3`.
pub fn interpreter(plugin_dir: &Path, explicit: Option<&str>) -> PathBuf {
    if let Some(p) = explicit.filter(|p| !p.trim().is_empty()) {
        let p = Path::new(p.trim());
        return if p.is_relative() && p.components().count() > 1 {
            plugin_dir.join(p)
        } else {
            p.to_path_buf()
        };
    }
    let venv = plugin_dir.join(".venv").join("bin").join("python");
    if venv.exists() {
        return venv;
    }
    if let Some(p) = std::env::var_os("STOQ_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from("python3")
}

/// The plugin classes a v3 Python module defines, read from its source the
/// way the reference's `list_plugins` does: every top-level `class X(...)`
/// whose bases name one of the plugin base classes. A dotted base
/// (`plugins.WorkerPlugin`) counts by its last part.
pub fn classes_in_source(source: &str) -> Vec<PluginClass> {
    let mut found = Vec::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("class ") else {
            continue;
        };
        let Some(open) = rest.find('(') else { continue };
        // Bases may run over several lines.
        let mut bases = rest[open + 1..].to_string();
        while !bases.contains(')') {
            match lines.next() {
                Some(l) => bases.push_str(l),
                None => break,
            }
        }
        let bases = bases.split(')').next().unwrap_or("");
        for base in bases.split(',') {
            let base = base.trim().rsplit('.').next().unwrap_or("").trim();
            let class = match base {
                "WorkerPlugin" => PluginClass::Worker,
                "DispatcherPlugin" => PluginClass::Dispatcher,
                "ArchiverPlugin" => PluginClass::Archiver,
                "DecoratorPlugin" => PluginClass::Decorator,
                "ConnectorPlugin" => PluginClass::Connector,
                "ProviderPlugin" => PluginClass::Provider,
                _ => continue,
            };
            if !found.contains(&class) {
                found.push(class);
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_source() {
        let src = "import x\nclass A(WorkerPlugin, DispatcherPlugin):\n    pass\n\
                   class B(\n    plugins.ArchiverPlugin,\n):\n    pass\nclass C(object):\n  pass\n    class D(ConnectorPlugin): pass\n";
        assert_eq!(
            classes_in_source(src),
            [
                PluginClass::Worker,
                PluginClass::Archiver,
                PluginClass::Dispatcher
            ]
        );
    }

    #[test]
    fn runtime_is_written_once_and_complete() {
        let root = tempfile::tempdir().unwrap();
        let a = write_runtime(root.path()).unwrap();
        let b = write_runtime(root.path()).unwrap();
        assert_eq!(a, b);
        for (rel, text) in FILES {
            assert_eq!(std::fs::read_to_string(a.join(rel)).unwrap(), *text);
        }
        // Only the runtime directory remains (no staging leftovers).
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
