//! `xorsearch` worker: single-byte XOR brute force for a list of terms, in
//! the manner of Didier Stevens' XORSearch (XOR only: no ROL/ROT/shift).
//!
//! Every term is encoded with every key 0x01-0xFF and all 255 × n encoded
//! terms are searched in one pass (Aho-Corasick, overlapping matches), so
//! the payload is read once whatever the number of keys. Key 0x00 (plain
//! text) is not reported, as in the Python plugin.
//!
//! Results (only when something matched): `{"0xKK": [{"pos": "0x0002",
//! "match": "AdjustTokenPrivileges CurrentVersion"}, ...]}`, keys in
//! ascending order, hits by position. `pos` is the hex offset (at least four
//! digits, as XORSearch prints it); `match` is the decoded text from there
//! up to the first byte that is not printable ASCII, at most 256 characters.
//! After `max_hits` hits the search stops and an error says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, Error, ModuleDescriptor, OptionDoc, Payload, PluginClass, PluginConfig,
    PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

/// The default terms: Windows API names and PE-stub strings typical of
/// XOR-obfuscated executables and shellcode.
pub const DEFAULT_TERMS: [&str; 13] = [
    "This program",
    "program cannot",
    "AdjustTokenPrivileges",
    "CurrentVersion",
    "GetProcAddress",
    "LoadLibrary",
    "GetModuleHandle",
    "VirtualAlloc",
    "WriteProcessMemory",
    "CreateRemoteThread",
    "URLDownloadToFile",
    "ShellExecute",
    "WinExec",
];

/// Longest `match` text.
pub const MAX_MATCH_CHARS: usize = 256;
/// Longest term accepted.
const MAX_TERM_LEN: usize = 1024;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "terms",
        "This program,program cannot,AdjustTokenPrivileges,CurrentVersion,GetProcAddress,\
         LoadLibrary,GetModuleHandle,VirtualAlloc,WriteProcessMemory,CreateRemoteThread,\
         URLDownloadToFile,ShellExecute,WinExec",
        "comma list of terms to look for (case-sensitive)",
    ),
    OptionDoc::new(
        "terms_file",
        "",
        "file with one term per line (the Python plugin's terms.txt format); replaces `terms`. \
         Relative paths resolve against the plugin directory",
    ),
    OptionDoc::new(
        "max_hits",
        "1000",
        "stop after this many hits (all keys together) and report an error",
    ),
];

/// One hit: where, and which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub pos: usize,
    pub term: usize,
}

/// A compiled searcher.
#[derive(Debug, Clone)]
pub struct XorSearcher {
    terms: Vec<Vec<u8>>,
    ac: AhoCorasick,
    max_hits: usize,
}

impl XorSearcher {
    /// A searcher for `terms` (non-empty, each 1..=1024 bytes).
    pub fn new<T: AsRef<[u8]>>(terms: &[T], max_hits: usize) -> Result<Self, String> {
        let terms: Vec<Vec<u8>> = terms.iter().map(|t| t.as_ref().to_vec()).collect();
        if terms.is_empty() {
            return Err("no search terms".into());
        }
        if let Some(t) = terms
            .iter()
            .find(|t| t.is_empty() || t.len() > MAX_TERM_LEN)
        {
            return Err(format!(
                "term {:?} must be 1 to {MAX_TERM_LEN} bytes",
                String::from_utf8_lossy(t)
            ));
        }
        let patterns = (1..=255u8).flat_map(|k| {
            terms
                .iter()
                .map(move |t| t.iter().map(|b| b ^ k).collect::<Vec<u8>>())
        });
        let ac = AhoCorasick::new(patterns).map_err(|e| e.to_string())?;
        Ok(XorSearcher {
            terms,
            ac,
            max_hits,
        })
    }

    /// Hits per key (1-255), each list sorted by position then term; the
    /// flag tells whether `max_hits` stopped the search.
    pub fn search(&self, data: &[u8]) -> (BTreeMap<u8, Vec<Hit>>, bool) {
        let n = self.terms.len();
        let mut out: BTreeMap<u8, Vec<Hit>> = BTreeMap::new();
        let mut truncated = false;
        for (total, m) in self.ac.find_overlapping_iter(data).enumerate() {
            if total >= self.max_hits {
                truncated = true;
                break;
            }
            let id = m.pattern().as_usize();
            // ids are (key - 1) * n + term, key in 1..=255.
            let key = (id / n + 1) as u8;
            out.entry(key).or_default().push(Hit {
                pos: m.start(),
                term: id % n,
            });
        }
        for hits in out.values_mut() {
            hits.sort_by_key(|h| (h.pos, h.term));
        }
        (out, truncated)
    }

