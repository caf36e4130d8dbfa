//! `decompress` worker: unpack archives and compressed streams; every
//! member becomes an extracted payload.
//!
//! Read natively (pure Rust): zip (ZipCrypto and WinZip AES passwords),
//! tar, gzip, bzip2, xz, lzma, tar inside any of those, 7z (AES passwords,
//! encrypted headers), cab, ar/.deb, cpio, rpm (its compressed cpio
//! payload). RAR, ACE, ARJ, LZH and ISO go through an external tool found
//! on `PATH` at load time ([`external`]). The format is found from magic
//! bytes; data that is no known archive gives no result (not an error).
//!
//! Every byte decompressed is counted by one shared helper ([`limits`]):
//! per-member size, total bytes per archive, entry count and compression
//! ratio. Hitting a budget records an error and keeps what was extracted.
//! Nesting depth is bounded by the engine's `max_recursion`. Member names
//! are metadata only: nothing is written to disk (except the private temp
//! directory of an external tool).
//!
//! Results (`results.workers.decompress`), keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `format` | `zip`, `tar`, `tar.gz`, `gzip`, `7z`, `cab`, `rar`, ... |
//! | `members` | entries the archive lists (files, directories, links) |
//! | `extracted` | members extracted as payloads |
//! | `skipped` | up to 100 `{path, reason}` for members not extracted |
//! | `skipped_total` | only when `skipped` was cut: how many in all |
//! | `password` | only when a password opened something: which one |
//! | `tool` | only for formats read by an external tool: its name |
//!
//! Each extracted payload has `extra_data` `{filename, path,
//! archive_format}` plus `encrypted: true` when it was encrypted.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, blocking, Error, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker,
    WorkerResponse,
};

mod cab;
pub mod detect;
pub mod external;
mod extract;
pub mod limits;
mod sevenz;
mod stream;
mod tar;
mod unix;
mod zip;

pub use detect::{detect, Format};
pub use external::{ExternalTools, Tool, ToolKind};
pub use extract::{basename, extract, extract_with, Extraction, Member, Options, Skipped};
pub use limits::{Limits, Stop};

/// Default of the `passwords` option.
pub const DEFAULT_PASSWORDS: &str = "infected,password";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "passwords",
        DEFAULT_PASSWORDS,
        "comma list of passwords tried in order on encrypted members (zip ZipCrypto/AES, 7z, \
         external tools); unencrypted content never needs one. A payload's \
         extra_data.passwords (list or comma string) is tried first",
    ),
    OptionDoc::new(
        "maximum_size",
        "50000000",
        "largest member extracted, in bytes; a larger member is skipped with an error",
    ),
    OptionDoc::new(
        "max_total_size",
        "500000000",
        "most bytes decompressed from one archive (members kept plus data decoded to reach or \
         skip members); extraction stops there, keeping what was extracted",
    ),
    OptionDoc::new(
        "max_entries",
        "10000",
        "most entries (files, directories, links) read from one archive",
    ),
    OptionDoc::new(
        "max_ratio",
        "200",
        "highest uncompressed/compressed ratio, checked once 16 MiB have come out (per member \
         for zip, per archive or outer stream otherwise); 0 turns it off",
    ),
    OptionDoc::new(
        "archive_extracted",
        "true",
        "should_archive of the extracted payloads",
    ),
    OptionDoc::new(
        "always_dispatch",
        "",
        "comma list of workers every extracted payload is dispatched to",
    ),
    OptionDoc::new(
        "external_tools",
        "auto",
        "programs for the formats not read natively (rar, ace, arj, lzh, iso): auto (7z, 7zz, \
         7za, unar, unrar found on PATH at load), none, or a comma list of names or paths",
    ),
];

/// The parsed options.
#[derive(Clone, Debug)]
pub struct DecompressConfig {
    pub limits: Limits,
    pub passwords: Vec<String>,
    pub archive_extracted: bool,
    pub always_dispatch: Vec<String>,
    pub external: ExternalTools,
}

impl Default for DecompressConfig {
    fn default() -> Self {
        DecompressConfig {
            limits: Limits::default(),
            passwords: stoq_core::options::split_list(DEFAULT_PASSWORDS),
            archive_extracted: true,
            always_dispatch: Vec::new(),
            external: ExternalTools::none(),
        }
    }
}

fn positive(cfg: &PluginConfig, key: &str, default: u64, zero_ok: bool) -> PluginResult<u64> {
    Ok(cfg
        .parse_with(key, |v| {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| "expected a non-negative integer".to_string())?;
            if n == 0 && !zero_ok {
                return Err("must be at least 1".into());
            }
            Ok(n)
        })?
        .unwrap_or(default))
}

impl DecompressConfig {
    /// Parse plugin options; a bad value is an error naming the option.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let d = Limits::default();
        let limits = Limits {
            maximum_size: positive(cfg, "maximum_size", d.maximum_size, false)?,
            max_total_size: positive(cfg, "max_total_size", d.max_total_size, false)?,
            max_entries: positive(cfg, "max_entries", d.max_entries, false)?,
            max_ratio: positive(cfg, "max_ratio", d.max_ratio, true)?,
        };
        let passwords = match cfg.get_str("passwords") {
            Some(v) => stoq_core::options::split_list(v),
            None => stoq_core::options::split_list(DEFAULT_PASSWORDS),
        };
        let external = cfg
            .parse_with("external_tools", ExternalTools::from_option)?
            .map_or_else(|| ExternalTools::from_option("auto"), Ok)?;
        Ok(DecompressConfig {
            limits,
            passwords,
            archive_extracted: cfg.bool("archive_extracted", true)?,
            always_dispatch: cfg.list("always_dispatch"),
            external,
        })
    }
}

