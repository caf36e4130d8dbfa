//! `ole` worker: list and carve the streams of an OLE2 compound file
//! (.doc, .xls, .ppt, .msg, encrypted OOXML containers...) and unpack
//! embedded OLE Packager objects (`\x01Ole10Native` streams) to the file
//! they hold.
//!
//! Results (`results.workers.ole`), keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `root_clsid` | CLSID of the root storage, olefile format (`""` when null) |
//! | `streams` | `[{path, size}]`: every stream reached from the root, olefile `listdir()` order; `path` joins names with `/` (control characters such as `\u0001` kept) |
//! | `storages` | paths of every storage |
//! | `ole10native` | `[{stream, label, filename, src_path, tmp_path, size, sha256}]` per parsed `\x01Ole10Native` stream (only when there is one) |
//! | `encryption` | only for encrypted documents: `{method, decrypted, password}` (see [`crate::crypto`]; `method` is `agile`, `standard`, `extensible`, `rc4`, `rc4_cryptoapi` or `xor`), plus `note` saying why it was not decrypted |
//!
//! Extracted payloads (`should_archive = false`, as the public plugin):
//! every stream (option `extract_streams`, up to `max_stream_size`) with
//! `extra_data {index, name}` (`index` in `streams`, `name` the path joined
//! with `_` keeping printable ASCII only). An `\x01Ole10Native` stream is
//! replaced by the file it holds, with `extra_data {index, name (suffixed
//! with _<filename>), filename, ole10native: {label, src_path, tmp_path}}`;
//! embedded files are extracted even when `extract_streams` is false.
//!
//! Encrypted documents are decrypted with the first of `passwords` that
//! opens them (Excel's `VelvetSweatshop` first): an encrypted OOXML
//! container's `EncryptedPackage` stream is replaced by the decrypted
//! package (the .docx/.xlsm... itself, extracted even when
//! `extract_streams` is false), an encrypted workbook's `Workbook`
//! stream by its decrypted records, and an encrypted Word document's
//! `WordDocument`, table (`0Table`/`1Table`) and `Data` streams by their
//! decrypted contents, and an encrypted presentation's `Current User` and
//! `PowerPoint Document` streams likewise; all with `extra_data.decrypted = {method,
//! password}`, and all extracted even when `extract_streams` is false.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, blocking, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

use crate::compound::{is_ole, CompoundFile};
use crate::crypto::{self, Encryption};
use crate::oleobj::{parse_native, NativeObject};
use crate::util::{error_records, parse_size, sha256_hex};

/// Payloads at least this big are parsed on the blocking pool.
pub(crate) const INLINE_LIMIT: usize = 64 * 1024;

/// Default of `max_stream_size`.
pub const DEFAULT_MAX_STREAM_SIZE: u64 = 64 << 20;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "extract_streams",
        "true",
        "extract every stream as a payload (embedded Ole10Native files are extracted either way)",
    ),
    OptionDoc::new(
        "max_stream_size",
        "64M",
        "streams and embedded files larger than this many bytes (k/m/g suffixes allowed) are \
         listed but not extracted",
    ),
    crypto::PASSWORDS_OPTION,
];

/// Options of the `ole` worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OleOptions {
    pub extract_streams: bool,
    pub max_stream_size: u64,
    /// Tried in order on encrypted documents.
    pub passwords: Vec<String>,
}

impl Default for OleOptions {
    fn default() -> Self {
        OleOptions {
            extract_streams: true,
            max_stream_size: DEFAULT_MAX_STREAM_SIZE,
            passwords: crypto::default_passwords(),
        }
    }
}

impl OleOptions {
    /// Options from plugin configuration.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        Ok(OleOptions {
            extract_streams: cfg.bool("extract_streams", true)?,
            max_stream_size: cfg
                .parse_with("max_stream_size", parse_size)?
                .unwrap_or(DEFAULT_MAX_STREAM_SIZE),
            passwords: crypto::passwords_option(cfg),
        })
    }
}

