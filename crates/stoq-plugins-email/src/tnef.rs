//! `tnef` worker: unpack Microsoft TNEF streams (`winmail.dat`,
//! `application/ms-tnef`), parsed by hand ([MS-OXTNEF]).
//!
//! The stream is the signature `0x223E9F78`, a 16-bit legacy key and a
//! sequence of attributes (level, id, length, data, checksum). Used:
//!
//! - message level: `attMessageClass`, `attSubject`, `attBody`,
//!   `attOemCodepage` (code page of 8-bit strings) and `attMsgProps` (MAPI
//!   properties: `PR_SUBJECT`, `PR_MESSAGE_CLASS`, `PR_BODY`,
//!   `PR_BODY_HTML`, `PR_RTF_COMPRESSED`);
//! - attachment level: `attAttachRendData` (starts an attachment),
//!   `attAttachTitle` (file name), `attAttachData` (content) and
//!   `attAttachment` (MAPI properties: `PR_ATTACH_LONG_FILENAME`,
//!   `PR_ATTACH_FILENAME`, `PR_DISPLAY_NAME`, `PR_ATTACH_DATA_BIN`,
//!   `PR_ATTACH_DATA_OBJ` (an embedded message or OLE object, its 16-byte
//!   interface id removed), `PR_ATTACH_MIME_TAG`).
//!
//! An attachment's name is the long file name, else the title, else the
//! short MAPI file name, else the display name; its content is
//! `attAttachData`, else the MAPI data property. The compressed RTF body
//! is decompressed ([MS-OXRTFCP] LZFu; uncompressed `MELA` too; the CRC is
//! not checked).
//!
//! Results (`results.workers.tnef`): `{key, message_class, subject,
//! attachments: [{filename, size, sha256}], has_body, has_body_html,
//! has_body_rtf}`. Extracted: every attachment with `extra_data`
//! `{filename}` (plus `content_type` from `PR_ATTACH_MIME_TAG` when
//! present; attachments that are TNEF streams themselves are dispatched to
//! `tnef` again) and, with `extract_bodies`, the text, HTML and RTF bodies
//! with `extra_data` `{tnef_body: "text"|"html"|"rtf", content_type}`.
//! A checksum mismatch or a truncated stream is an error record; what was
//! read before it is still returned. A payload without the signature gets
//! no results (`Ok(None)`).
//!
//! Not done: recipient tables, calendar/contact properties, named
//! properties' values (they are skipped), RTF-to-text conversion.

use std::sync::Arc;

use serde_json::{json, Value};
use stoq_core::hashing::{hex, sha256};
use stoq_core::{
    async_trait, run_cpu, Error, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Request,
    Worker, WorkerResponse,
};

/// The plugin's name.
pub const NAME: &str = "tnef";
/// The first four bytes of a TNEF stream (little-endian).
pub const TNEF_SIGNATURE: u32 = 0x223E_9F78;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "extract_bodies",
        "true",
        "also extract the message's text, HTML and (decompressed) RTF bodies",
    ),
    OptionDoc::new(
        "always_dispatch",
        "",
        "comma list of workers every extracted payload is dispatched to",
    ),
];

// Attribute ids (low 16 bits of the attribute id).
const ATT_SUBJECT: u16 = 0x8004;
const ATT_MESSAGE_CLASS: u16 = 0x8008;
const ATT_BODY: u16 = 0x800C;
const ATT_ATTACH_DATA: u16 = 0x800F;
const ATT_ATTACH_TITLE: u16 = 0x8010;
const ATT_ATTACH_REND_DATA: u16 = 0x9002;
const ATT_MSG_PROPS: u16 = 0x9003;
const ATT_ATTACHMENT: u16 = 0x9005;
const ATT_OEM_CODEPAGE: u16 = 0x9007;

// MAPI property ids.
const PR_MESSAGE_CLASS: u16 = 0x001A;
const PR_SUBJECT: u16 = 0x0037;
const PR_BODY: u16 = 0x1000;
const PR_RTF_COMPRESSED: u16 = 0x1009;
const PR_BODY_HTML: u16 = 0x1013;
const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;

// MAPI property types.
const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_BINARY: u16 = 0x0102;
const PT_OBJECT: u16 = 0x000D;
const MV_FLAG: u16 = 0x1000;

/// One attachment of a TNEF stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnefAttachment {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// What [`parse_tnef`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tnef {
    /// The legacy key after the signature.
    pub key: u16,
    pub message_class: Option<String>,
    pub subject: Option<String>,
    pub attachments: Vec<TnefAttachment>,
    pub body: Option<String>,
    /// The HTML body as stored (bytes in the message's code page).
    pub body_html: Option<Vec<u8>>,
    /// The decompressed RTF body.
    pub body_rtf: Option<Vec<u8>>,
    /// Problems met; everything before them is kept.
    pub errors: Vec<String>,
}