/// The `decompress` worker.
#[derive(Debug, Default)]
pub struct DecompressWorker {
    cfg: Arc<DecompressConfig>,
}

impl DecompressWorker {
    pub fn new(cfg: DecompressConfig) -> Self {
        DecompressWorker { cfg: Arc::new(cfg) }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DecompressConfig {
        &self.cfg
    }
}

/// Passwords from `extra_data.passwords`: a list of strings or a comma
/// string.
fn payload_passwords(extra: &Map<String, Value>) -> Vec<String> {
    match extra.get("passwords") {
        Some(Value::String(s)) => stoq_core::options::split_list(s),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The worker results for an extraction.
pub fn results_json(ex: &Extraction) -> Value {
    let mut r = Map::new();
    r.insert(
        "format".into(),
        json!(ex.format.map(Format::as_str).unwrap_or_default()),
    );
    r.insert("members".into(), json!(ex.members));
    r.insert("extracted".into(), json!(ex.extracted.len()));
    r.insert(
        "skipped".into(),
        Value::Array(
            ex.skipped
                .iter()
                .map(|s| json!({"path": s.path, "reason": s.reason}))
                .collect(),
        ),
    );
    if ex.skipped_total > ex.skipped.len() as u64 {
        r.insert("skipped_total".into(), json!(ex.skipped_total));
    }
    if let Some(p) = &ex.password {
        r.insert("password".into(), json!(p));
    }
    if let Some(t) = &ex.tool {
        r.insert("tool".into(), json!(t));
    }
    Value::Object(r)
}

/// The payload metadata of one extracted member.
pub fn member_meta(m: &Member, format: Format, cfg: &DecompressConfig) -> PayloadMeta {
    let mut extra = Map::new();
    extra.insert("filename".into(), json!(m.filename));
    extra.insert("path".into(), json!(m.path));
    extra.insert("archive_format".into(), json!(format.as_str()));
    if m.encrypted {
        extra.insert("encrypted".into(), json!(true));
    }
    PayloadMeta {
        should_archive: cfg.archive_extracted,
        should_scan: true,
        extra_data: extra,
        dispatch_to: cfg.always_dispatch.clone(),
    }
}

/// The worker response for an extraction (`None` when not an archive).
pub fn response(ex: Extraction, cfg: &DecompressConfig) -> Option<WorkerResponse> {
    let format = ex.format?;
    let mut resp = WorkerResponse::with_results(results_json(&ex));
    resp.errors = ex.errors.iter().map(Error::new).collect();
    resp.extracted = ex
        .extracted
        .into_iter()
        .map(|m| {
            let meta = member_meta(&m, format, cfg);
            ExtractedPayload::with_meta(m.content, meta)
        })
        .collect();
    Some(resp)
}

#[async_trait]
impl Worker for DecompressWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let extra = &payload.meta().extra_data;
        let mut errors = Vec::new();
        let force = match extra.get("archiver").and_then(Value::as_str) {
            Some(name) => match Format::from_name(name) {
                Some(f) => Some(f),
                None => {
                    errors.push(Error::new(format!(
                        "decompress: extra_data.archiver {name:?} is not a known format; \
                         detected from the content instead"
                    )));
                    None
                }
            },
            None => None,
        };
        if force.is_none() && detect(&payload.content).is_none() {
            return Ok(None);
        }
        let mut passwords = payload_passwords(extra);
        for p in &self.cfg.passwords {
            if !passwords.contains(p) {
                passwords.push(p.clone());
            }
        }
        let name_hint = extra
            .get("filename")
            .and_then(Value::as_str)
            .map(String::from);
        let content = payload.content.clone();
        let cfg = self.cfg.clone();
        let flag = Arc::new(AtomicBool::new(false));
        // Dropped (and so set) if the engine abandons this scan.
        let _cancel = limits::CancelOnDrop(flag.clone());
        let ex = blocking(move || {
            let opts = Options {
                limits: cfg.limits.clone(),
                passwords: &passwords,
                force,
                name_hint: name_hint.as_deref(),
                external: Some(&cfg.external),
                cancel: Some(flag),
            };
            extract_with(&content, &opts)
        })
        .await?;
        if let Some(f) = ex.format {
            tracing::debug!(
                format = f.as_str(),
                members = ex.members,
                extracted = ex.extracted.len(),
                errors = ex.errors.len(),
                "decompress: extraction done"
            );
        }
        let mut resp = response(ex, &self.cfg);
        if let Some(r) = resp.as_mut() {
            errors.append(&mut r.errors);
            r.errors = errors;
        }
        Ok(resp)
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("decompress", &[PluginClass::Worker], |cfg| {
        let config = DecompressConfig::from_config(cfg)?;
        let tools: Vec<String> = config
            .external
            .tools()
            .iter()
            .map(|t| t.path.display().to_string())
            .collect();
        tracing::debug!(?tools, "decompress: external tools");
        Ok(PluginInstance::new().worker(Arc::new(DecompressWorker::new(config))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Extract archives and compressed streams (zip, tar, gzip, bzip2, xz, lzma, 7z, cab, ar, \
         cpio, rpm natively; rar, ace, arj, lzh, iso through 7z/unar/unrar) within size, count \
         and ratio budgets",
    )
    .options(OPTIONS)
}
