//! The INI dialect of `stoq.cfg` and plugin manifests: Python's
//! `configparser.ConfigParser` with its defaults.
//!
//! - `=` and `:` both separate a key from its value (the first one wins);
//! - `#` and `;` start full-line comments (no inline comments);
//! - option names are case-insensitive (stored lower-case), section names
//!   are case-sensitive;
//! - a line indented deeper than its key continues the value; lines are
//!   joined with `\n` and trailing blank lines dropped;
//! - `[DEFAULT]` supplies values to every section;
//! - a duplicate section or key in one file is an error (strict mode);
//! - basic interpolation: `%%` is a literal `%`, `%(name)s` is replaced by
//!   the option `name` of the same section (or `[DEFAULT]`), and any other
//!   `%` is an error;
//! - optionally, keys without a value (`allow_no_value`).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use indexmap::IndexMap;

/// An error in an INI file, with the line it was found on (1-based; 0 when
/// the error is not tied to a line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IniError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}, line {}: {}",
                self.source_name, self.line, self.message
            )
        } else {
            write!(f, "{}: {}", self.source_name, self.message)
        }
    }
}

type Section = IndexMap<String, Option<String>>;

/// A parsed INI document.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    source_name: String,
    defaults: Section,
    sections: IndexMap<String, Section>,
}

const DEFAULT_SECTION: &str = "DEFAULT";
const MAX_INTERPOLATION_DEPTH: usize = 10;

impl Ini {
    /// Read and parse a file.
    pub fn load(path: &Path, allow_no_value: bool) -> Result<Ini, IniError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| IniError {
            source_name: name.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let text = String::from_utf8(text).map_err(|e| IniError {
            source_name: name.clone(),
            line: 0,
            message: format!("not valid UTF-8: {e}"),
        })?;
        Ini::parse(&text, &name, allow_no_value)
    }

    /// Parse text. `source_name` appears in error messages.
    pub fn parse(text: &str, source_name: &str, allow_no_value: bool) -> Result<Ini, IniError> {
        let err = |line: usize, message: String| IniError {
            source_name: source_name.to_string(),
            line,
            message,
        };
        let mut ini = Ini {
            source_name: source_name.to_string(),
            ..Ini::default()
        };
        // Values are collected as lists of lines and joined at the end.
        let mut raw_defaults: IndexMap<String, Option<Vec<String>>> = IndexMap::new();
        let mut raw: IndexMap<String, IndexMap<String, Option<Vec<String>>>> = IndexMap::new();
        // None: before any section header. Some(None): [DEFAULT].
        let mut cursect: Option<Option<String>> = None;
        let mut optname: Option<String> = None;
        let mut indent_level = usize::MAX;
        let mut seen_sections: HashSet<String> = HashSet::new();
        let mut seen_options: HashSet<(String, String)> = HashSet::new();

        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (idx, line) in text.lines().enumerate() {
            let lineno = idx + 1;
            let trimmed = line.trim();
            let is_comment = trimmed.starts_with('#') || trimmed.starts_with(';');
            let value = if is_comment { "" } else { trimmed };
            if value.is_empty() {
                // A blank line (not a comment) inside a multi-line value is
                // kept as an empty line of that value.
                if !is_comment {
                    if let (Some(sect), Some(opt)) = (&cursect, &optname) {
                        let target = match sect {
                            None => raw_defaults.get_mut(opt),
                            Some(s) => raw.get_mut(s).and_then(|m| m.get_mut(opt)),
                        };
                        if let Some(Some(lines)) = target {
                            lines.push(String::new());
                        }
                    }
                }
                continue;
            }
            let cur_indent = line.len() - line.trim_start().len();
            if let (Some(sect), Some(opt)) = (&cursect, &optname) {
                if cur_indent > indent_level {
                    let target = match sect {
                        None => raw_defaults.get_mut(opt),
                        Some(s) => raw.get_mut(s).and_then(|m| m.get_mut(opt)),
                    };
                    match target {
                        Some(Some(lines)) => lines.push(value.to_string()),
                        _ => {
                            return Err(err(
                                lineno,
                                format!("continuation line for key {opt:?}, which has no value"),
                            ))
                        }
                    }
                    continue;
                }
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                if header == DEFAULT_SECTION {
                    cursect = Some(None);
                } else {
                    if !seen_sections.insert(header.to_string()) {
                        return Err(err(lineno, format!("section {header:?} already exists")));
                    }
                    raw.entry(header.to_string()).or_default();
                    cursect = Some(Some(header.to_string()));
                }
                optname = None;
                continue;
            }
            let Some(sect) = &cursect else {
                return Err(err(
                    lineno,
                    format!("file contains no section headers; first line: {line:?}"),
                ));
            };
            let (name, val) = match split_option(value) {
                Some((name, val)) => (name, Some(val)),
                None if allow_no_value => (value, None),
                None => return Err(err(lineno, format!("not a key = value line: {line:?}"))),
            };
            let name = name.trim_end().to_lowercase();
            if name.is_empty() {
                return Err(err(lineno, format!("empty key name: {line:?}")));
            }
            let sect_key = sect.clone().unwrap_or_else(|| DEFAULT_SECTION.to_string());
            if !seen_options.insert((sect_key.clone(), name.clone())) {
                return Err(err(
                    lineno,
                    format!("key {name:?} already exists in section {sect_key:?}"),
                ));
            }
            let lines = val.map(|v| vec![v.trim().to_string()]);
            match sect {
                None => {
                    raw_defaults.insert(name.clone(), lines);
                }
                Some(s) => {
                    raw.entry(s.clone())
                        .or_default()
                        .insert(name.clone(), lines);
                }
            }
            optname = Some(name);
        }

        let join = |v: Option<Vec<String>>| v.map(|lines| lines.join("\n").trim_end().to_string());
        ini.defaults = raw_defaults
            .into_iter()
            .map(|(k, v)| (k, join(v)))
            .collect();
        ini.sections = raw
            .into_iter()
            .map(|(s, opts)| (s, opts.into_iter().map(|(k, v)| (k, join(v))).collect()))
            .collect();
        Ok(ini)
    }

