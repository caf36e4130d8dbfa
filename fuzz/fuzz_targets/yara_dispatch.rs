//! Fuzz target: the yara dispatcher's handling of rule metadata (plugin
//! names, `save`, XOR keys) must never panic, whatever the rules say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stoq_core::serde_json::Value;
use stoq_plugins::yara::{RuleMatch, StringMatch};

fuzz_target!(|data: &[u8]| {
    // Before the first 0x01: the rule, as NUL-separated pieces (rule name,
    // then meta key/value pairs). After it: string matches separated by
    // 0x02, each `flags key data...` (flags bit 0: an xor key is present;
    // bits 1-2 pick the identifier), so the XOR-key recovery sees matched
    // bytes and `xor_plaintext_for_string_*` meta together.
    let (rule_part, strings_part) = match data.iter().position(|&b| b == 1) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let strings: Vec<StringMatch> = strings_part
        .split(|&b| b == 2)
        .enumerate()
        .filter(|(_, c)| c.len() >= 2)
        .map(|(i, c)| StringMatch {
            identifier: format!("$s{}", (c[0] >> 1) & 3),
            offset: i * 7,
            data: c[2..].to_vec(),
            xor_key: (c[0] & 1 == 1).then_some(c[1]),
        })
        .collect();
    let text = String::from_utf8_lossy(rule_part);
    let mut pieces = text.split('\0');
    let rule = pieces.next().unwrap_or_default().to_string();
    let mut meta = Vec::new();
    while let (Some(k), Some(v)) = (pieces.next(), pieces.next()) {
        let value = match v.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => match v {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(v.to_string()),
            },
        };
        meta.push((k.to_string(), value));
    }
    let m = RuleMatch {
        rule,
        namespace: "default".into(),
        tags: vec![],
        meta,
        strings,
        strings_truncated: false,
    };
    let _ = stoq_plugins::yara::dispatch_from_matches(std::slice::from_ref(&m), true);
    let _ = stoq_plugins::yara::dispatch_from_matches(&[m.clone(), m], false);
});
