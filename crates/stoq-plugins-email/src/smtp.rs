//! `smtp` worker: take an RFC 5322 / MIME message apart.
//!
//! Parsing is done by `mail-parser` (with every charset of `encoding_rs`);
//! headers are decoded here from their raw bytes so that names keep their
//! spelling and values keep their order. Results (`results.workers.smtp`),
//! keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `headers` | every header of the message, in order, as `[name, value]` pairs: the name as written, the value unfolded and RFC 2047-decoded (8-bit bytes as UTF-8, else Windows-1252) |
//! | `from`, `to`, `cc`, `subject` | decoded value of that header (repeated `to`/`cc` headers joined with `", "`), `null` when absent |
//! | `date` | the `Date` header as ISO 8601 (`2020-01-01T00:00:00Z`, `…+02:00`) when it parses, else as written; `null` when absent |
//! | `message_id` | the `Message-ID` header as written (with `<>`), `null` when absent |
//! | `received` | every `Received` header, top (newest) first |
//! | `body` | the text bodies (every `text/*` part that is not an attachment and not HTML), joined with a newline; `null` when none (left out with `omit_body`) |
//! | `body_html` | the HTML bodies, joined with a newline; `null` when none (left out with `omit_body`) |
//! | `attachments` | one `{filename, content_type, size, sha256}` per extracted part, in document order (`filename` is `null` for unnamed parts) |
//!
//! **Attachments** (extracted payloads): every leaf part with a filename
//! (`Content-Disposition` `filename`, else `Content-Type` `name`; RFC 2047
//! and RFC 2231 decoded) or with disposition `attachment`, whether inline or
//! not; every attached `message/rfc822` (or `message/global`) part, as the
//! raw bytes of the inner message and dispatched to `smtp`, so its own
//! attachments are found when it is scanned in the next round; and, with
//! `extract_unnamed` (default), leaf parts without a name that are not a
//! body (an unnamed image or binary part). `winmail.dat` /
//! `application/ms-tnef` parts (or any part starting with the TNEF
//! signature) are also dispatched to `tnef`. Each carries `extra_data`
//! `{filename, content_type, charset, disposition}` (keys only when known)
//! and `dispatch_to` = `always_dispatch` (+ `smtp` / `tnef` as above).
//! With `extract_unnamed=false` the named leaf parts are exactly what
//! Python's `email` package calls attachments.
//!
//! **Malformed messages** give partial results plus one error record per
//! problem: a header section not ended by an empty line, a multipart part
//! whose boundary is missing or never closed (truncation), a part whose
//! transfer encoding could not be decoded (kept undecoded). A payload that
//! does not start like an e-mail (a header line, and one of the usual
//! e-mail headers in the header block) gets no results (`Ok(None)`). A
//! leading mbox `From ` line is skipped; only the first message of an mbox
//! is read. The parser's own panics (`debug_assert!`s of `mail-parser`,
//! active in debug builds only) are caught: the result is then the headers
//! and an error.
//!
//! Differences from the Python plugin: headers are an ordered list of pairs
//! (not a dict of lower-cased names with repeated values joined by `\n`),
//! plus the convenience keys above; `body_html` is not URL-unquoted; the
//! attachment metadata holds `content_type` (not `type`) and no
//! `content-description`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Encoding, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde_json::{json, Map, Value};
use stoq_core::hashing::{hex, sha256};
use stoq_core::{
    async_trait, run_cpu, Error, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Request,
    Worker, WorkerResponse,
};

use crate::text::decode_8bit;
use crate::tnef::TNEF_SIGNATURE;

