//! `stoq.cfg`: the `[core]` section and the per-plugin option sections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stoq_core::ini::Ini;
use stoq_core::options::{parse_seconds, split_list};
use stoq_core::StoqError;

/// Every `[core]` key, parsed. `None` means "not set in the file".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreConfig {
    pub max_queue: Option<usize>,
    /// Run mode: payload bytes queued and in scan at once (0: no limit).
    pub max_queue_bytes: Option<u64>,
    pub provider_consumers: Option<usize>,
    pub max_recursion: Option<usize>,
    pub max_required_worker_depth: Option<usize>,
    /// `Some("")` (an empty `log_dir:`) disables the log file.
    pub log_dir: Option<String>,
    pub log_level: Option<String>,
    pub log_maxbytes: Option<u64>,
    pub log_backup_count: Option<usize>,
    pub log_syntax: Option<LogSyntax>,
    pub plugin_dir_list: Option<Vec<String>>,
    pub providers: Option<Vec<String>>,
    pub source_archivers: Option<Vec<String>>,
    pub dest_archivers: Option<Vec<String>>,
    pub connectors: Option<Vec<String>>,
    pub dispatchers: Option<Vec<String>>,
    pub decorators: Option<Vec<String>>,
    pub always_dispatch: Option<Vec<String>>,
    /// Default time limit for every plugin call.
    pub plugin_timeout: Option<Duration>,
}

/// Format of the log file and stderr logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSyntax {
    Text,
    Json,
}

/// The `[core]` keys this implementation knows.
pub const CORE_KEYS: &[&str] = &[
    "max_queue",
    "max_queue_bytes",
    "provider_consumers",
    "max_recursion",
    "max_required_worker_depth",
    "log_dir",
    "log_level",
    "log_maxbytes",
    "log_backup_count",
    "log_syntax",
    "plugin_dir_list",
    "providers",
    "source_archivers",
    "dest_archivers",
    "connectors",
    "dispatchers",
    "decorators",
    "always_dispatch",
    "plugin_timeout",
];

/// A parsed `stoq.cfg`.
#[derive(Debug, Clone)]
pub struct StoqConfig {
    pub path: PathBuf,
    pub ini: Ini,
    pub core: CoreConfig,
    /// `[core]` keys this implementation does not know (warned about).
    pub unknown_core_keys: Vec<String>,
}

impl StoqConfig {
    /// Read and check a config file. Every bad `[core]` value is reported,
    /// not only the first.
    pub fn load(path: &Path) -> Result<StoqConfig, StoqError> {
        let ini = Ini::load(path, true).map_err(|e| StoqError::Config(e.to_string()))?;
        Self::from_ini(path, ini)
    }

    /// Parse config text (tests, embedding).
    pub fn parse(text: &str, name: &str) -> Result<StoqConfig, StoqError> {
        let ini = Ini::parse(text, name, true).map_err(|e| StoqError::Config(e.to_string()))?;
        Self::from_ini(Path::new(name), ini)
    }

