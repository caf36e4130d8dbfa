//! `rtf` worker: pull the embedded objects (`\objdata`) out of RTF
//! documents, decode them as OLE 1.0 objects and unpack OLE packages.
//!
//! The tokenizer follows oletools' `rtfobj` (0.60), which emulates how MS
//! Word reads malformed RTF, so that malicious documents decode as Word
//! sees them:
//!
//! - groups (`{`/`}`) are counted without requiring balance; unclosed
//!   groups are closed at the end of the data, stray `}` are accepted;
//! - a destination control word (`\objdata`, `\pict`, `\fonttbl`, ... the
//!   RTF 1.9.1 list) opens a destination at the current group level,
//!   wherever it stands; text goes to the innermost open destination;
//! - a control word is at most 250 letters plus an optional signed number,
//!   read within 253 bytes (Word's limit); longer letter runs, where
//!   rtfobj gives up, are skipped here as one unknown control word;
//! - `\binN` takes the next N raw bytes (negative or missing N = 0), which
//!   inside `\objdata` are added as hex;
//! - inside `\objdata` only hex digits count: whitespace, other text,
//!   nested groups' text, control words and symbols are ignored; `\'hh`
//!   drops the last hex digit read so far when their count is odd (a Word
//!   bug that exploits rely on) and skips the two characters after it;
//!   an odd final digit is dropped.
//!
//! Each object's bytes are then read as an OLE 1.0 ObjectHeader +
//! EmbeddedObject; `Package` objects are unpacked to their file.
//!
//! Results (`results.workers.rtf`): `{objects: [...], anomalies: [...]}`,
//! plus `dde: [...]` (DDE field instructions) when there are any;
//! `anomalies` lists the anti-analysis tricks met (at most 20); `objects`
//! has one entry per `\objdata`, keys in this order: `index`, `offset` (start of the object
//! data in the RTF, rtfobj's `start`), `size` and `sha256` of the decoded
//! bytes, `is_ole`; for OLE 1.0 objects also `format_id`, `class_name`,
//! `topic_name`, `item_name`, `data_size`, `data_sha256` (the native
//! data), `is_ole2` (the native data is an OLE2 compound file, e.g. an
//! embedded Word document), `clsid` (its root CLSID) and, for packages,
//! `package: {filename, label, src_path, tmp_path, size, sha256}`.
//!
//! Extracted payloads: per object, the package's file (`extra_data
//! {index, filename}`), else the OLE native data (`{index, class_name}`),
//! else the decoded bytes (`{index}`). Empty objects are not extracted.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, blocking, ExtractedPayload, ModuleDescriptor, Payload, PayloadMeta, PluginClass,
    PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

use crate::compound::{is_ole, CompoundFile};
use crate::dde;
use crate::ole::INLINE_LIMIT;
use crate::oleobj::{parse_native, parse_ole1, NativeObject, Ole1Object};
use crate::util::{latin1, sha256_hex};