/// The plugin's name.
pub const NAME: &str = "smtp";
/// Default of `ioc_keys` (the public plugin's).
pub const DEFAULT_IOC_KEYS: &str =
    "received,x-orig-ip,x-originating-ip,x-remote-ip,x-sender-ip,body,body_html";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "omit_body",
        "false",
        "leave body and body_html out of the results",
    ),
    OptionDoc::new(
        "always_dispatch",
        "",
        "comma list of workers every extracted attachment is dispatched to",
    ),
    OptionDoc::new(
        "archive_attachments",
        "true",
        "should_archive of extracted attachments",
    ),
    OptionDoc::new(
        "extract_iocs",
        "true",
        "also extract one text payload of the ioc_keys headers and bodies, dispatched to \
         iocextract (not archived)",
    ),
    OptionDoc::new(
        "ioc_keys",
        DEFAULT_IOC_KEYS,
        "comma list of header names (any case) and the words body / body_html whose values \
         make up the extract_iocs payload",
    ),
    OptionDoc::new(
        "extract_unnamed",
        "true",
        "also extract leaf parts that have no filename and are not a text or HTML body \
         (unnamed images, binary parts)",
    ),
];

// ---------------------------------------------------------------------------
// Parsing (pure, panic-free)
// ---------------------------------------------------------------------------

/// What an extracted part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// An ordinary leaf part.
    File,
    /// An attached message (`message/rfc822`): the raw inner message.
    Message,
    /// A TNEF stream (`winmail.dat`).
    Tnef,
}

/// One part to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailPart {
    pub filename: Option<String>,
    pub content_type: String,
    pub charset: Option<String>,
    pub disposition: Option<String>,
    pub kind: PartKind,
    /// Named (or `attachment` disposition, or an attached message): an
    /// attachment by Python's rule. `false` for unnamed non-body parts.
    pub named: bool,
    /// The decoded content (transfer encoding undone, charset kept).
    pub content: Vec<u8>,
}

/// Everything [`parse_message`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedEmail {
    /// Every header of the message: name as written, decoded value.
    pub headers: Vec<(String, String)>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    /// ISO 8601 when the date parses, else the decoded header.
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub received: Vec<String>,
    pub body: Option<String>,
    pub body_html: Option<String>,
    /// Attachments, attached messages and unnamed parts, in document order.
    pub parts: Vec<EmailPart>,
    /// Problems found (malformed MIME); the rest is partial.
    pub errors: Vec<String>,
}

impl ParsedEmail {
    /// Decoded values of every header called `name` (any case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The attachments by Python's rule (named leaf parts, no attached
    /// messages).
    pub fn attachments(&self) -> impl Iterator<Item = &EmailPart> {
        self.parts
            .iter()
            .filter(|p| p.named && p.kind != PartKind::Message)
    }

    /// The results object (see the module docs).
    pub fn to_json(&self, omit_body: bool) -> Value {
        let mut m = Map::new();
        m.insert(
            "headers".into(),
            Value::Array(self.headers.iter().map(|(n, v)| json!([n, v])).collect()),
        );
        m.insert("from".into(), json!(self.from));
        m.insert("to".into(), json!(self.to));
        m.insert("cc".into(), json!(self.cc));
        m.insert("subject".into(), json!(self.subject));
        m.insert("date".into(), json!(self.date));
        m.insert("message_id".into(), json!(self.message_id));
        m.insert("received".into(), json!(self.received));
        if !omit_body {
            m.insert("body".into(), json!(self.body));
            m.insert("body_html".into(), json!(self.body_html));
        }
        m.insert(
            "attachments".into(),
            Value::Array(
                self.parts
                    .iter()
                    .map(|p| {
                        json!({
                            "filename": p.filename,
                            "content_type": p.content_type,
                            "size": p.content.len(),
                            "sha256": hex(&sha256(&p.content)),
                        })
                    })
                    .collect(),
            ),
        );
        Value::Object(m)
    }
}

/// Header names of which one must appear for a payload to count as e-mail.
const MAIL_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "delivered-to",
    "reply-to",
    "sender",
    "mime-version",
    "content-type",
    "in-reply-to",
    "references",
    "dkim-signature",
    "arc-seal",
    "authentication-results",
    "x-mailer",
    "x-originating-ip",
];