/// One stream of the file.
#[derive(Debug, Clone)]
pub struct OleStream {
    /// Names from the root, as olefile lists them.
    pub path: Vec<String>,
    /// Declared size.
    pub size: u64,
    /// The content (`None` when not read: too big or not wanted); possibly
    /// partial, see `error`.
    pub data: Option<Vec<u8>>,
    /// Why the content is partial.
    pub error: Option<String>,
}

impl OleStream {
    /// Path joined by `/` (olefile style).
    pub fn joined(&self) -> String {
        self.path.join("/")
    }

    /// Whether this is an `\x01Ole10Native` stream.
    pub fn is_ole10native(&self) -> bool {
        self.path
            .last()
            .is_some_and(|n| n.eq_ignore_ascii_case("\u{1}Ole10Native"))
    }
}

/// An embedded file found in an `\x01Ole10Native` stream.
#[derive(Debug, Clone)]
pub struct OleNative {
    /// Index of the stream in [`OleReport::streams`].
    pub stream_index: usize,
    pub native: NativeObject,
}

/// Everything [`parse_ole`] learned about a compound file.
#[derive(Debug, Clone, Default)]
pub struct OleReport {
    pub root_clsid: String,
    pub streams: Vec<OleStream>,
    pub storages: Vec<String>,
    pub ole10native: Vec<OleNative>,
    /// How the document is encrypted, if it is.
    pub encryption: Option<Encryption>,
    /// The decrypted contents that replace streams (index in `streams`):
    /// an OOXML package, a workbook stream, or a Word document's
    /// `WordDocument`, table and `Data` streams.
    pub decrypted: Vec<(usize, Vec<u8>)>,
    /// Inconsistencies and read errors (the results are partial).
    pub errors: Vec<String>,
}

impl OleReport {
    /// The JSON results of the `ole` worker.
    pub fn to_json(&self) -> Value {
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|s| json!({"path": s.joined(), "size": s.size}))
            .collect();
        let mut m = Map::new();
        m.insert("root_clsid".into(), json!(self.root_clsid));
        m.insert("streams".into(), Value::Array(streams));
        m.insert("storages".into(), json!(self.storages));
        if !self.ole10native.is_empty() {
            let natives: Vec<Value> = self
                .ole10native
                .iter()
                .map(|n| {
                    json!({
                        "stream": self.streams[n.stream_index].joined(),
                        "label": n.native.label,
                        "filename": n.native.filename(),
                        "src_path": n.native.src_path,
                        "tmp_path": n.native.tmp_path,
                        "size": n.native.data.len(),
                        "sha256": sha256_hex(&n.native.data),
                    })
                })
                .collect();
            m.insert("ole10native".into(), Value::Array(natives));
        }
        if let Some(e) = &self.encryption {
            m.insert("encryption".into(), e.to_json());
        }
        Value::Object(m)
    }
}

/// Parse a compound file with default options: list every stream and
/// storage, read every stream up to 64 MiB, unpack Ole10Native streams.
/// Never panics; `Err` only when `data` is not a readable compound file.
pub fn parse_ole(data: &[u8]) -> Result<OleReport, String> {
    parse_ole_with(data, &OleOptions::default())
}

/// [`parse_ole`] with options: stream contents are read only when
/// `extract_streams` is set (Ole10Native streams always), and only up to
/// `max_stream_size`.
pub fn parse_ole_with(data: &[u8], opts: &OleOptions) -> Result<OleReport, String> {
    let cf = CompoundFile::open(data)?;
    let mut report = OleReport {
        root_clsid: cf.root_clsid(),
        errors: cf.issues().to_vec(),
        ..OleReport::default()
    };
    for item in cf.list() {
        if item.is_storage {
            report.storages.push(item.joined());
            continue;
        }
        let size = cf.entry(item.sid).map_or(0, |e| e.size);
        let mut stream = OleStream {
            path: item.path.clone(),
            size,
            data: None,
            error: None,
        };
        let wanted = opts.extract_streams || stream.is_ole10native();
        if wanted && size <= opts.max_stream_size {
            let read = cf.read(item.sid);
            if let Some(e) = &read.error {
                report
                    .errors
                    .push(format!("stream {:?}: {e}", stream.joined()));
            }
            stream.error = read.error;
            stream.data = Some(read.data);
        } else if wanted {
            report.errors.push(format!(
                "stream {:?} not read: {size} bytes is over max_stream_size ({})",
                stream.joined(),
                opts.max_stream_size
            ));
        }
        report.streams.push(stream);
    }
    find_encryption(&cf, &mut report, opts);
    for (i, s) in report.streams.iter().enumerate() {
        if !s.is_ole10native() {
            continue;
        }
        let Some(d) = &s.data else { continue };
        match parse_native(d, false) {
            Ok(native) => {
                if native.is_truncated() {
                    report.errors.push(format!(
                        "stream {:?}: embedded file truncated ({} of {} bytes)",
                        s.joined(),
                        native.data.len(),
                        native.declared_size
                    ));
                }
                report.ole10native.push(OleNative {
                    stream_index: i,
                    native,
                });
            }
            Err(e) => report.errors.push(format!("stream {:?}: {e}", s.joined())),
        }
    }
    Ok(report)
}

