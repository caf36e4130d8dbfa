//! Macro and field analysis of Office documents, olevba-style:
//! [`find_vba`] finds VBA projects and extracts their source, runs
//! MacroRaptor over it, flags Excel 4 (XLM) macro sheets and collects DDE
//! field instructions.
//!
//! Where VBA is looked for (as olevba 0.60 does):
//!
//! - OLE2 files: every storage named `VBA` whose parent also holds a
//!   `PROJECT` stream and which holds `_VBA_PROJECT` and `dir` streams is a
//!   project (Word `Macros/VBA`, Excel `_VBA_PROJECT_CUR/VBA`, a
//!   `vbaProject.bin` root). Module names, stream names, code offsets and
//!   the code page come from the `dir` stream; module file extensions
//!   (`.bas`, `.cls`, `.frm`) from `PROJECT`. Every other stream, orphaned
//!   directory entries included, is searched for compressed source
//!   (`\x00Attribut`), which finds code in damaged projects.
//! - PowerPoint 97-2003 (`PowerPoint Document` + `Current User`): the VBA
//!   project is an OLE2 file stored, usually zlib-compressed, in
//!   ExOleObjStg records (type 0x1011) of the `PowerPoint Document` stream.
//! - Zip-based files (OOXML): every member that is an OLE2 file
//!   (`word/vbaProject.bin`, `xl/vbaProject.bin`, renamed ones...).
//! - XML files: a flat OPC part's base64 `binaryData` that is an OLE2
//!   file; a Word 2003 XML `binData` holding an ActiveMime container.
//! - ActiveMime (MSO) containers themselves (from MHTML files): the
//!   zlib-compressed OLE2 file inside.
//!
//! XLM: a BIFF8/BIFF5 `Workbook`/`Book` stream with a BOUNDSHEET record of
//! type "Excel 4.0 macro sheet", or `xl/macrosheets/` members in a zip.
//!
//! DDE: Word 97-2003 field instructions (between the 0x13 and 0x14/0x15
//! field marks, in every stream, as oletools' msodde scans them) and
//! OOXML `w:fldSimple/@w:instr` and `w:instrText` runs between `w:fldChar`
//! begin/end (also in Word 2003 XML and flat OPC files); fields whose
//! instruction starts with `DDE` (DDE, DDEAUTO) are reported. Excel DDE
//! links (BIFF8, xlsx, xlsb, Excel 2003 XML, CSV) come from [`crate::dde`].

use std::collections::HashSet;
use std::io::Read;
use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;
use serde_json::{json, Map, Value};

use crate::compound::{is_ole, CompoundFile, EntryType};
use crate::mraptor::{self, Verdict};
use crate::ovba::{
    decode_codepage, decode_utf16le, decompress_limited, module_extensions, parse_dir,
};
use crate::util::{decode_base64_text, push_unique, u16_at, u32_at};
use crate::{crypto, dde};

/// Zip members larger than this are not read.
pub const MAX_MEMBER_SIZE: u64 = 64 << 20;
/// At most this many zip members are looked at.
pub const MAX_MEMBERS: usize = 10_000;
/// At most this many DDE fields are reported.
const MAX_FIELDS: usize = 1000;
/// A Word field instruction longer than this is cut (msodde: 1000).
const FIELD_MAX_SIZE: usize = 1000;
/// Nested OLE files (PPT storages, zip members) are searched this deep.
const MAX_NESTING: usize = 3;
/// Zip members and PPT storages read for one document total at most this
/// many bytes (zip and zlib bombs).
pub const MAX_TOTAL_READ: u64 = 256 << 20;
/// VBA source decompressed for one document totals at most this many
/// bytes (a crafted `dir` can point many modules at one stream).
pub const MAX_TOTAL_CODE: usize = 64 << 20;
/// At most this many PPT ExOleObjStg candidates are decompressed.
const MAX_PPT_STORAGES: usize = 256;

/// One VBA module (or code found outside a project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VbaModule {
    /// Zip member or PPT record holding the OLE file; `None` for the
    /// document itself.
    pub container: Option<String>,
    /// Path of the code stream in its OLE file (`Macros/VBA/ThisDocument`).
    pub stream: String,
    /// olevba's module file name (`ThisDocument.cls`, `Module1.bas`).
    pub module: String,
    /// The source code.
    pub code: String,
}

/// An Excel 4 macro sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlmSheet {
    /// Sheet name (BIFF) or zip member (OOXML).
    pub name: String,
    /// `visible`, `hidden` or `very hidden` (BIFF only).
    pub visibility: Option<&'static str>,
}

