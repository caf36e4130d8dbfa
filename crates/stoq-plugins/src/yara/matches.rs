//! Plain-data YARA matches and everything derived from them without
//! yara-x: the worker's JSON and the dispatcher's routing.
//!
//! Nothing here touches yara-x, so the dispatcher's handling of rule meta
//! can be fuzzed on arbitrary input ([`dispatch_from_matches`] never
//! panics).

use serde_json::{json, Map, Value};
use stoq_core::{DispatcherResponse, Error};

/// One matching rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleMatch {
    pub rule: String,
    pub namespace: String,
    pub tags: Vec<String>,
    /// Meta entries in source order. Values are JSON strings, integers,
    /// floats or booleans (see [`meta_value`] for byte strings).
    pub meta: Vec<(String, Value)>,
    /// Matched strings, sorted by offset then by pattern order, at most the
    /// `strings_limit` first.
    pub strings: Vec<StringMatch>,
    /// Whether `strings` was cut to the limit.
    pub strings_truncated: bool,
}

/// One match of one pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringMatch {
    /// The pattern's identifier with its `$`, e.g. `$a`.
    pub identifier: String,
    pub offset: usize,
    /// The matched bytes.
    pub data: Vec<u8>,
    /// The key of a pattern with the `xor` modifier (`Some(0)` for the
    /// plain text when the key range includes 0).
    pub xor_key: Option<u8>,
}

impl RuleMatch {
    /// The meta object (a later duplicate key overrides an earlier one).
    pub fn meta_map(&self) -> Map<String, Value> {
        self.meta.iter().cloned().collect()
    }

    /// The worker's JSON for this match: `rule`, `namespace`, `tags`,
    /// `meta`, `strings` and, only when the strings were cut,
    /// `strings_truncated: true`.
    pub fn to_worker_json(&self) -> Value {
        let mut m = self.header();
        m.insert(
            "strings".into(),
            Value::Array(self.strings.iter().map(StringMatch::to_json).collect()),
        );
        if self.strings_truncated {
            m.insert("strings_truncated".into(), Value::Bool(true));
        }
        Value::Object(m)
    }

    /// `rule`, `namespace`, `tags`, `meta`.
    fn header(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("rule".into(), Value::String(self.rule.clone()));
        m.insert("namespace".into(), Value::String(self.namespace.clone()));
        m.insert(
            "tags".into(),
            Value::Array(self.tags.iter().cloned().map(Value::String).collect()),
        );
        m.insert("meta".into(), Value::Object(self.meta_map()));
        m
    }
}

impl StringMatch {
    /// `identifier`, `offset`, `length`, `data`, `encoding` and, for
    /// patterns with the `xor` modifier, `xor_key`.
    pub fn to_json(&self) -> Value {
        let (data, encoding) = encode_data(&self.data);
        let mut m = Map::new();
        m.insert("identifier".into(), Value::String(self.identifier.clone()));
        m.insert("offset".into(), Value::from(self.offset));
        m.insert("length".into(), Value::from(self.data.len()));
        m.insert("data".into(), Value::String(data));
        m.insert("encoding".into(), Value::String(encoding.into()));
        if let Some(k) = self.xor_key {
            m.insert("xor_key".into(), Value::from(k));
        }
        Value::Object(m)
    }
}

/// Matched bytes as JSON text: the text itself (`"text"`) when the bytes
/// are UTF-8 without control characters other than tab, CR and LF;
/// otherwise lower-case hex (`"hex"`).
pub fn encode_data(data: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(data) {
        Ok(s)
            if s.chars()
                .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')) =>
        {
            (s.to_string(), "text")
        }
        _ => (stoq_core::hashing::hex(data), "hex"),
    }
}

/// A byte-string meta value as text: valid UTF-8 runs as they are, every
/// other byte as `\xNN` (so nothing is lost and the text reads like the
/// rule source).
pub fn meta_value(bytes: &[u8]) -> Value {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Value::String(out)
}