/// Recognise an encrypted document and decrypt it with `opts.passwords`.
fn find_encryption(cf: &CompoundFile<'_>, report: &mut OleReport, opts: &OleOptions) {
    let index = |name: &str| {
        report
            .streams
            .iter()
            .position(|s| s.path.len() == 1 && s.path[0].eq_ignore_ascii_case(name))
    };
    // A stream's content, read now if the listing did not keep it.
    let content = |report: &OleReport, i: usize| -> Option<Vec<u8>> {
        let s = &report.streams[i];
        if let Some(d) = &s.data {
            return Some(d.clone());
        }
        if s.size > opts.max_stream_size {
            return None;
        }
        let path: Vec<&str> = s.path.iter().map(String::as_str).collect();
        cf.read_path(&path.join("/")).map(|r| r.data)
    };
    if let (Some(info), Some(pkg)) = (index("EncryptionInfo"), index("EncryptedPackage")) {
        let (Some(info_data), Some(pkg_data)) = (content(report, info), content(report, pkg))
        else {
            report
                .errors
                .push("encrypted package not read: over max_stream_size".into());
            return;
        };
        let out = crypto::decrypt_ooxml(&info_data, &pkg_data, &opts.passwords);
        if let Some(package) = out.package {
            report.decrypted.push((pkg, package));
        }
        report.encryption = Some(out.encryption);
        return;
    }
    let out = if let Some(wb) = index("Workbook") {
        content(report, wb).and_then(|d| crypto::decrypt_biff(&d, &opts.passwords))
    } else if let Some(word) = index("WordDocument") {
        content(report, word).and_then(|word_data| {
            let read = |name: &str| index(name).and_then(|i| content(report, i));
            let table = read(crypto::word_table_stream(&word_data));
            let data = read("Data");
            let passwords = &opts.passwords;
            crypto::decrypt_word(&word_data, table.as_deref(), data.as_deref(), passwords)
        })
    } else if let (Some(user), Some(doc)) = (index("Current User"), index("PowerPoint Document")) {
        match (content(report, user), content(report, doc)) {
            (Some(u), Some(d)) => crypto::decrypt_powerpoint(&u, &d, &opts.passwords),
            _ => None,
        }
    } else {
        None
    };
    if let Some(out) = out {
        for (name, plain) in out.streams {
            report.decrypted.extend(index(name).map(|i| (i, plain)));
        }
        report.encryption = Some(out.encryption);
    }
}

/// The public plugin's payload name: the path joined by `_`, keeping
/// printable ASCII only (Python's `string.printable`).
pub fn payload_name(path: &[String]) -> String {
    path.join("_")
        .chars()
        .filter(|c| c.is_ascii_graphic() || " \t\n\r\x0b\x0c".contains(*c))
        .collect()
}

