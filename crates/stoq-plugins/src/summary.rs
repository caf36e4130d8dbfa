//! `summary` decorator: one small verdict object over a whole scan.
//!
//! Stored in `decorators.summary`, keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `payloads` | number of payloads in `results` |
//! | `total_bytes` | sum of their `size` |
//! | `max_depth` | longest `extracted_from` chain (a payload without parent is 0) |
//! | `errors` | number of error records |
//! | `errors_by_plugin` | `{plugin: count}`, sorted; records without a plugin count under `"core"` |
//! | `workers_run` | `{worker: payloads it ran on}`, sorted |
//! | `types` | `{type: payloads}`, sorted; the type is the first `type_keys` path that holds a non-empty string, else `"unknown"` |
//! | `yara_matches` | sorted unique `rule` of every `workers.yara.matches[]` |
//! | `flags` | sorted unique `"<worker>.<key>"` (or `"<worker>.<object>.<key>"` one level down) for every `flag_keys` key whose value is `true` |
//! | `max_recursion_reached` | whether an error starts with `Final worker round` |
//! | `verdict` | `"suspicious"` if there is a flag or a YARA match, else `"errors"` if there is an error, else `"clean"` |
//!
//! Depth is cycle-safe: deduplication appends parents to a payload already
//! seen, which can make a payload its own parent, or the parent of one of
//! its ancestors. Only links to a payload standing *earlier* in `results`
//! are followed: a payload is always added after the payload it was first
//! extracted from, so every real first extraction is kept and no walk can
//! loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, Decorator, DecoratorResponse, ModuleDescriptor, OptionDoc, PayloadResults,
    PluginClass, PluginConfig, PluginInstance, PluginResult, StoqResponse,
};

/// Default of the `type_keys` option.
pub const DEFAULT_TYPE_KEYS: &str = "mimetype.mimetype,mimetype.label";
/// Default of the `flag_keys` option (`suspicous` is the public mraptor
/// plugin's spelling).
pub const DEFAULT_FLAG_KEYS: &str =
    "suspicious,is_suspicious,is_packed,encrypted,has_macros,autoexec,suspicous";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "type_keys",
        DEFAULT_TYPE_KEYS,
        "comma list of dotted paths under a payload's `workers` (worker.key[.key...]); the first \
         that holds a non-empty string is the payload's type, else \"unknown\"",
    ),
    OptionDoc::new(
        "flag_keys",
        DEFAULT_FLAG_KEYS,
        "comma list of worker result keys that flag a payload when their value is true (looked \
         for at the top of each worker's results and one object level down)",
    ),
];

/// Type of a payload no `type_keys` path matched.
pub const UNKNOWN_TYPE: &str = "unknown";
/// `errors_by_plugin` key for error records without a plugin.
pub const CORE_ERRORS: &str = "core";
/// Prefix of the engine's error for payloads extracted in the last round.
pub const FINAL_ROUND_PREFIX: &str = "Final worker round";

/// The `summary` decorator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryDecorator {
    /// Paths under `workers`, each split on dots.
    type_keys: Vec<Vec<String>>,
    flag_keys: BTreeSet<String>,
}

impl Default for SummaryDecorator {
    /// The decorator with the default `type_keys` and `flag_keys`.
    fn default() -> Self {
        let split = |v: &str| stoq_core::options::split_list(v);
        SummaryDecorator {
            type_keys: split(DEFAULT_TYPE_KEYS)
                .iter()
                .map(|p| p.split('.').map(String::from).collect())
                .collect(),
            flag_keys: split(DEFAULT_FLAG_KEYS).into_iter().collect(),
        }
    }
}

impl SummaryDecorator {
    /// A decorator looking for types at `type_keys` (dotted paths) and for
    /// the flags `flag_keys`. A path with an empty segment is an error.
    pub fn new(type_keys: &[String], flag_keys: &[String]) -> Result<Self, String> {
        let type_keys = type_keys
            .iter()
            .map(|p| parse_path(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SummaryDecorator {
            type_keys,
            flag_keys: flag_keys.iter().cloned().collect(),
        })
    }

    /// Build from plugin options.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let type_keys = cfg
            .parse_with("type_keys", |v| {
                let list = stoq_core::options::split_list(v);
                for p in &list {
                    parse_path(p)?;
                }
                Ok(list)
            })?
            .unwrap_or_else(|| stoq_core::options::split_list(DEFAULT_TYPE_KEYS));
        let flag_keys = match cfg.get_str("flag_keys") {
            Some(v) => stoq_core::options::split_list(v),
            None => stoq_core::options::split_list(DEFAULT_FLAG_KEYS),
        };
        Ok(SummaryDecorator::new(&type_keys, &flag_keys)?)
    }