/// A little-endian reader that never panics.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Skip to the next multiple of 4 from the start.
    fn align4(&mut self) {
        let pad = (4 - self.pos % 4) % 4;
        self.pos = (self.pos + pad).min(self.data.len());
    }
}

/// One MAPI property: id, type and its values' raw bytes.
#[derive(Debug, Clone)]
struct Prop<'a> {
    id: u16,
    ptype: u16,
    values: Vec<&'a [u8]>,
}

/// The byte size of one value of a fixed-size MAPI type, as stored in
/// TNEF (padded to four bytes); `None` for variable-size or unknown types.
fn fixed_size(base: u16) -> Option<usize> {
    Some(match base {
        0x0000 | 0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => 4,
        0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => 8,
        0x0048 => 16,
        _ => return None,
    })
}

/// Parse a MAPI property list; the properties read before a problem are
/// returned with the problem.
fn parse_props(data: &[u8]) -> (Vec<Prop<'_>>, Option<String>) {
    let mut r = Reader::new(data);
    let mut props = Vec::new();
    let Some(count) = r.u32() else {
        return (props, Some("MAPI property list: no count".into()));
    };
    for n in 0..count {
        let err = |what: &str| Some(format!("MAPI property {n} of {count}: {what}"));
        let (Some(ptype), Some(id)) = (r.u16(), r.u16()) else {
            return (props, err("truncated tag"));
        };
        if id >= 0x8000 {
            // Named property: GUID, kind, then an id or a UTF-16 name.
            if r.take(16).is_none() {
                return (props, err("truncated name GUID"));
            }
            match r.u32() {
                Some(0) => {
                    if r.u32().is_none() {
                        return (props, err("truncated name id"));
                    }
                }
                Some(1) => {
                    let ok = r.u32().and_then(|len| r.take(len as usize)).is_some();
                    if !ok {
                        return (props, err("truncated name string"));
                    }
                    r.align4();
                }
                _ => return (props, err("bad name kind")),
            }
        }
        let multi = ptype & MV_FLAG != 0;
        let base = ptype & !(MV_FLAG | 0x2000);
        let mut values = Vec::new();
        match base {
            PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT => {
                let Some(nvals) = r.u32() else {
                    return (props, err("truncated value count"));
                };
                for _ in 0..nvals {
                    let Some(v) = r.u32().and_then(|len| r.take(len as usize)) else {
                        return (props, err("truncated value"));
                    };
                    values.push(v);
                    r.align4();
                }
            }
            _ => {
                let Some(size) = fixed_size(base) else {
                    return (props, err(&format!("unknown property type 0x{ptype:04x}")));
                };
                let nvals = if multi {
                    match r.u32() {
                        Some(n) => n,
                        None => return (props, err("truncated value count")),
                    }
                } else {
                    1
                };
                for _ in 0..nvals {
                    let Some(v) = r.take(size) else {
                        return (props, err("truncated value"));
                    };
                    values.push(v);
                }
            }
        }
        props.push(Prop { id, ptype, values });
    }
    (props, None)
}

/// Text of 8-bit bytes in Windows code page `cp` (NULs at the end dropped).
fn cp_string(bytes: &[u8], cp: u32) -> String {
    let bytes = trim_nul(bytes);
    let enc = match cp {
        65001 => Some(encoding_rs::UTF_8),
        0 => None,
        cp => encoding_rs::Encoding::for_label(format!("windows-{cp}").as_bytes())
            .or_else(|| encoding_rs::Encoding::for_label(format!("cp{cp}").as_bytes())),
    };
    match std::str::from_utf8(bytes) {
        Ok(s) if enc.is_none() || bytes.is_ascii() => s.to_string(),
        _ => enc
            .unwrap_or(encoding_rs::WINDOWS_1252)
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &b[..end]
}

/// The text of a string property value.
fn prop_string(p: &Prop<'_>, cp: u32) -> Option<String> {
    let v = p.values.first()?;
    match p.ptype & !MV_FLAG {
        PT_UNICODE => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let s = String::from_utf16_lossy(&units);
            Some(s.trim_end_matches('\0').to_string())
        }
        PT_STRING8 => Some(cp_string(v, cp)),
        PT_BINARY => Some(cp_string(v, cp)),
        _ => None,
    }
}