/// Results and extracted payloads for `report`.
pub fn worker_response(report: OleReport, opts: &OleOptions) -> WorkerResponse {
    let results = report.to_json();
    let mut extracted = Vec::new();
    let natives: std::collections::HashMap<usize, &OleNative> = report
        .ole10native
        .iter()
        .map(|n| (n.stream_index, n))
        .collect();
    let mut messages = report.errors.clone();
    for (index, s) in report.streams.iter().enumerate() {
        let name = payload_name(&s.path);
        let plain = report.decrypted.iter().find(|(i, _)| *i == index);
        if let (Some((_, plain)), Some(enc)) = (plain, &report.encryption) {
            let mut meta = PayloadMeta {
                should_archive: false,
                ..PayloadMeta::default()
            };
            meta.extra_data.insert("index".into(), json!(index));
            meta.extra_data.insert("name".into(), json!(name));
            meta.extra_data.insert(
                "decrypted".into(),
                json!({"method": enc.method, "password": enc.password}),
            );
            extracted.push(ExtractedPayload::with_meta(plain.clone(), meta));
            continue;
        }
        if let Some(n) = natives.get(&index) {
            let native = &n.native;
            if native.data.len() as u64 > opts.max_stream_size {
                messages.push(format!(
                    "embedded file in {:?} not extracted: {} bytes is over max_stream_size",
                    s.joined(),
                    native.data.len()
                ));
                continue;
            }
            let filename = native.filename();
            let mut meta = PayloadMeta {
                should_archive: false,
                ..PayloadMeta::default()
            };
            let suffix = filename.clone().unwrap_or_else(|| "olenative".into());
            meta.extra_data.insert("index".into(), json!(index));
            meta.extra_data
                .insert("name".into(), json!(format!("{name}_{suffix}")));
            meta.extra_data.insert("filename".into(), json!(filename));
            meta.extra_data.insert(
                "ole10native".into(),
                json!({
                    "label": native.label,
                    "src_path": native.src_path,
                    "tmp_path": native.tmp_path,
                }),
            );
            extracted.push(ExtractedPayload::with_meta(native.data.clone(), meta));
            continue;
        }
        if !opts.extract_streams {
            continue;
        }
        let Some(data) = &s.data else { continue };
        let mut meta = PayloadMeta {
            should_archive: false,
            ..PayloadMeta::default()
        };
        meta.extra_data.insert("index".into(), json!(index));
        meta.extra_data.insert("name".into(), json!(name));
        extracted.push(ExtractedPayload::with_meta(data.clone(), meta));
    }
    WorkerResponse {
        results: Some(results),
        extracted,
        errors: error_records(&messages),
        ..WorkerResponse::default()
    }
}

/// The `ole` worker.
#[derive(Debug, Clone, Default)]
pub struct OleWorker {
    pub options: OleOptions,
}

#[async_trait]
impl Worker for OleWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if !is_ole(&payload.content) {
            return Ok(None);
        }
        let content = payload.content.clone();
        let opts = self.options.clone();
        let run = move || {
            parse_ole_with(&content, &opts).map(|r| {
                tracing::debug!(
                    streams = r.streams.len(),
                    natives = r.ole10native.len(),
                    issues = r.errors.len(),
                    "ole: parsed compound file"
                );
                worker_response(r, &opts)
            })
        };
        let out = if payload.content.len() < INLINE_LIMIT {
            run()
        } else {
            blocking(run).await?
        };
        out.map(Some).map_err(Into::into)
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("ole", &[PluginClass::Worker], |cfg| {
        let options = OleOptions::from_config(cfg)?;
        Ok(PluginInstance::new().worker(Arc::new(OleWorker { options })))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Carve the streams of OLE2 compound files; unpack embedded Ole10Native (OLE Package) files",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names_keep_printable_ascii() {
        let p = vec![
            "ObjectPool".to_string(),
            "_1577691201".to_string(),
            "\u{1}Ole10Native".to_string(),
        ];
        assert_eq!(payload_name(&p), "ObjectPool__1577691201_Ole10Native");
    }

    #[test]
    fn options_reject_bad_values() {
        let cfg = PluginConfig::new("ole", [("max_stream_size", "huge")]);
        let e = OleOptions::from_config(&cfg).unwrap_err();
        assert!(e.message().contains("max_stream_size") && e.message().contains("huge"));
        let cfg = PluginConfig::new(
            "ole",
            [("extract_streams", "no"), ("max_stream_size", "1k")],
        );
        assert_eq!(
            OleOptions::from_config(&cfg).unwrap(),
            OleOptions {
                extract_streams: false,
                max_stream_size: 1024,
                passwords: crypto::default_passwords(),
            }
        );
    }
}