/// Skip an mbox `From ` separator line (and leading blank lines).
fn skip_preamble(data: &[u8]) -> &[u8] {
    let mut d = data;
    while let Some((&c, rest)) = d.split_first() {
        if c == b'\r' || c == b'\n' {
            d = rest;
        } else {
            break;
        }
    }
    if d.starts_with(b"From ") {
        match d.iter().position(|&c| c == b'\n') {
            Some(i) => &d[i + 1..],
            None => &d[d.len()..],
        }
    } else {
        d
    }
}

/// The field name of a header line (`Name:` or obsolete `Name :`).
fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&c| c == b':')?;
    let name = &line[..colon];
    let trimmed_len = name
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(0, |i| i + 1);
    let name = &name[..trimmed_len];
    (!name.is_empty() && name.len() <= 200 && name.iter().all(|&c| (0x21..=0x7e).contains(&c)))
        .then_some(name)
}

/// Whether `data` starts like an e-mail: a header line first, and one of
/// the usual e-mail headers before the end of the header block (looking at
/// the first 256 header lines).
pub fn looks_like_email(data: &[u8]) -> bool {
    let d = skip_preamble(data);
    let mut lines = d.split(|&c| c == b'\n');
    let Some(first) = lines.next() else {
        return false;
    };
    let Some(name) = field_name(first) else {
        return false;
    };
    let known = |n: &[u8]| {
        MAIL_HEADERS
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
            || n.len() > 5 && n[..5].eq_ignore_ascii_case(b"list-")
            || n.len() > 7 && n[..7].eq_ignore_ascii_case(b"resent-")
    };
    if known(name) {
        return true;
    }
    for line in lines.take(256) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        match field_name(line) {
            Some(n) if known(n) => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

/// Unfold and RFC 2047-decode a raw header value.
pub fn decode_header_value(raw: &[u8]) -> String {
    let text = decode_8bit(raw);
    let unfolded: String = text.chars().filter(|&c| c != '\r' && c != '\n').collect();
    let trimmed = unfolded.trim();
    if !trimmed.contains("=?") {
        return trimmed.to_string();
    }
    let mut buf = Vec::with_capacity(trimmed.len() + 1);
    buf.extend_from_slice(trimmed.as_bytes());
    buf.push(b'\n');
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        match MessageStream::new(&buf).parse_unstructured() {
            HeaderValue::Text(t) => Some(t.into_owned()),
            _ => None,
        }
    }));
    match decoded {
        Ok(Some(t)) => t,
        _ => trimmed.to_string(),
    }
}

