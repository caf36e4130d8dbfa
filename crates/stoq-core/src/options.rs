//! Plugin options: what a plugin's build function receives.
//!
//! Options arrive as strings, layered in the reference's precedence (highest
//! first): `--plugin-opts` / the `plugin_opts` given to the engine, then the
//! `[<plugin>]` section of `stoq.cfg`, then the `[options]` section of the
//! plugin's manifest. Each plugin turns them into a typed struct with the
//! getters below; a value that does not parse is an [`OptionError`] naming
//! the plugin, the option and the value.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::OptionError;

/// The merged options of one plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    name: String,
    options: IndexMap<String, String>,
    plugin_dir: Option<PathBuf>,
}

/// Options every plugin accepts because the engine handles them.
pub const ENGINE_OPTIONS: &[&str] = &["timeout", "required_workers", "min_stoq_version"];

impl PluginConfig {
    /// Options for the plugin `name`. Keys are matched case-insensitively.
    pub fn new<K, V>(name: impl Into<String>, options: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        PluginConfig {
            name: name.into(),
            options: options
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_lowercase(), v.into()))
                .collect(),
            plugin_dir: None,
        }
    }

    /// Set the directory of the plugin's manifest, against which the plugin
    /// resolves relative paths in its options.
    pub fn with_plugin_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.plugin_dir = dir;
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory of the plugin's manifest, if it came from one.
    pub fn plugin_dir(&self) -> Option<&Path> {
        self.plugin_dir.as_deref()
    }

    /// Every option, in precedence-merged order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Set one option (overrides).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.options.insert(key.to_lowercase(), value.into());
    }

    /// The raw string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.options.get(&key.to_lowercase()).map(String::as_str)
    }

    /// A string option with a default.
    pub fn string(&self, key: &str, default: &str) -> String {
        self.get_str(key).unwrap_or(default).to_string()
    }

    fn error(&self, key: &str, value: &str, reason: impl Into<String>) -> OptionError {
        OptionError {
            plugin: self.name.clone(),
            option: key.to_lowercase(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Parse an option with `parse`; `Ok(None)` when it is absent.
    pub fn parse_with<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, OptionError> {
        match self.get_str(key) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .map_err(|reason| self.error(key, v, reason)),
        }
    }

    /// A string option that, when set, must not be blank (trimmed).
    pub fn non_empty(&self, key: &str, default: &str) -> Result<String, OptionError> {
        Ok(self
            .parse_with(key, |v| match v.trim() {
                "" => Err("must not be empty".to_string()),
                t => Ok(t.to_string()),
            })?
            .unwrap_or_else(|| default.to_string()))
    }

    /// A boolean: `1/yes/true/on` or `0/no/false/off`, any case (as Python's
    /// `getboolean`).
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, OptionError> {
        Ok(self.parse_with(key, parse_bool)?.unwrap_or(default))
    }

    /// A number of any `FromStr` type (integers, floats).
    pub fn number<T: FromStr>(&self, key: &str, default: T) -> Result<T, OptionError> {
        Ok(self
            .parse_with(key, |v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|_| format!("expected a {}", type_label::<T>()))
            })?
            .unwrap_or(default))
    }

    /// A comma-separated list; pieces are trimmed and empty ones dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get_str(key).map(split_list).unwrap_or_default()
    }

    /// A JSON value; `Ok(None)` when absent.
    pub fn json(&self, key: &str) -> Result<Option<Value>, OptionError> {
        self.parse_with(key, |v| {
            serde_json::from_str(v).map_err(|e| format!("invalid JSON: {e}"))
        })
    }

    /// A duration in seconds (fractions allowed, must be positive).
    pub fn seconds(&self, key: &str) -> Result<Option<Duration>, OptionError> {
        self.parse_with(key, parse_seconds)
    }

    /// A path; relative paths are resolved against the plugin's directory
    /// when it has one, else left relative (to the working directory).
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        let p = PathBuf::from(self.get_str(key)?);
        Some(match (&self.plugin_dir, p.is_relative()) {
            (Some(dir), true) => dir.join(p),
            _ => p,
        })
    }
}

fn type_label<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    if name.starts_with('f') {
        "number"
    } else if name.starts_with('u') {
        "non-negative integer"
    } else {
        "integer"
    }
}

/// Python `getboolean` semantics.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err("expected a boolean (true/false, yes/no, on/off, 1/0)".into()),
    }
}

/// A positive number of seconds.
pub fn parse_seconds(v: &str) -> Result<Duration, String> {
    let secs: f64 = v
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds".to_string())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err("expected a positive number of seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Split a comma-separated list, trimming pieces and dropping empty ones.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> PluginConfig {
        PluginConfig::new("demo", pairs.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn non_empty_strings() {
        let c = cfg(&[("a", "  x "), ("b", "   ")]);
        assert_eq!(c.non_empty("a", "d").unwrap(), "x");
        assert_eq!(c.non_empty("missing", "d").unwrap(), "d");
        let e = c.non_empty("b", "d").unwrap_err();
        assert_eq!(
            (e.option.as_str(), e.reason.as_str()),
            ("b", "must not be empty")
        );
    }

    #[test]
    fn typed_getters() {
        let c = cfg(&[
            ("Flag", "Yes"),
            ("n", " 16 "),
            ("f", "0.5"),
            ("l", "a, b,,c, "),
        ]);
        assert!(c.bool("flag", false).unwrap());
        assert!(!c.bool("absent", false).unwrap());
        assert_eq!(c.number::<i64>("n", 0).unwrap(), 16);
        assert_eq!(c.number::<f64>("f", 0.0).unwrap(), 0.5);
        assert_eq!(c.list("l"), vec!["a", "b", "c"]);
        assert!(c.list("absent").is_empty());
    }

    #[test]
    fn bad_values_name_plugin_option_and_value() {
        let c = cfg(&[
            ("n", "many"),
            ("b", "maybe"),
            ("j", "{\"key\":}"),
            ("t", "-1"),
        ]);
        let e = c.number::<u32>("n", 0).unwrap_err();
        assert_eq!(
            (e.plugin.as_str(), e.option.as_str(), e.value.as_str()),
            ("demo", "n", "many")
        );
        assert!(e.to_string().contains("demo") && e.to_string().contains("\"many\""));
        assert!(c.bool("b", true).is_err());
        assert!(c.json("j").unwrap_err().reason.contains("invalid JSON"));
        assert!(c.seconds("t").is_err());
    }

    #[test]
    fn json_values() {
        let c = cfg(&[
            ("list", "[\"item1\",\n\"item2\"]"),
            ("sq", "{\"bar'foo\": \"value\"}"),
        ]);
        assert_eq!(
            c.json("list").unwrap().unwrap(),
            serde_json::json!(["item1", "item2"])
        );
        assert_eq!(
            c.json("sq").unwrap().unwrap(),
            serde_json::json!({"bar'foo": "value"})
        );
        assert_eq!(c.json("absent").unwrap(), None);
    }

    #[test]
    fn relative_paths_resolve_against_plugin_dir() {
        let c = cfg(&[("rules", "rules/x.yar"), ("abs", "/etc/x")])
            .with_plugin_dir(Some("/p/yara".into()));
        assert_eq!(
            c.path("rules").unwrap(),
            PathBuf::from("/p/yara/rules/x.yar")
        );
        assert_eq!(c.path("abs").unwrap(), PathBuf::from("/etc/x"));
    }
}