/// What [`find_vba`] found.
#[derive(Debug, Clone, Default)]
pub struct VbaReport {
    /// olevba's container type: `OLE`, `OpenXML` or `PPT`.
    pub filetype: &'static str,
    /// Whether a VBA project (or compressed VBA source) is present.
    pub vba_macros: bool,
    pub modules: Vec<VbaModule>,
    /// MacroRaptor over the code of all modules.
    pub verdict: Verdict,
    pub xlm: bool,
    pub xlm_sheets: Vec<XlmSheet>,
    /// DDE field instructions, trimmed, first-seen order, no duplicates.
    pub dde: Vec<String>,
    /// How the document is encrypted, when it is.
    pub encryption: Option<crypto::Encryption>,
    /// What could not be read (results are partial).
    pub errors: Vec<String>,
    /// Bytes that zip members and PPT storages may still expand to.
    read_budget: u64,
    /// Bytes of VBA source that may still be decompressed.
    code_budget: usize,
}

impl VbaReport {
    /// An empty report on a file of `filetype`, with the full read and
    /// code budgets.
    fn new(filetype: &'static str) -> Self {
        VbaReport {
            filetype,
            read_budget: MAX_TOTAL_READ,
            code_budget: MAX_TOTAL_CODE,
            ..VbaReport::default()
        }
    }

    /// All modules' code as MacroRaptor sees it (each module followed by a
    /// newline, as olevba's `get_vba_code_all_modules`).
    pub fn all_code(&self) -> String {
        let mut s = String::new();
        for m in &self.modules {
            s.push_str(&m.code);
            s.push('\n');
        }
        s
    }

    /// Whether there is anything macro-like: VBA or XLM.
    pub fn has_macros(&self) -> bool {
        self.vba_macros || self.xlm
    }

    /// The `olevba` worker's results.
    pub fn to_json(&self, include_code: bool) -> Value {
        let macros: Vec<Value> = self
            .modules
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("container".into(), json!(m.container));
                o.insert("stream".into(), json!(m.stream));
                o.insert("module".into(), json!(m.module));
                if include_code {
                    o.insert("code".into(), json!(m.code));
                }
                Value::Object(o)
            })
            .collect();
        let sheets: Vec<Value> = self
            .xlm_sheets
            .iter()
            .map(|s| json!({"name": s.name, "visibility": s.visibility}))
            .collect();
        let v = &self.verdict;
        let mut out = json!({
            "filetype": self.filetype,
            "vba_macros": self.vba_macros,
            "macros": macros,
            "autoexec": v.autoexec_keywords,
            "write": v.write_keywords,
            "execute": v.execute_keywords,
            "suspicious": v.suspicious,
            "flags": v.flags(),
            "matches": v.matches,
            "xlm": self.xlm,
            "xlm_sheets": sheets,
            "dde": self.dde,
        });
        if let Some(e) = &self.encryption {
            out["encryption"] = e.to_json();
        }
        out
    }

    /// The public `mraptor` plugin's results: `None` without VBA macros.
    pub fn mraptor_json(&self) -> Option<Value> {
        if !self.vba_macros {
            return None;
        }
        let v = &self.verdict;
        Some(json!({
            "suspicous": v.suspicious,
            "flags": v.flag_names(),
            "filetype": self.filetype,
            "matches": v.matches,
        }))
    }
}

/// Analyse an Office document. `None` when `data` is neither an OLE2 file,
/// a zip-based Office file (a zip without `[Content_Types].xml` and
/// without VBA is not one), an Office XML file, nor text with a CSV DDE
/// formula. Never panics.
pub fn find_vba(data: &[u8]) -> Option<VbaReport> {
    find_vba_with(data, &crypto::default_passwords())
}

/// [`find_vba`], trying `passwords` on encrypted documents: an encrypted
/// OOXML container is decrypted and its package analysed (the report says
/// so in `encryption`); an encrypted workbook's records are decrypted
/// before its sheets and links are read (its VBA is never encrypted).
pub fn find_vba_with(data: &[u8], passwords: &[String]) -> Option<VbaReport> {
    if is_ole(data) {
        let mut report = VbaReport::new("OLE");
        match CompoundFile::open(data) {
            Ok(cf) => {
                if let Some(inner) = encrypted_package(&cf, passwords, &mut report) {
                    return Some(inner);
                }
                analyse_ole_document(&cf, passwords, &mut report);
            }
            Err(e) => report.errors.push(e),
        }
        finish(&mut report);
        return Some(report);
    }
    if data.starts_with(b"PK") {
        return analyse_zip(data);
    }
    if let Some(kind) = office_xml_kind(data) {
        return Some(analyse_office_xml(data, kind));
    }
    if data.starts_with(ACTIVE_MIME) {
        let mut report = VbaReport::new("ActiveMime");
        analyse_active_mime(data, None, &mut report);
        finish(&mut report);
        return Some(report);
    }
    // Text only: binary data is not split into CSV cells.
    if data[..data.len().min(4096)].contains(&0) {
        return None;
    }
    let links = dde::csv_links(data);
    if links.is_empty() {
        return None;
    }
    let mut report = VbaReport::new("CSV");
    for link in links {
        add_link(&mut report, &link);
    }
    Some(report)
}