/// Destination control words (RTF 1.9.1, as rtfobj lists them).
const DESTINATIONS: &[&str] = &[
    "aftncn",
    "aftnsep",
    "aftnsepc",
    "annotation",
    "atnauthor",
    "atndate",
    "atnid",
    "atnparent",
    "atnref",
    "atrfend",
    "atrfstart",
    "author",
    "background",
    "bkmkend",
    "bkmkstart",
    "blipuid",
    "buptim",
    "category",
    "colorschememapping",
    "colortbl",
    "comment",
    "company",
    "creatim",
    "datafield",
    "datastore",
    "defchp",
    "defpap",
    "do",
    "doccomm",
    "docvar",
    "dptxbxtext",
    "ebcend",
    "ebcstart",
    "factoidname",
    "falt",
    "fchars",
    "ffdeftext",
    "ffentrymcr",
    "ffexitmcr",
    "ffformat",
    "ffhelptext",
    "ffl",
    "ffname",
    "ffstattext",
    "field",
    "file",
    "filetbl",
    "fldinst",
    "fldrslt",
    "fldtype",
    "fontemb",
    "fonttbl",
    "footer",
    "footerf",
    "footerl",
    "footerr",
    "footnote",
    "formfield",
    "ftncn",
    "ftnsep",
    "ftnsepc",
    "g",
    "generator",
    "gridtbl",
    "header",
    "headerf",
    "headerl",
    "headerr",
    "hl",
    "hlfr",
    "hlinkbase",
    "hlloc",
    "hlsrc",
    "hsv",
    "info",
    "keywords",
    "latentstyles",
    "lchars",
    "levelnumbers",
    "leveltext",
    "lfolevel",
    "linkval",
    "list",
    "listlevel",
    "listname",
    "listoverride",
    "listoverridetable",
    "listpicture",
    "liststylename",
    "listtable",
    "listtext",
    "lsdlockedexcept",
    "macc",
    "maccPr",
    "mailmerge",
    "malnScr",
    "manager",
    "margPr",
    "mbar",
    "mbarPr",
    "mbaseJc",
    "mbegChr",
    "mborderBox",
    "mborderBoxPr",
    "mbox",
    "mboxPr",
    "mchr",
    "mcount",
    "mctrlPr",
    "md",
    "mdeg",
    "mdegHide",
    "mden",
    "mdiff",
    "mdPr",
    "me",
    "mendChr",
    "meqArr",
    "meqArrPr",
    "mf",
    "mfName",
    "mfPr",
    "mfunc",
    "mfuncPr",
    "mgroupChr",
    "mgroupChrPr",
    "mgrow",
    "mhideBot",
    "mhideLeft",
    "mhideRight",
    "mhideTop",
    "mlim",
    "mlimLoc",
    "mlimLow",
    "mlimLowPr",
    "mlimUpp",
    "mlimUppPr",
    "mm",
    "mmaddfieldname",
    "mmathPict",
    "mmaxDist",
    "mmc",
    "mmcJc",
    "mmconnectstr",
    "mmconnectstrdata",
    "mmcPr",
    "mmcs",
    "mmdatasource",
    "mmheadersource",
    "mmmailsubject",
    "mmodso",
    "mmodsofilter",
    "mmodsofldmpdata",
    "mmodsomappedname",
    "mmodsoname",
    "mmodsorecipdata",
    "mmodsosort",
    "mmodsosrc",
    "mmodsotable",
    "mmodsoudl",
    "mmodsoudldata",
    "mmodsouniquetag",
    "mmPr",
    "mmquery",
    "mmr",
    "mnary",
    "mnaryPr",
    "mnoBreak",
    "mnum",
    "mobjDist",
    "moMath",
    "moMathPara",
    "moMathParaPr",
    "mopEmu",
    "mphant",
    "mphantPr",
    "mplcHide",
    "mpos",
    "mr",
    "mrad",
    "mradPr",
    "mrPr",
    "msepChr",
    "mshow",
    "mshp",
    "msPre",
    "msPrePr",
    "msSub",
    "msSubPr",
    "msSubSup",
    "msSubSupPr",
    "msSup",
    "msSupPr",
    "mstrikeBLTR",
    "mstrikeH",
    "mstrikeTLBR",
    "mstrikeV",
    "msub",
    "msubHide",
    "msup",
    "msupHide",
    "mtransp",
    "mtype",
    "mvertJc",
    "mvfmf",
    "mvfml",
    "mvtof",
    "mvtol",
    "mzeroAsc",
    "mzeroDesc",
    "mzeroWid",
    "nesttableprops",
    "nonesttables",
    "objalias",
    "objclass",
    "objdata",
    "object",
    "objname",
    "objsect",
    "oldcprops",
    "oldpprops",
    "oldsprops",
    "oldtprops",
    "oleclsid",
    "operator",
    "panose",
    "password",
    "passwordhash",
    "pgp",
    "pgptbl",
    "picprop",
    "pict",
    "pn",
    "pnseclvl",
    "pntext",
    "pntxta",
    "pntxtb",
    "printim",
    "propname",
    "protend",
    "protstart",
    "protusertbl",
    "result",
    "revtbl",
    "revtim",
    "rxe",
    "shp",
    "shpgrp",
    "shpinst",
    "shppict",
    "shprslt",
    "shptxt",
    "sn",
    "sp",
    "staticval",
    "stylesheet",
    "subject",
    "sv",
    "svb",
    "tc",
    "template",
    "themedata",
    "title",
    "txe",
    "ud",
    "upr",
    "userprops",
    "wgrffmtfilter",
    "windowcaption",
    "writereservation",
    "writereservhash",
    "xe",
    "xform",
    "xmlattrname",
    "xmlattrvalue",
    "xmlclose",
    "xmlname",
    "xmlnstbl",
    "xmlopen",
    "margSz",
    "pnaiu",
    "pnaiud",
];