/// Meta key prefix naming the plain text of an `xor` pattern, so keys
/// longer than one byte can be recovered (`xor_plaintext_for_string_<id>`
/// with `<id>` the pattern identifier without `$`).
pub const XOR_PLAINTEXT_PREFIX: &str = "xor_plaintext_for_string_";

/// The dispatcher's answer for the matches of the dispatch rules.
///
/// For each matching rule, in order:
/// - meta `plugin` (a string; comma-separated names, trimmed, lower-cased)
///   names the workers the payload goes to. A non-string `plugin` is
///   reported in `errors` and ignored.
/// - meta `save` equal to `"false"` (any case, trimmed) or the boolean
///   `false` sets `should_archive = false` through `payload_meta_update`.
///   Nothing else changes `should_archive` (as in the Python plugin, `"True"`
///   never turns archiving back on).
/// - `meta[name]`, for every named plugin, is `{rule, namespace, tags,
///   meta}`; when several rules route to one plugin the last wins.
/// - XOR keys: for patterns with the `xor` modifier the key is the one
///   yara-x reports, or, when the meta holds
///   `xor_plaintext_for_string_<id>`, the shortest repeating key that turns
///   that plain text into the matched bytes (multi-byte keys). With
///   `xor_first_match` the key of the first XOR match (lowest offset) goes
///   into the match's `meta.xorkey` (an integer for a one-byte key, else a
///   list of integers) unless the rule sets `xorkey` itself; without it,
///   every XOR match goes into `meta.xor_info` as `[offset, identifier,
///   [key bytes]]`.
///
/// Never panics, whatever the meta values.
pub fn dispatch_from_matches(matches: &[RuleMatch], xor_first_match: bool) -> DispatcherResponse {
    let mut dr = DispatcherResponse::default();
    for m in matches {
        let meta = m.meta_map();
        if save_is_false(meta.get("save")) {
            dr.payload_meta_update.should_archive = Some(false);
        }
        let names = match meta.get("plugin") {
            None => Vec::new(),
            Some(Value::String(s)) => plugin_names(s),
            Some(other) => {
                dr.errors.push(Error::new(format!(
                    "yara rule {}:{}: meta plugin must be a string, not {}",
                    m.namespace, m.rule, other
                )));
                Vec::new()
            }
        };
        if names.is_empty() {
            continue;
        }
        let mut entry = m.header();
        if let Some(Value::Object(meta_out)) = entry.get_mut("meta") {
            add_xor_meta(m, &meta, meta_out, xor_first_match);
        }
        let entry = Value::Object(entry);
        for name in names {
            if !dr.plugin_names.contains(&name) {
                dr.plugin_names.push(name.clone());
            }
            dr.meta.insert(name, entry.clone());
        }
    }
    dr
}