/// olevba's name for an Office XML document (Word 2003 XML, flat OPC) or
/// ours for an Excel 2003 XML spreadsheet; `None` for anything else.
fn office_xml_kind(data: &[u8]) -> Option<&'static str> {
    let head = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let head = head.trim_ascii_start();
    if !head.starts_with(b"<") {
        return None;
    }
    let head = &head[..head.len().min(4096)];
    if find(head, b"http://schemas.microsoft.com/office/2006/xmlPackage").is_some() {
        Some("FlatOPC_XML")
    } else if find(
        head,
        b"http://schemas.microsoft.com/office/word/2003/wordml",
    )
    .is_some()
    {
        Some("Word2003_XML")
    } else if find(head, b"urn:schemas-microsoft-com:office:spreadsheet").is_some() {
        Some("Excel2003_XML")
    } else {
        None
    }
}

/// An Office XML document: Word fields and, for spreadsheets, `ddeLink`
/// elements and cell formulas.
fn analyse_office_xml(data: &[u8], kind: &'static str) -> VbaReport {
    let mut report = VbaReport::new(kind);
    let text = String::from_utf8_lossy(data);
    if kind != "Excel2003_XML" {
        xml_embedded_vba(&text, &mut report);
        for field in ooxml_fields(&text) {
            add_dde(&mut report, &field);
        }
    }
    if kind != "Word2003_XML" {
        for link in dde::xml_dde_links(&text)
            .into_iter()
            .chain(dde::xml_cell_formulas(&text))
        {
            add_link(&mut report, &link);
        }
    }
    finish(&mut report);
    report
}

/// VBA projects stored base64-encoded in an XML document: a flat OPC
/// part's `binaryData` (the vbaProject.bin), or a Word 2003 `binData`
/// holding an ActiveMime container (olevba reads both).
fn xml_embedded_vba(xml: &str, report: &mut VbaReport) {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"<(?:[A-Za-z_][\w.-]*:)?(part|binData)\b([^>]*)>\s*(?:<(?:[A-Za-z_][\w.-]*:)?binaryData>)?([A-Za-z0-9+/=\s]{16,})<",
        )
        .expect("constant pattern")
    });
    for c in re.captures_iter(xml) {
        let attrs = c.get(2).map_or("", |m| m.as_str());
        let name = crate::util::xml_attrs(attrs)
            .find(|(n, _)| *n == "name")
            .map_or_else(|| c[1].to_string(), |(_, v)| v);
        let Ok(bytes) = decode_base64_text(&c[3]) else {
            report.errors.push(format!("{name}: bad base64"));
            continue;
        };
        report.read_budget = report.read_budget.saturating_sub(bytes.len() as u64);
        if is_ole(&bytes) {
            analyse_ole_bytes(&bytes, Some(name), report, 1);
        } else if bytes.starts_with(ACTIVE_MIME) {
            analyse_active_mime(&bytes, Some(name), report);
        }
    }
}

/// The magic of an ActiveMime (MSO) container.
const ACTIVE_MIME: &[u8] = b"ActiveMime";

/// The OLE file zlib-compressed in an ActiveMime container: at the offset
/// its header gives (u16 at 0x1E, plus 46), else Word's 0x32 or Excel's
/// 0x22A, else the first place a zlib stream starts (as olevba looks).
fn active_mime_content(data: &[u8], limit: u64) -> Option<Vec<u8>> {
    let inflate = |start: usize| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(data.get(start..)?).take(limit);
        z.read_to_end(&mut out).ok()?;
        (!out.is_empty()).then_some(out)
    };
    let header = u16_at(data, 0x1E).map(|o| usize::from(o) + 46);
    header
        .into_iter()
        .chain([0x32, 0x22A])
        .find_map(inflate)
        .or_else(|| {
            (0..data.len())
                .filter(|&i| data[i] == 0x78)
                .take(1000)
                .find_map(inflate)
        })
}

fn analyse_active_mime(data: &[u8], container: Option<String>, report: &mut VbaReport) {
    let name = container.clone().unwrap_or_else(|| "ActiveMime".into());
    match active_mime_content(data, MAX_MEMBER_SIZE.min(report.read_budget)) {
        Some(ole) if is_ole(&ole) => {
            report.read_budget = report.read_budget.saturating_sub(ole.len() as u64);
            analyse_ole_bytes(&ole, container, report, 1);
        }
        Some(_) => report
            .errors
            .push(format!("{name}: the ActiveMime content is not an OLE file")),
        None => report
            .errors
            .push(format!("{name}: no zlib data in the ActiveMime container")),
    }
}