/// The bytes of a binary (or string, or object) property value.
fn prop_bytes(p: &Prop<'_>) -> Option<Vec<u8>> {
    let v = p.values.first()?;
    match p.ptype & !MV_FLAG {
        PT_BINARY | PT_STRING8 => Some(v.to_vec()),
        PT_UNICODE => Some(
            String::from_utf16_lossy(
                &v.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>(),
            )
            .trim_end_matches('\0')
            .as_bytes()
            .to_vec(),
        ),
        // An object starts with the 16-byte IID of its interface.
        PT_OBJECT => Some(v.get(16..).unwrap_or_default().to_vec()),
        _ => None,
    }
}

#[derive(Default)]
struct AttachmentBuilder {
    title: Option<String>,
    long_filename: Option<String>,
    mapi_filename: Option<String>,
    display_name: Option<String>,
    mime_tag: Option<String>,
    data: Option<Vec<u8>>,
    mapi_data: Option<Vec<u8>>,
}

impl AttachmentBuilder {
    fn finish(self) -> TnefAttachment {
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        TnefAttachment {
            filename: nonempty(self.long_filename)
                .or(nonempty(self.title))
                .or(nonempty(self.mapi_filename))
                .or(nonempty(self.display_name)),
            content_type: nonempty(self.mime_tag),
            data: self.data.or(self.mapi_data).unwrap_or_default(),
        }
    }
}

