//! `xordecode` worker: rolling-XOR decode with a key taken from the
//! dispatcher metadata.
//!
//! The key is the first `xorkey` entry found anywhere in
//! `payload.dispatch_meta` (depth-first, in insertion order; the `yara`
//! dispatcher puts it at `dispatch_meta.yara.xordecode.meta.xorkey`). It may
//! be an integer (`65`), a string of comma-separated integers (`"65"`,
//! `"41,52,63"`, `0x` hex allowed) or a list of integers (or of such
//! strings). Every byte must be 0-255. Without `xorkey`, the key of the
//! first entry of a `xor_info` list (`[offset, identifier, [key bytes]]`,
//! what the `yara` dispatcher writes with `xor_first_match = false`) is
//! used.
//!
//! No key: no results (`Ok(None)`). A key that does not parse is an error.
//!
//! Results: none. Extracted: the decoded payload, `extra_data`
//! `{"xorkey": [ints]}`; the scanned payload's `extra_data.xorkey` is set to
//! the same list (as the Python plugin does).

use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, ExtractedPayload, Map, ModuleDescriptor, Payload, PayloadMeta, PluginClass,
    PluginError, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

/// Deepest nesting searched in the dispatch metadata.
const MAX_DEPTH: usize = 32;
/// Longest key accepted.
const MAX_KEY_LEN: usize = 4096;

/// `data` XOR `key`, the key repeated over the data. An empty key leaves
/// the data as it is.
pub fn xor_rolling(data: &[u8], key: &[u8]) -> Vec<u8> {
    if key.is_empty() {
        return data.to_vec();
    }
    data.iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect()
}

fn find_key<'a>(v: &'a Value, name: &str, depth: usize) -> Option<&'a Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Object(m) => m
            .get(name)
            .or_else(|| m.values().find_map(|c| find_key(c, name, depth + 1))),
        Value::Array(items) => items.iter().find_map(|c| find_key(c, name, depth + 1)),
        _ => None,
    }
}

fn find_in_meta<'a>(meta: &'a indexmap::IndexMap<String, Map>, name: &str) -> Option<&'a Value> {
    meta.values().find_map(|m| {
        m.get(name)
            .or_else(|| m.values().find_map(|c| find_key(c, name, 1)))
    })
}

fn parse_int(s: &str) -> Result<u8, String> {
    let s = s.trim();
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse::<u8>(),
    };
    parsed.map_err(|_| format!("{s:?} is not a byte value (0-255)"))
}

fn parse_key_value(v: &Value) -> Result<Vec<u8>, String> {
    let one = |v: &Value| -> Result<Vec<u8>, String> {
        match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .map(|b| vec![b])
                .ok_or_else(|| format!("{n} is not a byte value (0-255)")),
            Value::String(s) => s.split(',').map(parse_int).collect(),
            other => Err(format!("unexpected key element {other}")),
        }
    };
    let key = match v {
        Value::Array(items) => {
            let mut key = Vec::new();
            for i in items {
                key.extend(one(i)?);
            }
            key
        }
        other => one(other)?,
    };
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("key longer than {MAX_KEY_LEN} bytes"));
    }
    Ok(key)
}

/// The XOR key from dispatcher metadata (see the module docs); `Ok(None)`
/// when there is none.
pub fn key_from_dispatch_meta(
    meta: &indexmap::IndexMap<String, Map>,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(v) = find_in_meta(meta, "xorkey") {
        return match v {
            Value::Null => Ok(None),
            Value::Bool(false) => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v => parse_key_value(v)
                .map(Some)
                .map_err(|e| format!("invalid xorkey {v}: {e}")),
        };
    }
    if let Some(Value::Array(info)) = find_in_meta(meta, "xor_info") {
        if let Some(Value::Array(first)) = info.first() {
            if let Some(k) = first.get(2) {
                return parse_key_value(k)
                    .map(Some)
                    .map_err(|e| format!("invalid xor_info key {k}: {e}"));
            }
        }
    }
    Ok(None)
}

/// The `xordecode` worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct XorDecode;

#[async_trait]
impl Worker for XorDecode {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let key = key_from_dispatch_meta(&payload.dispatch_meta).map_err(PluginError::new)?;
        let Some(key) = key else {
            tracing::debug!(
                payload_id = payload.id(),
                "xordecode: no xorkey in dispatch_meta"
            );
            return Ok(None);
        };
        let content = payload.content.clone();
        let k = key.clone();
        let decoded =
            crate::util::run_cpu(content.len(), move || xor_rolling(&content, &k)).await?;
        let key_json = json!(key);
        let mut response = WorkerResponse {
            extracted: vec![ExtractedPayload::with_meta(
                decoded,
                PayloadMeta::with_extra("xorkey", key_json.clone()),
            )],
            ..WorkerResponse::default()
        };
        response
            .payload_meta_update
            .extra_data
            .insert("xorkey".into(), key_json);
        Ok(Some(response))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("xordecode", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(XorDecode)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Decode a rolling-XOR payload with the xorkey found in dispatcher metadata (e.g. from yara)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: Value) -> indexmap::IndexMap<String, Map> {
        let mut m = indexmap::IndexMap::new();
        m.insert("yara".to_string(), v.as_object().unwrap().clone());
        m
    }

    #[test]
    fn key_forms() {
        let at =
            |k: Value| key_from_dispatch_meta(&meta(json!({"xordecode": {"meta": {"xorkey": k}}})));
        assert_eq!(at(json!(65)).unwrap(), Some(vec![65]));
        assert_eq!(at(json!("65")).unwrap(), Some(vec![65]));
        assert_eq!(at(json!([65])).unwrap(), Some(vec![65]));
        assert_eq!(at(json!("41, 52,63")).unwrap(), Some(vec![41, 52, 63]));
        assert_eq!(at(json!([41, 52, 63])).unwrap(), Some(vec![41, 52, 63]));
        assert_eq!(at(json!("0x15")).unwrap(), Some(vec![0x15]));
        assert_eq!(at(json!(null)).unwrap(), None);
        assert_eq!(at(json!("")).unwrap(), None);
        for bad in [
            json!(256),
            json!(-1),
            json!("a,b"),
            json!([]),
            json!({"k": 1}),
            json!(1.5),
        ] {
            assert!(at(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn xor_info_fallback_and_absence() {
        let m = meta(json!({"xordecode": {"meta": {"xor_info": [[13, "$a", [17, 16]]]}}}));
        assert_eq!(key_from_dispatch_meta(&m).unwrap(), Some(vec![17, 16]));
        assert_eq!(
            key_from_dispatch_meta(&meta(json!({"x": {"meta": {}}}))).unwrap(),
            None
        );
        assert_eq!(
            key_from_dispatch_meta(&indexmap::IndexMap::new()).unwrap(),
            None
        );
    }

    #[test]
    fn rolling() {
        assert_eq!(xor_rolling(b"\x01\x02\x03", &[1, 2]), vec![0, 0, 2]);
        assert_eq!(xor_rolling(b"ab", &[]), b"ab");
    }
}