    /// The summary of `response` (what goes into `decorators.summary`).
    pub fn summarise(&self, response: &StoqResponse) -> Value {
        let results = &response.results;
        let total_bytes: u64 = results.iter().map(|r| r.size).sum();

        let mut errors_by_plugin: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &response.errors {
            *errors_by_plugin
                .entry(e.plugin_name.as_deref().unwrap_or(CORE_ERRORS))
                .or_default() += 1;
        }

        let mut workers_run: BTreeMap<&str, u64> = BTreeMap::new();
        let mut types: BTreeMap<&str, u64> = BTreeMap::new();
        let mut yara: BTreeSet<&str> = BTreeSet::new();
        let mut flags: BTreeSet<String> = BTreeSet::new();
        for r in results {
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for w in &r.plugins_run.workers {
                if seen.insert(w.as_str()) {
                    *workers_run.entry(w.as_str()).or_default() += 1;
                }
            }
            *types.entry(self.payload_type(r)).or_default() += 1;
            yara_rules(r, &mut yara);
            self.collect_flags(r, &mut flags);
        }

        let max_recursion_reached = response
            .errors
            .iter()
            .any(|e| e.error.starts_with(FINAL_ROUND_PREFIX));
        let verdict = if !flags.is_empty() || !yara.is_empty() {
            "suspicious"
        } else if !response.errors.is_empty() {
            "errors"
        } else {
            "clean"
        };

        json!({
            "payloads": results.len(),
            "total_bytes": total_bytes,
            "max_depth": max_depth(results),
            "errors": response.errors.len(),
            "errors_by_plugin": counts(errors_by_plugin),
            "workers_run": counts(workers_run),
            "types": counts(types),
            "yara_matches": yara.into_iter().collect::<Vec<_>>(),
            "flags": flags.into_iter().collect::<Vec<_>>(),
            "max_recursion_reached": max_recursion_reached,
            "verdict": verdict,
        })
    }

    /// The first `type_keys` path holding a non-empty string.
    fn payload_type<'a>(&self, r: &'a PayloadResults) -> &'a str {
        self.type_keys
            .iter()
            .find_map(|path| {
                let (first, rest) = path.split_first()?;
                let mut v = r.workers.get(first)?;
                for key in rest {
                    v = v.as_object()?.get(key)?;
                }
                v.as_str().filter(|s| !s.is_empty())
            })
            .unwrap_or(UNKNOWN_TYPE)
    }

    fn collect_flags(&self, r: &PayloadResults, flags: &mut BTreeSet<String>) {
        for (worker, result) in &r.workers {
            let Some(obj) = result.as_object() else {
                continue;
            };
            for (key, value) in obj {
                if value == &Value::Bool(true) && self.flag_keys.contains(key) {
                    flags.insert(format!("{worker}.{key}"));
                }
                if let Some(inner) = value.as_object() {
                    for (k2, v2) in inner {
                        if v2 == &Value::Bool(true) && self.flag_keys.contains(k2) {
                            flags.insert(format!("{worker}.{key}.{k2}"));
                        }
                    }
                }
            }
        }
    }
}

fn parse_path(p: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = p.split('.').map(|s| s.trim().to_string()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!(
            "{p:?} is not a dotted path like worker.key (empty segment)"
        ));
    }
    Ok(parts)
}

fn counts(m: BTreeMap<&str, u64>) -> Value {
    Value::Object(
        m.into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// Rule names of `workers.yara.matches[].rule`.
fn yara_rules<'a>(r: &'a PayloadResults, out: &mut BTreeSet<&'a str>) {
    let Some(matches) = r
        .workers
        .get("yara")
        .and_then(|y| y.get("matches"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for m in matches {
        if let Some(rule) = m.get("rule").and_then(Value::as_str) {
            out.insert(rule);
        }
    }
}

/// The longest chain of `extracted_from` links, following only links to
/// payloads that stand earlier in `results` (see the module docs): a
/// payload's depth is 0 without such a parent, else one more than its
/// deepest such parent. Linear in the number of links.
pub fn max_depth(results: &[PayloadResults]) -> u64 {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(results.len());
    for (i, r) in results.iter().enumerate() {
        index.entry(r.payload_id.as_str()).or_insert(i);
    }
    let mut depth = vec![0u64; results.len()];
    let mut max = 0;
    for (i, r) in results.iter().enumerate() {
        let d = r
            .extracted_from
            .iter()
            .filter_map(|parent| index.get(parent.as_str()))
            .filter(|&&j| j < i)
            .map(|&j| depth[j] + 1)
            .max()
            .unwrap_or(0);
        depth[i] = d;
        max = max.max(d);
    }
    max
}

#[async_trait]
impl Decorator for SummaryDecorator {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>> {
        Ok(Some(DecoratorResponse {
            results: Some(self.summarise(response)),
            errors: Vec::new(),
        }))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("summary", &[PluginClass::Decorator], |cfg| {
        let decorator = SummaryDecorator::from_config(cfg)?;
        Ok(PluginInstance::new().decorator(Arc::new(decorator)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Summarise a scan: counts by type, YARA hits, flags, depth, errors")
    .options(OPTIONS)
}
