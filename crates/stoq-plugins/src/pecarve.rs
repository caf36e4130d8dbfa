//! `pecarve` worker: carve PE files embedded anywhere in a payload.
//!
//! Every `MZ` in the payload is a candidate (`ZM` is not: pefile, which the
//! public plugin used, refuses ZM executables). A candidate is carved when
//! the bytes from it on parse as a PE with the same rules as `peinfo` (DOS
//! header, `e_lfanew` → `PE\0\0`, a complete COFF header and optional
//! header with the PE32 or PE32+ magic, a known machine type, at least one
//! section). Its size is where pefile's `trim()` would cut it: the end of
//! the furthest of the optional header, the sections' raw data and the
//! data directories other than the certificate table. With
//! `include_certificate` (the default) a certificate table that lies after
//! that point is kept too, so a carved signed file matches the original.
//!
//! The PE at offset 0 is the payload itself and is not extracted unless
//! `carve_at_zero` is set. Each carve is extracted with
//! `extra_data = {"offset": N}`; results list `{offset, size, truncated}`
//! (`truncated` when the section data runs past the end of the payload; such
//! a carve runs to the end of the payload).

use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, blocking, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

#[cfg(feature = "peinfo")]
use crate::peinfo::pe_util;
#[cfg(not(feature = "peinfo"))]
#[allow(dead_code)]
#[path = "pe_util.rs"]
mod pe_util;

use pe_util::{machine_name, Pe, DIR_SECURITY, MAGIC_PE32, MAGIC_PE32_PLUS};

/// The plugin name.
pub const NAME: &str = "pecarve";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("max_carves", "50", "stop after this many carved PEs"),
    OptionDoc::new(
        "min_size",
        "256",
        "ignore carves smaller than this many bytes",
    ),
    OptionDoc::new(
        "max_scan_size",
        "268435456",
        "look for MZ headers in the first this many bytes only (0: the whole payload)",
    ),
    OptionDoc::new(
        "max_candidates",
        "100000",
        "validate at most this many MZ candidates per payload",
    ),
    OptionDoc::new(
        "include_certificate",
        "true",
        "extend a carve to the end of its certificate table when that lies after the \
         trimmed end (false: cut exactly as pefile's trim())",
    ),
    OptionDoc::new(
        "carve_at_zero",
        "false",
        "also carve a PE at offset 0 (the payload itself, minus any overlay)",
    ),
];

/// Limits and switches of a carve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarveLimits {
    pub max_carves: usize,
    pub min_size: usize,
    /// 0: no limit.
    pub max_scan_size: usize,
    pub max_candidates: usize,
    pub include_certificate: bool,
    pub carve_at_zero: bool,
}

impl Default for CarveLimits {
    fn default() -> Self {
        CarveLimits {
            max_carves: 50,
            min_size: 256,
            max_scan_size: 256 << 20,
            max_candidates: 100_000,
            include_certificate: true,
            carve_at_zero: false,
        }
    }
}

impl CarveLimits {
    /// Parse the plugin's options; a bad value names plugin, option and
    /// value.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let d = CarveLimits::default();
        Ok(CarveLimits {
            max_carves: cfg.number("max_carves", d.max_carves)?,
            min_size: cfg.number("min_size", d.min_size)?,
            max_scan_size: cfg.number("max_scan_size", d.max_scan_size)?,
            max_candidates: cfg.number("max_candidates", d.max_candidates)?,
            include_certificate: cfg.bool("include_certificate", d.include_certificate)?,
            carve_at_zero: cfg.bool("carve_at_zero", d.carve_at_zero)?,
        })
    }
}

/// One carved PE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carved {
    pub offset: usize,
    pub size: usize,
    /// The section data runs past the end of the payload.
    pub truncated: bool,
}

/// The outcome of [`carve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarveReport {
    pub carved: Vec<Carved>,
    /// A limit stopped the scan early.
    pub limit_reached: bool,
}

/// The size of the PE at the start of `data`, or `None` when no valid PE
/// starts there.
pub fn pe_size(data: &[u8], include_certificate: bool) -> Option<(usize, bool)> {
    let pe = Pe::parse(data).ok()?;
    let opt = pe.opt.as_ref()?;
    if opt.magic != MAGIC_PE32 && opt.magic != MAGIC_PE32_PLUS {
        return None;
    }
    let coff = pe.coff?;
    if coff.machine == 0 || machine_name(coff.machine).is_none() {
        return None;
    }
    if pe.sections.is_empty() {
        return None;
    }
    let truncated = !pe.errors.is_empty();
    let mut size = pe.overlay_offset().unwrap_or(data.len() as u64);
    // A section whose data runs past the end (a cut-off PE): keep what
    // there is of it; pefile's trim() would drop that partial section.
    let sections_end = pe
        .sections
        .iter()
        .map(|s| u64::from(s.raw_ptr) + u64::from(s.raw_size))
        .max()
        .unwrap_or(0);
    size = size.max(sections_end.min(data.len() as u64));
    if include_certificate {
        if let Some(sec) = pe.directory(DIR_SECURITY) {
            let start = u64::from(sec.virtual_address);
            let end = start + u64::from(sec.size);
            if sec.virtual_address != 0
                && sec.size != 0
                && start >= size
                && end <= data.len() as u64
            {
                size = end;
            }
        }
    }
    Some((size as usize, truncated))
}