/// Word reads a control word (name + parameter) within this many bytes
/// after the backslash.
const CONTROL_WORD_WINDOW: usize = 253;
/// Longest control word name.
const MAX_NAME: usize = 250;
/// At most this many objects are decoded.
pub const MAX_OBJECTS: usize = 4096;
/// Decoding stops once objects total this many bytes.
pub const MAX_TOTAL_OBJECT_BYTES: usize = 512 << 20;

/// Whether `data` looks like RTF (`{\rt`, as rtfobj checks).
pub fn is_rtf(data: &[u8]) -> bool {
    data.starts_with(b"{\\rt")
}

/// One destination being read.
#[derive(Debug, Clone)]
struct Dest {
    is_objdata: bool,
    group_level: i64,
    start: usize,
    /// Hex digits read so far (objdata only).
    hex: Vec<u8>,
}

/// One `\objdata` as found in the RTF.
#[derive(Debug, Clone)]
pub struct RawObject {
    /// Offset of the object data (just after `\objdata`).
    pub start: usize,
    /// Offset where the destination closed.
    pub end: usize,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// An object with everything decoded from it.
#[derive(Debug, Clone)]
pub struct RtfObject {
    pub raw: RawObject,
    /// The OLE 1.0 object, when the bytes are one (embedded objects only,
    /// as rtfobj: a link is not counted as OLE).
    pub ole: Option<Ole1Object>,
    /// The OLE package, for `Package` objects that parse.
    pub package: Option<NativeObject>,
    /// Root CLSID when the native data is an OLE2 compound file.
    pub ole2_clsid: Option<String>,
    /// Why the package could not be read.
    pub package_error: Option<String>,
}

impl RtfObject {
    /// The native data of an embedded OLE 1.0 object.
    pub fn native_data(&self) -> Option<&[u8]> {
        self.ole.as_ref()?.data.as_deref()
    }
}

/// What the tokenizer returns.
struct Parsed {
    objects: Vec<RawObject>,
    anomalies: Vec<String>,
    errors: Vec<String>,
}

/// At most this many anomalies are reported.
const MAX_ANOMALIES: usize = 20;

/// Everything [`parse_rtf`] found.
#[derive(Debug, Clone, Default)]
pub struct RtfReport {
    pub objects: Vec<RtfObject>,
    /// Anti-analysis tricks met (`\bin` without or with a negative length,
    /// overlong control words), at most 20.
    pub anomalies: Vec<String>,
    /// Limits hit and objects that could not be fully decoded.
    pub errors: Vec<String>,
    /// Field instructions that run DDE (`DDE`, `DDEAUTO`), as text.
    pub dde: Vec<String>,
}

impl RtfReport {
    /// The JSON results of the `rtf` worker.
    pub fn to_json(&self) -> Value {
        let objects: Vec<Value> = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| object_json(i, o))
            .collect();
        let mut v = json!({ "objects": objects, "anomalies": self.anomalies });
        if !self.dde.is_empty() {
            v["dde"] = json!(self.dde);
        }
        v
    }
}