    /// The results object (see the module docs); `None` without hits.
    pub fn results(&self, data: &[u8]) -> (Option<Value>, bool) {
        let (hits, truncated) = self.search(data);
        if hits.is_empty() {
            return (None, truncated);
        }
        let mut m = Map::new();
        for (key, list) in hits {
            let entries: Vec<Value> = list
                .iter()
                .map(|h| {
                    json!({
                        "pos": format!("0x{:04X}", h.pos),
                        "match": decoded_text(data, h.pos, key),
                    })
                })
                .collect();
            m.insert(format!("0x{key:02X}"), Value::Array(entries));
        }
        (Some(Value::Object(m)), truncated)
    }
}

/// `data[pos..]` XOR `key` up to the first non-printable byte.
fn decoded_text(data: &[u8], pos: usize, key: u8) -> String {
    data.get(pos..)
        .unwrap_or_default()
        .iter()
        .map(|b| b ^ key)
        .take_while(|b| (0x20..0x7f).contains(b))
        .take(MAX_MATCH_CHARS)
        .map(char::from)
        .collect()
}

/// The `xorsearch` worker.
#[derive(Debug, Clone)]
pub struct XorSearch {
    searcher: Arc<XorSearcher>,
}

impl XorSearch {
    /// Build from plugin options.
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let max_hits = cfg.parse_with("max_hits", |v| match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive integer".to_string()),
        })?;
        let max_hits = max_hits.unwrap_or(1000);
        let terms: Vec<String> = if let Some(path) = cfg.path("terms_file") {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "plugin {}: option terms_file = {:?}: {e}",
                    cfg.name(),
                    path.display()
                )
            })?;
            text.lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        } else if cfg.get_str("terms").is_some() {
            cfg.list("terms")
        } else {
            DEFAULT_TERMS.iter().map(|s| s.to_string()).collect()
        };
        let searcher = XorSearcher::new(&terms, max_hits).map_err(|e| {
            let option = if cfg.get_str("terms_file").is_some() {
                "terms_file"
            } else {
                "terms"
            };
            format!(
                "plugin {}: option {option} = {:?}: {e}",
                cfg.name(),
                cfg.get_str(option).unwrap_or_default()
            )
        })?;
        Ok(XorSearch {
            searcher: Arc::new(searcher),
        })
    }
}

#[async_trait]
impl Worker for XorSearch {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let searcher = self.searcher.clone();
        let (results, truncated) =
            crate::util::run_cpu(content.len(), move || searcher.results(&content)).await?;
        let mut response = WorkerResponse {
            results,
            ..WorkerResponse::default()
        };
        if truncated {
            response.errors.push(Error::new(format!(
                "xorsearch: stopped after {} hits (max_hits)",
                self.searcher.max_hits
            )));
        }
        if response.results.is_none() && response.errors.is_empty() {
            return Ok(None);
        }
        Ok(Some(response))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("xorsearch", &[PluginClass::Worker], |cfg| {
        Ok(PluginInstance::new().worker(Arc::new(XorSearch::from_config(cfg)?)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Find terms XOR-encoded with any single-byte key (0x01-0xFF)")
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_vector() {
        let data: Vec<u8> = b"MZAdjustTokenPrivileges CurrentVersion"
            .iter()
            .map(|b| b ^ 0x5C)
            .collect();
        let s = XorSearcher::new(&DEFAULT_TERMS, 1000).unwrap();
        let (r, truncated) = s.results(&data);
        assert!(!truncated);
        let r = r.unwrap();
        assert_eq!(
            r,
            json!({"0x5C": [
                {"pos": "0x0002", "match": "AdjustTokenPrivileges CurrentVersion"},
                {"pos": "0x0018", "match": "CurrentVersion"},
            ]})
        );
    }

    #[test]
    fn plain_text_is_not_reported_and_overlaps_are() {
        let s = XorSearcher::new(&DEFAULT_TERMS, 1000).unwrap();
        assert_eq!(s.results(b"This program cannot be run").0, None);
        let enc: Vec<u8> = b"This program cannot".iter().map(|b| b ^ 1).collect();
        let r = s.results(&enc).0.unwrap();
        assert_eq!(r["0x01"][0]["pos"], "0x0000");
        assert_eq!(r["0x01"][1]["pos"], "0x0005");
        assert_eq!(r["0x01"][1]["match"], "program cannot");
    }

    #[test]
    fn max_hits_stops_the_search() {
        let s = XorSearcher::new(&["a"], 3).unwrap();
        let (hits, truncated) = s.search(&[b'a' ^ 7; 10]);
        assert!(truncated);
        assert_eq!(hits[&7].len(), 3);
    }

    #[test]
    fn bad_terms() {
        assert!(XorSearcher::new::<&str>(&[], 1).is_err());
        assert!(XorSearcher::new(&[""], 1).is_err());
        let cfg = PluginConfig::new("xorsearch", [("terms", " , ")]);
        let e = XorSearch::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("xorsearch") && e.contains("terms"), "{e}");
        let cfg = PluginConfig::new("xorsearch", [("max_hits", "0")]);
        assert!(XorSearch::from_config(&cfg).is_err());
    }
}