    /// The name given when parsing (usually the file path).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Section names in file order (without `DEFAULT`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// Option names of a section, including those from `[DEFAULT]`.
    pub fn keys(&self, section: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .sections
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        for k in self.defaults.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }

    fn raw(&self, section: &str, key: &str) -> Option<&Option<String>> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
    }

    /// The interpolated value of `key` (case-insensitive) in `section`.
    /// `Ok(None)` when the key is absent or has no value.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let key = key.to_lowercase();
        match self.raw(section, &key) {
            Some(Some(v)) => self.interpolate(section, &key, v, 0).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether `key` is present (with or without a value).
    pub fn contains(&self, section: &str, key: &str) -> bool {
        self.raw(section, &key.to_lowercase()).is_some()
    }

    /// All `(key, value)` pairs of a section (including `[DEFAULT]`),
    /// interpolated. Keys without a value are skipped.
    pub fn items(&self, section: &str) -> Result<Vec<(String, String)>, IniError> {
        let mut out = Vec::new();
        for k in self.keys(section) {
            if let Some(v) = self.get(section, &k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        value: &str,
        depth: usize,
    ) -> Result<String, IniError> {
        let fail = |message: String| IniError {
            source_name: self.source_name.clone(),
            line: 0,
            message: format!("[{section}] {key}: {message}"),
        };
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(fail(
                "interpolation nested too deeply (a reference loop?)".into(),
            ));
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push('%');
                rest = r;
            } else if let Some(r) = after.strip_prefix('(') {
                let Some(close) = r.find(")s") else {
                    return Err(fail(format!("bad interpolation syntax in {value:?}")));
                };
                let name = r[..close].to_lowercase();
                let Some(Some(referenced)) = self.raw(section, &name) else {
                    return Err(fail(format!(
                        "{value:?} refers to %({name})s, which is not set"
                    )));
                };
                out.push_str(&self.interpolate(section, &name, referenced, depth + 1)?);
                rest = &r[close + 2..];
            } else {
                return Err(fail(format!(
                    "'%' must be followed by '%' or '(' in {value:?} (write %% for a literal %)"
                )));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `[name]` at the start of a stripped line. Like Python's `\[(.+)\]`, the
/// name runs to the last `]`.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    let name = &inner[..close];
    (!name.is_empty()).then_some(name)
}

/// Split at the first `=` or `:`.
fn split_option(value: &str) -> Option<(&str, &str)> {
    let pos = value.find(['=', ':'])?;
    Some((&value[..pos], value[pos + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, IniError> {
        Ini::parse(text, "test.cfg", true)
    }

    #[test]
    fn both_delimiters_and_case_insensitive_keys() {
        let ini =
            parse("[core]\nMax_Queue: 919\nmax_recursion = 3\nurl = http://x:80/a=b\n").unwrap();
        assert_eq!(
            ini.get("core", "max_queue").unwrap().as_deref(),
            Some("919")
        );
        assert_eq!(
            ini.get("core", "MAX_RECURSION").unwrap().as_deref(),
            Some("3")
        );
        // The first delimiter splits; the rest belongs to the value.
        assert_eq!(
            ini.get("core", "url").unwrap().as_deref(),
            Some("http://x:80/a=b")
        );
        assert_eq!(ini.keys("core"), vec!["max_queue", "max_recursion", "url"]);
    }

    #[test]
    fn first_delimiter_wins() {
        let ini = parse("[s]\na = b: c\nd: e = f\n").unwrap();
        assert_eq!(ini.get("s", "a").unwrap().as_deref(), Some("b: c"));
        assert_eq!(ini.get("s", "d").unwrap().as_deref(), Some("e = f"));
    }

    #[test]
    fn section_names_are_case_sensitive() {
        let ini = parse("[Core]\nName = x\n[core]\nname = y\n").unwrap();
        assert_eq!(ini.get("Core", "name").unwrap().as_deref(), Some("x"));
        assert_eq!(ini.get("core", "name").unwrap().as_deref(), Some("y"));
    }

    #[test]
    fn comments_are_full_line_only() {
        let ini =
            parse("# top\n[s]\n; note\n  # indented comment\na = 1 # not a comment\n").unwrap();
        assert_eq!(
            ini.get("s", "a").unwrap().as_deref(),
            Some("1 # not a comment")
        );
        assert_eq!(ini.keys("s"), vec!["a"]);
    }

    #[test]
    fn continuation_lines() {
        let ini = parse("[options]\nlist = [\"item1\",\n    \"item2\"]\nnext = 2\n").unwrap();
        assert_eq!(
            ini.get("options", "list").unwrap().as_deref(),
            Some("[\"item1\",\n\"item2\"]")
        );
        assert_eq!(ini.get("options", "next").unwrap().as_deref(), Some("2"));
    }

    #[test]
    fn blank_lines_inside_values_are_kept_trailing_ones_dropped() {
        let ini = parse("[s]\na = one\n\n  two\n\n\nb = 3\n").unwrap();
        assert_eq!(ini.get("s", "a").unwrap().as_deref(), Some("one\n\ntwo"));
    }

    #[test]
    fn missing_section_header_is_an_error() {
        let e = parse("Core]\nName = x\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("no section headers"), "{e}");
    }

    #[test]
    fn line_without_delimiter_is_an_error_unless_allowed() {
        assert!(Ini::parse("[s]\n[options\n", "m.stoq", false).is_err());
        let ini = Ini::parse("[s]\nflag\n", "c", true).unwrap();
        assert!(ini.contains("s", "flag"));
        assert_eq!(ini.get("s", "flag").unwrap(), None);
    }

    #[test]
    fn duplicates_are_errors() {
        assert!(parse("[s]\na=1\na=2\n")
            .unwrap_err()
            .message
            .contains("already exists"));
        assert!(parse("[s]\n[s]\n")
            .unwrap_err()
            .message
            .contains("already exists"));
    }

    #[test]
    fn default_section_applies_everywhere() {
        let ini = parse("[DEFAULT]\nbase = /opt\n[a]\nx = 1\n").unwrap();
        assert_eq!(ini.get("a", "base").unwrap().as_deref(), Some("/opt"));
        assert_eq!(ini.keys("a"), vec!["x", "base"]);
        assert_eq!(ini.sections().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn interpolation() {
        let ini = parse("[DEFAULT]\nhome = /opt/stoq\n[core]\nplugins = %(home)s/plugins\npct = 100%%\nbad = 5%\n").unwrap();
        assert_eq!(
            ini.get("core", "plugins").unwrap().as_deref(),
            Some("/opt/stoq/plugins")
        );
        assert_eq!(ini.get("core", "pct").unwrap().as_deref(), Some("100%"));
        let e = ini.get("core", "bad").unwrap_err();
        assert!(e.message.contains("[core] bad"), "{e}");
    }

    #[test]
    fn interpolation_loop_is_an_error_not_a_hang() {
        let ini = parse("[s]\na = %(b)s\nb = %(a)s\n").unwrap();
        assert!(ini
            .get("s", "a")
            .unwrap_err()
            .message
            .contains("too deeply"));
    }

    #[test]
    fn empty_value_is_empty_string() {
        let ini = parse("[core]\nlog_dir:\n").unwrap();
        assert_eq!(ini.get("core", "log_dir").unwrap().as_deref(), Some(""));
    }
}
