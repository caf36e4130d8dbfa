//! The stoQ v3 data model.
//!
//! Every type here serialises to JSON with exactly the keys, in exactly the
//! order, of the Python reference (stoQ v3 `data_classes.py`). Field order in
//! the structs *is* the JSON key order, so do not reorder fields.
//!
//! JSON objects inside results (`extra_data`, worker results, ...) are
//! [`serde_json::Map`]s built with `preserve_order`, so keys keep their
//! insertion order and the output is deterministic.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// A JSON object with insertion-ordered keys.
pub type Map = serde_json::Map<String, Value>;

/// Serialise any model value as the reference's `str()` does: JSON with a
/// four-space indent and non-ASCII text kept as is.
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(512);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising our own model types cannot fail: every map key is a string.
    if value.serialize(&mut ser).is_err() {
        return String::from("null");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Serialise on one line (the reference's `dumps(..., compactly=True)` minus
/// its `", "` separators, which carry no information).
pub fn to_json_compact<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

macro_rules! display_as_json {
    ($($t:ty),* $(,)?) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&to_json_pretty(self))
            }
        }
    )*};
}

/// An error record in `StoqResponse.errors`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
    pub plugin_name: Option<String>,
    pub payload_id: Option<String>,
}

impl Error {
    /// An error with only a message.
    pub fn new(error: impl Into<String>) -> Self {
        Error {
            error: error.into(),
            plugin_name: None,
            payload_id: None,
        }
    }

    /// Set the plugin this error belongs to.
    pub fn plugin(mut self, plugin_name: impl Into<String>) -> Self {
        self.plugin_name = Some(plugin_name.into());
        self
    }

    /// Set the payload this error belongs to.
    pub fn payload(mut self, payload_id: impl Into<String>) -> Self {
        self.payload_id = Some(payload_id.into());
        self
    }
}

/// Metadata about one payload, supplied by whoever created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayloadMeta {
    pub should_archive: bool,
    pub should_scan: bool,
    pub extra_data: Map,
    pub dispatch_to: Vec<String>,
}

impl Default for PayloadMeta {
    fn default() -> Self {
        PayloadMeta {
            should_archive: true,
            should_scan: true,
            extra_data: Map::new(),
            dispatch_to: Vec::new(),
        }
    }
}

impl PayloadMeta {
    /// Default metadata with one `extra_data` entry.
    pub fn with_extra(key: impl Into<String>, value: impl Into<Value>) -> Self {
        let mut meta = PayloadMeta::default();
        meta.extra_data.insert(key.into(), value.into());
        meta
    }
}

/// Changes a dispatcher or worker asks the engine to make to the payload it
/// was given. The reference lets plugins mutate the live payload; here the
/// payload is shared read-only while plugins run, so they describe the change
/// and the engine applies it after the plugin returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayloadMetaUpdate {
    pub should_archive: Option<bool>,
    pub should_scan: Option<bool>,
    /// Keys merged into (and overriding) `payload_meta.extra_data`.
    pub extra_data: Map,
}

impl PayloadMetaUpdate {
    pub fn is_empty(&self) -> bool {
        self.should_archive.is_none() && self.should_scan.is_none() && self.extra_data.is_empty()
    }

    /// Apply the update to `meta`.
    pub fn apply_to(&self, meta: &mut PayloadMeta) {
        if let Some(v) = self.should_archive {
            meta.should_archive = v;
        }
        if let Some(v) = self.should_scan {
            meta.should_scan = v;
        }
        for (k, v) in &self.extra_data {
            meta.extra_data.insert(k.clone(), v.clone());
        }
    }
}

/// Names of the plugins that ran on a payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginsRun {
    pub workers: Vec<String>,
    pub archivers: Vec<String>,
}

/// Everything stoQ learned about one payload: the element type of
/// `StoqResponse.results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayloadResults {
    pub size: u64,
    pub payload_id: String,
    pub payload_meta: PayloadMeta,
    pub plugins_run: PluginsRun,
    /// Parent payload ids; parallel to `extracted_by`.
    pub extracted_from: Vec<String>,
    /// Names of the extracting plugins; parallel to `extracted_from`.
    pub extracted_by: Vec<String>,
    /// Worker name → that worker's results.
    pub workers: Map,
    /// Archiver name → that archiver's results.
    pub archivers: Map,
}

impl PayloadResults {
    /// Results for a payload of `size` bytes with a fresh random id.
    pub fn new(size: u64, payload_meta: PayloadMeta) -> Self {
        PayloadResults {
            size,
            payload_id: new_id(),
            payload_meta,
            plugins_run: PluginsRun::default(),
            extracted_from: Vec::new(),
            extracted_by: Vec::new(),
            workers: Map::new(),
            archivers: Map::new(),
        }
    }
}

