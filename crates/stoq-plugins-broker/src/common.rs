//! What the broker plugins share: the queue message format, back-off,
//! date patterns, scan ids and small helpers.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Map, Value};
use stoq_core::{
    ArchiverResponse, Payload, PayloadMeta, PluginError, ProviderItem, Request, RequestMeta,
    StoqResponse,
};

/// Marks a JSON message that carries a payload inline (the key the public
/// `kafka-queue` plugin uses).
pub const IS_PAYLOAD: &str = "_is_payload";
/// Base64 of the payload content.
pub const CONTENT: &str = "_content";
/// The payload's `extra_data`.
pub const PAYLOAD_META: &str = "_payload_meta";
/// The request meta (`source`, `extra_data`, `archive_payloads`).
pub const REQUEST_META: &str = "_request_meta";
/// Workers to dispatch the payload to (its `dispatch_to`).
pub const DISPATCH_TO: &str = "_dispatch_to";

/// Decode one JSON queue message into provider items.
///
/// - `{"_is_payload": true, "_content": "<base64>", "_payload_meta": {..},
///   "_request_meta": {..}, "_dispatch_to": [..]}`: one request with one
///   payload.
/// - any other object, `{"<source archiver>": {<locator>}, ...}`: one
///   archiver task per key (the shape the reference's providers pass on,
///   and what connectors publish with `publish_archive`).
pub fn decode_json_message(text: &[u8]) -> Result<Vec<ProviderItem>, String> {
    let value: Value =
        serde_json::from_slice(text).map_err(|e| format!("message is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("message is not a JSON object".into());
    };
    if obj.get(IS_PAYLOAD).and_then(Value::as_bool) == Some(true) {
        let content = obj
            .get(CONTENT)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a payload message needs a {CONTENT:?} base64 string"))?;
        let content = base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| format!("{CONTENT} is not valid base64: {e}"))?;
        let extra = match obj.get(PAYLOAD_META) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(format!("{PAYLOAD_META} must be an object")),
        };
        let dispatch = string_list(obj.get(DISPATCH_TO), DISPATCH_TO)?;
        let request_meta = request_meta_from(obj.get(REQUEST_META))?;
        let request = payload_request(content, extra, dispatch, request_meta);
        return Ok(vec![ProviderItem::Request(request)]);
    }
    if obj.is_empty() {
        return Err("empty message".into());
    }
    let mut items = Vec::with_capacity(obj.len());
    for (archiver, task) in obj {
        if archiver.starts_with('_') {
            return Err(format!("unknown message key {archiver:?}"));
        }
        items.push(ProviderItem::ArchiverTask {
            archiver,
            task: ArchiverResponse::with_results(task),
        });
    }
    Ok(items)
}

/// One request holding one payload.
pub fn payload_request(
    content: Vec<u8>,
    extra_data: Map<String, Value>,
    dispatch_to: Vec<String>,
    request_meta: RequestMeta,
) -> Request {
    let meta = PayloadMeta {
        extra_data,
        dispatch_to,
        ..PayloadMeta::default()
    };
    Request::new(vec![Payload::with_meta(content, meta)], request_meta)
}

/// Encode a payload as a JSON queue message (the inverse of
/// [`decode_json_message`]).
pub fn encode_payload_message(
    content: &[u8],
    extra_data: &Map<String, Value>,
    request_meta: Option<&RequestMeta>,
) -> String {
    let mut obj = Map::new();
    obj.insert(IS_PAYLOAD.into(), json!(true));
    obj.insert(
        CONTENT.into(),
        json!(base64::engine::general_purpose::STANDARD.encode(content)),
    );
    obj.insert(PAYLOAD_META.into(), Value::Object(extra_data.clone()));
    if let Some(m) = request_meta {
        obj.insert(
            REQUEST_META.into(),
            serde_json::to_value(m).unwrap_or(Value::Null),
        );
    }
    Value::Object(obj).to_string()
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what} must be a list of strings"))
            })
            .collect(),
        Some(Value::String(s)) => Ok(stoq_core::options::split_list(s)),
        Some(_) => Err(format!("{what} must be a list of strings")),
    }
}

/// Parse a request meta object (`source`, `extra_data`, `archive_payloads`).
pub fn request_meta_from(v: Option<&Value>) -> Result<RequestMeta, String> {
    let mut meta = RequestMeta::default();
    let Some(v) = v else { return Ok(meta) };
    let obj = match v {
        Value::Null => return Ok(meta),
        Value::Object(o) => o,
        _ => return Err("request meta must be an object".into()),
    };
    if let Some(s) = obj.get("source") {
        meta.source = match s {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
    }
    match obj.get("extra_data") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => meta.extra_data = m.clone(),
        Some(_) => return Err("request meta extra_data must be an object".into()),
    }
    if let Some(b) = obj.get("archive_payloads") {
        meta.archive_payloads = b
            .as_bool()
            .ok_or("request meta archive_payloads must be a boolean")?;
    }
    Ok(meta)
}

