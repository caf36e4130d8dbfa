//! The PDF analysis itself: a pure function over bytes, safe on any input.

use std::collections::{BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId, Stream};
use serde_json::{json, Map, Value};

use super::keywords;
use crate::util::{lossy, sha256_hex, truncate_chars};

/// How far into the data the `%PDF-` header may start (as readers accept).
pub const HEADER_SEARCH: usize = 1024;
/// Most entries kept in each list of the results.
pub const MAX_LIST: usize = 1000;
/// Most JavaScript entries kept.
pub const MAX_JAVASCRIPT: usize = 200;
/// Deepest nesting followed inside one object, and deepest name tree.
const MAX_DEPTH: usize = 64;
/// Most references followed to reach one object.
const MAX_DEREF: usize = 32;

/// Tunables of [`analyse_pdf_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfOptions {
    /// Largest size any one stream may decode to (object streams while
    /// loading, embedded files, JavaScript streams).
    pub max_stream_size: usize,
    /// Most bytes decoded for all embedded files of one document together;
    /// files past it are listed with an error.
    pub max_total_size: usize,
    /// JavaScript code longer than this many characters is cut.
    pub max_javascript_chars: usize,
    /// Keep the content of embedded files (for extraction).
    pub keep_embedded_content: bool,
}

impl Default for PdfOptions {
    fn default() -> Self {
        PdfOptions {
            max_stream_size: 50_000_000,
            max_total_size: 200_000_000,
            max_javascript_chars: 20_000,
            keep_embedded_content: true,
        }
    }
}

/// An embedded file found in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedFile {
    /// The name-tree key (`EmbeddedFiles`), else the file specification's
    /// file name; `None` for an orphan stream.
    pub name: Option<String>,
    /// `/UF`, else `/F`, of the file specification.
    pub filename: Option<String>,
    /// `EmbeddedFiles` (document name tree), `FileAttachment` (page
    /// annotation) or `orphan` (a `/Type /EmbeddedFile` stream nothing
    /// above points to).
    pub source: &'static str,
    /// The decoded content, when it could be decoded and was kept.
    pub content: Option<Vec<u8>>,
    /// Size and SHA-256 of the decoded content.
    pub size: Option<usize>,
    pub sha256: Option<String>,
    /// Why the content could not be decoded.
    pub error: Option<String>,
}

impl EmbeddedFile {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("filename".into(), json!(self.filename));
        m.insert("source".into(), json!(self.source));
        m.insert("size".into(), json!(self.size));
        m.insert("sha256".into(), json!(self.sha256));
        if let Some(e) = &self.error {
            m.insert("error".into(), json!(e));
        }
        Value::Object(m)
    }
}

/// The result of [`analyse_pdf`].
#[derive(Debug, Clone)]
pub struct PdfAnalysis {
    /// The worker results (see the module documentation for the keys).
    pub results: Map<String, Value>,
    /// Embedded files, also summarised in `results.embedded_files`.
    pub embedded: Vec<EmbeddedFile>,
}

/// Offset of the `%PDF-` header, if it starts within the first
/// [`HEADER_SEARCH`] bytes.
pub fn find_header(data: &[u8]) -> Option<usize> {
    memchr::memmem::find(&data[..data.len().min(HEADER_SEARCH + 5)], b"%PDF-")
}

/// Analyse `data` with the default [`PdfOptions`]. `None` when it has no
/// `%PDF-` header in its first 1024 bytes. Never panics.
pub fn analyse_pdf(data: &[u8]) -> Option<PdfAnalysis> {
    analyse_pdf_with(data, &PdfOptions::default())
}

