//! `swfcarve` worker: find Flash (SWF) headers anywhere in the payload and
//! extract each movie uncompressed.
//!
//! Headers: `FWS` (uncompressed), `CWS` (zlib, SWF 6+) and `ZWS` (LZMA,
//! SWF 13+), each followed by a version byte and the little-endian length
//! of the whole uncompressed file (header included). A `ZWS` header then
//! holds the length of the LZMA data, then the 5 LZMA property bytes (no
//! 8-byte size field, unlike an `.lzma` file: the "compressed length
//! quirk"), then the raw LZMA stream.
//!
//! Each candidate is decompressed; it is extracted when the body has the
//! declared length, as `FWS` + version + length + body, with `extra_data`
//! `{"offset": <header offset>, "swf_version": <version>}`. A candidate
//! that does not decompress at all is skipped silently (a random `CWS` in
//! binary data is common); one that decompresses to the wrong length is
//! reported in `errors`. An `FWS` movie spanning the whole payload is not
//! extracted again.
//!
//! Unlike the Python plugin, `ZWS` is searched by default and decompressed
//! from its own offset (the Python plugin read from offset 12 of the
//! payload), and the declared length is capped by `max_size`.
//!
//! Results (only when a header was found): `{"swfs": [{offset, signature,
//! swf_version, declared_length, extracted}]}`.

use std::io::Read;
use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, Error, ExtractedPayload, Map, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "swf_headers",
        "FWS,CWS,ZWS",
        "signatures to look for, separated by commas or `|` (the Python plugin's regex \
         alternation); `SWF` (in the Python default) is accepted and ignored",
    ),
    OptionDoc::new(
        "max_size",
        "100000000",
        "largest declared uncompressed length (bytes) a movie may have to be carved",
    ),
];

/// Most headers looked at in one payload.
const MAX_CANDIDATES: usize = 1000;
/// Highest version byte taken as a real header.
const MAX_VERSION: u8 = 64;

/// The SWF container kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Fws,
    Cws,
    Zws,
}

impl Signature {
    fn magic(self) -> &'static [u8; 3] {
        match self {
            Signature::Fws => b"FWS",
            Signature::Cws => b"CWS",
            Signature::Zws => b"ZWS",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Signature::Fws => "FWS",
            Signature::Cws => "CWS",
            Signature::Zws => "ZWS",
        }
    }
}

/// One carved movie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carved {
    pub offset: usize,
    pub signature: Signature,
    pub version: u8,
    pub declared_length: u32,
    /// The uncompressed movie (`FWS` header + body), when it decompressed
    /// to the declared length.
    pub swf: Option<Vec<u8>>,
    /// Why it was not extracted, for a candidate worth reporting.
    pub error: Option<String>,
}

/// Parse the `swf_headers` option.
pub fn parse_signatures(v: &str) -> Result<Vec<Signature>, String> {
    let mut out = Vec::new();
    for part in v.split([',', '|']).map(str::trim).filter(|p| !p.is_empty()) {
        let sig = match part.to_ascii_uppercase().as_str() {
            "FWS" => Signature::Fws,
            "CWS" => Signature::Cws,
            "ZWS" => Signature::Zws,
            "SWF" => continue,
            _ => return Err(format!("unknown SWF signature {part:?} (FWS, CWS or ZWS)")),
        };
        if !out.contains(&sig) {
            out.push(sig);
        }
    }
    if out.is_empty() {
        return Err("no SWF signature".into());
    }
    Ok(out)
}

/// Up to `limit` bytes of `r`; what was read before an error counts.
/// `None` when nothing could be read.
fn read_partial(r: impl Read, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let res = r.take(limit as u64).read_to_end(&mut out);
    if res.is_err() && out.is_empty() {
        return None;
    }
    Some(out)
}