fn object_json(index: usize, o: &RtfObject) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), json!(index));
    m.insert("offset".into(), json!(o.raw.start));
    m.insert("size".into(), json!(o.raw.data.len()));
    m.insert("sha256".into(), json!(sha256_hex(&o.raw.data)));
    m.insert("is_ole".into(), json!(o.ole.is_some()));
    if let Some(ole) = &o.ole {
        let data = ole.data.as_deref().unwrap_or_default();
        m.insert("format_id".into(), json!(ole.format_id));
        m.insert("class_name".into(), json!(ole.class_name_str()));
        m.insert("topic_name".into(), json!(latin1(&ole.topic_name)));
        m.insert("item_name".into(), json!(latin1(&ole.item_name)));
        m.insert("data_size".into(), json!(data.len()));
        m.insert("data_sha256".into(), json!(sha256_hex(data)));
        m.insert("is_ole2".into(), json!(o.ole2_clsid.is_some()));
        if let Some(c) = &o.ole2_clsid {
            m.insert("clsid".into(), json!(c));
        }
        if let Some(p) = &o.package {
            m.insert(
                "package".into(),
                json!({
                    "filename": p.filename(),
                    "label": p.label,
                    "src_path": p.src_path,
                    "tmp_path": p.tmp_path,
                    "size": p.data.len(),
                    "sha256": sha256_hex(&p.data),
                }),
            );
        }
    }
    Value::Object(m)
}

