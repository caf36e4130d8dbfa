//! `peinfo` worker: metadata of PE (Windows executable) files.
//!
//! The analysis follows Python `pefile`, which the public stoQ plugin used:
//! the imphash, the section hashes and entropy, the import list, the
//! overlay start and the Rich header bytes come out as pefile computes
//! them (see [`pe_util`] for the rules and where they come from). Fixed on
//! purpose, following the port's inventory: section names have their NUL
//! padding stripped, `compile_time` is UTC (ISO 8601) instead of local
//! time, the VarFileInfo `Translation` entry is reported, TLS callbacks of
//! PE32+ files are read as 64-bit pointers.
//!
//! Not-a-PE input (no `MZ`, or an `MZ` file without a `PE\0\0` header such
//! as NE and DOS programs) gives no results and no error: pefile refuses
//! those files. A PE whose headers or section data are cut short gives
//! the results that could be read plus an error record; nothing panics.
//!
//! Output keys, in this order (collections only when not empty):
//! `format`, `machine_type`, `compile_time_epoch`, `compile_time`,
//! `image_base`, `entrypoint`, `subsystem`, `is_exe`, `is_dll`,
//! `is_driver`, `dotnet`, `number_of_sections`, `imphash`, `sections`,
//! `imports`, `exports`, `resources`, `version_info`, `rich_header`,
//! `signature`, `overlay`, `tls_callbacks`, `debug_info`, `warnings`.

use std::ops::Range;
use std::sync::Arc;

use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use stoq_core::hashing::hex;
use stoq_core::{
    async_trait, blocking, Error, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker,
    WorkerResponse,
};

#[path = "pe_util.rs"]
pub mod pe_util;

use pe_util::{
    bytes_to_string, debug_type_name, machine_name, resource_type_name, subsystem_name, Pe,
    ResourceKey,
};

/// The plugin name.
pub const NAME: &str = "peinfo";

/// Default of `max_extracted`.
pub const DEFAULT_MAX_EXTRACTED: usize = 100;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "extract_resources",
        "false",
        "extract every resource as a payload (extra_data: filename resource_<type>_<id>, type, \
         resource_id or name, language, sub_language, offset)",
    ),
    OptionDoc::new(
        "extract_certificates",
        "false",
        "extract the data of every Authenticode certificate table entry as a payload \
         (extra_data: filename = its sha256, revision, cert_type, offset)",
    ),
    OptionDoc::new(
        "max_extracted",
        "100",
        "at most this many payloads are extracted from one PE (resources first)",
    ),
];

/// The typed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeinfoOptions {
    pub extract_resources: bool,
    pub extract_certificates: bool,
    pub max_extracted: usize,
}

impl Default for PeinfoOptions {
    fn default() -> Self {
        PeinfoOptions {
            extract_resources: false,
            extract_certificates: false,
            max_extracted: DEFAULT_MAX_EXTRACTED,
        }
    }
}

impl PeinfoOptions {
    /// Parse the plugin's options; a bad value names plugin, option and
    /// value.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        Ok(PeinfoOptions {
            extract_resources: cfg.bool("extract_resources", false)?,
            extract_certificates: cfg.bool("extract_certificates", false)?,
            max_extracted: cfg.number("max_extracted", DEFAULT_MAX_EXTRACTED)?,
        })
    }
}

/// Something inside the PE that can be extracted as a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Extractable {
    /// Byte range in the analysed buffer.
    pub range: Range<usize>,
    /// The payload's `extra_data`.
    pub meta: Map<String, Value>,
}

/// What [`analyse`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeAnalysis {
    /// `None` when the buffer is not a PE.
    pub results: Option<Map<String, Value>>,
    /// Malformations (truncated headers or data); the results are partial.
    pub errors: Vec<String>,
    /// Every resource, in `results.resources` order.
    pub resources: Vec<Extractable>,
    /// Every certificate table entry's data.
    pub certificates: Vec<Extractable>,
}