/// Find `needle` in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The transfer-decoded bytes of a part, from the raw message.
fn raw_part_bytes(data: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    let start = part.offset_body as usize;
    let end = (part.offset_end as usize).min(data.len());
    let slice = data.get(start..end).unwrap_or_default();
    match part.encoding {
        Encoding::Base64 => base64_decode(slice).unwrap_or_else(|| slice.to_vec()),
        Encoding::QuotedPrintable => {
            quoted_printable_decode(slice).unwrap_or_else(|| slice.to_vec())
        }
        Encoding::None => slice.to_vec(),
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Parse an e-mail. `None` when `data` does not look like one. Never
/// panics: a failure of the MIME parser becomes an error in the result.
pub fn parse_message(data: &[u8]) -> Option<ParsedEmail> {
    if !looks_like_email(data) {
        return None;
    }
    let data = skip_preamble(data);
    match catch_unwind(AssertUnwindSafe(|| parse_inner(data))) {
        Ok(parsed) => parsed,
        Err(_) => {
            // Keep at least the headers when the full parse failed.
            let headers = catch_unwind(AssertUnwindSafe(|| {
                MessageParser::default()
                    .parse_headers(data)
                    .map(|m| collect_headers(data, m.parts.first().map(|p| &p.headers[..])))
            }))
            .ok()
            .flatten();
            let mut p = ParsedEmail::default();
            if let Some(h) = headers {
                fill_headers(&mut p, h, None);
            }
            p.errors
                .push("the MIME parser failed on this message: headers only".into());
            Some(p)
        }
    }
}

fn collect_headers(
    data: &[u8],
    headers: Option<&[mail_parser::Header<'_>]>,
) -> Vec<(String, String)> {
    headers
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let name = data
                .get(h.offset_field as usize..h.offset_start as usize)
                .map(|n| decode_8bit(n).trim_end_matches(':').trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| h.name().to_string());
            let value = data
                .get(h.offset_start as usize..(h.offset_end as usize).min(data.len()))
                .map(decode_header_value)
                .unwrap_or_default();
            (name, value)
        })
        .collect()
}

fn fill_headers(p: &mut ParsedEmail, headers: Vec<(String, String)>, date: Option<String>) {
    p.headers = headers;
    let first = |p: &ParsedEmail, n: &str| p.header_values(n).next().map(str::to_string);
    let joined = |p: &ParsedEmail, n: &str| {
        let v: Vec<&str> = p.header_values(n).collect();
        (!v.is_empty()).then(|| v.join(", "))
    };
    p.from = first(p, "from");
    p.to = joined(p, "to");
    p.cc = joined(p, "cc");
    p.subject = first(p, "subject");
    p.date = date.or_else(|| first(p, "date"));
    p.message_id = first(p, "message-id");
    p.received = p.header_values("received").map(str::to_string).collect();
}

fn parse_inner(data: &[u8]) -> Option<ParsedEmail> {
    let msg = MessageParser::default().parse(data)?;
    let root = msg.parts.first()?;
    let mut p = ParsedEmail::default();

    let date = root.headers.iter().find_map(|h| match (&h.name, &h.value) {
        (HeaderName::Date, HeaderValue::DateTime(dt)) if dt.is_valid() => Some(dt.to_rfc3339()),
        _ => None,
    });
    fill_headers(&mut p, collect_headers(data, Some(&root.headers)), date);

    let mut bodies: Vec<String> = Vec::new();
    let mut html: Vec<String> = Vec::new();
    for (i, part) in msg.parts.iter().enumerate() {
        let ct = part.content_type();
        let ctype = ct.map_or_else(|| "text".to_string(), |c| lower(c.ctype()));
        let content_type = match ct {
            None => "text/plain".to_string(),
            Some(c) => match c.subtype() {
                Some(s) => format!("{ctype}/{}", lower(s)),
                None => ctype.clone(),
            },
        };

        if let PartType::Multipart(_) = part.body {
            match ct.and_then(|c| c.attribute("boundary")) {
                None => p
                    .errors
                    .push(format!("MIME part {i} ({content_type}) has no boundary")),
                Some(b) => {
                    let close = [b"--", b.as_bytes(), b"--"].concat();
                    if !contains(data, &close) {
                        p.errors.push(format!(
                            "MIME part {i} ({content_type}): closing boundary {b:?} not found \
                             (message truncated?)"
                        ));
                    }
                }
            }
            continue;
        }

        if part.is_encoding_problem {
            p.errors.push(
                if i == 0 && part.body.len() == 0 && part.offset_body as usize >= data.len() {
                    "the header section is not ended by an empty line (message truncated?)"
                        .to_string()
                } else {
                    format!(
                    "MIME part {i} ({content_type}): malformed content (bad transfer encoding, \
                     missing boundary or unparsable message); kept undecoded"
                )
                },
            );
        }

        let disposition = part.content_disposition().map(|d| lower(d.ctype()));
        let filename = part.attachment_name().map(|f| f.trim().to_string());
        let charset = ct.and_then(|c| c.attribute("charset")).map(str::to_string);
        let is_message = matches!(part.body, PartType::Message(_))
            || content_type == "message/rfc822"
            || content_type == "message/global";
        let named =
            filename.is_some() || disposition.as_deref() == Some("attachment") || is_message;
        let broken_multipart = ctype == "multipart";

        if !named && !broken_multipart {
            let declared_text = ctype == "text";
            match &part.body {
                PartType::Text(t) if declared_text || !part.is_encoding_problem => {
                    if !(i == 0 && part.is_encoding_problem && t.is_empty()) {
                        bodies.push(t.to_string());
                    }
                    continue;
                }
                PartType::Html(t) => {
                    html.push(t.to_string());
                    continue;
                }
                _ => {}
            }
        }
        if broken_multipart {
            p.errors.push(format!(
                "MIME part {i} ({content_type}): no part delimiter found; content kept as one part"
            ));
        }

        let content = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            PartType::Message(m) => {
                if part.encoding == Encoding::None {
                    let end = (part.offset_end as usize).min(data.len());
                    data.get(part.offset_body as usize..end)
                        .unwrap_or_default()
                        .to_vec()
                } else {
                    m.raw_message.to_vec()
                }
            }
            PartType::Text(_) | PartType::Html(_) => raw_part_bytes(data, part),
            PartType::Multipart(_) => continue,
        };
        let is_tnef = content_type == "application/ms-tnef"
            || content_type == "application/vnd.ms-tnef"
            || filename
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case("winmail.dat"))
            || content.starts_with(&TNEF_SIGNATURE.to_le_bytes());
        let kind = if is_message {
            PartKind::Message
        } else if is_tnef {
            PartKind::Tnef
        } else {
            PartKind::File
        };
        p.parts.push(EmailPart {
            filename,
            content_type,
            charset,
            disposition,
            kind,
            named,
            content,
        });
    }
    p.body = (!bodies.is_empty()).then(|| bodies.join("\n"));
    p.body_html = (!html.is_empty()).then(|| html.join("\n"));
    Some(p)
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