/// The tokenizer state (rtfobj's RtfParser + RtfObjParser).
struct Parser<'a> {
    data: &'a [u8],
    index: usize,
    group_level: i64,
    /// Open destinations; the innermost is the current one.
    stack: Vec<Dest>,
    /// The current destination once the stack has been emptied by stray
    /// closing braces (rtfobj keeps using the last one closed).
    detached: Option<Dest>,
    objects: Vec<RawObject>,
    total_bytes: usize,
    anomalies: Vec<String>,
    errors: Vec<String>,
    limit_hit: bool,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            index: 0,
            group_level: 0,
            stack: vec![Dest {
                is_objdata: false,
                group_level: 0,
                start: 0,
                hex: Vec::new(),
            }],
            detached: None,
            objects: Vec::new(),
            total_bytes: 0,
            anomalies: Vec::new(),
            errors: Vec::new(),
            limit_hit: false,
        }
    }

    fn current(&mut self) -> &mut Dest {
        // The stack is empty only once `detached` holds the current one;
        // `close_destination` keeps that invariant.
        if self.stack.is_empty() {
            self.detached.get_or_insert_with(|| Dest {
                is_objdata: false,
                group_level: 0,
                start: 0,
                hex: Vec::new(),
            })
        } else {
            let last = self.stack.len() - 1;
            &mut self.stack[last]
        }
    }

    fn anomaly(&mut self, msg: String) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(msg);
        }
    }

    fn parse(mut self) -> Parsed {
        while self.index < self.data.len() {
            match self.data[self.index] {
                b'{' => {
                    self.group_level += 1;
                    self.index += 1;
                }
                b'}' => {
                    self.close_group();
                    self.index += 1;
                }
                b'\\' => self.backslash(),
                _ => self.text(),
            }
        }
        while self.group_level > 0 {
            self.close_group();
        }
        Parsed {
            objects: self.objects,
            anomalies: self.anomalies,
            errors: self.errors,
        }
    }

    fn close_group(&mut self) {
        if self.group_level == self.current().group_level {
            self.close_destination();
        }
        self.group_level -= 1;
    }

    fn open_destination(&mut self, is_objdata: bool, start: usize) {
        if self.current().group_level == self.group_level {
            self.close_destination();
        }
        let d = Dest {
            is_objdata,
            group_level: self.group_level,
            start,
            hex: Vec::new(),
        };
        self.stack.push(d);
        self.detached = None;
    }

    fn close_destination(&mut self) {
        let end = self.index;
        if self.current().is_objdata && !self.limit_hit {
            let cur = match self.stack.last() {
                Some(d) => d,
                None => match &self.detached {
                    Some(d) => d,
                    None => return,
                },
            };
            let n = cur.hex.len() / 2;
            if self.objects.len() >= MAX_OBJECTS || self.total_bytes + n > MAX_TOTAL_OBJECT_BYTES {
                self.limit_hit = true;
                self.errors.push(format!(
                    "object limit reached ({MAX_OBJECTS} objects or {MAX_TOTAL_OBJECT_BYTES} \
                     bytes): later objects are not decoded"
                ));
            } else {
                let data: Vec<u8> = cur
                    .hex
                    .chunks_exact(2)
                    .map(|p| (nibble(p[0]) << 4) | nibble(p[1]))
                    .collect();
                let start = cur.start;
                self.total_bytes += data.len();
                self.objects.push(RawObject { start, end, data });
            }
        }
        if let Some(popped) = self.stack.pop() {
            if self.stack.is_empty() {
                self.detached = Some(popped);
            }
        }
    }

    fn text(&mut self) {
        let data = self.data;
        let rest = &data[self.index..];
        let n = rest
            .iter()
            .position(|&b| b == b'{' || b == b'}' || b == b'\\')
            .unwrap_or(rest.len());
        let cur = self.current();
        if cur.is_objdata {
            cur.hex
                .extend(rest[..n].iter().copied().filter(u8::is_ascii_hexdigit));
        }
        self.index += n;
    }

    fn backslash(&mut self) {
        let data = self.data;
        let i = self.index;
        // Window of the control word (the backslash excluded).
        let window_end = (i + 1 + CONTROL_WORD_WINDOW).min(data.len());
        let window = &data[i + 1..window_end];
        let letters = window
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if letters == 0 {
            self.control_symbol();
            return;
        }
        let name = &window[..letters];
        // Optional signed numeric parameter, read within the window.
        let after = &window[letters..];
        let (param, param_len) = parse_param(after);
        let len = 1 + letters + param_len;
        if letters > MAX_NAME {
            // rtfobj gives up here; skip the whole word and its number.
            self.anomaly(format!(
                "overlong control word ({letters} letters) at offset {i}"
            ));
            let mut j = i + 1;
            while j < data.len() && data[j].is_ascii_alphabetic() {
                j += 1;
            }
            let (_, plen) = parse_param(&data[j..data.len().min(j + CONTROL_WORD_WINDOW)]);
            self.index = j + plen;
            return;
        }
        if is_destination(name) {
            self.open_destination(name == b"objdata", i + len);
        }
        self.index = i + len;
        if name == b"bin" {
            self.bin(param);
        }
    }

    fn control_symbol(&mut self) {
        let i = self.index;
        let Some(&sym) = self.data.get(i + 1) else {
            // A lone backslash at the end: plain text.
            self.index += 1;
            return;
        };
        self.index = i + 2;
        if sym == b'\'' {
            // `\'hh`: the next two characters, whatever they are, are
            // skipped; inside objdata an odd hex digit count loses its
            // last digit (MS Word's behaviour).
            self.index = (self.index + 2).min(self.data.len());
            let cur = self.current();
            if cur.is_objdata && cur.hex.len() % 2 == 1 {
                cur.hex.pop();
            }
        }
    }

    fn bin(&mut self, param: Option<i64>) {
        let len = match param {
            None => {
                self.anomaly(format!("\\bin without length at offset {}", self.index));
                0
            }
            Some(n) if n < 0 => {
                self.anomaly(format!(
                    "\\bin with negative length at offset {}",
                    self.index
                ));
                0
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if self.data.get(self.index) == Some(&b' ') {
            self.index += 1;
        }
        let data = self.data;
        let end = self.index.saturating_add(len).min(data.len());
        let bytes = &data[self.index.min(end)..end];
        let cur = self.current();
        if cur.is_objdata {
            for &b in bytes {
                cur.hex.push(HEX[usize::from(b >> 4)]);
                cur.hex.push(HEX[usize::from(b & 15)]);
            }
        }
        self.index = self.index.saturating_add(len);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn is_destination(name: &[u8]) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static [u8]>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| DESTINATIONS.iter().map(|d| d.as_bytes()).collect())
        .contains(name)
}

/// `-?\d+` at the start of `s` (digits read to the end of `s`): the value
/// (saturated) and the length consumed. A `-` without digits is not a
/// parameter.
fn parse_param(s: &[u8]) -> (Option<i64>, usize) {
    let neg = s.first() == Some(&b'-');
    let digits_at = usize::from(neg);
    let digits = s[digits_at.min(s.len())..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return (None, 0);
    }
    let mut v: i64 = 0;
    for &d in &s[digits_at..digits_at + digits] {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    (Some(if neg { -v } else { v }), digits_at + digits)
}

/// Decode one object's bytes as OLE 1.0 (and its package / OLE2 data).
fn decode_object(raw: RawObject) -> RtfObject {
    let mut obj = RtfObject {
        raw,
        ole: None,
        package: None,
        ole2_clsid: None,
        package_error: None,
    };
    let Ok(ole) = parse_ole1(&obj.raw.data) else {
        return obj;
    };
    // rtfobj counts only embedded objects (with native data) as OLE.
    let Some(native) = ole.data.as_deref() else {
        return obj;
    };
    if ole.is_package() {
        match parse_native(native, true) {
            Ok(p) => obj.package = Some(p),
            Err(e) => obj.package_error = Some(e.to_string()),
        }
    } else if is_ole(native) {
        obj.ole2_clsid = Some(
            CompoundFile::open(native)
                .map(|cf| cf.root_clsid())
                .unwrap_or_default(),
        );
    }
    obj.ole = Some(ole);
    obj
}

/// At most this many DDE fields are reported, each cut at this many bytes.
const MAX_DDE_FIELDS: usize = 100;
const MAX_FIELD_TEXT: usize = 64 * 1024;

/// The text of every `\fldinst` field instruction that starts with `DDE`
/// (`DDE`, `DDEAUTO`), the way Word reads it: control words, groups and
/// line breaks dropped, `\\ \{ \}` and `\'hh` escapes decoded, so
/// instructions split over groups (a common obfuscation) come out whole.
pub fn dde_fields(data: &[u8]) -> Vec<String> {
    let needle = b"\\fldinst";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = data[from..].windows(needle.len()).position(|w| w == needle) {
        let start = from + pos + needle.len();
        from = start;
        let mut text: Vec<u8> = Vec::new();
        let mut depth = 0usize;
        let mut i = start;
        // Skip the rest of the control word (a numeric parameter, one space).
        while i < data.len() && (data[i].is_ascii_digit() || data[i] == b'-') {
            i += 1;
        }
        if data.get(i) == Some(&b' ') {
            i += 1;
        }
        while i < data.len() && text.len() < MAX_FIELD_TEXT {
            match data[i] {
                b'{' => depth += 1,
                b'}' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                b'\r' | b'\n' => {}
                b'\\' => {
                    i += 1;
                    match data.get(i) {
                        Some(&c @ (b'\\' | b'{' | b'}')) => text.push(c),
                        Some(b'\'') => {
                            let hex = data.get(i + 1..i + 3).and_then(|h| {
                                std::str::from_utf8(h)
                                    .ok()
                                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                            });
                            if let Some(b) = hex {
                                text.push(b);
                                i += 2;
                            }
                        }
                        Some(c) if c.is_ascii_alphabetic() => {
                            while i < data.len() && data[i].is_ascii_alphabetic() {
                                i += 1;
                            }
                            while i < data.len() && (data[i].is_ascii_digit() || data[i] == b'-') {
                                i += 1;
                            }
                            if data.get(i) != Some(&b' ') {
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
                c => text.push(c),
            }
            i += 1;
        }
        let text = latin1(&text);
        let text = text.trim();
        if dde::is_dde_instruction(text) {
            out.push(text.to_string());
            if out.len() == MAX_DDE_FIELDS {
                break;
            }
        }
    }
    out
}

/// Find and decode every `\objdata` of an RTF document. Works on any bytes
/// (the RTF signature is not required) and never panics.
pub fn parse_rtf(data: &[u8]) -> RtfReport {
    let parsed = Parser::new(data).parse();
    let mut report = RtfReport {
        objects: parsed.objects.into_iter().map(decode_object).collect(),
        anomalies: parsed.anomalies,
        errors: parsed.errors,
        dde: dde_fields(data),
    };
    for (i, o) in report.objects.iter().enumerate() {
        if let Some(e) = &o.package_error {
            report.errors.push(format!("object {i}: {e}"));
        }
        if let Some(p) = &o.package {
            if p.is_truncated() {
                report.errors.push(format!(
                    "object {i}: package data truncated ({} of {} bytes)",
                    p.data.len(),
                    p.declared_size
                ));
            }
        }
    }
    report
}

/// Results and extracted payloads for `report`.
pub fn worker_response(report: &RtfReport) -> WorkerResponse {
    let mut extracted = Vec::new();
    for (index, o) in report.objects.iter().enumerate() {
        let mut meta = PayloadMeta::default();
        meta.extra_data.insert("index".into(), json!(index));
        let content: &[u8] = if let Some(p) = &o.package {
            meta.extra_data
                .insert("filename".into(), json!(p.filename()));
            &p.data
        } else if let (Some(ole), Some(d)) = (&o.ole, o.native_data()) {
            meta.extra_data
                .insert("class_name".into(), json!(ole.class_name_str()));
            d
        } else {
            &o.raw.data
        };
        if content.is_empty() {
            continue;
        }
        extracted.push(ExtractedPayload::with_meta(content.to_vec(), meta));
    }
    WorkerResponse {
        results: Some(report.to_json()),
        extracted,
        errors: crate::util::error_records(&report.errors),
        ..WorkerResponse::default()
    }
}

/// The `rtf` worker.
#[derive(Debug, Clone, Default)]
pub struct RtfWorker;

#[async_trait]
impl Worker for RtfWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if !is_rtf(&payload.content) {
            return Ok(None);
        }
        let content = payload.content.clone();
        let run = move || {
            let report = parse_rtf(&content);
            tracing::debug!(objects = report.objects.len(), "rtf: parsed document");
            worker_response(&report)
        };
        let r = if payload.content.len() < INLINE_LIMIT {
            run()
        } else {
            blocking(run).await?
        };
        Ok(Some(r))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("rtf", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(RtfWorker)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Extract embedded objects from RTF (obfuscation-tolerant); unpack OLE 1.0 objects and packages",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objs(rtf: &[u8]) -> Vec<(usize, Vec<u8>)> {
        parse_rtf(rtf)
            .objects
            .into_iter()
            .map(|o| (o.raw.start, o.raw.data))
            .collect()
    }

    #[test]
    fn hex_with_noise() {
        assert_eq!(
            objs(b"{\\rtf1{\\object{\\*\\objdata 01 02\r\n0 3{\\foo zz}04}}}"),
            [(25, vec![1, 2, 3, 4])]
        );
        // Odd digit count: the last digit is dropped.
        assert_eq!(objs(b"{\\objdata 0102f}"), [(9, vec![1, 2])]);
        // \'hh with an odd count so far drops the last digit, and skips 2:
        // "010" -> "01", then "203" -> "01203" -> odd -> "0120".
        assert_eq!(objs(b"{\\objdata 010\\'zz203}"), [(9, vec![1, 0x20])]);
        // \bin data is taken raw.
        assert_eq!(objs(b"{\\objdata 01\\bin2 \x02\x03}"), [(9, vec![1, 2, 3])]);
        assert_eq!(objs(b"{\\objdata 01\\bin-5 02}"), [(9, vec![1, 2])]);
        // Nested destinations do not feed the object.
        assert_eq!(objs(b"{\\objdata 01{\\pict 99}02}"), [(9, vec![1, 2])]);
        // Missing closing braces.
        assert_eq!(objs(b"{\\rtf1{\\objdata 0102"), [(15, vec![1, 2])]);
        // Stray closing braces first.
        assert_eq!(objs(b"}}}{\\objdata 01020304}"), [(12, vec![1, 2, 3, 4])]);
    }

    #[test]
    fn control_word_limits() {
        // A 300-letter control word inside objdata is skipped.
        let mut rtf = b"{\\objdata 0102\\".to_vec();
        rtf.extend(std::iter::repeat_n(b'a', 300));
        rtf.extend_from_slice(b" 0304}");
        let r = parse_rtf(&rtf);
        assert_eq!(r.objects[0].raw.data, [1, 2, 3, 4]);
        assert_eq!(r.anomalies.len(), 1);
        assert!(r.errors.is_empty());
        // A numeric parameter is read within the window only.
        let mut rtf = b"{\\objdata\\foo".to_vec();
        rtf.extend(std::iter::repeat_n(b'1', 300));
        rtf.push(b'}');
        let r = parse_rtf(&rtf);
        // 253 - 3 letters = 250 digits belong to \foo; 50 digits remain.
        assert_eq!(r.objects[0].raw.data.len(), 25);
        assert_eq!(parse_param(b"-12x"), (Some(-12), 3));
        assert_eq!(parse_param(b"-x"), (None, 0));
        assert_eq!(
            parse_param(b"99999999999999999999999"),
            (Some(i64::MAX), 23)
        );
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            &b""[..],
            b"\\",
            b"{\\bin",
            b"{\\bin999999999999999999999",
            b"\\'",
            b"}{\\objdata\\'",
        ] {
            let _ = parse_rtf(s);
        }
    }
}

#[cfg(test)]
mod dde_tests {
    use super::*;

    #[test]
    fn dde_fields_plain_split_and_escaped() {
        let plain = br#"{\rtf1{\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"}{\fldrslt x}}}"#;
        assert_eq!(
            dde_fields(plain),
            [r#"DDEAUTO c:\windows\system32\cmd.exe "/k calc.exe""#]
        );
        // Split over groups, with formatting control words and a hex escape.
        let split = b"{\\rtf1{\\field{\\*\\fldinst {\\rtlch\\fcs1 D}{DE}{\\b0  c:\\\\x\\'2eexe}}}}";
        assert_eq!(dde_fields(split), ["DDE c:\\x.exe"]);
        // Other fields are not DDE; nothing found in plain text; never panics
        // on cut-off input.
        assert!(dde_fields(b"{\\rtf1{\\field{\\*\\fldinst HYPERLINK \"http://x\"}}}").is_empty());
        assert!(dde_fields(b"DDEAUTO outside a field").is_empty());
        for cut in [
            b"{\\fldinst DDE \\".as_slice(),
            b"\\fldinst",
            b"\\fldinst \\'4",
            b"\\fldinst -",
        ] {
            let _ = dde_fields(cut);
        }
        assert_eq!(dde_fields(b"\\fldinst DDE a}").len(), 1);
        // In the worker's results only when present.
        let r = parse_rtf(plain).to_json();
        assert_eq!(r["dde"][0].as_str().map(|s| &s[..7]), Some("DDEAUTO"));
        assert!(parse_rtf(b"{\\rtf1 hello}").to_json().get("dde").is_none());
    }
}