/// Find and size every embedded PE. Never panics; the work is bounded by
/// the limits (each candidate costs at most one header and section-table
/// read).
pub fn carve(data: &[u8], limits: &CarveLimits) -> CarveReport {
    let mut report = CarveReport::default();
    let scan_end = if limits.max_scan_size == 0 {
        data.len()
    } else {
        data.len().min(limits.max_scan_size)
    };
    if limits.max_scan_size != 0 && data.len() > limits.max_scan_size {
        report.limit_reached = true;
    }
    let mut candidates = 0usize;
    let mut pos = 0usize;
    while pos + 1 < scan_end {
        let Some(i) = data[pos..scan_end].iter().position(|&b| b == b'M') else {
            break;
        };
        let at = pos + i;
        pos = at + 1;
        if data.get(at + 1) != Some(&b'Z') {
            continue;
        }
        if at == 0 && !limits.carve_at_zero {
            continue;
        }
        if candidates >= limits.max_candidates {
            report.limit_reached = true;
            break;
        }
        candidates += 1;
        let Some((size, truncated)) = pe_size(&data[at..], limits.include_certificate) else {
            continue;
        };
        if size < limits.min_size || size == 0 {
            continue;
        }
        if report.carved.len() >= limits.max_carves {
            report.limit_reached = true;
            break;
        }
        report.carved.push(Carved {
            offset: at,
            size,
            truncated,
        });
    }
    report
}

/// The `pecarve` worker.
#[derive(Debug, Default)]
pub struct PecarveWorker {
    limits: CarveLimits,
}

impl PecarveWorker {
    pub fn new(limits: CarveLimits) -> Self {
        PecarveWorker { limits }
    }
}

#[async_trait]
impl Worker for PecarveWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let limits = self.limits.clone();
        let report = blocking(move || carve(&content, &limits)).await?;
        if report.limit_reached {
            tracing::warn!(payload = %payload.id(), "pecarve: a limit stopped the scan early");
        }
        if report.carved.is_empty() {
            return Ok(None);
        }
        let extracted = report
            .carved
            .iter()
            .map(|c| {
                ExtractedPayload::with_meta(
                    payload.content.slice(c.offset..c.offset + c.size),
                    PayloadMeta::with_extra("offset", c.offset),
                )
            })
            .collect();
        let list: Vec<Value> = report
            .carved
            .iter()
            .map(|c| json!({"offset": c.offset, "size": c.size, "truncated": c.truncated}))
            .collect();
        let mut results = json!({ "carved": list });
        if report.limit_reached {
            results["limit_reached"] = json!(true);
        }
        Ok(Some(WorkerResponse {
            results: Some(results),
            extracted,
            ..Default::default()
        }))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Worker], |cfg| {
        let limits = CarveLimits::from_config(cfg)?;
        Ok(PluginInstance::new().worker(Arc::new(PecarveWorker::new(limits))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Carve embedded PE files, sized as pefile's trim(), out of any payload")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_gives_nothing() {
        let mut junk = b"MZ".repeat(5000);
        junk.extend_from_slice(&[0u8; 100]);
        junk.extend_from_slice(b"MZ");
        let r = carve(&junk, &CarveLimits::default());
        assert!(r.carved.is_empty());
        assert!(!r.limit_reached);
        assert_eq!(carve(b"", &CarveLimits::default()), CarveReport::default());
        assert_eq!(carve(b"M", &CarveLimits::default()), CarveReport::default());
    }

    #[test]
    fn candidate_limit_is_reported() {
        let junk = b"MZ".repeat(100);
        let limits = CarveLimits {
            max_candidates: 10,
            ..CarveLimits::default()
        };
        assert!(carve(&junk, &limits).limit_reached);
    }

    #[test]
    fn options_parse_and_reject_bad_values() {
        let cfg = PluginConfig::new(
            "pecarve",
            [("max_carves", "3"), ("include_certificate", "no")],
        );
        let l = CarveLimits::from_config(&cfg).unwrap();
        assert_eq!(l.max_carves, 3);
        assert!(!l.include_certificate);
        let bad = PluginConfig::new("pecarve", [("min_size", "-1")]);
        let e = CarveLimits::from_config(&bad).unwrap_err().to_string();
        assert!(
            e.contains("pecarve") && e.contains("min_size") && e.contains("-1"),
            "{e}"
        );
    }
}