/// Options of the `smtp` worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpOptions {
    pub omit_body: bool,
    pub always_dispatch: Vec<String>,
    pub archive_attachments: bool,
    pub extract_iocs: bool,
    /// Lower-case header names, `body`, `body_html`.
    pub ioc_keys: Vec<String>,
    pub extract_unnamed: bool,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            omit_body: false,
            always_dispatch: Vec::new(),
            archive_attachments: true,
            // The reference's default is false; on here, so a phishing
            // mail's indicators come out with no extra flag.
            extract_iocs: true,
            ioc_keys: stoq_core::options::split_list(DEFAULT_IOC_KEYS),
            extract_unnamed: true,
        }
    }
}

impl SmtpOptions {
    /// The options of the plugin configuration `cfg`.
    pub fn from_config(cfg: &PluginConfig) -> Result<SmtpOptions, PluginError> {
        let d = SmtpOptions::default();
        Ok(SmtpOptions {
            omit_body: cfg.bool("omit_body", d.omit_body)?,
            always_dispatch: cfg.list("always_dispatch"),
            archive_attachments: cfg.bool("archive_attachments", d.archive_attachments)?,
            extract_iocs: cfg.bool("extract_iocs", d.extract_iocs)?,
            ioc_keys: match cfg.get_str("ioc_keys") {
                Some(v) => stoq_core::options::split_list(v)
                    .into_iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect(),
                None => d.ioc_keys,
            },
            extract_unnamed: cfg.bool("extract_unnamed", d.extract_unnamed)?,
        })
    }
}

/// The text handed to `iocextract` with `extract_iocs`: the values of the
/// `keys` headers (in header order, for each key) and bodies, one per line.
pub fn ioc_text(parsed: &ParsedEmail, keys: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for k in keys {
        match k.as_str() {
            "body" => out.extend(parsed.body.as_deref()),
            "body_html" => out.extend(parsed.body_html.as_deref()),
            name => out.extend(parsed.header_values(name)),
        }
    }
    out.join("\n")
}