/// A new random (v4) UUID in lower-case hyphenated form.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A payload: its content plus everything known about it.
///
/// `content` is a [`Bytes`], so clones share the buffer: handing a payload to
/// several plugins never copies its content.
///
/// The SHA-256 of the content is computed at most once ([`Payload::sha256`])
/// and shared by clones; the engine needs it for deduplication and the
/// `hash` plugin reuses it. Do not replace `content` after that digest has
/// been computed: build a new `Payload` instead.
#[derive(Clone, Debug)]
pub struct Payload {
    pub content: Bytes,
    /// Dispatcher name → the metadata that dispatcher attached this round.
    pub dispatch_meta: IndexMap<String, Map>,
    pub results: PayloadResults,
    sha256: Arc<OnceLock<[u8; 32]>>,
}

impl Payload {
    /// A payload with default metadata.
    pub fn new(content: impl Into<Bytes>) -> Self {
        Self::with_meta(content, PayloadMeta::default())
    }

    /// A payload with the given metadata. Unlike the reference, `size` is
    /// always the byte length of the content.
    pub fn with_meta(content: impl Into<Bytes>, payload_meta: PayloadMeta) -> Self {
        let content = content.into();
        let results = PayloadResults::new(content.len() as u64, payload_meta);
        Payload {
            content,
            dispatch_meta: IndexMap::new(),
            results,
            sha256: Arc::default(),
        }
    }

    /// SHA-256 of the content, computed on first use and then cached.
    pub fn sha256(&self) -> [u8; 32] {
        *self
            .sha256
            .get_or_init(|| crate::hashing::sha256(&self.content))
    }

    /// The cached SHA-256, if it has been computed.
    pub fn sha256_if_known(&self) -> Option<[u8; 32]> {
        self.sha256.get().copied()
    }

    /// A payload extracted from `parent_id` by the plugin `extracted_by`.
    pub fn extracted(
        extracted: ExtractedPayload,
        extracted_by: impl Into<String>,
        parent_id: impl Into<String>,
    ) -> Self {
        let mut p = Self::with_meta(extracted.content, extracted.payload_meta);
        p.results.extracted_by.push(extracted_by.into());
        p.results.extracted_from.push(parent_id.into());
        p
    }

    /// Set the payload id (tests and providers that carry their own ids).
    pub fn with_id(mut self, payload_id: impl Into<String>) -> Self {
        self.results.payload_id = payload_id.into();
        self
    }

    /// Shorthand for `self.results.payload_id`.
    pub fn id(&self) -> &str {
        &self.results.payload_id
    }

    /// Shorthand for `self.results.payload_meta`.
    pub fn meta(&self) -> &PayloadMeta {
        &self.results.payload_meta
    }
}

/// Metadata about a whole request (one scan).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestMeta {
    pub archive_payloads: bool,
    pub source: Option<String>,
    pub extra_data: Map,
}

impl Default for RequestMeta {
    fn default() -> Self {
        RequestMeta {
            archive_payloads: true,
            source: None,
            extra_data: Map::new(),
        }
    }
}

/// The state of one scan: every payload seen so far, the request metadata
/// and the errors recorded so far. Dispatchers and workers receive it
/// read-only.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub payloads: Vec<Payload>,
    pub request_meta: RequestMeta,
    pub errors: Vec<Error>,
    /// The scan id the response will carry; a new random one when `None`.
    /// A provider that may deliver the same work twice sets a stable id so
    /// its results are saved under one name.
    pub scan_id: Option<String>,
}

impl Request {
    pub fn new(payloads: Vec<Payload>, request_meta: RequestMeta) -> Self {
        Request {
            payloads,
            request_meta,
            errors: Vec::new(),
            scan_id: None,
        }
    }

    /// Set the scan id of the response.
    pub fn with_scan_id(mut self, scan_id: impl Into<String>) -> Self {
        self.scan_id = Some(scan_id.into());
        self
    }
}

/// Serialise bytes as text: UTF-8 when they are UTF-8, otherwise lossily
/// (invalid sequences become U+FFFD). Only used for the `Display` of
/// responses that carry raw content.
fn serialize_bytes_lossy<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// A payload a worker found inside the payload it scanned.
#[derive(Clone, Debug, Serialize)]
pub struct ExtractedPayload {
    #[serde(serialize_with = "serialize_bytes_lossy")]
    pub content: Bytes,
    pub payload_meta: PayloadMeta,
}

impl ExtractedPayload {
    pub fn new(content: impl Into<Bytes>) -> Self {
        Self::with_meta(content, PayloadMeta::default())
    }

    pub fn with_meta(content: impl Into<Bytes>, payload_meta: PayloadMeta) -> Self {
        ExtractedPayload {
            content: content.into(),
            payload_meta,
        }
    }
}

/// What a worker returns.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerResponse {
    /// `None` means "no entry in `results.workers`"; `Some(json!({}))` stores
    /// an empty object.
    pub results: Option<Value>,
    pub extracted: Vec<ExtractedPayload>,
    pub errors: Vec<Error>,
    /// More workers to run on the payload just scanned, next round.
    pub dispatch_to: Vec<String>,
    /// Changes to the scanned payload's metadata (not part of the JSON).
    #[serde(skip)]
    pub payload_meta_update: PayloadMetaUpdate,
}