/// `a, B ,,c` → `["a", "b", "c"]`, first occurrence kept.
fn plugin_names(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in s.split(',') {
        let p = p.trim().to_lowercase();
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn save_is_false(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("false"),
        Some(Value::Bool(b)) => !b,
        _ => false,
    }
}

fn add_xor_meta(
    m: &RuleMatch,
    meta: &Map<String, Value>,
    out: &mut Map<String, Value>,
    xor_first_match: bool,
) {
    let mut xors: Vec<(&StringMatch, Vec<u8>)> = m
        .strings
        .iter()
        .filter_map(|s| xor_key_of(s, meta).map(|k| (s, k)))
        .collect();
    if xors.is_empty() {
        return;
    }
    // Stable: equal offsets keep pattern order.
    xors.sort_by_key(|(s, _)| s.offset);
    if xor_first_match {
        if !out.contains_key("xorkey") {
            out.insert("xorkey".into(), key_json(&xors[0].1));
        }
    } else {
        let info = xors
            .iter()
            .map(|(s, k)| json!([s.offset, s.identifier, k]))
            .collect();
        out.insert("xor_info".into(), Value::Array(info));
    }
}

/// An integer for a one-byte key, else the list of bytes.
fn key_json(key: &[u8]) -> Value {
    match key {
        [k] => Value::from(*k),
        _ => Value::from(key.to_vec()),
    }
}

/// The key of one XOR match; `None` for matches without the modifier and
/// for the plain text itself (key 0).
fn xor_key_of(s: &StringMatch, meta: &Map<String, Value>) -> Option<Vec<u8>> {
    let single = s.xor_key?;
    let id = s.identifier.strip_prefix('$').unwrap_or(&s.identifier);
    let plain = meta
        .get(&format!("{XOR_PLAINTEXT_PREFIX}{id}"))
        .and_then(Value::as_str)
        .map(str::as_bytes);
    let key = match plain {
        Some(p) if !p.is_empty() && !s.data.is_empty() => repeating_key(&s.data, p),
        _ => vec![single],
    };
    if key.iter().all(|&b| b == 0) {
        None
    } else {
        Some(key)
    }
}

/// The shortest key `k` such that `data[i] == plain[i] ^ k[i % k.len()]`
/// over the common length. Both inputs must be non-empty.
pub fn repeating_key(data: &[u8], plain: &[u8]) -> Vec<u8> {
    let stream: Vec<u8> = data.iter().zip(plain).map(|(d, p)| d ^ p).collect();
    let n = stream.len();
    (1..=n)
        .find(|&p| (p..n).all(|i| stream[i] == stream[i - p]))
        .map(|p| stream[..p].to_vec())
        .unwrap_or(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(meta: &[(&str, Value)], strings: Vec<StringMatch>) -> RuleMatch {
        RuleMatch {
            rule: "r".into(),
            namespace: "default".into(),
            tags: vec![],
            meta: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            strings,
            strings_truncated: false,
        }
    }

    #[test]
    fn data_encoding() {
        assert_eq!(
            encode_data(b"This program"),
            ("This program".into(), "text")
        );
        assert_eq!(encode_data(b"a\tb\r\n"), ("a\tb\r\n".into(), "text"));
        assert_eq!(encode_data(b"MZ\x90\x00"), ("4d5a9000".into(), "hex"));
        assert_eq!(encode_data(b"\x1b[0m"), ("1b5b306d".into(), "hex"));
        assert_eq!(encode_data("é".as_bytes()), ("é".into(), "text"));
        assert_eq!(meta_value(b"A\xffB"), json!("A\\xffB"));
    }

    #[test]
    fn keys_from_plaintext() {
        let plain = b"This program";
        let one: Vec<u8> = plain.iter().map(|b| b ^ 0x15).collect();
        assert_eq!(repeating_key(&one, plain), [0x15]);
        let two: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [0x11, 0x10][i % 2])
            .collect();
        assert_eq!(repeating_key(&two, plain), [0x11, 0x10]);
        // No period shorter than the text: the whole stream.
        assert_eq!(repeating_key(b"ab", b"\0\0"), b"ab");
    }

    #[test]
    fn routing_and_save() {
        let a = m(
            &[("plugin", json!(" A, b ,,a")), ("save", json!(" FALSE "))],
            vec![],
        );
        let b = m(&[("plugin", json!(7)), ("save", json!(true))], vec![]);
        let dr = dispatch_from_matches(&[a, b], true);
        assert_eq!(dr.plugin_names, ["a", "b"]);
        assert_eq!(dr.meta["a"]["meta"]["plugin"], " A, b ,,a");
        assert_eq!(dr.payload_meta_update.should_archive, Some(false));
        assert_eq!(dr.errors.len(), 1);
        assert!(dr.errors[0].error.contains("meta plugin must be a string"));

        let c = m(&[("plugin", json!("x")), ("save", json!("True"))], vec![]);
        let dr = dispatch_from_matches(&[c], true);
        assert_eq!(dr.payload_meta_update.should_archive, None);
    }

    #[test]
    fn explicit_xorkey_is_kept() {
        let s = StringMatch {
            identifier: "$x".into(),
            offset: 3,
            data: vec![1],
            xor_key: Some(9),
        };
        let r = m(
            &[("plugin", json!("xordecode")), ("xorkey", json!("65"))],
            vec![s],
        );
        let dr = dispatch_from_matches(&[r], true);
        assert_eq!(dr.meta["xordecode"]["meta"]["xorkey"], "65");
    }
}
