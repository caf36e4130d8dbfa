//! `pdf` worker: metadata, page count, encryption, JavaScript, actions and
//! embedded files of a PDF, with the embedded files extracted.
//!
//! The document is parsed with lopdf (panics inside lopdf are caught). A
//! raw-bytes keyword scan in the manner of pdfid runs on every PDF, so a
//! document lopdf cannot open still gets its keyword counts (and a
//! `parse_error`). Documents encrypted with an empty user password are
//! decrypted (lopdf tries it on load); for others `encryption.decrypted` is
//! false and only the unencrypted structure is reported.
//!
//! Results, keys in this order (`encryption`: only when encrypted;
//! `info` ... `embedded_files`: only when lopdf opened the file;
//! `parse_error`: only when it did not):
//!
//! | key | value |
//! |---|---|
//! | `version` | header version, e.g. `"1.7"` |
//! | `encrypted` | the trailer has `/Encrypt` |
//! | `encryption` | `{v, r, key_length, decrypted}` (+ `filter` when not decrypted) |
//! | `pages` | page count (`null` when encrypted and not decrypted, or not parsed) |
//! | `info` | the `/Info` dictionary, keys without the slash, values as pypdf's `str()` |
//! | `acroform`, `xfa` | the catalog has `/AcroForm`; that form has `/XFA` |
//! | `javascript` | `[{object, length, truncated, code}]` for every `/JS` (string or stream) |
//! | `actions` | `{open_action, types{S: n}, launch[], uri[], submit_form[], goto_remote[], import_data[], additional_actions}` |
//! | `embedded_files` | `[{name, filename, source, size, sha256}]` (+ `error`) |
//! | `keywords` | raw counts of `/JS`, `/JavaScript`, `/OpenAction`, `/AA`, `/Launch`, `/EmbeddedFile`, `/URI`, `/AcroForm`, `/XFA`, `/ObjStm`, `/Encrypt` |
//! | `obfuscated_keywords` | the same names written with `#xx` escapes, when any |
//! | `parse_error` | why lopdf could not open the file |

use std::sync::Arc;

use serde_json::Value;
use stoq_core::{
    async_trait, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta, PluginClass,
    PluginConfig, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

mod analyse;
pub mod keywords;

pub use analyse::{
    analyse_pdf, analyse_pdf_with, find_header, EmbeddedFile, PdfAnalysis, PdfOptions,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "extract_embedded",
        "true",
        "extract embedded files (name tree, file-attachment annotations, orphan \
         /EmbeddedFile streams) as payloads with extra_data {filename}",
    ),
    OptionDoc::new(
        "max_stream_size",
        "50000000",
        "largest size in bytes one stream may decode to (object streams, embedded files, \
         JavaScript); larger embedded files are listed with an error and not extracted",
    ),
    OptionDoc::new(
        "max_total_size",
        "200000000",
        "most bytes decoded for all embedded files of one document together; files past it \
         are listed with an error and not extracted",
    ),
    OptionDoc::new(
        "max_javascript_chars",
        "20000",
        "JavaScript code longer than this many characters is cut in the results",
    ),
];

/// The `pdf` worker.
#[derive(Debug, Clone, Default)]
pub struct PdfWorker {
    extract_embedded: bool,
    opts: PdfOptions,
}

impl PdfWorker {
    /// Build from plugin options.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let defaults = PdfOptions::default();
        let extract_embedded = cfg.bool("extract_embedded", true)?;
        let max_stream_size =
            crate::util::byte_limit(cfg, "max_stream_size", defaults.max_stream_size)?;
        let max_total_size =
            crate::util::byte_limit(cfg, "max_total_size", defaults.max_total_size)?;
        let max_javascript_chars =
            cfg.number("max_javascript_chars", defaults.max_javascript_chars)?;
        Ok(PdfWorker {
            extract_embedded,
            opts: PdfOptions {
                max_stream_size,
                max_total_size,
                max_javascript_chars,
                keep_embedded_content: extract_embedded,
            },
        })
    }
}

#[async_trait]
impl Worker for PdfWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if find_header(&payload.content).is_none() {
            return Ok(None);
        }
        let content = payload.content.clone();
        let opts = self.opts.clone();
        let analysis =
            crate::util::run_cpu(content.len(), move || analyse_pdf_with(&content, &opts)).await?;
        let Some(analysis) = analysis else {
            return Ok(None);
        };
        if let Some(e) = analysis.results.get("parse_error") {
            tracing::debug!(payload_id = payload.id(), error = %e, "pdf: lopdf could not open the document");
        }
        let mut response = WorkerResponse::with_results(Value::Object(analysis.results));
        if self.extract_embedded {
            for f in analysis.embedded {
                let Some(content) = f.content else {
                    continue;
                };
                let meta = match f.filename.or(f.name) {
                    Some(name) => PayloadMeta::with_extra("filename", name),
                    None => PayloadMeta::default(),
                };
                response
                    .extracted
                    .push(ExtractedPayload::with_meta(content, meta));
            }
        }
        Ok(Some(response))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("pdf", &[PluginClass::Worker], |cfg| {
        Ok(PluginInstance::new().worker(Arc::new(PdfWorker::from_config(cfg)?)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "PDF metadata, pages, encryption, JavaScript, actions and URIs; extracts embedded files",
    )
    .options(OPTIONS)
}