/// An encrypted OOXML container: the report on its decrypted package, or
/// `None` (with `report.encryption` set when it is one that no password
/// opened) to go on with the container itself.
fn encrypted_package(
    cf: &CompoundFile<'_>,
    passwords: &[String],
    report: &mut VbaReport,
) -> Option<VbaReport> {
    let info = cf.read_path("EncryptionInfo")?.data;
    let package = cf.read_path("EncryptedPackage")?.data;
    let out = crypto::decrypt_ooxml(&info, &package, passwords);
    let Some(plain) = out.package else {
        report.encryption = Some(out.encryption);
        return None;
    };
    let mut inner = analyse_zip(&plain).unwrap_or_else(|| {
        let mut r = VbaReport::new("OpenXML");
        r.errors
            .push("the decrypted package is not an Office zip file".into());
        r
    });
    inner.encryption = Some(out.encryption);
    Some(inner)
}

fn finish(report: &mut VbaReport) {
    report.verdict = mraptor::scan(&report.all_code());
    if !report.modules.is_empty() {
        report.vba_macros = true;
    }
}

/// A top-level OLE2 document: PPT, or an ordinary OLE file; then XLM and
/// DDE.
fn analyse_ole_document(cf: &CompoundFile<'_>, passwords: &[String], report: &mut VbaReport) {
    report.errors.extend(cf.issues().iter().cloned());
    if is_ppt(cf) {
        report.filetype = "PPT";
        let doc = ppt_document(cf, Some(passwords), report);
        for (offset, data) in ppt_vba_storages(&doc, report) {
            let container = format!("PowerPoint Document@{offset}");
            analyse_ole_bytes(&data, Some(container), report, 1);
        }
    } else {
        analyse_vba_ole(cf, None, report);
    }
    scan_workbook_biff(cf, passwords, report);
    let word = cf.find("WordDocument").filter(|&sid| {
        cf.entry(sid)
            .is_some_and(|e| e.entry_type == EntryType::Stream)
    });
    if let Some(word) = word {
        scan_word_streams(cf, word, passwords, report);
    }
}

/// An OLE2 file inside the document (zip member, PPT storage).
fn analyse_ole_bytes(data: &[u8], container: Option<String>, report: &mut VbaReport, depth: usize) {
    if depth > MAX_NESTING {
        return;
    }
    let name = container.clone().unwrap_or_default();
    match CompoundFile::open(data) {
        Ok(cf) => {
            report
                .errors
                .extend(cf.issues().iter().map(|i| format!("{name}: {i}")));
            if is_ppt(&cf) {
                // A presentation inside a document is not decrypted.
                let doc = ppt_document(&cf, None, report);
                for (offset, d) in ppt_vba_storages(&doc, report) {
                    let c = format!("{name}/PowerPoint Document@{offset}");
                    analyse_ole_bytes(&d, Some(c), report, depth + 1);
                }
            } else {
                analyse_vba_ole(&cf, container, report);
            }
        }
        Err(e) => report.errors.push(format!("{name}: {e}")),
    }
}

/// Whether an OLE file looks like a PowerPoint 97-2003 presentation, as
/// olevba's PptParser checks: only root-level streams, among them
/// `Current User` and `PowerPoint Document`.
fn is_ppt(cf: &CompoundFile<'_>) -> bool {
    let streams: Vec<_> = cf.list().iter().filter(|l| !l.is_storage).collect();
    streams.iter().all(|l| l.path.len() == 1)
        && streams
            .iter()
            .any(|l| l.path[0].eq_ignore_ascii_case("Current User"))
        && streams
            .iter()
            .any(|l| l.path[0].eq_ignore_ascii_case("PowerPoint Document"))
}

/// The `PowerPoint Document` stream, decrypted with `passwords` when it
/// is encrypted and one opens it (the report's `encryption` says so;
/// `None`: read as it is).
fn ppt_document(
    cf: &CompoundFile<'_>,
    passwords: Option<&[String]>,
    report: &mut VbaReport,
) -> Vec<u8> {
    let Some(stream) = cf.read_path("PowerPoint Document") else {
        return Vec::new();
    };
    if let Some(e) = &stream.error {
        report.errors.push(format!("PowerPoint Document: {e}"));
    }
    let user = cf
        .read_path("Current User")
        .map(|s| s.data)
        .unwrap_or_default();
    let out = passwords.and_then(|pw| crypto::decrypt_powerpoint(&user, &stream.data, pw));
    let Some(mut out) = out else {
        return stream.data;
    };
    let plain = out.take("PowerPoint Document");
    report.encryption = Some(out.encryption);
    plain.unwrap_or(stream.data)
}

