//! Fuzz target: the yara dispatcher's handling of rule metadata (plugin
//! names, `save`, XOR keys) must never panic, whatever the rules say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stoq_core::serde_json::Value;
use stoq_plugins::yara::RuleMatch;

fuzz_target!(|data: &[u8]| {
    // Pieces separated by NUL: rule name, then meta key/value pairs.
    let text = String::from_utf8_lossy(data);
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
        strings: vec![],
        strings_truncated: false,
    };
    let _ = stoq_plugins::yara::dispatch_from_matches(std::slice::from_ref(&m), true);
    let _ = stoq_plugins::yara::dispatch_from_matches(&[m.clone(), m], false);
});