/// Build the worker response for a parsed message.
pub fn response(parsed: &ParsedEmail, opts: &SmtpOptions) -> WorkerResponse {
    let mut r = WorkerResponse::with_results(parsed.to_json(opts.omit_body));
    for part in &parsed.parts {
        if !part.named && !opts.extract_unnamed {
            continue;
        }
        let mut meta = PayloadMeta {
            should_archive: opts.archive_attachments,
            ..PayloadMeta::default()
        };
        if let Some(f) = &part.filename {
            meta.extra_data.insert("filename".into(), json!(f));
        }
        meta.extra_data
            .insert("content_type".into(), json!(part.content_type));
        if let Some(c) = &part.charset {
            meta.extra_data.insert("charset".into(), json!(c));
        }
        if let Some(d) = &part.disposition {
            meta.extra_data.insert("disposition".into(), json!(d));
        }
        let mut dispatch = opts.always_dispatch.clone();
        match part.kind {
            PartKind::Message => dispatch.push(NAME.to_string()),
            PartKind::Tnef => dispatch.push(crate::tnef::NAME.to_string()),
            PartKind::File => {}
        }
        let mut seen = std::collections::HashSet::new();
        dispatch.retain(|d| seen.insert(d.clone()));
        meta.dispatch_to = dispatch;
        r.extracted
            .push(ExtractedPayload::with_meta(part.content.clone(), meta));
    }
    if opts.extract_iocs {
        let text = ioc_text(parsed, &opts.ioc_keys);
        if !text.trim().is_empty() {
            let meta = PayloadMeta {
                should_archive: false,
                dispatch_to: vec![crate::iocextract::NAME.to_string()],
                ..PayloadMeta::default()
            };
            r.extracted
                .push(ExtractedPayload::with_meta(text.into_bytes(), meta));
        }
    }
    r.errors = parsed.errors.iter().map(Error::new).collect();
    r
}

/// The `smtp` worker.
#[derive(Debug, Clone, Default)]
pub struct SmtpWorker {
    opts: Arc<SmtpOptions>,
}

impl SmtpWorker {
    pub fn new(opts: SmtpOptions) -> Self {
        SmtpWorker {
            opts: Arc::new(opts),
        }
    }
}

#[async_trait]
impl Worker for SmtpWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let opts = self.opts.clone();
        let work = move || parse_message(&content).map(|p| response(&p, &opts));
        let r = run_cpu(payload.content.len(), work).await?;
        if r.is_none() {
            tracing::debug!(payload = payload.id(), "smtp: not an e-mail");
        }
        Ok(r)
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Worker], |cfg| {
        let opts = SmtpOptions::from_config(cfg)?;
        Ok(PluginInstance::new().worker(Arc::new(SmtpWorker::new(opts))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Parse an e-mail (RFC 5322/MIME): headers, bodies; extract attachments, attached \
         messages (to smtp) and winmail.dat (to tnef)",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_detection() {
        assert!(looks_like_email(b"From: a@b\r\n\r\nhi"));
        assert!(looks_like_email(b"X-Foo: 1\nSubject: s\n\nbody"));
        assert!(looks_like_email(
            b"From sender@x Mon Jan  1 00:00:00 2020\nTo: x@y\n\n"
        ));
        assert!(!looks_like_email(b"%PDF-1.4\n"));
        assert!(!looks_like_email(b"Note: this is text\n\nmore"));
        assert!(!looks_like_email(b"MZ\x90\x00"));
        assert!(!looks_like_email(b""));
    }

    #[test]
    fn header_decoding() {
        assert_eq!(
            decode_header_value(b" Rechnung =?utf-8?b?ZsO8ciBNw6Ry?=\r\n =?utf-8?q?z?=\r\n"),
            "Rechnung für März"
        );
        assert_eq!(decode_header_value(b" a\r\n\tb\r\n"), "a\tb");
        assert_eq!(decode_header_value(b" caf\xe9\n"), "café");
        assert_eq!(decode_header_value(b" =?bogus"), "=?bogus");
    }
}