/// Parse a TNEF stream. `None` when `data` does not start with the TNEF
/// signature. Never panics.
pub fn parse_tnef(data: &[u8]) -> Option<Tnef> {
    let mut r = Reader::new(data);
    if r.u32()? != TNEF_SIGNATURE {
        return None;
    }
    let mut t = Tnef::default();
    let Some(key) = r.u16() else {
        t.errors.push("truncated after the signature".into());
        return Some(t);
    };
    t.key = key;
    let mut codepage: u32 = 1252;
    let mut current: Option<AttachmentBuilder> = None;
    let mut msg_props: Vec<u8> = Vec::new();

    while r.pos < data.len() {
        let at = r.pos;
        let (Some(level), Some(id), Some(len)) = (r.take(1).map(|b| b[0]), r.u32(), r.u32()) else {
            t.errors
                .push(format!("truncated attribute header at offset {at}"));
            break;
        };
        let start = r.pos;
        let available = data.len() - start;
        let (body, truncated) = if (len as usize) <= available {
            (&data[start..start + len as usize], false)
        } else {
            (&data[start..], true)
        };
        r.pos = start + body.len();
        if truncated {
            t.errors.push(format!(
                "attribute 0x{id:08x} at offset {at}: {len} bytes announced, {available} left \
                 (stream truncated)"
            ));
        } else {
            match r.u16() {
                Some(sum) => {
                    let actual = body.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b)));
                    if sum != actual {
                        t.errors.push(format!(
                            "attribute 0x{id:08x} at offset {at}: checksum mismatch"
                        ));
                    }
                }
                None => t.errors.push(format!(
                    "attribute 0x{id:08x} at offset {at}: checksum missing"
                )),
            }
        }
        let name = (id & 0xFFFF) as u16;
        if level == 2 {
            if name == ATT_ATTACH_REND_DATA {
                if let Some(a) = current.take() {
                    t.attachments.push(a.finish());
                }
                current = Some(AttachmentBuilder::default());
                continue;
            }
            let a = current.get_or_insert_with(AttachmentBuilder::default);
            match name {
                ATT_ATTACH_TITLE => a.title = Some(cp_string(body, codepage)),
                ATT_ATTACH_DATA => a.data = Some(body.to_vec()),
                ATT_ATTACHMENT => {
                    let (props, err) = parse_props(body);
                    for p in &props {
                        match p.id {
                            PR_ATTACH_LONG_FILENAME => a.long_filename = prop_string(p, codepage),
                            PR_ATTACH_FILENAME => a.mapi_filename = prop_string(p, codepage),
                            PR_DISPLAY_NAME => a.display_name = prop_string(p, codepage),
                            PR_ATTACH_MIME_TAG => a.mime_tag = prop_string(p, codepage),
                            PR_ATTACH_DATA => a.mapi_data = prop_bytes(p),
                            _ => {}
                        }
                    }
                    if let Some(e) = err {
                        t.errors.push(format!("attachment properties: {e}"));
                    }
                }
                _ => {}
            }
        } else {
            match name {
                ATT_OEM_CODEPAGE => {
                    if let Some(b) = body.get(..4) {
                        codepage = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                }
                ATT_MESSAGE_CLASS => t.message_class = Some(cp_string(body, codepage)),
                ATT_SUBJECT => t.subject = Some(cp_string(body, codepage)),
                ATT_BODY => t.body = Some(cp_string(body, codepage)),
                ATT_MSG_PROPS => msg_props = body.to_vec(),
                _ => {}
            }
        }
        if truncated {
            break;
        }
    }
    if let Some(a) = current.take() {
        t.attachments.push(a.finish());
    }

    if !msg_props.is_empty() {
        let (props, err) = parse_props(&msg_props);
        for p in &props {
            match p.id {
                PR_SUBJECT if t.subject.is_none() => t.subject = prop_string(p, codepage),
                PR_MESSAGE_CLASS if t.message_class.is_none() => {
                    t.message_class = prop_string(p, codepage)
                }
                PR_BODY if t.body.is_none() => t.body = prop_string(p, codepage),
                PR_BODY_HTML => t.body_html = prop_bytes(p).map(|b| trim_nul(&b).to_vec()),
                PR_RTF_COMPRESSED => {
                    if let Some(c) = prop_bytes(p) {
                        match decompress_rtf(&c) {
                            Ok(rtf) => t.body_rtf = Some(rtf),
                            Err(e) => t.errors.push(format!("compressed RTF body: {e}")),
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(e) = err {
            t.errors.push(format!("message properties: {e}"));
        }
    }
    t.body = t.body.filter(|b| !b.is_empty());
    t.body_html = t.body_html.filter(|b| !b.is_empty());
    t.body_rtf = t.body_rtf.filter(|b| !b.is_empty());
    Some(t)
}

/// The initial dictionary of [MS-OXRTFCP] compressed RTF.
const RTF_DICT: &[u8] = b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

/// Decompress an [MS-OXRTFCP] compressed RTF stream (`LZFu`, or `MELA`
/// for uncompressed). The output is cut at the announced raw size; the
/// CRC is not checked.
pub fn decompress_rtf(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(data);
    let (Some(_comp_size), Some(raw_size), Some(comp_type), Some(_crc)) =
        (r.u32(), r.u32(), r.u32(), r.u32())
    else {
        return Err("header truncated".into());
    };
    let input = &data[16..];
    let raw_size = raw_size as usize;
    match comp_type {
        0x414C_454D => Ok(input[..raw_size.min(input.len())].to_vec()),
        0x7546_5A4C => {
            let mut dict = [0u8; 4096];
            dict[..RTF_DICT.len()].copy_from_slice(RTF_DICT);
            let mut write = RTF_DICT.len();
            // Never more than the raw size, nor than 17 bytes per input byte.
            let cap = raw_size.min(input.len().saturating_mul(17));
            let mut out = Vec::with_capacity(cap);
            let mut i = 0;
            'outer: while i < input.len() {
                let control = input[i];
                i += 1;
                for bit in 0..8 {
                    if out.len() >= cap {
                        break 'outer;
                    }
                    if control & (1 << bit) == 0 {
                        let Some(&b) = input.get(i) else {
                            break 'outer;
                        };
                        i += 1;
                        out.push(b);
                        dict[write] = b;
                        write = (write + 1) % 4096;
                    } else {
                        let (Some(&hi), Some(&lo)) = (input.get(i), input.get(i + 1)) else {
                            break 'outer;
                        };
                        i += 2;
                        let token = u16::from_be_bytes([hi, lo]);
                        let offset = usize::from(token >> 4);
                        let length = usize::from(token & 0xF) + 2;
                        if offset == write {
                            break 'outer; // end of stream
                        }
                        for k in 0..length {
                            if out.len() >= cap {
                                break 'outer;
                            }
                            let b = dict[(offset + k) % 4096];
                            out.push(b);
                            dict[write] = b;
                            write = (write + 1) % 4096;
                        }
                    }
                }
            }
            Ok(out)
        }
        other => Err(format!("unknown compression type 0x{other:08x}")),
    }
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

impl Tnef {
    /// The results object (see the module docs).
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "message_class": self.message_class,
            "subject": self.subject,
            "attachments": self.attachments.iter().map(|a| json!({
                "filename": a.filename,
                "size": a.data.len(),
                "sha256": hex(&sha256(&a.data)),
            })).collect::<Vec<_>>(),
            "has_body": self.body.is_some(),
            "has_body_html": self.body_html.is_some(),
            "has_body_rtf": self.body_rtf.is_some(),
        })
    }
}

/// Options of the `tnef` worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefOptions {
    pub extract_bodies: bool,
    pub always_dispatch: Vec<String>,
}

impl Default for TnefOptions {
    fn default() -> Self {
        TnefOptions {
            extract_bodies: true,
            always_dispatch: Vec::new(),
        }
    }
}