/// ExOleObjStg records of a `PowerPoint Document` stream that hold an
/// OLE2 file: (offset in the stream, the OLE file).
fn ppt_vba_storages(doc: &[u8], report: &mut VbaReport) -> Vec<(usize, Vec<u8>)> {
    let errors = &mut report.errors;
    let mut tried = 0usize;
    let mut out = Vec::new();
    // Uncompressed records first, then compressed ones (olevba's order).
    for (compressed, pattern) in [
        (false, [0x00u8, 0x00, 0x11, 0x10]),
        (true, [0x10, 0x00, 0x11, 0x10]),
    ] {
        let mut start = 0;
        while let Some(i) = find(&doc[start..], &pattern).map(|i| i + start) {
            start = i + 1;
            let Some(rec_len) = u32_at(doc, i + 4) else {
                break;
            };
            let body_start = i + 8;
            let body_end = body_start.saturating_add(rec_len as usize).min(doc.len());
            let body = &doc[body_start.min(body_end)..body_end];
            if !compressed && !is_ole(body) {
                continue;
            }
            tried += 1;
            if tried > MAX_PPT_STORAGES {
                errors.push(format!(
                    "PowerPoint Document: more than {MAX_PPT_STORAGES} storages, the rest skipped"
                ));
                return out;
            }
            let data = if compressed {
                let Some(size) = u32_at(body, 0) else {
                    continue;
                };
                let mut z = flate2::read::ZlibDecoder::new(&body[4..]);
                // Look at the first bytes before inflating the rest.
                let mut out = vec![0u8; 8];
                if z.read_exact(&mut out).is_err() || !is_ole(&out) {
                    continue;
                }
                let limit = u64::from(size)
                    .min(MAX_MEMBER_SIZE)
                    .min(report.read_budget)
                    .saturating_sub(8);
                let res = (&mut z).take(limit).read_to_end(&mut out);
                report.read_budget = report.read_budget.saturating_sub(out.len() as u64);
                if let Err(e) = res {
                    errors.push(format!(
                        "PowerPoint Document: VBA storage at {i} only partly decompressed: {e}"
                    ));
                }
                out
            } else {
                body.to_vec()
            };
            if is_ole(&data) {
                out.push((i, data));
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A VBA project root found in an OLE file.
struct Project {
    /// Path of the storage holding `PROJECT` and `VBA` ("" or "Macros/").
    root: String,
}

fn find_projects(cf: &CompoundFile<'_>) -> Vec<Project> {
    let mut out = Vec::new();
    for l in cf.list().iter().filter(|l| l.is_storage) {
        let Some(last) = l.path.last() else { continue };
        if last.to_uppercase() != "VBA" {
            continue;
        }
        let mut root = l.path[..l.path.len() - 1].join("/");
        if !root.is_empty() {
            root.push('/');
        }
        let ok = ["PROJECT", "VBA/_VBA_PROJECT", "VBA/dir"]
            .iter()
            .all(|s| cf.is_stream(&format!("{root}{s}")));
        if ok {
            out.push(Project { root });
        }
    }
    out
}

fn attribut_regex() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| BytesRegex::new(r"(?i-u)\x00Attribut[^e]").expect("constant pattern"))
}

/// VBA projects of one OLE file, then compressed code in other streams.
fn analyse_vba_ole(cf: &CompoundFile<'_>, container: Option<String>, report: &mut VbaReport) {
    let prefix = container
        .as_deref()
        .map(|c| format!("{c}: "))
        .unwrap_or_default();
    let projects = find_projects(cf);
    if !projects.is_empty() {
        report.vba_macros = true;
    }
    let mut used: HashSet<u32> = HashSet::new();
    for p in &projects {
        extract_project(cf, p, &container, &prefix, &mut used, report);
    }
    // Compressed source anywhere else, orphaned entries included.
    for e in cf.entries() {
        if e.entry_type != EntryType::Stream || used.contains(&e.sid) {
            continue;
        }
        let data = cf.read(e.sid).data;
        if find(&data, b"Attribut\x00").is_some() {
            report.vba_macros = true;
        }
        for m in attribut_regex().find_iter(&data) {
            let Some(start) = m.start().checked_sub(3) else {
                continue;
            };
            if report.code_budget == 0 {
                break;
            }
            let d = decompress_limited(&data[start..], report.code_budget);
            report.code_budget -= d.data.len().min(report.code_budget);
            if d.error.is_some() {
                continue;
            }
            report.modules.push(VbaModule {
                container: container.clone(),
                stream: e.name.clone(),
                module: e.name.clone(),
                code: decode_codepage(&d.data, 1252),
            });
        }
    }
}

fn extract_project(
    cf: &CompoundFile<'_>,
    p: &Project,
    container: &Option<String>,
    prefix: &str,
    used: &mut HashSet<u32>,
    report: &mut VbaReport,
) {
    let root = &p.root;
    let Some(dir) = cf.read_path(&format!("{root}VBA/dir")) else {
        return;
    };
    if let Some(e) = dir.error {
        report.errors.push(format!("{prefix}{root}VBA/dir: {e}"));
    }
    let d = decompress_limited(&dir.data, report.code_budget);
    report.code_budget -= d.data.len().min(report.code_budget);
    if let Some(e) = d.error {
        report
            .errors
            .push(format!("{prefix}{root}VBA/dir: decompression: {e}"));
    }
    let info = parse_dir(&d.data);
    report.errors.extend(
        info.issues
            .iter()
            .map(|i| format!("{prefix}{root}VBA/dir: {i}")),
    );
    let cp = info.codepage;
    let exts = cf
        .read_path(&format!("{root}PROJECT"))
        .map(|s| module_extensions(&s.data, cp))
        .unwrap_or_default();
    for m in &info.modules {
        let name = decode_codepage(&m.name, cp);
        let candidates = [
            m.stream_name.as_ref().map(|s| decode_codepage(s, cp)),
            m.stream_name_unicode.as_ref().map(|s| decode_utf16le(s)),
            Some(name.clone()),
            m.name_unicode.as_ref().map(|s| decode_utf16le(s)),
        ];
        let found = candidates.iter().flatten().find_map(|c| {
            let path = format!("{root}VBA/{c}");
            let sid = cf.find(&path)?;
            (cf.entry(sid)?.entry_type == EntryType::Stream).then_some((path, sid))
        });
        let Some((path, sid)) = found else {
            report.errors.push(format!(
                "{prefix}{root}VBA: code stream of module {name:?} not found"
            ));
            continue;
        };
        used.insert(sid);
        let s = cf.read(sid);
        if let Some(e) = &s.error {
            report.errors.push(format!("{prefix}{path}: {e}"));
        }
        let Some(compressed) = s
            .data
            .get(m.text_offset as usize..)
            .filter(|c| !c.is_empty())
        else {
            report.errors.push(format!(
                "{prefix}{path}: no code after offset {}",
                m.text_offset
            ));
            continue;
        };
        if report.code_budget == 0 {
            report.errors.push(format!(
                "{prefix}{path}: not decompressed, over {MAX_TOTAL_CODE} bytes of VBA source"
            ));
            continue;
        }
        let code = decompress_limited(compressed, report.code_budget);
        report.code_budget -= code.data.len().min(report.code_budget);
        if let Some(e) = &code.error {
            report
                .errors
                .push(format!("{prefix}{path}: decompression: {e}"));
        }
        let lower = name.to_lowercase();
        let ext = exts
            .iter()
            .find(|(n, _)| *n == lower)
            .map_or("vba", |(_, e)| *e);
        report.modules.push(VbaModule {
            container: container.clone(),
            stream: path,
            module: format!("{name}.{ext}"),
            code: decode_codepage(&code.data, cp),
        });
    }
}

/// The workbook stream (BIFF8 `Workbook` or BIFF5 `Book`): BOUNDSHEET
/// records of type "Excel 4.0 macro sheet", and (BIFF8) SUPBOOK records
/// that link to a DDE source.
fn scan_workbook_biff(cf: &CompoundFile<'_>, passwords: &[String], report: &mut VbaReport) {
    let Some((stream, biff8)) = cf
        .read_path("Workbook")
        .map(|s| (s, true))
        .or_else(|| cf.read_path("Book").map(|s| (s, false)))
    else {
        return;
    };
    let mut data = &stream.data;
    let decrypted;
    if biff8 {
        if let Some(mut out) = crypto::decrypt_biff(data, passwords) {
            if let Some(plain) = out.take("Workbook") {
                decrypted = plain;
                data = &decrypted;
            }
            report.encryption = Some(out.encryption);
        }
    }
    let mut pos = 0usize;
    while let (Some(rtype), Some(len)) = (u16_at(data, pos), u16_at(data, pos + 2)) {
        let body_start = pos + 4;
        let body_end = (body_start + usize::from(len)).min(data.len());
        let body = &data[body_start..body_end];
        pos = body_start + usize::from(len);
        match rtype {
            // FILEPASS: what follows is encrypted.
            0x002F => {
                report
                    .errors
                    .push("workbook is encrypted: sheet types not readable".into());
                break;
            }
            0x0085 if body.len() >= 7 => {
                let visibility = match body[4] & 0x03 {
                    0 => "visible",
                    1 => "hidden",
                    _ => "very hidden",
                };
                if body[5] != 1 {
                    continue;
                }
                let cch = usize::from(body[6]);
                let name = if biff8 {
                    let high = body.get(7).is_some_and(|f| f & 1 == 1);
                    let chars = body.get(8..).unwrap_or(&[]);
                    if high {
                        decode_utf16le(&chars[..(cch * 2).min(chars.len())])
                    } else {
                        decode_codepage(&chars[..cch.min(chars.len())], 1252)
                    }
                } else {
                    let chars = &body[7..];
                    decode_codepage(&chars[..cch.min(chars.len())], 1252)
                };
                report.xlm = true;
                report.xlm_sheets.push(XlmSheet {
                    name,
                    visibility: Some(visibility),
                });
            }
            dde::BIFF_SUPBOOK if biff8 => {
                if let Some(link) = dde::biff_supbook(body) {
                    add_link(report, &link);
                }
            }
            _ => {}
        }
    }
}

/// A Word 97-2003 document (`word_document` is the sid of its
/// `WordDocument` stream): its encryption (decrypted with `passwords`
/// when one opens it), and its fields, found in every stream (orphans
/// included) between field begin (0x13) and separator (0x14) / end (0x15)
/// marks, like msodde; encrypted streams are read decrypted.
fn scan_word_streams(
    cf: &CompoundFile<'_>,
    word_document: u32,
    passwords: &[String],
    report: &mut VbaReport,
) {
    let word = cf.read(word_document).data;
    let stream = |name: &str| {
        let sid = cf.find(name)?;
        cf.is_stream(name).then(|| (sid, cf.read(sid).data))
    };
    let table = stream(crypto::word_table_stream(&word));
    let data = stream("Data");
    // Decrypted contents by stream sid.
    let mut plain: Vec<(u32, Vec<u8>)> = Vec::new();
    let out = crypto::decrypt_word(
        &word,
        table.as_ref().map(|(_, d)| &d[..]),
        data.as_ref().map(|(_, d)| &d[..]),
        passwords,
    );
    if let Some(out) = out {
        for (name, content) in out.streams {
            let sid = match name {
                "WordDocument" => Some(word_document),
                "Data" => data.as_ref().map(|(sid, _)| *sid),
                _ => table.as_ref().map(|(sid, _)| *sid),
            };
            plain.extend(sid.map(|sid| (sid, content)));
        }
        report.encryption = Some(out.encryption);
    }
    for e in cf.entries() {
        if e.entry_type != EntryType::Stream {
            continue;
        }
        let fields = match plain.iter().find(|(sid, _)| *sid == e.sid) {
            Some((_, content)) => doc_fields(content),
            None => doc_fields(&cf.read(e.sid).data),
        };
        for field in fields {
            add_dde(report, &field);
        }
    }
}

/// Field instructions of a Word binary stream (the text between a field
/// begin mark and its separator or end mark).
pub(crate) fn doc_fields(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut have_sep = false;
    for &b in data {
        match b {
            0x13 => {
                current = Some(Vec::new());
                have_sep = false;
            }
            0x14 if current.is_some() => have_sep = true,
            0x15 => {
                if let Some(f) = current.take() {
                    let f: Vec<u8> = f.into_iter().filter(|&c| c != 0).collect();
                    out.push(decode_codepage(&f, 1252));
                    if out.len() >= MAX_FIELDS {
                        break;
                    }
                }
                have_sep = false;
            }
            _ => {
                if let Some(f) = current.as_mut() {
                    if !have_sep && f.len() <= FIELD_MAX_SIZE {
                        f.push(b);
                    }
                }
            }
        }
    }
    out
}

fn add_dde(report: &mut VbaReport, field: &str) {
    let f = field.trim();
    if dde::is_dde_instruction(f) && report.dde.len() < MAX_FIELDS {
        push_unique(&mut report.dde, f);
    }
}

/// A DDE link found outside a Word field (no `DDE` prefix to check).
fn add_link(report: &mut VbaReport, link: &str) {
    if report.dde.len() < MAX_FIELDS {
        push_unique(&mut report.dde, link.trim());
    }
}

/// A zip-based document.
fn analyse_zip(data: &[u8]) -> Option<VbaReport> {
    let result = std::panic::catch_unwind(|| analyse_zip_inner(data));
    match result {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("olevba: zip reader panicked; document skipped");
            None
        }
    }
}

fn analyse_zip_inner(data: &[u8]) -> Option<VbaReport> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data)).ok()?;
    let mut report = VbaReport::new("OpenXML");
    let mut content_types = false;
    let n = zip.len();
    if n > MAX_MEMBERS {
        report.errors.push(format!(
            "{n} zip members: only the first {MAX_MEMBERS} are read"
        ));
    }
    for i in 0..n.min(MAX_MEMBERS) {
        let mut f = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(format!("zip member {i}: {e}"));
                continue;
            }
        };
        if f.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(f.name_raw()).into_owned();
        let lower = name.to_lowercase();
        if lower == "[content_types].xml" {
            content_types = true;
        }
        if lower.starts_with("xl/macrosheets/") {
            report.xlm = true;
            report.xlm_sheets.push(XlmSheet {
                name: name.clone(),
                visibility: None,
            });
        }
        let is_field_part = lower.starts_with("word/")
            && ([
                "word/document.xml",
                "word/endnotes.xml",
                "word/footnotes.xml",
                "word/comments.xml",
            ]
            .contains(&lower.as_str())
                || ((lower.starts_with("word/header") || lower.starts_with("word/footer"))
                    && lower.ends_with(".xml")));
        if f.size() > MAX_MEMBER_SIZE {
            report.errors.push(format!(
                "zip member {name:?} not read: {} bytes is over {MAX_MEMBER_SIZE}",
                f.size()
            ));
            continue;
        }
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            match f.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) => {
                    report.errors.push(format!("zip member {name:?}: {e}"));
                    break;
                }
            }
        }
        let ole = got == 8 && head == crate::compound::MAGIC;
        // Spreadsheet parts that may hold DDE links: SpreadsheetML parts
        // (`ddeLink` in externalLinks, wherever in `xl/` the part was put)
        // and XLSB binary parts (BrtBeginSupBook). Sheets and shared
        // strings are left out: they are large and never hold one.
        let in_xl = lower.starts_with("xl/")
            && !lower.starts_with("xl/worksheets/")
            && !lower.starts_with("xl/sharedstrings.");
        let xml_link_part = in_xl && lower.ends_with(".xml");
        let xlsb_part = !ole && in_xl && lower.ends_with(".bin");
        if !ole && !is_field_part && !xml_link_part && !xlsb_part {
            continue;
        }
        if report.read_budget < f.size() {
            report.errors.push(format!(
                "zip member {name:?} not read: over the {MAX_TOTAL_READ}-byte total"
            ));
            continue;
        }
        let mut body = head[..got].to_vec();
        let limit = MAX_MEMBER_SIZE.min(report.read_budget);
        if let Err(e) = (&mut f).take(limit).read_to_end(&mut body) {
            report.errors.push(format!("zip member {name:?}: {e}"));
        }
        report.read_budget = report.read_budget.saturating_sub(body.len() as u64);
        if ole {
            analyse_ole_bytes(&body, Some(name), &mut report, 1);
        } else if xlsb_part {
            for link in dde::xlsb_links(&body) {
                add_link(&mut report, &link);
            }
        } else if xml_link_part {
            for link in dde::xml_dde_links(&String::from_utf8_lossy(&body)) {
                add_link(&mut report, &link);
            }
        } else {
            for field in ooxml_fields(&String::from_utf8_lossy(&body)) {
                add_dde(&mut report, &field);
            }
        }
    }
    finish(&mut report);
    if !content_types && !report.vba_macros {
        return None;
    }
    Some(report)
}

