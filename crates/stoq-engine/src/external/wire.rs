//! Framing of the external plugin protocol (docs/PLUGIN_PROTOCOL.md) and the
//! conversions between stoQ's data model and its JSON messages.

use std::path::Path;

use serde_json::{json, Map as JsonMap, Value};
use stoq_core::Bytes;
use stoq_core::{
    ArchiverResponse, DecoratorResponse, DispatcherResponse, Error, ExtractedPayload, Payload,
    PayloadMeta, PayloadMetaUpdate, ProviderItem, Request, RequestMeta, WorkerResponse,
};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version this host speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// Longest header line accepted from a plugin.
const MAX_HEADER: usize = 256 << 20;

/// One message: a JSON header and the blobs it announces.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub header: JsonMap<String, Value>,
    pub blobs: Vec<Bytes>,
}

impl Message {
    pub fn new(header: Value) -> Self {
        Message {
            header: match header {
                Value::Object(m) => m,
                _ => JsonMap::new(),
            },
            blobs: Vec::new(),
        }
    }

    pub fn with_blobs(mut self, blobs: Vec<Bytes>) -> Self {
        self.blobs = blobs;
        self
    }

    pub fn kind(&self) -> &str {
        self.header
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.get(key)
    }
}

/// What went wrong reading a message.
#[derive(Debug)]
pub enum ReadError {
    /// The plugin closed its output.
    Eof,
    Io(std::io::Error),
    /// Output that is not a protocol message.
    Protocol(String),
}

/// Write one message and flush it.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> std::io::Result<()> {
    let mut header = msg.header.clone();
    if !msg.blobs.is_empty() {
        header.insert(
            "blobs".into(),
            Value::Array(msg.blobs.iter().map(|b| json!(b.len())).collect()),
        );
    }
    let mut line = serde_json::to_vec(&Value::Object(header)).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    for b in &msg.blobs {
        w.write_all(b).await?;
    }
    w.flush().await
}

/// Read one message. `max_blob` bounds the bytes of all its blobs together.
pub async fn read_message<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max_blob: u64,
) -> Result<Message, ReadError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_HEADER as u64 + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(ReadError::Io)?;
    if n == 0 {
        return Err(ReadError::Eof);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_HEADER {
            ReadError::Protocol(format!("header longer than {MAX_HEADER} bytes"))
        } else {
            ReadError::Eof
        });
    }
    let header: Value = serde_json::from_slice(&line)
        .map_err(|_| ReadError::Protocol(format!("not a JSON header: {:?}", preview(&line))))?;
    let Value::Object(header) = header else {
        return Err(ReadError::Protocol(format!(
            "header is not a JSON object: {:?}",
            preview(&line)
        )));
    };
    let mut blobs = Vec::new();
    if let Some(lens) = header.get("blobs") {
        let lens = lens
            .as_array()
            .ok_or_else(|| ReadError::Protocol("\"blobs\" is not a list".into()))?;
        let mut total: u64 = 0;
        for l in lens {
            let l = l
                .as_u64()
                .ok_or_else(|| ReadError::Protocol(format!("bad blob length {l}")))?;
            total = total.saturating_add(l);
            if total > max_blob {
                return Err(ReadError::Protocol(format!(
                    "blobs of {total} bytes exceed the limit of {max_blob}"
                )));
            }
            let mut buf = vec![0u8; l as usize];
            r.read_exact(&mut buf).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    ReadError::Eof
                } else {
                    ReadError::Io(e)
                }
            })?;
            blobs.push(Bytes::from(buf));
        }
    }
    Ok(Message { header, blobs })
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let mut cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// A content reference inside a message (`{"blob": i}` or `{"path": p}`).
pub fn content_ref(index: usize) -> Value {
    json!({ "blob": index })
}

/// Resolve a content reference of a plugin's answer.
pub fn resolve_content(v: &Value, blobs: &[Bytes]) -> Result<Bytes, String> {
    if let Some(i) = v.get("blob") {
        let i = i.as_u64().ok_or("blob index is not a number")? as usize;
        return blobs
            .get(i)
            .cloned()
            .ok_or_else(|| format!("blob {i} referenced but only {} sent", blobs.len()));
    }
    if let Some(p) = v.get("path").and_then(Value::as_str) {
        return std::fs::read(Path::new(p))
            .map(Bytes::from)
            .map_err(|e| format!("cannot read content file {p}: {e}"));
    }
    Err(format!("not a content reference: {v}"))
}

