//! `yara` worker and dispatcher, on yara-x.
//!
//! One plugin instance fills two roles, each with its own rule set:
//! - **worker** (`worker_rules`): scans a payload and reports every
//!   matching rule;
//! - **dispatcher** (`dispatch_rules`): routes a payload to the workers its
//!   matching rules name in their meta (`plugin = "name"`), and
//!   `save = "False"` stops it from being archived.
//!
//! A role whose rules option is unset is not offered (asking for it is the
//! engine's "not a Worker/Dispatcher plugin" error); setting neither option
//! is a load error.
//!
//! Rule paths are a file (namespace `default`) or a directory: every
//! `*.yar`/`*.yara` file under it, recursively, sorted, each in its own
//! namespace named after its relative path (`apt/apt1.yar`), so rule names
//! may repeat across files but a rule cannot refer to a rule of another
//! file. `include` statements are resolved next to the including file, then
//! in the directories of the rule files. Relative paths resolve against
//! the plugin's manifest directory (else the working directory).
//!
//! Rules are compiled once per process and shared by every scan and every
//! plugin instance that loads the same rules; each scanning thread reuses
//! its own yara-x scanner. Compiled rules are cached on disk under
//! `cache_dir`, keyed by a hash of the rule sources, the yara-x version and
//! the compile options, so start-up does not recompile unchanged rules. A
//! compile error is a load error naming the file, line and column.
//!
//! External variables `filename`, `filepath`, `extension`, `filetype` and
//! `owner` (strings) are defined for every rule set and set per scan from
//! the payload's `extra_data` (see [`Externals::from_extra_data`]).
//!
//! Worker output (`results.workers.yara`), always present:
//!
//! ```json
//! {"rules_sha256": "<hash of the worker rule sources>",
//!  "matches": [{"rule": "...", "namespace": "default", "tags": ["t"],
//!               "meta": {"author": "..."},
//!               "strings": [{"identifier": "$a", "offset": 0, "length": 12,
//!                            "data": "testtesttest", "encoding": "text"}],
//!               "strings_truncated": true}]}
//! ```
//!
//! `data` is the matched bytes as text when they are UTF-8 without control
//! characters (other than tab/CR/LF), else lower-case hex, as `encoding`
//! (`"text"` / `"hex"`) says. Patterns with the `xor` modifier add
//! `xor_key`. `strings_truncated` appears only when `strings_limit` cut the
//! list.
//!
//! The dispatcher's routing is [`dispatch_from_matches`].

mod matches;
mod rules;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stoq_core::{
    async_trait, blocking, Dispatcher, DispatcherResponse, ModuleDescriptor, OptionDoc, Payload,
    PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Request, Worker,
    WorkerResponse,
};

pub use matches::{
    dispatch_from_matches, encode_data, meta_value, repeating_key, RuleMatch, StringMatch,
    XOR_PLAINTEXT_PREFIX,
};
pub use rules::{
    describe_error, CompileOptions, Externals, Origin, RuleSet, ScanParams, DEFAULT_NAMESPACE,
    EXTERNALS, RULE_EXTENSIONS,
};

/// Default of `strings_limit`.
pub const DEFAULT_STRINGS_LIMIT: usize = 100;
/// yara-x's own scan time limit when neither `scan_timeout` nor `timeout`
/// is set (the engine's default plugin timeout).
pub const DEFAULT_SCAN_TIMEOUT: Duration = Duration::from_secs(60);

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "worker_rules",
        "",
        "rule file or directory for the worker role (directory: every *.yar/*.yara file, \
         recursively, each in a namespace named after its relative path); unset: no worker role",
    ),
    OptionDoc::new(
        "dispatch_rules",
        "",
        "rule file or directory for the dispatcher role (rule meta `plugin` names the workers, \
         `save = \"False\"` disables archiving); unset: no dispatcher role",
    ),
    OptionDoc::new(
        "strings_limit",
        "100",
        "most matched strings reported per rule (the first by offset); `none` for all, 0 for none",
    ),
    OptionDoc::new(
        "scan_timeout",
        "",
        "seconds yara-x may spend on one scan before aborting it; default: the `timeout` option, \
         else 60",
    ),
    OptionDoc::new(
        "xor_first_match",
        "true",
        "dispatcher: put the key of the first XOR match in meta.xorkey (true), or every XOR \
         match as [offset, identifier, [key bytes]] in meta.xor_info (false)",
    ),
    OptionDoc::new(
        "max_matches_per_pattern",
        "1000000",
        "yara-x stops recording a pattern's matches after this many (bounds memory; counts in \
         conditions saturate there)",
    ),
    OptionDoc::new(
        "relaxed_re_syntax",
        "true",
        "accept the regular-expression syntax libyara accepts (needed by many public rule sets)",
    ),
    OptionDoc::new(
        "cache_dir",
        "$XDG_CACHE_HOME/stoq/yara or ~/.cache/stoq/yara",
        "directory for compiled rules (<key>.yarc); empty disables the cache",
    ),
];