/// A fldSimple, fldChar or instrText start tag (any prefix).
fn field_tag_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"<(?:[A-Za-z_][\w.-]*:)?(fldSimple|fldChar|instrText)\b([^>]*)>")
            .expect("constant pattern")
    })
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    crate::util::xml_attrs(attrs)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Field instructions of a WordprocessingML part: `fldSimple/@instr`, and
/// the `instrText` runs of each complex field (fldChar begin → end).
pub(crate) fn ooxml_fields(xml: &str) -> Vec<String> {
    let tag_re = field_tag_regex();
    let mut out = Vec::new();
    let mut level: i64 = 0;
    let mut text = String::new();
    for c in tag_re.captures_iter(xml) {
        let whole = c.get(0).map_or(0..0, |m| m.range());
        let attrs = c.get(2).map_or("", |m| m.as_str());
        match &c[1] {
            "fldSimple" => {
                if let Some(v) = attr(attrs, "instr") {
                    out.push(v);
                }
            }
            "fldChar" => match attr(attrs, "fldCharType").as_deref() {
                Some("begin") => level += 1,
                Some("end") => {
                    level -= 1;
                    if level <= 0 {
                        out.push(std::mem::take(&mut text));
                        level = 0;
                    }
                }
                _ => {}
            },
            _ => {
                // instrText: its text runs to the next '<'.
                if attrs.trim_end().ends_with('/') {
                    continue;
                }
                let rest = &xml[whole.end..];
                let end = rest.find('<').unwrap_or(rest.len());
                text.push_str(&unescape_xml(&rest[..end]));
            }
        }
        if out.len() >= MAX_FIELDS {
            break;
        }
    }
    out
}