// ---------------------------------------------------------------- outgoing

/// The payload argument; its content is blob `blob`.
pub fn payload_arg(payload: &Payload, blob: usize) -> Value {
    json!({
        "content": content_ref(blob),
        "dispatch_meta": payload.dispatch_meta,
        "results": payload.results,
    })
}

/// The request argument: every payload's results, without content.
pub fn request_arg(request: &Request) -> Value {
    json!({
        "results": request.payloads.iter().map(|p| &p.results).collect::<Vec<_>>(),
        "request_meta": request.request_meta,
        "errors": request.errors,
    })
}

// ---------------------------------------------------------------- incoming

fn as_object<'a>(v: &'a Value, what: &str) -> Result<Option<&'a JsonMap<String, Value>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(format!("{what} must be an object or null, got {other}")),
    }
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what} must hold strings, got {i}"))
            })
            .collect(),
        Some(other) => Err(format!("{what} must be a list, got {other}")),
    }
}

fn object_or_empty(v: Option<&Value>, what: &str) -> Result<JsonMap<String, Value>, String> {
    match v {
        None | Some(Value::Null) => Ok(JsonMap::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(format!("{what} must be an object, got {other}")),
    }
}

fn bool_or(v: Option<&Value>, default: bool, what: &str) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{what} must be true or false, got {other}")),
    }
}

/// Errors a plugin returned. A bare string is kept as the error text and
/// attributed to the plugin (and payload, when there is one).
pub fn errors(
    v: Option<&Value>,
    plugin: &str,
    payload_id: Option<&str>,
) -> Result<Vec<Error>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("errors must be a list, got {other}")),
    };
    let attribute = |e: Error| {
        let e = if e.plugin_name.is_none() {
            e.plugin(plugin)
        } else {
            e
        };
        match (e.payload_id.is_none(), payload_id) {
            (true, Some(id)) => e.payload(id),
            _ => e,
        }
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(attribute(Error::new(s.clone()))),
            Value::Object(m) => {
                let text = match m.get("error") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(format!("error record without \"error\": {i}")),
                };
                let field = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                Ok(attribute(Error {
                    error: text,
                    plugin_name: field("plugin_name"),
                    payload_id: field("payload_id"),
                }))
            }
            other => Err(format!(
                "an error must be a string or an object, got {other}"
            )),
        })
        .collect()
}

/// A `payload_meta` object of a new payload; absent keys take defaults.
pub fn payload_meta(v: Option<&Value>) -> Result<PayloadMeta, String> {
    let Some(m) = v
        .map(|v| as_object(v, "payload_meta"))
        .transpose()?
        .flatten()
    else {
        return Ok(PayloadMeta::default());
    };
    Ok(PayloadMeta {
        should_archive: bool_or(m.get("should_archive"), true, "should_archive")?,
        should_scan: bool_or(m.get("should_scan"), true, "should_scan")?,
        extra_data: object_or_empty(m.get("extra_data"), "extra_data")?,
        dispatch_to: string_list(m.get("dispatch_to"), "dispatch_to")?,
    })
}

fn meta_update(v: Option<&Value>) -> Result<PayloadMetaUpdate, String> {
    let Some(m) = v
        .map(|v| as_object(v, "payload_meta_update"))
        .transpose()?
        .flatten()
    else {
        return Ok(PayloadMetaUpdate::default());
    };
    let opt_bool = |k: &str| -> Result<Option<bool>, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("{k} must be true or false, got {other}")),
        }
    };
    Ok(PayloadMetaUpdate {
        should_archive: opt_bool("should_archive")?,
        should_scan: opt_bool("should_scan")?,
        extra_data: object_or_empty(m.get("extra_data"), "extra_data")?,
    })
}

/// A new payload sent by a plugin (`content` plus optional `payload_meta`).
pub fn new_payload(v: &Value, blobs: &[Bytes]) -> Result<(Bytes, PayloadMeta), String> {
    let m = as_object(v, "payload")?.ok_or("payload is null")?;
    let content = resolve_content(m.get("content").ok_or("payload without content")?, blobs)?;
    Ok((content, payload_meta(m.get("payload_meta"))?))
}