/// Parsed options.
#[derive(Debug, Clone)]
pub struct YaraConfig {
    pub worker_rules: Option<PathBuf>,
    pub dispatch_rules: Option<PathBuf>,
    pub strings_limit: Option<usize>,
    pub scan_timeout: Duration,
    pub xor_first_match: bool,
    pub max_matches_per_pattern: usize,
    pub compile: CompileOptions,
    pub cache_dir: Option<PathBuf>,
}

impl YaraConfig {
    /// Parse and check the options (no file is read).
    pub fn from_config(cfg: &PluginConfig) -> Result<YaraConfig, PluginError> {
        let rules_path = |key: &str| {
            cfg.get_str(key)
                .filter(|v| !v.trim().is_empty())
                .and_then(|_| cfg.path(key))
        };
        let strings_limit = cfg
            .parse_with("strings_limit", |v| {
                let v = v.trim();
                if v.is_empty() || v.eq_ignore_ascii_case("none") {
                    Ok(None)
                } else {
                    v.parse::<usize>()
                        .map(Some)
                        .map_err(|_| "expected a non-negative integer or `none`".to_string())
                }
            })?
            .unwrap_or(Some(DEFAULT_STRINGS_LIMIT));
        let scan_timeout = match cfg.seconds("scan_timeout")? {
            Some(d) => d,
            None => cfg.seconds("timeout")?.unwrap_or(DEFAULT_SCAN_TIMEOUT),
        };
        let max_matches_per_pattern = cfg.number(
            "max_matches_per_pattern",
            rules::DEFAULT_MAX_MATCHES_PER_PATTERN,
        )?;
        if max_matches_per_pattern == 0 {
            return Err(stoq_core::OptionError {
                plugin: cfg.name().to_string(),
                option: "max_matches_per_pattern".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            }
            .into());
        }
        let cache_dir = match cfg.get_str("cache_dir") {
            Some(v) if v.trim().is_empty() => None,
            Some(_) => cfg.path("cache_dir"),
            None => default_cache_dir(),
        };
        Ok(YaraConfig {
            worker_rules: rules_path("worker_rules"),
            dispatch_rules: rules_path("dispatch_rules"),
            strings_limit,
            scan_timeout,
            xor_first_match: cfg.bool("xor_first_match", true)?,
            max_matches_per_pattern,
            compile: CompileOptions {
                relaxed_re_syntax: cfg.bool("relaxed_re_syntax", true)?,
            },
            cache_dir,
        })
    }
}

/// `$XDG_CACHE_HOME/stoq/yara`, else `$HOME/.cache/stoq/yara`, else none.
pub fn default_cache_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = non_empty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("stoq").join("yara"));
    }
    non_empty("HOME").map(|h| PathBuf::from(h).join(".cache").join("stoq").join("yara"))
}

/// The plugin: the rule sets of both roles and the scan settings.
#[derive(Debug)]
pub struct YaraPlugin {
    worker_rules: Option<Arc<RuleSet>>,
    dispatch_rules: Option<Arc<RuleSet>>,
    strings_limit: Option<usize>,
    scan_timeout: Duration,
    xor_first_match: bool,
    max_matches_per_pattern: usize,
}