/// Analyse a buffer. Never panics; any input gives an answer.
pub fn analyse(data: &[u8]) -> PeAnalysis {
    let Ok(mut pe) = Pe::parse(data) else {
        return PeAnalysis::default();
    };
    let mut out = PeAnalysis::default();
    let mut r = Map::new();
    let opt = pe.opt.clone();
    r.insert(
        "format".into(),
        json!(match &opt {
            Some(o) if o.magic == pe_util::MAGIC_PE32_PLUS => "PE32+",
            Some(o) if o.magic == pe_util::MAGIC_PE32 => "PE32",
            _ => "PE",
        }),
    );
    if let Some(coff) = pe.coff {
        r.insert("machine_type".into(), json!(machine_label(coff.machine)));
        r.insert("compile_time_epoch".into(), json!(coff.time_date_stamp));
        r.insert(
            "compile_time".into(),
            json!(iso8601_utc(coff.time_date_stamp)),
        );
    }

    let imports = pe.imports();
    if let Some(o) = &opt {
        r.insert(
            "image_base".into(),
            json!({"image_base": o.image_base, "image_base_string": format!("{:#x}", o.image_base)}),
        );
        r.insert(
            "entrypoint".into(),
            json!({
                "entry_point": o.address_of_entry_point,
                "entry_point_string": format!("{:#x}", o.address_of_entry_point),
            }),
        );
        r.insert(
            "subsystem".into(),
            json!(subsystem_name(o.subsystem)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}", o.subsystem))),
        );
        r.insert("is_exe".into(), json!(pe.is_exe(&imports)));
        r.insert("is_dll".into(), json!(pe.is_dll()));
        r.insert("is_driver".into(), json!(pe.is_driver(&imports)));
        let dotnet = pe.directory(pe_util::DIR_CLR).is_some_and(|d| d.size > 0);
        r.insert("dotnet".into(), json!(dotnet));
    } else if pe.coff.is_some() {
        r.insert("is_dll".into(), json!(pe.is_dll()));
    }
    if let Some(coff) = pe.coff {
        r.insert("number_of_sections".into(), json!(coff.number_of_sections));
    }
    if opt.is_some() {
        r.insert("imphash".into(), json!(imphash(&imports)));
    }
    // Overlapping sections or resources could make the hashing cost many
    // times the file size; past this budget digests are left out (null).
    let mut budget = HashBudget::new(data.len());
    if pe.coff.is_some() {
        let mut sections = Vec::with_capacity(pe.sections.len());
        for s in &pe.sections {
            let d = s.data(data);
            let (ent, md5, sha256) = if budget.take(d.len()) {
                (
                    json!(entropy(d)),
                    json!(hex(&Md5::digest(d))),
                    json!(hex(&Sha256::digest(d))),
                )
            } else {
                (Value::Null, Value::Null, Value::Null)
            };
            sections.push(json!({
                "name": bytes_to_string(s.name_bytes()),
                "virtual_address": s.virtual_address,
                "virtual_size": s.virtual_size,
                "raw_offset": s.raw_ptr,
                "raw_size": s.raw_size,
                "characteristics": s.characteristics,
                "entropy": ent,
                "md5": md5,
                "sha256": sha256,
            }));
        }
        r.insert("sections".into(), Value::Array(sections));
    }

    if !imports.is_empty() {
        let mut map = Map::new();
        for dll in &imports {
            let names = map
                .entry(bytes_to_string(&dll.dll))
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = names {
                list.extend(dll.symbols.iter().map(|s| match (&s.name, s.ordinal) {
                    (Some(n), _) => json!(bytes_to_string(n)),
                    (None, Some(o)) => json!(format!("ord({o})")),
                    (None, None) => Value::Null,
                }));
            }
        }
        r.insert("imports".into(), Value::Object(map));
    }

    let exports = pe.exports();
    if !exports.is_empty() {
        let list: Vec<Value> = exports
            .iter()
            .map(|e| {
                json!({
                    "name": e.name.as_deref().map(bytes_to_string),
                    "ordinal": e.ordinal,
                    "address": e.address,
                    "forwarder": e.forwarder.as_deref().map(bytes_to_string),
                })
            })
            .collect();
        r.insert("exports".into(), Value::Array(list));
    }

    let leaves = pe.resources();
    let mut version_info = Map::new();
    let mut translations: Vec<String> = Vec::new();
    if !leaves.is_empty() {
        let mut list = Vec::with_capacity(leaves.len());
        for leaf in &leaves {
            let bytes = pe.resource_data(leaf);
            let offset = pe.offset_from_rva(u64::from(leaf.rva));
            let (type_label, type_id) = match &leaf.type_key {
                Some(ResourceKey::Id(t)) => (
                    resource_type_name(*t).unwrap_or("unknown").to_string(),
                    Some(*t),
                ),
                Some(ResourceKey::Name(n)) => (n.clone(), None),
                None => ("unknown".to_string(), None),
            };
            let (resource_id, name) = match &leaf.id_key {
                Some(ResourceKey::Id(i)) => (Some(*i), None),
                Some(ResourceKey::Name(n)) => (None, Some(n.clone())),
                None => (None, None),
            };
            let sha256 = if budget.take(bytes.len()) {
                json!(hex(&Sha256::digest(bytes)))
            } else {
                Value::Null
            };
            let mut entry = Map::new();
            entry.insert("type".into(), json!(type_label));
            entry.insert("type_id".into(), json!(type_id));
            entry.insert("resource_id".into(), json!(resource_id));
            entry.insert("name".into(), json!(name));
            entry.insert("language".into(), json!(leaf.language));
            entry.insert("sub_language".into(), json!(leaf.sub_language));
            entry.insert("code_page".into(), json!(leaf.code_page));
            entry.insert("address".into(), json!(leaf.rva));
            entry.insert("offset".into(), json!(offset));
            entry.insert("size".into(), json!(leaf.size));
            entry.insert("sha256".into(), json!(sha256));
            list.push(Value::Object(entry));

            if let Some(start) = offset {
                let start = start as usize;
                let range = start..start + bytes.len();
                if data.get(range.clone()).is_some() {
                    let ident = resource_id
                        .map(|i| i.to_string())
                        .or_else(|| name.clone())
                        .unwrap_or_default();
                    let mut meta = Map::new();
                    meta.insert(
                        "filename".into(),
                        json!(format!("resource_{type_label}_{ident}")),
                    );
                    meta.insert("type".into(), json!(type_label));
                    meta.insert("resource_id".into(), json!(resource_id));
                    meta.insert("name".into(), json!(name));
                    meta.insert("language".into(), json!(leaf.language));
                    meta.insert("sub_language".into(), json!(leaf.sub_language));
                    meta.insert("offset".into(), json!(start));
                    out.resources.push(Extractable { range, meta });
                }
            }
            if leaf.version_candidate {
                if let Some(vi) = pe.version_info(leaf) {
                    for (k, v) in vi.strings {
                        version_info.insert(k, json!(v));
                    }
                    translations.extend(
                        vi.translations
                            .iter()
                            .map(|(l, c)| format!("0x{l:04x} 0x{c:04x}")),
                    );
                }
            }
        }
        r.insert("resources".into(), Value::Array(list));
    }
    if !translations.is_empty() {
        version_info.insert("Translation".into(), json!(translations.join(", ")));
    }
    if !version_info.is_empty() {
        r.insert("version_info".into(), Value::Object(version_info));
    }

    if opt.is_some() {
        if let Some(rich) = pe.rich_header() {
            let entries: Vec<Value> = rich
                .values
                .iter()
                .map(|(comp_id, count)| {
                    json!({"prod_id": comp_id >> 16, "build": comp_id & 0xffff, "count": count})
                })
                .collect();
            r.insert(
                "rich_header".into(),
                json!({
                    "key": format!("0x{:08x}", rich.key),
                    "sha256": hex(&Sha256::digest(&rich.clear_data)),
                    "entries": entries,
                }),
            );
            if !rich.well_formed {
                pe.warnings
                    .push("the Rich header is not in Microsoft format (DanS/padding)".into());
            }
        }

        let sec = pe.directory(pe_util::DIR_SECURITY).unwrap_or_default();
        let certificates = pe.certificates();
        let mut signature = Map::new();
        signature.insert(
            "present".into(),
            json!(sec.virtual_address != 0 && sec.size != 0),
        );
        signature.insert("offset".into(), json!(sec.virtual_address));
        signature.insert("size".into(), json!(sec.size));
        if !certificates.is_empty() {
            let list: Vec<Value> = certificates
                .iter()
                .map(|c| {
                    let blob = &data[c.data_start..c.data_end];
                    let sha256 = hex(&Sha256::digest(blob));
                    let mut meta = Map::new();
                    meta.insert("filename".into(), json!(sha256.clone()));
                    meta.insert("revision".into(), json!(c.revision));
                    meta.insert("cert_type".into(), json!(c.certificate_type));
                    meta.insert("offset".into(), json!(c.offset));
                    out.certificates.push(Extractable {
                        range: c.data_start..c.data_end,
                        meta,
                    });
                    json!({
                        "offset": c.offset,
                        "length": c.length,
                        "revision": format!("0x{:04x}", c.revision),
                        "cert_type": c.certificate_type,
                        "sha256": sha256,
                    })
                })
                .collect();
            signature.insert("certificates".into(), Value::Array(list));
        }
        r.insert("signature".into(), Value::Object(signature));

        if let Some(start) = pe.overlay_offset() {
            let overlay = &data[start as usize..];
            r.insert(
                "overlay".into(),
                json!({
                    "offset": start,
                    "size": overlay.len(),
                    "sha256": hex(&Sha256::digest(overlay)),
                }),
            );
        }

        let callbacks = pe.tls_callbacks();
        if !callbacks.is_empty() {
            r.insert("tls_callbacks".into(), json!(callbacks));
        }

        let debug = pe.debug_entries();
        if !debug.is_empty() {
            let list: Vec<Value> = debug
                .iter()
                .map(|d| {
                    let mut e = Map::new();
                    e.insert(
                        "type".into(),
                        json!(debug_type_name(d.debug_type).unwrap_or("unknown")),
                    );
                    e.insert("type_id".into(), json!(d.debug_type));
                    e.insert("timestamp".into(), json!(d.timestamp));
                    e.insert("major_version".into(), json!(d.major_version));
                    e.insert("minor_version".into(), json!(d.minor_version));
                    e.insert("size".into(), json!(d.size_of_data));
                    e.insert("pointer_to_raw_data".into(), json!(d.pointer_to_raw_data));
                    if let Some(cv) = &d.codeview {
                        e.insert(
                            "codeview".into(),
                            json!({
                                "format": cv.format,
                                "signature": cv.signature,
                                "age": cv.age,
                                "pdb_path": cv.pdb_path,
                            }),
                        );
                    }
                    Value::Object(e)
                })
                .collect();
            r.insert("debug_info".into(), Value::Array(list));
        }
    }

    if budget.exhausted {
        pe.warnings.push(
            "sections or resources overlap so much that hashing them all would read more than \
             4 times the file; the remaining digests are null"
                .into(),
        );
    }
    if !pe.warnings.is_empty() {
        r.insert("warnings".into(), json!(pe.warnings));
    }
    out.errors = std::mem::take(&mut pe.errors);
    out.results = Some(r);
    out
}