fn results(m: &JsonMap<String, Value>) -> Option<Value> {
    match m.get("results") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    }
}

pub fn worker_response(
    v: &Value,
    blobs: &[Bytes],
    plugin: &str,
    payload_id: &str,
) -> Result<Option<WorkerResponse>, String> {
    let Some(m) = as_object(v, "worker response")? else {
        return Ok(None);
    };
    let extracted = match m.get("extracted") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| new_payload(i, blobs).map(|(c, meta)| ExtractedPayload::with_meta(c, meta)))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("extracted must be a list, got {other}")),
    };
    Ok(Some(WorkerResponse {
        results: results(m),
        extracted,
        errors: errors(m.get("errors"), plugin, Some(payload_id))?,
        dispatch_to: string_list(m.get("dispatch_to"), "dispatch_to")?,
        payload_meta_update: meta_update(m.get("payload_meta_update"))?,
    }))
}

pub fn dispatcher_response(
    v: &Value,
    plugin: &str,
    payload_id: &str,
) -> Result<Option<DispatcherResponse>, String> {
    let Some(m) = as_object(v, "dispatcher response")? else {
        return Ok(None);
    };
    Ok(Some(DispatcherResponse {
        plugin_names: string_list(m.get("plugin_names"), "plugin_names")?,
        meta: object_or_empty(m.get("meta"), "meta")?,
        errors: errors(m.get("errors"), plugin, Some(payload_id))?,
        payload_meta_update: meta_update(m.get("payload_meta_update"))?,
    }))
}

pub fn archiver_response(
    v: &Value,
    plugin: &str,
    payload_id: Option<&str>,
) -> Result<Option<ArchiverResponse>, String> {
    let Some(m) = as_object(v, "archiver response")? else {
        return Ok(None);
    };
    Ok(Some(ArchiverResponse {
        results: results(m),
        errors: errors(m.get("errors"), plugin, payload_id)?,
    }))
}

pub fn decorator_response(v: &Value, plugin: &str) -> Result<Option<DecoratorResponse>, String> {
    let Some(m) = as_object(v, "decorator response")? else {
        return Ok(None);
    };
    Ok(Some(DecoratorResponse {
        results: results(m),
        errors: errors(m.get("errors"), plugin, None)?,
    }))
}

fn request_meta(v: Option<&Value>) -> Result<Option<RequestMeta>, String> {
    let Some(m) = v
        .map(|v| as_object(v, "request_meta"))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    Ok(Some(RequestMeta {
        archive_payloads: bool_or(m.get("archive_payloads"), true, "archive_payloads")?,
        source: match m.get("source") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("source must be a string, got {other}")),
        },
        extra_data: object_or_empty(m.get("extra_data"), "extra_data")?,
    }))
}