/// Analyse `data`. `None` when it has no `%PDF-` header in its first 1024
/// bytes. Never panics: a document lopdf cannot open (or a panic inside
/// lopdf) still gives the header version, the raw keyword counts and a
/// `parse_error`.
pub fn analyse_pdf_with(data: &[u8], opts: &PdfOptions) -> Option<PdfAnalysis> {
    let header = find_header(data)?;
    let header_version = header_version(&data[header + 5..]);
    let counts = keywords::count_keywords(data);
    let obfuscated = keywords::obfuscated_keywords(data);

    let parsed = catch_unwind(AssertUnwindSafe(|| parse(data, opts)));
    let (mut results, embedded, parse_error) = match parsed {
        Ok(Ok(mut p)) => {
            if p.version.is_empty() {
                p.version = header_version.clone();
            }
            let results = p.to_json();
            (results, p.embedded, None)
        }
        Ok(Err(e)) => (fallback(&header_version, &counts), Vec::new(), Some(e)),
        Err(_) => (
            fallback(&header_version, &counts),
            Vec::new(),
            Some("the PDF parser panicked".to_string()),
        ),
    };
    let kw: Map<String, Value> = counts
        .iter()
        .map(|(k, n)| ((*k).to_string(), json!(n)))
        .collect();
    let ob: Map<String, Value> = obfuscated
        .iter()
        .map(|(k, n)| ((*k).to_string(), json!(n)))
        .collect();
    results.insert("keywords".into(), Value::Object(kw));
    results.insert("obfuscated_keywords".into(), Value::Object(ob));
    if let Some(e) = parse_error {
        results.insert("parse_error".into(), json!(e));
    }
    Some(PdfAnalysis { results, embedded })
}

/// `1.7` from the bytes after `%PDF-`.
fn header_version(rest: &[u8]) -> String {
    let v: Vec<u8> = rest
        .iter()
        .take(8)
        .copied()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .collect();
    lossy(&v)
}

/// Results when lopdf cannot open the document: what the raw bytes show.
fn fallback(version: &str, counts: &[(&str, usize)]) -> Map<String, Value> {
    let encrypted = counts.iter().any(|(k, n)| *k == "/Encrypt" && *n > 0);
    let mut m = Map::new();
    m.insert("version".into(), json!(version));
    m.insert("encrypted".into(), json!(encrypted));
    m.insert("pages".into(), Value::Null);
    m
}

/// What the parsed document shows.
#[derive(Default)]
struct Parsed {
    version: String,
    encrypted: bool,
    encryption: Option<Map<String, Value>>,
    pages: Option<usize>,
    info: Map<String, Value>,
    acroform: bool,
    xfa: bool,
    javascript: Vec<Value>,
    open_action: Option<String>,
    action_types: Vec<(String, usize)>,
    launch: Vec<String>,
    uri: Vec<String>,
    submit_form: Vec<String>,
    goto_remote: Vec<String>,
    import_data: Vec<String>,
    additional_actions: usize,
    embedded: Vec<EmbeddedFile>,
}

impl Parsed {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("version".into(), json!(self.version));
        m.insert("encrypted".into(), json!(self.encrypted));
        if let Some(e) = &self.encryption {
            m.insert("encryption".into(), Value::Object(e.clone()));
        }
        m.insert("pages".into(), json!(self.pages));
        m.insert("info".into(), Value::Object(self.info.clone()));
        m.insert("acroform".into(), json!(self.acroform));
        m.insert("xfa".into(), json!(self.xfa));
        m.insert("javascript".into(), Value::Array(self.javascript.clone()));
        let types: Map<String, Value> = self
            .action_types
            .iter()
            .map(|(k, n)| (k.clone(), json!(n)))
            .collect();
        m.insert(
            "actions".into(),
            json!({
                "open_action": self.open_action,
                "types": types,
                "launch": self.launch,
                "uri": self.uri,
                "submit_form": self.submit_form,
                "goto_remote": self.goto_remote,
                "import_data": self.import_data,
                "additional_actions": self.additional_actions,
            }),
        );
        m.insert(
            "embedded_files".into(),
            Value::Array(self.embedded.iter().map(EmbeddedFile::to_json).collect()),
        );
        m
    }
}