/// The imphash of a parsed import list: MD5 of
/// `dll.func,dll.func,...`, lower case, the DLL name without a
/// `.dll`/`.ocx`/`.sys` extension, ordinals through the ordinal tables or
/// `ord<N>`. Empty when there are no imports (as pefile).
pub fn imphash(imports: &[pe_util::ImportedDll]) -> String {
    if imports.is_empty() {
        return String::new();
    }
    let mut text = Vec::new();
    let mut first = true;
    for entry in imports {
        let lower = entry.dll.to_ascii_lowercase();
        let lib: &[u8] = match lower.iter().rposition(|&c| c == b'.') {
            Some(dot) if matches!(&lower[dot + 1..], b"ocx" | b"sys" | b"dll") => &lower[..dot],
            _ => &lower,
        };
        for s in &entry.symbols {
            let func: Vec<u8> = match (&s.name, s.ordinal) {
                (Some(n), _) => n.clone(),
                (None, Some(o)) => match pe_util::ordinal_table_name(&lower, o) {
                    Some(n) => n.as_bytes().to_vec(),
                    None => format!("ord{o}").into_bytes(),
                },
                (None, None) => continue,
            };
            if func.is_empty() {
                continue;
            }
            if !first {
                text.push(b',');
            }
            first = false;
            text.extend_from_slice(lib);
            text.push(b'.');
            text.extend(func.iter().map(u8::to_ascii_lowercase));
        }
    }
    hex(&Md5::digest(&text))
}