/// The items of a provider's `put` message.
pub fn provider_items(item: &Value, blobs: &[Bytes]) -> Result<Vec<ProviderItem>, String> {
    let m = as_object(item, "item")?.ok_or("item is null")?;
    if let Some(p) = m.get("payload") {
        let (content, meta) = new_payload(p, blobs)?;
        return Ok(vec![ProviderItem::Payload(Box::new(Payload::with_meta(
            content, meta,
        )))]);
    }
    if let Some(r) = m.get("request") {
        let r = as_object(r, "request")?.ok_or("request is null")?;
        let payloads = match r.get("payloads") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| new_payload(i, blobs).map(|(c, meta)| Payload::with_meta(c, meta)))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("payloads must be a list, got {other}")),
        };
        let meta = request_meta(r.get("request_meta"))?.unwrap_or_default();
        return Ok(vec![ProviderItem::Request(Request::new(payloads, meta))]);
    }
    if let Some(t) = m.get("archiver_task") {
        let t = as_object(t, "archiver_task")?.ok_or("archiver_task is null")?;
        return Ok(t
            .iter()
            .map(|(archiver, task)| ProviderItem::ArchiverTask {
                archiver: archiver.clone(),
                task: ArchiverResponse {
                    results: Some(task.clone()),
                    errors: Vec::new(),
                },
            })
            .collect());
    }
    Err(format!("unknown item: {item}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_with_blobs() {
        let msg = Message::new(json!({"type": "call", "id": 3}))
            .with_blobs(vec![Bytes::from_static(b"ab\ncd"), Bytes::new()]);
        let mut buf = Vec::new();
        write_message(&mut buf, &msg).await.unwrap();
        assert!(buf.starts_with(b"{\"type\":\"call\",\"id\":3,\"blobs\":[5,0]}\n"));
        let mut r = tokio::io::BufReader::new(&buf[..]);
        let back = read_message(&mut r, 100).await.unwrap();
        assert_eq!(back.kind(), "call");
        assert_eq!(
            back.blobs,
            vec![Bytes::from_static(b"ab\ncd"), Bytes::new()]
        );
        assert!(matches!(
            read_message(&mut r, 100).await,
            Err(ReadError::Eof)
        ));
    }

    #[tokio::test]
    async fn garbage_and_limits_are_protocol_errors() {
        let mut r = tokio::io::BufReader::new(&b"this is not json\n"[..]);
        match read_message(&mut r, 100).await {
            Err(ReadError::Protocol(m)) => assert!(m.contains("this is not json"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut r =
            tokio::io::BufReader::new(&b"{\"type\":\"return\",\"blobs\":[10]}\n0123456789"[..]);
        assert!(matches!(
            read_message(&mut r, 9).await,
            Err(ReadError::Protocol(_))
        ));
        // A blob cut short is the plugin going away.
        let mut r = tokio::io::BufReader::new(&b"{\"type\":\"return\",\"blobs\":[10]}\n0123"[..]);
        assert!(matches!(
            read_message(&mut r, 100).await,
            Err(ReadError::Eof)
        ));
    }

    #[test]
    fn worker_answers_become_responses() {
        let blobs = [Bytes::from_static(b"inner")];
        let v = json!({
            "results": {"k": 1},
            "extracted": [{"content": {"blob": 0}, "payload_meta": {"extra_data": {"filename": "a"}}}],
            "errors": ["plain", {"error": "rec", "plugin_name": "other"}],
            "dispatch_to": ["x"],
            "payload_meta_update": {"should_archive": false},
        });
        let r = worker_response(&v, &blobs, "w", "pid").unwrap().unwrap();
        assert_eq!(r.results, Some(json!({"k": 1})));
        assert_eq!(r.extracted[0].content, Bytes::from_static(b"inner"));
        assert_eq!(r.extracted[0].payload_meta.extra_data["filename"], "a");
        assert!(r.extracted[0].payload_meta.should_scan);
        assert_eq!(r.errors[0], Error::new("plain").plugin("w").payload("pid"));
        assert_eq!(r.errors[1].plugin_name.as_deref(), Some("other"));
        assert_eq!(r.dispatch_to, ["x"]);
        assert_eq!(r.payload_meta_update.should_archive, Some(false));
        assert!(worker_response(&Value::Null, &[], "w", "p")
            .unwrap()
            .is_none());
        // An explicit empty result object is kept (stored as {}).
        let r = worker_response(&json!({"results": {}}), &[], "w", "p")
            .unwrap()
            .unwrap();
        assert_eq!(r.results, Some(json!({})));
        // Bad shapes and dangling blob references are errors, not panics.
        assert!(worker_response(
            &json!({"extracted": [{"content": {"blob": 4}}]}),
            &blobs,
            "w",
            "p"
        )
        .is_err());
        assert!(worker_response(&json!({"dispatch_to": "x"}), &[], "w", "p").is_err());
        assert!(worker_response(&json!([1]), &[], "w", "p").is_err());
    }

    #[test]
    fn provider_items_of_every_kind() {
        let blobs = [Bytes::from_static(b"one")];
        let items = provider_items(&json!({"payload": {"content": {"blob": 0}}}), &blobs).unwrap();
        assert!(matches!(&items[0], ProviderItem::Payload(p) if &p.content[..] == b"one"));
        let items = provider_items(
            &json!({"request": {"payloads": [{"content": {"blob": 0}}], "request_meta": {"source": "s"}}}),
            &blobs,
        )
        .unwrap();
        assert!(
            matches!(&items[0], ProviderItem::Request(r) if r.request_meta.source.as_deref() == Some("s"))
        );
        let items =
            provider_items(&json!({"archiver_task": {"arc": {"path": "/x"}}}), &[]).unwrap();
        assert!(
            matches!(&items[0], ProviderItem::ArchiverTask { archiver, .. } if archiver == "arc")
        );
        assert!(provider_items(&json!({"what": 1}), &[]).is_err());
    }
}