    fn from_ini(path: &Path, ini: Ini) -> Result<StoqConfig, StoqError> {
        let mut errors = Vec::new();
        let mut get = |key: &str| -> Option<String> {
            match ini.get("core", key) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e.to_string());
                    None
                }
            }
        };
        let raw: Vec<(&str, Option<String>)> = CORE_KEYS.iter().map(|k| (*k, get(k))).collect();
        let value = |key: &str| -> Option<String> {
            raw.iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone())
        };
        let src = path.display().to_string();
        let mut int = |key: &str| -> Option<u64> {
            let v = value(key)?;
            match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(format!(
                        "{src}: [core] {key} = {v:?}: expected a non-negative integer"
                    ));
                    None
                }
            }
        };
        let mut core = CoreConfig {
            max_queue: int("max_queue").map(|n| n as usize),
            max_queue_bytes: int("max_queue_bytes"),
            provider_consumers: int("provider_consumers").map(|n| n as usize),
            max_recursion: int("max_recursion").map(|n| n as usize),
            max_required_worker_depth: int("max_required_worker_depth").map(|n| n as usize),
            log_maxbytes: int("log_maxbytes"),
            log_backup_count: int("log_backup_count").map(|n| n as usize),
            log_dir: value("log_dir"),
            log_level: value("log_level"),
            ..CoreConfig::default()
        };
        if let Some(v) = value("log_syntax") {
            core.log_syntax = match v.trim().to_lowercase().as_str() {
                "text" => Some(LogSyntax::Text),
                "json" => Some(LogSyntax::Json),
                _ => {
                    errors.push(format!(
                        "{src}: [core] log_syntax = {v:?}: expected text or json"
                    ));
                    None
                }
            };
        }
        if let Some(v) = value("plugin_timeout") {
            match parse_seconds(&v) {
                Ok(d) => core.plugin_timeout = Some(d),
                Err(e) => errors.push(format!("{src}: [core] plugin_timeout = {v:?}: {e}")),
            }
        }
        let list = |key: &str| value(key).map(|v| split_list(&v));
        core.plugin_dir_list = list("plugin_dir_list");
        core.providers = list("providers");
        core.source_archivers = list("source_archivers");
        core.dest_archivers = list("dest_archivers");
        core.connectors = list("connectors");
        core.dispatchers = list("dispatchers");
        core.decorators = list("decorators");
        core.always_dispatch = list("always_dispatch");
        if core.max_recursion == Some(0) {
            errors.push(format!("{src}: [core] max_recursion must be at least 1"));
        }
        if core.provider_consumers == Some(0) {
            errors.push(format!(
                "{src}: [core] provider_consumers must be at least 1"
            ));
        }
        if core.max_queue == Some(0) {
            errors.push(format!("{src}: [core] max_queue must be at least 1"));
        }
        if !errors.is_empty() {
            return Err(StoqError::Config(errors.join("\n")));
        }
        let unknown_core_keys = if ini.has_section("core") {
            ini.keys("core")
                .into_iter()
                .filter(|k| !CORE_KEYS.contains(&k.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(StoqConfig {
            path: path.to_path_buf(),
            ini,
            core,
            unknown_core_keys,
        })
    }

    /// The `[<plugin>]` section's options, in file order.
    pub fn plugin_options(&self, plugin: &str) -> Result<Vec<(String, String)>, StoqError> {
        if !self.ini.has_section(plugin) {
            return Ok(Vec::new());
        }
        self.ini
            .items(plugin)
            .map_err(|e| StoqError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_core_key() {
        let c = StoqConfig::parse(
            "[core]\nmax_queue: 919\nprovider_consumers = 50\nmax_recursion=10\nmax_required_worker_depth=3\n\
             log_dir:\nlog_level = debug\nlog_maxbytes = 10\nlog_backup_count = 2\nlog_syntax = JSON\n\
             plugin_dir_list = /a, /b\nproviders = p\nsource_archivers = s\ndest_archivers = d\n\
             connectors = c1, c2\ndispatchers = r\ndecorators = x\nalways_dispatch = hash\nplugin_timeout = 2.5\n",
            "stoq.cfg",
        )
        .unwrap();
        let core = &c.core;
        assert_eq!(core.max_queue, Some(919));
        assert_eq!(core.provider_consumers, Some(50));
        assert_eq!(core.max_recursion, Some(10));
        assert_eq!(core.max_required_worker_depth, Some(3));
        assert_eq!(core.log_dir.as_deref(), Some(""));
        assert_eq!(core.log_level.as_deref(), Some("debug"));
        assert_eq!(core.log_maxbytes, Some(10));
        assert_eq!(core.log_backup_count, Some(2));
        assert_eq!(core.log_syntax, Some(LogSyntax::Json));
        assert_eq!(
            core.plugin_dir_list.as_deref(),
            Some(&["/a".to_string(), "/b".to_string()][..])
        );
        assert_eq!(core.connectors.as_ref().unwrap(), &["c1", "c2"]);
        assert_eq!(core.always_dispatch.as_ref().unwrap(), &["hash"]);
        assert_eq!(core.plugin_timeout, Some(Duration::from_millis(2500)));
        assert!(c.unknown_core_keys.is_empty());
    }

    #[test]
    fn all_bad_values_are_reported_together() {
        let e = StoqConfig::parse(
            "[core]\nmax_queue = lots\nlog_syntax = xml\nplugin_timeout = -3\nmax_recursion = 0\n",
            "bad.cfg",
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "max_queue",
            "\"lots\"",
            "log_syntax",
            "plugin_timeout",
            "max_recursion",
        ] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
    }

    #[test]
    fn unknown_core_keys_are_listed() {
        let c = StoqConfig::parse("[core]\nmax_queue = 5\narchivers = x\n", "c").unwrap();
        assert_eq!(c.unknown_core_keys, vec!["archivers"]);
    }

    #[test]
    fn plugin_sections() {
        let c = StoqConfig::parse("[hash]\nTimeout = 5\n", "c").unwrap();
        assert_eq!(
            c.plugin_options("hash").unwrap(),
            vec![("timeout".into(), "5".into())]
        );
        assert!(c.plugin_options("other").unwrap().is_empty());
    }
}