/// How many bytes may be hashed for sections and resources: 4 times the
/// file plus 1 MiB.
struct HashBudget {
    left: usize,
    exhausted: bool,
}

impl HashBudget {
    fn new(file_len: usize) -> Self {
        HashBudget {
            left: file_len.saturating_mul(4).saturating_add(1 << 20),
            exhausted: false,
        }
    }

    fn take(&mut self, n: usize) -> bool {
        if n <= self.left {
            self.left -= n;
            true
        } else {
            self.exhausted = true;
            false
        }
    }
}

fn machine_label(machine: u16) -> String {
    machine_name(machine)
        .map(str::to_string)
        .unwrap_or_else(|| format!("0x{machine:04x}"))
}

/// Shannon entropy in bits per byte.
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    // Four histograms break the store-to-load dependency on runs of one
    // byte value.
    let mut counts = [[0u64; 256]; 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        counts[0][c[0] as usize] += 1;
        counts[1][c[1] as usize] += 1;
        counts[2][c[2] as usize] += 1;
        counts[3][c[3] as usize] += 1;
    }
    for &b in chunks.remainder() {
        counts[0][b as usize] += 1;
    }
    let n = data.len() as f64;
    let mut h = 0.0;
    let [a, b, c, d] = &counts;
    for (((a, b), c), d) in a.iter().zip(b).zip(c).zip(d) {
        let c = a + b + c + d;
        if c == 0 {
            continue;
        }
        let p = c as f64 / n;
        h -= p * p.log2();
    }
    h
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` of a Unix time.
pub fn iso8601_utc(epoch: u32) -> String {
    let secs = i64::from(epoch);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The `peinfo` worker.
#[derive(Debug, Default)]
pub struct PeinfoWorker {
    options: PeinfoOptions,
}

impl PeinfoWorker {
    pub fn new(options: PeinfoOptions) -> Self {
        PeinfoWorker { options }
    }
}

#[async_trait]
impl Worker for PeinfoWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let options = self.options.clone();
        let (analysis, extracted) = blocking(move || {
            let analysis = analyse(&content);
            let mut extracted = Vec::new();
            let mut wanted: Vec<&Extractable> = Vec::new();
            if options.extract_resources {
                wanted.extend(analysis.resources.iter());
            }
            if options.extract_certificates {
                wanted.extend(analysis.certificates.iter());
            }
            for item in wanted.into_iter().take(options.max_extracted) {
                let mut meta = PayloadMeta::default();
                meta.extra_data = item.meta.clone();
                extracted.push(ExtractedPayload::with_meta(
                    content.slice(item.range.clone()),
                    meta,
                ));
            }
            (analysis, extracted)
        })
        .await?;
        let Some(results) = analysis.results else {
            tracing::debug!(payload = %payload.id(), "peinfo: not a PE file");
            return Ok(None);
        };
        if !analysis.errors.is_empty() {
            tracing::debug!(payload = %payload.id(), errors = analysis.errors.len(), "peinfo: malformed PE");
        }
        Ok(Some(WorkerResponse {
            results: Some(Value::Object(results)),
            extracted,
            errors: analysis.errors.into_iter().map(Error::new).collect(),
            ..Default::default()
        }))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Worker], |cfg| {
        let options = PeinfoOptions::from_config(cfg)?;
        Ok(PluginInstance::new().worker(Arc::new(PeinfoWorker::new(options))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "PE metadata: imphash, headers, sections, imports, exports, resources, version info, \
         Rich header, signature, overlay",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601_utc(1_684_547_546), "2023-05-20T01:52:26+00:00");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601_utc(u32::MAX), "2106-02-07T06:28:15+00:00");
    }

    #[test]
    fn entropy_reference_values() {
        assert_eq!(entropy(&[b'a'; 256]), 0.0);
        let abc: Vec<u8> = b"abc".iter().copied().cycle().take(768).collect();
        assert!((entropy(&abc) - 3f64.log2()).abs() < 1e-12);
        assert_eq!(entropy(&[]), 0.0);
    }

    #[test]
    fn not_pe_inputs_give_nothing() {
        for data in [
            &b""[..],
            b"MZ",
            b"plain text that is long enough to be more than sixty-four bytes in total....",
        ] {
            assert_eq!(analyse(data), PeAnalysis::default());
        }
        let mut zm = vec![0u8; 128];
        zm[..2].copy_from_slice(b"ZM");
        assert!(analyse(&zm).results.is_none());
    }

    #[test]
    fn options_parse_and_reject_bad_values() {
        let cfg = PluginConfig::new(
            "peinfo",
            [("extract_resources", "yes"), ("max_extracted", "7")],
        );
        let o = PeinfoOptions::from_config(&cfg).unwrap();
        assert!(o.extract_resources && !o.extract_certificates);
        assert_eq!(o.max_extracted, 7);
        let bad = PluginConfig::new("peinfo", [("max_extracted", "many")]);
        let e = PeinfoOptions::from_config(&bad).unwrap_err().to_string();
        assert!(
            e.contains("peinfo") && e.contains("max_extracted") && e.contains("many"),
            "{e}"
        );
    }
}