impl WorkerResponse {
    /// A response carrying only results.
    pub fn with_results(results: impl Into<Value>) -> Self {
        WorkerResponse {
            results: Some(results.into()),
            ..Default::default()
        }
    }
}

/// What an archiver returns from `archive`, and the task handed to `get`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiverResponse {
    pub results: Option<Value>,
    #[serde(default)]
    pub errors: Vec<Error>,
}

impl ArchiverResponse {
    pub fn with_results(results: impl Into<Value>) -> Self {
        ArchiverResponse {
            results: Some(results.into()),
            errors: Vec::new(),
        }
    }
}

/// What a dispatcher returns.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DispatcherResponse {
    pub plugin_names: Vec<String>,
    pub meta: Map,
    /// Unlike the reference, these are recorded in `StoqResponse.errors`.
    pub errors: Vec<Error>,
    /// Changes to the payload's metadata, e.g. `should_archive = false` for a
    /// YARA rule with `save = "False"` (not part of the JSON).
    #[serde(skip)]
    pub payload_meta_update: PayloadMetaUpdate,
}

/// What a decorator returns.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DecoratorResponse {
    pub results: Option<Value>,
    pub errors: Vec<Error>,
}

/// The complete result of one scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoqResponse {
    pub results: Vec<PayloadResults>,
    pub request_meta: RequestMeta,
    pub errors: Vec<Error>,
    /// ISO 8601 with a UTC offset, e.g. `2026-11-23T00:13:23.874654+00:00`.
    pub time: String,
    pub decorators: Map,
    pub scan_id: String,
    /// Names of the connectors whose `save` failed for this response (not
    /// part of the JSON; the failures are also in `errors`).
    #[serde(skip)]
    pub failed_connectors: Vec<String>,
}

/// The current time as ISO 8601 with microseconds and a `+00:00` offset.
pub fn now_iso8601() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

impl StoqResponse {
    /// The response for a finished request, with a new scan id and the
    /// current time.
    pub fn new(request: Request) -> Self {
        StoqResponse {
            results: request.payloads.into_iter().map(|p| p.results).collect(),
            request_meta: request.request_meta,
            errors: request.errors,
            time: now_iso8601(),
            decorators: Map::new(),
            scan_id: request.scan_id.unwrap_or_else(new_id),
            failed_connectors: Vec::new(),
        }
    }

    /// One response per (payload, worker result) pair, each holding a single
    /// result with a single worker entry; for indexing one document per
    /// worker. Payloads without worker results contribute nothing.
    pub fn split(&self) -> Vec<StoqResponse> {
        let mut out = Vec::new();
        for result in &self.results {
            for (name, value) in &result.workers {
                let mut one = result.clone();
                one.workers = Map::new();
                one.workers.insert(name.clone(), value.clone());
                out.push(StoqResponse {
                    results: vec![one],
                    request_meta: self.request_meta.clone(),
                    errors: self.errors.clone(),
                    time: self.time.clone(),
                    decorators: self.decorators.clone(),
                    scan_id: self.scan_id.clone(),
                    failed_connectors: Vec::new(),
                });
            }
        }
        out
    }

    /// For each payload in results order, the results of that payload and
    /// of everything extracted from it, directly or not, in results order.
    /// Each payload appears at most once per group, and descendants are
    /// found wherever they stand in `results` (a deduplicated payload can
    /// stand before one of its parents).
    pub fn subresponse_results(&self) -> Vec<Vec<PayloadResults>> {
        use std::collections::HashSet;
        let mut all = Vec::with_capacity(self.results.len());
        for root in &self.results {
            let mut family: HashSet<&str> = HashSet::new();
            family.insert(root.payload_id.as_str());
            loop {
                let mut grew = false;
                for r in &self.results {
                    if !family.contains(r.payload_id.as_str())
                        && r.extracted_from
                            .iter()
                            .any(|id| family.contains(id.as_str()))
                    {
                        family.insert(r.payload_id.as_str());
                        grew = true;
                    }
                }
                if !grew {
                    break;
                }
            }
            let mut group = vec![root.clone()];
            group.extend(
                self.results
                    .iter()
                    .filter(|r| r.payload_id != root.payload_id)
                    .filter(|r| family.contains(r.payload_id.as_str()))
                    .cloned(),
            );
            all.push(group);
        }
        all
    }
}

display_as_json!(
    Error,
    PayloadMeta,
    PayloadResults,
    RequestMeta,
    ExtractedPayload,
    WorkerResponse,
    ArchiverResponse,
    DispatcherResponse,
    DecoratorResponse,
    StoqResponse,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_computed_once_and_shared_by_clones() {
        let p = Payload::new(&b"The quick brown fox"[..]);
        let clone = p.clone();
        assert_eq!(p.sha256_if_known(), None);
        let h = clone.sha256();
        assert_eq!(p.sha256_if_known(), Some(h));
        assert_eq!(
            crate::hashing::hex(&h),
            "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9"
        );
        // A new payload has its own cache.
        assert_eq!(Payload::new(&b"other"[..]).sha256_if_known(), None);
    }
}