/// Replace the XML predefined entities and character references.
pub(crate) fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Bytes, not a str slice: 12 bytes may end inside a character.
        let Some(semi) = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';')
        else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_binary_fields() {
        let data = b"xx\x13 DDEAUTO c:\\\\cmd.exe \x14result\x15 \x13 PAGE \x15\x13D\x00D\x00E\x00 x\x00\x15\x13 cut";
        assert_eq!(
            doc_fields(data),
            [" DDEAUTO c:\\\\cmd.exe ", " PAGE ", "DDE x"]
        );
    }

    #[test]
    fn ooxml_field_instructions() {
        let xml = r#"<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve">DDEAUTO a </w:instrText></w:r><w:r><w:instrText>&quot;b&quot;</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>x</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p><w:fldSimple w:instr=" DDE c:\\x &quot;/k calc&quot; "><w:r/></w:fldSimple>"#;
        assert_eq!(
            ooxml_fields(xml),
            ["DDEAUTO a \"b\"", " DDE c:\\\\x \"/k calc\" "]
        );
        assert_eq!(unescape_xml("&lt;&#65;&#x42;&bogus;&"), "<AB&bogus;&");
        // A multi-byte character across the 12-byte entity window (fuzzing).
        assert_eq!(unescape_xml("&abcdefghij€;"), "&abcdefghij€;");
    }

    #[test]
    fn not_office() {
        assert!(find_vba(b"").is_none());
        assert!(find_vba(b"hello").is_none());
        assert!(find_vba(b"PK\x03\x04garbage").is_none());
    }
}