impl TnefOptions {
    pub fn from_config(cfg: &PluginConfig) -> Result<TnefOptions, PluginError> {
        Ok(TnefOptions {
            extract_bodies: cfg.bool("extract_bodies", true)?,
            always_dispatch: cfg.list("always_dispatch"),
        })
    }
}

/// Build the worker response for a parsed stream.
pub fn response(t: &Tnef, opts: &TnefOptions) -> WorkerResponse {
    let mut r = WorkerResponse::with_results(t.to_json());
    let with_dispatch = |mut meta: PayloadMeta, content: &[u8]| {
        meta.dispatch_to = opts.always_dispatch.clone();
        if content.starts_with(&TNEF_SIGNATURE.to_le_bytes())
            && !meta.dispatch_to.iter().any(|d| d == NAME)
        {
            meta.dispatch_to.push(NAME.to_string());
        }
        meta
    };
    for a in &t.attachments {
        let mut meta = PayloadMeta::default();
        if let Some(f) = &a.filename {
            meta.extra_data.insert("filename".into(), json!(f));
        }
        if let Some(c) = &a.content_type {
            meta.extra_data.insert("content_type".into(), json!(c));
        }
        let meta = with_dispatch(meta, &a.data);
        r.extracted
            .push(ExtractedPayload::with_meta(a.data.clone(), meta));
    }
    if opts.extract_bodies {
        let bodies: [(&str, &str, Option<&[u8]>); 3] = [
            ("text", "text/plain", t.body.as_deref().map(str::as_bytes)),
            ("html", "text/html", t.body_html.as_deref()),
            ("rtf", "application/rtf", t.body_rtf.as_deref()),
        ];
        for (kind, ct, body) in bodies {
            if let Some(b) = body {
                let mut meta = PayloadMeta::with_extra("tnef_body", kind);
                meta.extra_data.insert("content_type".into(), json!(ct));
                let meta = with_dispatch(meta, b);
                r.extracted
                    .push(ExtractedPayload::with_meta(b.to_vec(), meta));
            }
        }
    }
    r.errors = t.errors.iter().map(Error::new).collect();
    r
}

/// The `tnef` worker.
#[derive(Debug, Clone, Default)]
pub struct TnefWorker {
    opts: Arc<TnefOptions>,
}

impl TnefWorker {
    pub fn new(opts: TnefOptions) -> Self {
        TnefWorker {
            opts: Arc::new(opts),
        }
    }
}

#[async_trait]
impl Worker for TnefWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let opts = self.opts.clone();
        let work = move || parse_tnef(&content).map(|t| response(&t, &opts));
        let r = run_cpu(payload.content.len(), work).await?;
        if r.is_none() {
            tracing::debug!(payload = payload.id(), "tnef: no TNEF signature");
        }
        Ok(r)
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Worker], |cfg| {
        let opts = TnefOptions::from_config(cfg)?;
        Ok(PluginInstance::new().worker(Arc::new(TnefWorker::new(opts))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Extract attachments and bodies from TNEF (winmail.dat) streams")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    // [MS-OXRTFCP] section 4.1 and 4.2 examples.
    #[test]
    fn rtf_spec_examples() {
        let simple: &[u8] = &[
            0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5,
            0xc7, 0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42,
            0x32, 0x0a, 0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0,
            0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f, 0xa0,
        ];
        assert_eq!(
            decompress_rtf(simple).unwrap(),
            b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
        );
        let crossing: &[u8] = &[
            0x1a, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xe2, 0xd4,
            0x4b, 0x51, 0x41, 0x00, 0x04, 0x20, 0x57, 0x58, 0x59, 0x5a, 0x0d, 0x6e, 0x7d, 0x01,
            0x0e, 0xb0,
        ];
        assert_eq!(
            decompress_rtf(crossing).unwrap(),
            b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"
        );
        let mut mela = vec![0u8; 16];
        mela[4] = 3;
        mela[8..12].copy_from_slice(&0x414C_454Du32.to_le_bytes());
        mela.extend_from_slice(b"abcdef");
        assert_eq!(decompress_rtf(&mela).unwrap(), b"abc");
        assert!(decompress_rtf(b"short").is_err());
        assert_eq!(RTF_DICT.len(), 207);
    }

    #[test]
    fn not_tnef_and_truncated() {
        assert_eq!(parse_tnef(b"hello world"), None);
        assert_eq!(parse_tnef(b""), None);
        let t = parse_tnef(&TNEF_SIGNATURE.to_le_bytes()).unwrap();
        assert_eq!(t.errors.len(), 1);
    }
}