fn parse(data: &[u8], opts: &PdfOptions) -> Result<Parsed, String> {
    let load = LoadOptions {
        max_decompressed_size: Some(opts.max_stream_size),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(data, load).map_err(|e| e.to_string())?;
    let mut p = Parsed {
        version: doc.version.clone(),
        ..Parsed::default()
    };

    // Encryption. lopdf opens documents whose user password is empty and
    // then drops `/Encrypt` from the trailer; otherwise `/Encrypt` stays and
    // only unencrypted structure is visible.
    let decrypted = doc.encryption_state.is_some();
    p.encrypted = decrypted || doc.trailer.has(b"Encrypt");
    if p.encrypted {
        let mut e = Map::new();
        if let Some(state) = &doc.encryption_state {
            e.insert("v".into(), json!(state.version()));
            e.insert("r".into(), json!(state.revision()));
            e.insert("key_length".into(), json!(state.key_length()));
        } else if let Ok(dict) = doc.get_encrypted() {
            let int = |k: &[u8]| dict.get(k).ok().and_then(|o| o.as_i64().ok());
            e.insert("filter".into(), json!(name_of(dict.get(b"Filter").ok())));
            e.insert("v".into(), json!(int(b"V")));
            e.insert("r".into(), json!(int(b"R")));
            e.insert("key_length".into(), json!(int(b"Length")));
        }
        e.insert("decrypted".into(), json!(decrypted));
        p.encryption = Some(e);
    }

    let readable = !p.encrypted || decrypted;
    p.pages = readable.then(|| doc.page_iter().count());
    // Strings of a document that stays encrypted are ciphertext.
    if readable {
        p.info = info(&doc);
    }

    let catalog = doc.catalog().ok();
    if let Some(cat) = catalog {
        if let Some(form) = get_dict(&doc, cat, b"AcroForm") {
            p.acroform = true;
            p.xfa = form.has(b"XFA");
        }
        p.open_action = cat
            .get(b"OpenAction")
            .ok()
            .and_then(|o| match deref(&doc, o)? {
                Object::Dictionary(d) => Some(name_of(d.get(b"S").ok()).unwrap_or_default()),
                Object::Array(_) => Some("GoTo".to_string()),
                _ => None,
            });
    }

    scan_objects(&doc, opts, &mut p);
    p.embedded = embedded_files(&doc, catalog, opts);
    Ok(p)
}

/// Follow references (bounded); `None` for a dangling one.
fn deref<'a>(doc: &'a Document, mut obj: &'a Object) -> Option<&'a Object> {
    for _ in 0..MAX_DEREF {
        match obj {
            Object::Reference(id) => obj = doc.objects.get(id)?,
            other => return Some(other),
        }
    }
    None
}

fn get_dict<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    match deref(doc, dict.get(key).ok()?)? {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

/// A name without its slash.
fn name_of(obj: Option<&Object>) -> Option<String> {
    obj.and_then(|o| o.as_name().ok()).map(lossy)
}

/// A text string (PDFDocEncoding, UTF-16BE or UTF-8 by BOM); raw bytes as
/// lossy UTF-8 when it does not decode.
fn text_string(obj: &Object) -> Option<String> {
    match obj {
        Object::String(bytes, _) => {
            Some(lopdf::decode_text_string(obj).unwrap_or_else(|_| lossy(bytes)))
        }
        _ => None,
    }
}

/// A dereferenced text string or name (`/Name`).
fn text_of(doc: &Document, obj: Option<&Object>) -> Option<String> {
    match deref(doc, obj?)? {
        o @ Object::String(..) => text_string(o),
        Object::Name(n) => Some(format!("/{}", lossy(n))),
        _ => None,
    }
}

/// `/Info` values as pypdf's `str()` shows them: text decoded, names with
/// their slash, numbers and booleans as Python prints them, arrays as
/// Python lists.
fn info(doc: &Document) -> Map<String, Value> {
    let mut m = Map::new();
    let Some(dict) = doc
        .trailer
        .get(b"Info")
        .ok()
        .and_then(|o| deref(doc, o))
        .and_then(|o| o.as_dict().ok())
    else {
        return m;
    };
    for (k, v) in dict.iter() {
        if let Some(s) = py_str(doc, v, 0) {
            m.insert(lossy(k), json!(s));
        }
    }
    m
}

fn py_str(doc: &Document, v: &Object, depth: usize) -> Option<String> {
    if depth > 4 {
        return None;
    }
    let v = deref(doc, v)?;
    Some(match v {
        Object::String(..) => text_string(v)?,
        Object::Name(n) => format!("/{}", lossy(n)),
        Object::Integer(i) => i.to_string(),
        Object::Real(r) => r.to_string(),
        Object::Boolean(b) => if *b { "True" } else { "False" }.to_string(),
        Object::Null => "None".to_string(),
        Object::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|i| {
                    let s = py_str(doc, i, depth + 1)?;
                    Some(match deref(doc, i)? {
                        Object::String(..) => format!("'{s}'"),
                        _ => s,
                    })
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
        Object::Dictionary(_) | Object::Stream(_) | Object::Reference(_) => return None,
    })
}

/// A file specification's name: `/UF`, else `/F` (dictionaries), or the
/// string itself.
fn filespec_name(doc: &Document, obj: &Object) -> Option<String> {
    match deref(doc, obj)? {
        o @ Object::String(..) => text_string(o),
        Object::Dictionary(d) => text_of(doc, d.get(b"UF").ok())
            .or_else(|| text_of(doc, d.get(b"F").ok()))
            .or_else(|| text_of(doc, d.get(b"DOS").ok()))
            .or_else(|| text_of(doc, d.get(b"Unix").ok())),
        _ => None,
    }
}

/// Push `s` unless present or the list is full.
fn push_unique(list: &mut Vec<String>, s: String) {
    if list.len() < MAX_LIST && !list.contains(&s) {
        list.push(s);
    }
}

/// Visit every dictionary of every object (nested ones too, references not
/// followed): JavaScript, actions, additional-action entries.
fn scan_objects(doc: &Document, opts: &PdfOptions, p: &mut Parsed) {
    let mut js_seen: HashSet<ObjectId> = HashSet::new();
    let mut types: Vec<(String, usize)> = Vec::new();
    for (&id, obj) in &doc.objects {
        let mut stack: Vec<(&Object, usize)> = vec![(obj, 0)];
        while let Some((o, depth)) = stack.pop() {
            let dict = match o {
                Object::Dictionary(d) => d,
                Object::Stream(s) => &s.dict,
                Object::Array(items) => {
                    if depth < MAX_DEPTH {
                        stack.extend(items.iter().rev().map(|i| (i, depth + 1)));
                    }
                    continue;
                }
                _ => continue,
            };
            visit_dict(doc, id, dict, opts, p, &mut js_seen, &mut types);
            if depth < MAX_DEPTH {
                // Reverse so that entries are visited in file order.
                let children: Vec<&Object> = dict.iter().map(|(_, v)| v).collect();
                stack.extend(children.into_iter().rev().map(|v| (v, depth + 1)));
            }
        }
    }
    p.action_types = types;
}

fn visit_dict(
    doc: &Document,
    id: ObjectId,
    dict: &Dictionary,
    opts: &PdfOptions,
    p: &mut Parsed,
    js_seen: &mut HashSet<ObjectId>,
    types: &mut Vec<(String, usize)>,
) {
    if dict.has(b"AA") {
        p.additional_actions += 1;
    }
    if let Ok(js) = dict.get(b"JS") {
        if p.javascript.len() < MAX_JAVASCRIPT {
            let source = match js {
                Object::Reference(r) => Some(*r),
                _ => None,
            };
            if source.is_none_or(|r| js_seen.insert(r)) {
                p.javascript
                    .push(javascript(doc, source.unwrap_or(id), js, opts));
            }
        }
    }
    let Some(kind) = name_of(dict.get(b"S").ok()) else {
        return;
    };
    // Only action dictionaries: `/Type /Action` or no `/Type` at all (a
    // `/S` also appears in transitions, groups, ...).
    if let Some(t) = name_of(dict.get(b"Type").ok()) {
        if t != "Action" {
            return;
        }
    }
    let known = matches!(
        kind.as_str(),
        "GoTo"
            | "GoToR"
            | "GoToE"
            | "Launch"
            | "Thread"
            | "URI"
            | "Sound"
            | "Movie"
            | "Hide"
            | "Named"
            | "SubmitForm"
            | "ResetForm"
            | "ImportData"
            | "JavaScript"
            | "SetOCGState"
            | "Rendition"
            | "Trans"
            | "GoTo3DView"
            | "RichMediaExecute"
    );
    if !known {
        return;
    }
    match types.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, n)) => *n += 1,
        None => types.push((kind.clone(), 1)),
    }
    let file = || dict.get(b"F").ok().and_then(|f| filespec_name(doc, f));
    match kind.as_str() {
        "URI" => {
            if let Some(Object::String(u, _)) = dict.get(b"URI").ok().and_then(|o| deref(doc, o)) {
                push_unique(&mut p.uri, lossy(u));
            }
        }
        "Launch" => {
            let win = get_dict(doc, dict, b"Win").map(|w| {
                let f = text_of(doc, w.get(b"F").ok()).unwrap_or_default();
                match text_of(doc, w.get(b"P").ok()) {
                    Some(params) if !params.is_empty() => format!("{f} {params}"),
                    _ => f,
                }
            });
            if let Some(target) = file().or(win) {
                push_unique(&mut p.launch, target);
            }
        }
        "SubmitForm" => {
            if let Some(f) = file() {
                push_unique(&mut p.submit_form, f);
            }
        }
        "GoToR" | "GoToE" => {
            if let Some(f) = file() {
                push_unique(&mut p.goto_remote, f);
            }
        }
        "ImportData" => {
            if let Some(f) = file() {
                push_unique(&mut p.import_data, f);
            }
        }
        _ => {}
    }
}