fn u32_le(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// Decompress the candidate at `offset`. `None` when it is not worth
/// reporting (not a plausible header, or data that does not decompress).
fn carve_one(data: &[u8], offset: usize, sig: Signature, max_size: usize) -> Option<Carved> {
    let h = data.get(offset..)?;
    let version = *h.get(3)?;
    let declared = u32_le(h.get(4..)?)?;
    if version == 0 || version > MAX_VERSION || declared < 8 {
        return None;
    }
    let body_len = declared as usize - 8;
    // Plausibility, so that a random "CWS" in binary data is not reported:
    // a whole FWS body, a valid zlib header, a valid LZMA start.
    let plausible = match sig {
        // An FWS movie that is the whole payload: nothing to carve.
        Signature::Fws => {
            h.len() >= declared as usize && !(offset == 0 && h.len() == declared as usize)
        }
        Signature::Cws => match (h.get(8), h.get(9)) {
            (Some(&cmf), Some(&flg)) => {
                cmf & 0x0f == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
            }
            _ => false,
        },
        Signature::Zws => h.get(12).is_some_and(|&p| p < 225) && h.get(17) == Some(&0),
    };
    if !plausible {
        return None;
    }
    let mut carved = Carved {
        offset,
        signature: sig,
        version,
        declared_length: declared,
        swf: None,
        error: None,
    };
    if declared as usize > max_size {
        carved.error = Some(format!(
            "SWF at offset {offset}: declared length {declared} is above max_size {max_size}"
        ));
        return Some(carved);
    }
    let body: Vec<u8> = match sig {
        Signature::Fws => h[8..declared as usize].to_vec(),
        Signature::Cws => read_partial(flate2::read::ZlibDecoder::new(h.get(8..)?), body_len)?,
        Signature::Zws => {
            let compressed_len = u32_le(h.get(8..)?)? as usize;
            let props = *h.get(12)?;
            let dict_size = u32_le(h.get(13..)?)?;
            let stream = h.get(17..)?;
            // The stored length counts the LZMA data; some writers count
            // the property bytes too. Never read past the payload.
            let stream = &stream[..stream.len().min(compressed_len.saturating_add(5))];
            let reader = lzma_rust2::LzmaReader::new_with_props(
                stream,
                body_len as u64,
                props,
                dict_size,
                None,
            )
            .ok()?;
            read_partial(reader, body_len)?
        }
    };
    if body.len() != body_len {
        carved.error = Some(format!(
            "SWF at offset {offset}: {} body bytes, the header declares {body_len}",
            body.len()
        ));
        return Some(carved);
    }
    let mut swf = Vec::with_capacity(declared as usize);
    swf.extend_from_slice(b"FWS");
    swf.push(version);
    swf.extend_from_slice(&declared.to_le_bytes());
    swf.extend_from_slice(&body);
    carved.swf = Some(swf);
    Some(carved)
}

/// Every movie found in `data` (see the module docs), in offset order.
pub fn carve(data: &[u8], signatures: &[Signature], max_size: usize) -> Vec<Carved> {
    let mut offsets: Vec<(usize, Signature)> = Vec::new();
    for &sig in signatures {
        for pos in memchr::memmem::find_iter(data, sig.magic()) {
            offsets.push((pos, sig));
            if offsets.len() >= MAX_CANDIDATES * 3 {
                break;
            }
        }
    }
    offsets.sort_by_key(|(pos, _)| *pos);
    offsets
        .into_iter()
        .take(MAX_CANDIDATES)
        .filter_map(|(pos, sig)| carve_one(data, pos, sig, max_size))
        .collect()
}

/// The `swfcarve` worker.
#[derive(Debug, Clone)]
pub struct SwfCarve {
    signatures: Vec<Signature>,
    max_size: usize,
}

impl SwfCarve {
    /// Build from plugin options.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let signatures = cfg
            .parse_with("swf_headers", parse_signatures)?
            .unwrap_or_else(|| vec![Signature::Fws, Signature::Cws, Signature::Zws]);
        let max_size = crate::util::byte_limit(cfg, "max_size", 100_000_000)?;
        Ok(SwfCarve {
            signatures,
            max_size,
        })
    }
}