impl YaraPlugin {
    /// Load (or share, or read from the cache) the configured rule sets.
    pub fn new(cfg: &YaraConfig) -> Result<YaraPlugin, PluginError> {
        if cfg.worker_rules.is_none() && cfg.dispatch_rules.is_none() {
            return Err(PluginError::new(
                "yara needs rules: set worker_rules and/or dispatch_rules to a rule file or \
                 directory (e.g. --plugin-opts yara:worker_rules=/path/to/rules.yar)",
            ));
        }
        let load = |option: &str, path: &Option<PathBuf>| -> Result<_, PluginError> {
            path.as_deref()
                .map(|p| {
                    RuleSet::load(p, &cfg.compile, cfg.cache_dir.as_deref())
                        .map_err(|e| PluginError::new(format!("{option}: {e}")))
                })
                .transpose()
        };
        Ok(YaraPlugin {
            worker_rules: load("worker_rules", &cfg.worker_rules)?,
            dispatch_rules: load("dispatch_rules", &cfg.dispatch_rules)?,
            strings_limit: cfg.strings_limit,
            scan_timeout: cfg.scan_timeout,
            xor_first_match: cfg.xor_first_match,
            max_matches_per_pattern: cfg.max_matches_per_pattern,
        })
    }

    /// The worker's rule set, if that role is configured.
    pub fn worker_rules(&self) -> Option<&Arc<RuleSet>> {
        self.worker_rules.as_ref()
    }

    /// The dispatcher's rule set, if that role is configured.
    pub fn dispatch_rules(&self) -> Option<&Arc<RuleSet>> {
        self.dispatch_rules.as_ref()
    }

    /// Scan `payload` with `rules` on the blocking pool.
    async fn matches(
        &self,
        rules: &Arc<RuleSet>,
        payload: &Payload,
        xor_only: bool,
    ) -> PluginResult<Vec<RuleMatch>> {
        let rules = rules.clone();
        let content = payload.content.clone();
        let externals = Externals::from_extra_data(&payload.meta().extra_data);
        // The dispatcher needs at least the first XOR match.
        let strings_limit = match (xor_only, self.strings_limit) {
            (true, Some(0)) => Some(1),
            (_, l) => l,
        };
        let timeout = self.scan_timeout;
        let max = self.max_matches_per_pattern;
        blocking(move || {
            rules.scan(
                &content,
                &ScanParams {
                    timeout,
                    strings_limit,
                    max_matches_per_pattern: Some(max),
                    xor_only,
                    externals: &externals,
                },
            )
        })
        .await?
        .map_err(PluginError::new)
    }

    /// The worker's results for `payload` (`rules_sha256` and `matches`).
    pub async fn scan_payload(&self, payload: &Payload) -> PluginResult<serde_json::Value> {
        let rules = self
            .worker_rules
            .as_ref()
            .ok_or_else(|| PluginError::new("yara: worker_rules is not set"))?;
        let matches = self.matches(rules, payload, false).await?;
        Ok(json!({
            "rules_sha256": rules.sha256(),
            "matches": matches.iter().map(RuleMatch::to_worker_json).collect::<Vec<_>>(),
        }))
    }
}

#[async_trait]
impl Worker for YaraPlugin {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        Ok(Some(WorkerResponse::with_results(
            self.scan_payload(payload).await?,
        )))
    }
}

#[async_trait]
impl Dispatcher for YaraPlugin {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        let rules = self
            .dispatch_rules
            .as_ref()
            .ok_or_else(|| PluginError::new("yara: dispatch_rules is not set"))?;
        // Only XOR matches matter to the dispatcher.
        let matches = self.matches(rules, payload, true).await?;
        if matches.is_empty() {
            return Ok(None);
        }
        Ok(Some(dispatch_from_matches(&matches, self.xor_first_match)))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        "yara",
        &[PluginClass::Worker, PluginClass::Dispatcher],
        |cfg| {
            let config = YaraConfig::from_config(cfg)?;
            let plugin = Arc::new(YaraPlugin::new(&config)?);
            let mut instance = PluginInstance::new();
            if plugin.worker_rules.is_some() {
                instance = instance.worker(plugin.clone());
            }
            if plugin.dispatch_rules.is_some() {
                instance = instance.dispatcher(plugin);
            }
            Ok(instance)
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .website("https://virustotal.github.io/yara-x/")
    .description("Scan payloads with YARA rules (yara-x) and dispatch on rule meta")
    .options(OPTIONS)
}