/// The archiver results of every payload of a response, one message per
/// (payload, archiver): `{"<archiver>": {<results>}}`, which a provider
/// turns back into an archiver task. (The reference publishes only the
/// last payload's archivers; this publishes all of them.)
pub fn archiver_messages(response: &StoqResponse) -> Vec<String> {
    let mut out = Vec::new();
    for r in &response.results {
        for (name, results) in &r.archivers {
            let mut task = match results {
                Value::Object(m) => m.clone(),
                other => {
                    let mut m = Map::new();
                    m.insert("results".into(), other.clone());
                    m
                }
            };
            for (k, v) in &r.payload_meta.extra_data {
                task.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut msg = Map::new();
            msg.insert(name.clone(), Value::Object(task));
            out.push(Value::Object(msg).to_string());
        }
    }
    out
}

/// Exponential back-off with a cap and some jitter: 1st retry waits about
/// `base`, then 2x, 4x, ... up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The delay before the next attempt (and count it).
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let d = self.base.saturating_mul(1u32 << exp).min(self.cap);
        // Up to 25% jitter, from the clock's sub-second noise (no RNG dep).
        let noise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos())
            .unwrap_or(0);
        let jitter = d.mul_f64(f64::from(noise % 1000) / 4000.0);
        (d + jitter).min(self.cap + self.cap / 4)
    }

    /// Wait before the next attempt.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A strftime-style pattern (`%Y %m %d %H %j %%`), rendered from a
/// response's ISO 8601 time (UTC). Used for index and key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePattern(String);

impl DatePattern {
    /// Check the pattern: only the directives above are allowed.
    pub fn parse(p: &str) -> Result<Self, String> {
        let mut chars = p.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('Y' | 'm' | 'd' | 'H' | 'j' | '%') => {}
                    Some(o) => {
                        return Err(format!(
                            "unsupported directive %{o} (supported: %Y %m %d %H %j %%)"
                        ))
                    }
                    None => return Err("trailing % (write %% for a literal %)".into()),
                }
            }
        }
        Ok(DatePattern(p.to_string()))
    }

    pub fn has_directives(&self) -> bool {
        self.0.contains('%')
    }

    /// Render with the date of `time` (ISO 8601); an unparsable time uses
    /// the current time.
    pub fn render(&self, time: &str) -> String {
        let t = chrono::DateTime::parse_from_rfc3339(time)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now());
        // Every directive was checked in `parse`, so formatting cannot fail.
        let mut out = String::new();
        use std::fmt::Write as _;
        if write!(out, "{}", t.format(&self.0)).is_err() {
            return self.0.replace('%', "");
        }
        out
    }
}

/// `tracing` and `PluginError` in one: a message prefixed with the plugin.
pub fn perr(plugin: &str, msg: impl std::fmt::Display) -> PluginError {
    PluginError::new(format!("{plugin}: {msg}"))
}

/// Install ring as the process's rustls provider (reqwest is built without
/// one). Idempotent; a provider installed first by the host wins.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    stoq_core::hashing::hex(bytes)
}

/// A name for this consumer: `<hostname>-<pid>`.
pub fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "stoq".into());
    format!("{host}-{}", std::process::id())
}

/// Wait for every receipt of one broker message; true when each of its
/// items was scanned and saved by every connector (and there was at least
/// one). Each failure is logged as `<label> ... ; <then>`.
pub async fn wait_all_saved(
    receipts: Vec<stoq_core::DeliveryReceipt>,
    label: &str,
    then: &str,
) -> bool {
    let mut saved = !receipts.is_empty();
    for r in receipts {
        match r.wait().await {
            Some(stoq_core::Delivery::Saved { .. }) => {}
            Some(stoq_core::Delivery::Unsaved {
                scan_id,
                failed_connectors,
            }) => {
                saved = false;
                tracing::warn!(
                    "{label} (scan {scan_id}) was not saved by {}; {then}",
                    failed_connectors.join(", ")
                );
            }
            Some(stoq_core::Delivery::Failed { reason }) => {
                saved = false;
                tracing::warn!("{label} was not scanned ({reason}); {then}");
            }
            None => saved = false,
        }
    }
    saved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_messages_round_trip() {
        let mut extra = Map::new();
        extra.insert("filename".into(), json!("a.exe"));
        let meta = RequestMeta {
            source: Some("test".into()),
            ..RequestMeta::default()
        };
        let text = encode_payload_message(b"\x00\xffhello", &extra, Some(&meta));
        let items = decode_json_message(text.as_bytes()).unwrap();
        assert_eq!(items.len(), 1);
        let ProviderItem::Request(r) = &items[0] else {
            panic!("not a request")
        };
        assert_eq!(&r.payloads[0].content[..], b"\x00\xffhello");
        assert_eq!(r.payloads[0].meta().extra_data["filename"], json!("a.exe"));
        assert_eq!(r.request_meta.source.as_deref(), Some("test"));
    }

    #[test]
    fn other_objects_are_archiver_tasks() {
        let items = decode_json_message(br#"{"s3": {"bucket": "b", "key": "k"}}"#).unwrap();
        match &items[..] {
            [ProviderItem::ArchiverTask { archiver, task }] => {
                assert_eq!(archiver, "s3");
                assert_eq!(task.results, Some(json!({"bucket": "b", "key": "k"})));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_messages_are_refused() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"{}",
            br#"{"_is_payload": true}"#,
            br#"{"_is_payload": true, "_content": "!!"}"#,
            br#"{"_is_payload": true, "_content": "", "_payload_meta": 3}"#,
            br#"{"_unknown": 1}"#,
        ] {
            assert!(
                decode_json_message(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(100) && d[0] < Duration::from_millis(130));
        assert!(d[1] >= Duration::from_millis(200));
        assert!(d[5] >= Duration::from_secs(1) && d[5] <= Duration::from_millis(1250));
    }

    #[test]
    fn date_patterns() {
        let p = DatePattern::parse("stoq-%Y.%m.%d").unwrap();
        assert_eq!(
            p.render("2026-11-23T00:13:23.874654+00:00"),
            "stoq-2026.11.23"
        );
        let p = DatePattern::parse("x-%Y-%m").unwrap();
        assert_eq!(p.render("2026-01-31T23:59:59+00:00"), "x-2026-01");
        assert!(DatePattern::parse("%s").is_err());
        assert!(DatePattern::parse("a%").is_err());
    }
}
