//! `xdpcarve` worker: extract the content of named XML elements, base64-
//! decoded when it is base64, from XDP documents (the XML form of a PDF
//! with XFA, whose `<chunk>` elements hold the PDF in base64).
//!
//! Elements are matched by local name (`<chunk>` and `<pdf:chunk>` both
//! match `chunk`). The content is the element's text (text, CDATA and
//! character references directly inside it, trailing whitespace removed);
//! when it is valid base64 (whitespace ignored) the decoded bytes are
//! extracted, else the text itself, as the Python plugin did. Empty
//! elements are skipped.
//!
//! Results: none. Extracted: one payload per element, `extra_data`
//! `{"element_name": <name as configured>}`. A payload that is not XML, or
//! has none of the elements, gives no results (`Ok(None)`); the Python
//! plugin reported an error for non-XML input. XML that breaks after some
//! elements were found keeps them and reports the parse error in `errors`.

use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::Reader;
use stoq_core::{
    async_trait, Error, ExtractedPayload, ModuleDescriptor, OptionDoc, Payload, PayloadMeta,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

const OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "elements",
    "chunk",
    "comma list of element names whose content is extracted",
)];

/// Most elements extracted from one payload.
const MAX_ELEMENTS: usize = 10_000;
/// How far into the payload the first `<` may be (BOM, whitespace).
const MAX_LEADING: usize = 1024;

/// One carved element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carved {
    /// The configured name it matched.
    pub element: String,
    /// Decoded content (or the raw text when it is not base64).
    pub content: Vec<u8>,
}

/// Base64 with whitespace ignored, padding optional; `None` when not
/// base64.
fn b64(text: &[u8]) -> Option<Vec<u8>> {
    crate::b64decode::decode(text)
}

fn looks_like_xml(data: &[u8]) -> bool {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    data.iter()
        .take(MAX_LEADING)
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'<')
}

/// Carve `elements` from `data`. The error is the XML error that stopped
/// the parse, if any.
pub fn carve(data: &[u8], elements: &[String]) -> (Vec<Carved>, Option<String>) {
    let mut out = Vec::new();
    if !looks_like_xml(data) {
        return (out, Some("not XML".into()));
    }
    let mut reader = Reader::from_reader(data);
    reader.config_mut().check_end_names = false;
    let mut buf = Vec::new();
    // Open elements: which configured name each matched, if any.
    let mut stack: Vec<Option<usize>> = Vec::new();
    // Text of the innermost open matched element: (index into elements,
    // stack depth, text).
    let mut current: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut error = None;
    loop {
        buf.clear();
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => {
                error = Some(format!(
                    "XML error at offset {}: {e}",
                    reader.buffer_position()
                ));
                break;
            }
        };
        match ev {
            Event::Start(s) => {
                let local = s.local_name();
                let matched = elements.iter().position(|e| e.as_bytes() == local.as_ref());
                stack.push(matched);
                if let Some(i) = matched {
                    current.push((i, stack.len(), Vec::new()));
                }
            }
            Event::End(_) => {
                let depth = stack.len();
                if let Some(Some(_)) = stack.pop() {
                    if let Some(pos) = current.iter().rposition(|(_, d, _)| *d == depth) {
                        let (i, _, mut text) = current.remove(pos);
                        while text.last().is_some_and(|b| b.is_ascii_whitespace()) {
                            text.pop();
                        }
                        if !text.is_empty() && out.len() < MAX_ELEMENTS {
                            let content = b64(&text).unwrap_or(text);
                            out.push(Carved {
                                element: elements[i].clone(),
                                content,
                            });
                        }
                    }
                }
            }
            Event::Text(t) => {
                if let Some((_, d, text)) = current.last_mut() {
                    if *d == stack.len() {
                        match t.xml_content() {
                            Ok(s) => text.extend_from_slice(s.as_bytes()),
                            Err(_) => text.extend_from_slice(&t),
                        }
                    }
                }
            }
            Event::CData(t) => {
                if let Some((_, d, text)) = current.last_mut() {
                    if *d == stack.len() {
                        text.extend_from_slice(&t);
                    }
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, d, text)) = current.last_mut() {
                    if *d == stack.len() {
                        let ch = match r.resolve_char_ref() {
                            Ok(Some(c)) => Some(c),
                            _ => match r.as_ref() {
                                b"amp" => Some('&'),
                                b"lt" => Some('<'),
                                b"gt" => Some('>'),
                                b"quot" => Some('"'),
                                b"apos" => Some('\''),
                                _ => None,
                            },
                        };
                        if let Some(c) = ch {
                            let mut tmp = [0u8; 4];
                            text.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (out, error)
}

/// The `xdpcarve` worker.
#[derive(Debug, Clone)]
pub struct XdpCarve {
    elements: Vec<String>,
}

impl XdpCarve {
    /// Build from plugin options.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let elements = cfg
            .parse_with("elements", |v| {
                let list = stoq_core::options::split_list(v);
                if list.is_empty() {
                    Err("expected at least one element name".to_string())
                } else {
                    Ok(list)
                }
            })?
            .unwrap_or_else(|| vec!["chunk".to_string()]);
        Ok(XdpCarve { elements })
    }
}

#[async_trait]
impl Worker for XdpCarve {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        if !looks_like_xml(&payload.content) {
            return Ok(None);
        }
        let content = payload.content.clone();
        let elements = self.elements.clone();
        let (carved, error) =
            crate::util::run_cpu(content.len(), move || carve(&content, &elements)).await?;
        if carved.is_empty() {
            if let Some(e) = error {
                tracing::debug!(payload_id = payload.id(), error = %e, "xdpcarve: no elements");
            }
            return Ok(None);
        }
        let mut response = WorkerResponse::default();
        for c in carved {
            response.extracted.push(ExtractedPayload::with_meta(
                c.content,
                PayloadMeta::with_extra("element_name", c.element),
            ));
        }
        if let Some(e) = error {
            response
                .errors
                .push(Error::new(format!("xdpcarve: stopped early: {e}")));
        }
        Ok(Some(response))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("xdpcarve", &[PluginClass::Worker], |cfg| {
        Ok(PluginInstance::new().worker(Arc::new(XdpCarve::from_config(cfg)?)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Extract (base64-decoded) content of named XML elements, e.g. XDP chunks")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn carves_chunks() {
        let xdp = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<xdp:xdp xmlns:xdp=\"http://ns.adobe.com/xdp/\">\
            <pdf xmlns=\"http://ns.adobe.com/xdp/pdf/\"><document><chunk>JVBER\ni0xLjcK\n</chunk>\
            <chunk>not base64!</chunk><chunk/><chunk>  </chunk><x:chunk xmlns:x=\"u\"><![CDATA[aGk=]]></x:chunk>\
            <chunk>a&#x47;k&#61;</chunk></document></pdf></xdp:xdp>";
        let (c, err) = carve(xdp, &names(&["chunk"]));
        assert_eq!(err, None);
        let contents: Vec<&[u8]> = c.iter().map(|c| c.content.as_slice()).collect();
        assert_eq!(contents, [&b"%PDF-1.7\n"[..], b"not base64!", b"hi", b"hi"]);
        assert!(c.iter().all(|c| c.element == "chunk"));
    }

    #[test]
    fn broken_and_non_xml() {
        let (c, err) = carve(
            b"<a><chunk>aGk=</chunk><b attr=\"x></a>",
            &names(&["chunk"]),
        );
        assert_eq!(c.len(), 1);
        assert!(err.is_some());
        let (c, err) = carve(b"%PDF-1.4 not xml", &names(&["chunk"]));
        assert!(c.is_empty() && err.is_some());
    }
}