/// One `/JS` entry: a text string or a stream.
fn javascript(doc: &Document, id: ObjectId, js: &Object, opts: &PdfOptions) -> Value {
    let decoded: Result<String, String> = match deref(doc, js) {
        Some(o @ Object::String(..)) => Ok(text_string(o).unwrap_or_default()),
        Some(Object::Stream(s)) => stream_content(s, opts.max_stream_size).map(|b| decode_text(&b)),
        Some(other) => Err(format!("/JS is a {}", other.enum_variant())),
        None => Err("/JS points to a missing object".into()),
    };
    let mut m = Map::new();
    m.insert("object".into(), json!(format!("{} {}", id.0, id.1)));
    match decoded {
        Ok(mut code) => {
            let length = code.chars().count();
            let truncated = truncate_chars(&mut code, opts.max_javascript_chars);
            m.insert("length".into(), json!(length));
            m.insert("truncated".into(), json!(truncated));
            m.insert("code".into(), json!(code));
        }
        Err(e) => {
            m.insert("error".into(), json!(e));
        }
    }
    Value::Object(m)
}

/// Bytes as text: UTF-16 by BOM, else UTF-8 (lossy).
fn decode_text(b: &[u8]) -> String {
    let utf16 = |rest: &[u8], be: bool| {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match b {
        [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => lossy(rest),
        _ => lossy(b),
    }
}

/// A stream's decoded content, bounded.
fn stream_content(s: &Stream, max: usize) -> Result<Vec<u8>, String> {
    s.get_plain_content_with_limit(max)
        .map_err(|e| e.to_string())
}

/// The embedded-file stream of a file specification (`/EF /F`, else
/// `/EF /UF`) with its object id when it is indirect.
fn filespec_stream<'a>(
    doc: &'a Document,
    fs: &'a Object,
) -> Option<(Option<ObjectId>, &'a Stream)> {
    let Object::Dictionary(fs) = deref(doc, fs)? else {
        return None;
    };
    let ef = get_dict(doc, fs, b"EF")?;
    let entry = ef.get(b"F").or_else(|_| ef.get(b"UF")).ok()?;
    let id = match entry {
        Object::Reference(r) => Some(*r),
        _ => None,
    };
    match deref(doc, entry)? {
        Object::Stream(s) => Some((id, s)),
        _ => None,
    }
}

/// Name-tree entries under `node`: `(key, value)` pairs, depth-first.
fn name_tree<'a>(
    doc: &'a Document,
    node: &'a Object,
    depth: usize,
    visited: &mut HashSet<ObjectId>,
    out: &mut Vec<(String, &'a Object)>,
) {
    if depth > MAX_DEPTH || out.len() >= MAX_LIST {
        return;
    }
    if let Object::Reference(id) = node {
        if !visited.insert(*id) {
            return;
        }
    }
    let Some(Object::Dictionary(d)) = deref(doc, node) else {
        return;
    };
    if let Some(Object::Array(kids)) = d.get(b"Kids").ok().and_then(|k| deref(doc, k)) {
        for kid in kids {
            name_tree(doc, kid, depth + 1, visited, out);
        }
    }
    if let Some(Object::Array(names)) = d.get(b"Names").ok().and_then(|n| deref(doc, n)) {
        for pair in names.chunks_exact(2) {
            if out.len() >= MAX_LIST {
                return;
            }
            let key = deref(doc, &pair[0])
                .and_then(text_string)
                .unwrap_or_default();
            out.push((key, &pair[1]));
        }
    }
}

fn embedded_files(
    doc: &Document,
    catalog: Option<&Dictionary>,
    opts: &PdfOptions,
) -> Vec<EmbeddedFile> {
    // (name, filename, source, stream)
    type Found<'a> = (
        Option<String>,
        Option<String>,
        &'static str,
        Option<(Option<ObjectId>, &'a Stream)>,
    );
    let mut found: Vec<Found> = Vec::new();

    if let Some(tree) = catalog
        .and_then(|c| get_dict(doc, c, b"Names"))
        .and_then(|n| n.get(b"EmbeddedFiles").ok())
    {
        let mut entries = Vec::new();
        name_tree(doc, tree, 0, &mut HashSet::new(), &mut entries);
        for (key, fs) in entries {
            found.push((
                Some(key),
                filespec_name(doc, fs),
                "EmbeddedFiles",
                filespec_stream(doc, fs),
            ));
        }
    }

    for page_id in doc.page_iter() {
        let Ok(page) = doc.get_dictionary(page_id) else {
            continue;
        };
        let Some(Object::Array(annots)) = page.get(b"Annots").ok().and_then(|a| deref(doc, a))
        else {
            continue;
        };
        for a in annots {
            if found.len() >= MAX_LIST {
                break;
            }
            let Some(Object::Dictionary(a)) = deref(doc, a) else {
                continue;
            };
            if name_of(a.get(b"Subtype").ok()).as_deref() != Some("FileAttachment") {
                continue;
            }
            let Ok(fs) = a.get(b"FS") else {
                continue;
            };
            let filename = filespec_name(doc, fs);
            found.push((
                filename.clone(),
                filename,
                "FileAttachment",
                filespec_stream(doc, fs),
            ));
        }
    }

    // Streams typed as embedded files that nothing above reached.
    let reached: BTreeSet<ObjectId> = found
        .iter()
        .filter_map(|f| f.3.and_then(|(id, _)| id))
        .collect();
    for (id, obj) in &doc.objects {
        if found.len() >= MAX_LIST {
            break;
        }
        if let Object::Stream(s) = obj {
            if s.dict.has_type(b"EmbeddedFile") && !reached.contains(id) {
                found.push((None, None, "orphan", Some((Some(*id), s))));
            }
        }
    }

    // One entry per stream: a file listed twice (name tree and annotation)
    // is reported once, under its first source.
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut out = Vec::new();
    let mut budget = opts.max_total_size;
    for (name, filename, source, stream) in found {
        if let Some((Some(id), _)) = stream {
            if !seen.insert(id) {
                continue;
            }
        }
        let mut f = EmbeddedFile {
            name,
            filename,
            source,
            content: None,
            size: None,
            sha256: None,
            error: None,
        };
        match stream {
            None => f.error = Some("no embedded file stream".into()),
            Some(_) if budget == 0 => {
                f.error = Some("over max_total_size: not decoded".into());
            }
            Some((_, s)) => match stream_content(s, opts.max_stream_size.min(budget)) {
                Ok(data) => {
                    budget -= data.len();
                    f.size = Some(data.len());
                    f.sha256 = Some(sha256_hex(&data));
                    if opts.keep_embedded_content {
                        f.content = Some(data);
                    }
                }
                Err(e) => f.error = Some(e),
            },
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_pdf() {
        assert!(analyse_pdf(b"").is_none());
        assert!(analyse_pdf(b"hello world").is_none());
        let mut late = vec![b' '; 2000];
        late.extend_from_slice(b"%PDF-1.4");
        assert!(analyse_pdf(&late).is_none());
    }

    #[test]
    fn header_only_falls_back_to_raw_counts() {
        let a = analyse_pdf(b"%PDF-1.6\n/JavaScript /JS (x) /Encrypt").unwrap();
        let r = &a.results;
        assert_eq!(r["version"], "1.6");
        assert_eq!(r["encrypted"], true);
        assert_eq!(r["pages"], Value::Null);
        assert_eq!(r["keywords"]["/JS"], 1);
        assert_eq!(r["keywords"]["/JavaScript"], 1);
        assert!(r["parse_error"].is_string());
        let keys: Vec<&String> = r.keys().collect();
        assert_eq!(
            keys,
            [
                "version",
                "encrypted",
                "pages",
                "keywords",
                "obfuscated_keywords",
                "parse_error"
            ]
        );
    }

    #[test]
    fn text_decoding() {
        assert_eq!(decode_text(b"\xFE\xFF\x00h\x00i"), "hi");
        assert_eq!(decode_text(b"\xFF\xFEh\x00i\x00"), "hi");
        assert_eq!(decode_text(b"\xEF\xBB\xBFok"), "ok");
        assert_eq!(decode_text(b"app.alert(1)"), "app.alert(1)");
        assert_eq!(header_version(b"1.7\n%\xe2"), "1.7");
    }
}