#[async_trait]
impl Worker for SwfCarve {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let (sigs, max) = (self.signatures.clone(), self.max_size);
        let carved =
            crate::util::run_cpu(content.len(), move || carve(&content, &sigs, max)).await?;
        if carved.is_empty() {
            return Ok(None);
        }
        let mut response = WorkerResponse::default();
        let mut listed = Vec::new();
        for c in carved {
            listed.push(json!({
                "offset": c.offset,
                "signature": c.signature.as_str(),
                "swf_version": c.version,
                "declared_length": c.declared_length,
                "extracted": c.swf.is_some(),
            }));
            if let Some(e) = c.error {
                response.errors.push(Error::new(e));
            }
            if let Some(swf) = c.swf {
                let mut meta = PayloadMeta::default();
                meta.extra_data.insert("offset".into(), json!(c.offset));
                meta.extra_data
                    .insert("swf_version".into(), json!(c.version));
                response
                    .extracted
                    .push(ExtractedPayload::with_meta(swf, meta));
            }
        }
        let mut results = Map::new();
        results.insert("swfs".into(), Value::Array(listed));
        response.results = Some(Value::Object(results));
        Ok(Some(response))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("swfcarve", &[PluginClass::Worker], |cfg| {
        Ok(PluginInstance::new().worker(Arc::new(SwfCarve::from_config(cfg)?)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Carve Flash files (FWS/CWS/ZWS) and extract them uncompressed")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fws(body: &[u8], version: u8) -> Vec<u8> {
        let mut v = b"FWS".to_vec();
        v.push(version);
        v.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn cws(body: &[u8], version: u8) -> Vec<u8> {
        let mut v = b"CWS".to_vec();
        v.push(version);
        v.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(body).unwrap();
        v.extend_from_slice(&z.finish().unwrap());
        v
    }

    #[test]
    fn signatures_option() {
        assert_eq!(
            parse_signatures("SWF|CWS|FWS").unwrap(),
            vec![Signature::Cws, Signature::Fws]
        );
        assert_eq!(parse_signatures(" zws , cws ").unwrap().len(), 2);
        assert!(parse_signatures("XWS").is_err());
        assert!(parse_signatures("SWF").is_err());
        let cfg = PluginConfig::new("swfcarve", [("swf_headers", "nope")]);
        let e = SwfCarve::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("swf_headers") && e.contains("nope"), "{e}");
    }

    #[test]
    fn carves_embedded_movies() {
        let body = b"\x78\x00\x05\x5f\x00\x00\x0f\xa0\x00\x00\x18\x01\x00some tags".repeat(20);
        let mut data = b"junk CWS\x00 junk ".to_vec();
        let at_cws = data.len();
        data.extend(cws(&body, 9));
        let at_fws = data.len();
        data.extend(fws(&body, 7));
        data.extend_from_slice(b"trailing");
        let all = [Signature::Fws, Signature::Cws, Signature::Zws];
        let c = carve(&data, &all, 1 << 20);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            (c[0].offset, c[0].signature, c[0].version),
            (at_cws, Signature::Cws, 9)
        );
        assert_eq!(c[0].swf.as_deref(), Some(&fws(&body, 9)[..]));
        assert_eq!((c[1].offset, c[1].signature), (at_fws, Signature::Fws));
        assert_eq!(c[1].swf.as_deref(), Some(&fws(&body, 7)[..]));
        // The whole payload as FWS: nothing to carve.
        assert!(carve(&fws(&body, 7), &all, 1 << 20).is_empty());
        // Above max_size: reported, not extracted.
        let c = carve(&cws(&body, 9), &all, 100);
        assert_eq!(c.len(), 1);
        assert!(c[0].swf.is_none() && c[0].error.is_some());
    }

    #[test]
    fn truncated_movies_are_reported() {
        let mut x = 12345u32;
        let body: Vec<u8> = (0..5000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let full = cws(&body, 10);
        let c = carve(&full[..full.len() / 2], &[Signature::Cws], 1 << 20);
        assert_eq!(c.len(), 1);
        assert!(c[0].swf.is_none());
        assert!(c[0].error.as_deref().unwrap().contains("5000"));
    }
}
