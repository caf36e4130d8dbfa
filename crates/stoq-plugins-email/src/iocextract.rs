//! `iocextract` worker: indicators of compromise found in text.
//!
//! The payload is decoded as text ([`crate::text::decode_text`]: BOM, UTF-8,
//! else a `chardetng` charset guess); payloads that look binary (NULs and
//! control bytes, see [`crate::text::looks_binary`]) are skipped with
//! `Ok(None)`. At most `max_bytes` bytes are scanned.
//!
//! The text is first **refanged**: `hxxp`/`hxxps`/`hxtp`/`h**p`/`h[tt]p`
//! → `http`/`https`, `fxp` → `ftp`; `[.]` `(.)` `{.}` `[dot]` `(dot)`
//! `{dot}` (any case, spaces inside the brackets allowed, and one space or
//! tab on each side taken away) → `.`; `[@]` `(@)` `[at]` `(at)` `{at}`
//! (likewise) → `@`; `[:]` → `:`; `[://]` → `://`; `[/]` → `/` (any
//! bracket kind). Then every kind is matched:
//!
//! | key | what | normalised |
//! |---|---|---|
//! | `md5`, `sha1`, `sha256`, `sha512` | a word of exactly 32/40/64/128 hex digits; ignored: all-decimal words, mixed-case words (base64) and words of fewer than 6 distinct digits (`AAAA…` runs in base64) | lower-case |
//! | `ipv4` | dotted quad, each octet 0-255 without leading zeros, not part of a longer dotted number | as parsed by `std::net` |
//! | `ipv6` | validated with `std::net::Ipv6Addr` (the unspecified `::` is ignored) | RFC 5952 text (lower-case, `::` compressed) |
//! | `mac_address` | `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff` | lower-case, `:`-separated |
//! | `email` | `local@domain.tld` with a known TLD | lower-case |
//! | `domain` | `label.label.tld` with a known TLD (also the domains inside URLs and e-mail addresses); of a dotted word, the longest run of valid labels at its end | lower-case |
//! | `url` | `scheme://…` for http(s), ftp(s), sftp, file, smb, ws(s), tcp, udp; trailing punctuation and unbalanced closing brackets dropped | as found after refanging |
//!
//! TLDs are checked against the list shipped with the crate
//! (`src/data/tlds.txt`, the DNS root zone) or against the file of the
//! `iana_tld_file` option; nothing is downloaded. Each list keeps the
//! first-seen order and holds no duplicates; the keys come in the order of
//! the table and only keys with findings are present. With nothing found
//! the worker stores no results.
//!
//! Allow-lists (`whitelist_domains`, `whitelist_ips`, `whitelist_file`)
//! drop findings: a domain entry matches itself and every subdomain, and
//! applies to `domain`, to the domain of an `email` and to the host of a
//! `url`; an IP entry (address or CIDR, v4 or v6) applies to `ipv4`,
//! `ipv6` and URL hosts that are addresses; a hash entry in the file
//! (32/40/64/128 hex digits) drops that hash.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde_json::{Map, Value};
use stoq_core::{
    async_trait, run_cpu, ModuleDescriptor, OptionDoc, OptionError, Payload, PluginClass,
    PluginConfig, PluginError, PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

use crate::text::{decode_text, looks_binary};

/// The plugin's name.
pub const NAME: &str = "iocextract";
/// Default of `max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 20_000_000;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "whitelist_domains",
        "",
        "comma list of domains never reported; each also covers its subdomains, and applies to \
         domains, e-mail domains and URL hosts",
    ),
    OptionDoc::new(
        "whitelist_ips",
        "",
        "comma list of IP addresses or CIDR ranges (v4 or v6) never reported (also URL hosts)",
    ),
    OptionDoc::new(
        "whitelist_file",
        "",
        "file of allow-list entries, one per line (# starts a comment): an IP or CIDR, a hash \
         (32/40/64/128 hex digits) or a domain; a relative path resolves against the plugin \
         directory",
    ),
    OptionDoc::new(
        "iana_tld_file",
        "",
        "file of valid TLDs, one per line, as IANA's tlds-alpha-by-domain.txt (# comments); \
         empty = the list built into the plugin",
    ),
    OptionDoc::new(
        "max_bytes",
        "20000000",
        "scan at most this many bytes of a payload (the rest is ignored)",
    ),
];

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// An address range: an IP address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `v6/n`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// What [`extract_iocs`] needs besides the text.
#[derive(Debug, Clone)]
pub struct IocOptions {
    /// Domains (lower-case) never reported, with their subdomains.
    pub whitelist_domains: Vec<String>,
    /// Address ranges never reported.
    pub whitelist_ips: Vec<Cidr>,
    /// Hashes (lower-case) never reported.
    pub whitelist_hashes: HashSet<String>,
    /// Valid TLDs (lower-case); `None` = the built-in list.
    pub tlds: Option<Arc<HashSet<String>>>,
    /// Scan at most this many bytes of text.
    pub max_bytes: usize,
}

impl Default for IocOptions {
    fn default() -> Self {
        IocOptions {
            whitelist_domains: Vec::new(),
            whitelist_ips: Vec::new(),
            whitelist_hashes: HashSet::new(),
            tlds: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl IocOptions {
    /// Add one allow-list entry: an IP/CIDR, a hash or a domain.
    pub fn allow(&mut self, entry: &str) {
        let e = entry.trim();
        if e.is_empty() {
            return;
        }
        if let Ok(c) = Cidr::parse(e) {
            self.whitelist_ips.push(c);
        } else if matches!(e.len(), 32 | 40 | 64 | 128) && e.bytes().all(|b| b.is_ascii_hexdigit())
        {
            self.whitelist_hashes.insert(e.to_ascii_lowercase());
        } else {
            self.allow_domain(e);
        }
    }

    /// Add a domain to the allow-list (`*.` / `.` prefixes are dropped).
    pub fn allow_domain(&mut self, domain: &str) {
        let d = domain
            .trim()
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_lowercase();
        if !d.is_empty() {
            self.whitelist_domains.push(d);
        }
    }

    /// Add every entry of an allow-list file's text.
    pub fn allow_lines(&mut self, text: &str) {
        for line in text.lines() {
            let entry = line.split('#').next().unwrap_or_default();
            self.allow(entry);
        }
    }

    /// The options of the plugin configuration `cfg`.
    pub fn from_config(cfg: &PluginConfig) -> Result<IocOptions, OptionError> {
        let mut o = IocOptions::default();
        for d in cfg.list("whitelist_domains") {
            o.allow_domain(&d);
        }
        if let Some(ips) = cfg.parse_with("whitelist_ips", |v| {
            stoq_core::options::split_list(v)
                .iter()
                .map(|s| Cidr::parse(s))
                .collect::<Result<Vec<_>, _>>()
        })? {
            o.whitelist_ips.extend(ips);
        }
        if cfg
            .get_str("whitelist_file")
            .is_some_and(|v| !v.trim().is_empty())
        {
            if let Some(path) = cfg.path("whitelist_file") {
                let text = read_option_file(cfg, "whitelist_file", &path)?;
                o.allow_lines(&text);
            }
        }
        if cfg
            .get_str("iana_tld_file")
            .is_some_and(|v| !v.trim().is_empty())
        {
            if let Some(path) = cfg.path("iana_tld_file") {
                let text = read_option_file(cfg, "iana_tld_file", &path)?;
                let set = parse_tld_list(&text);
                if set.is_empty() {
                    return Err(option_error(cfg, "iana_tld_file", "the file lists no TLD"));
                }
                o.tlds = Some(Arc::new(set));
            }
        }
        o.max_bytes = cfg.number("max_bytes", DEFAULT_MAX_BYTES)?;
        if o.max_bytes == 0 {
            return Err(option_error(cfg, "max_bytes", "must be at least 1"));
        }
        Ok(o)
    }

    fn is_tld(&self, tld: &str) -> bool {
        match &self.tlds {
            Some(set) => set.contains(tld),
            None => builtin_tlds().contains(tld),
        }
    }

    fn domain_allowed(&self, domain: &str) -> bool {
        self.whitelist_domains.iter().any(|w| {
            domain == w
                || (domain.len() > w.len()
                    && domain.ends_with(w.as_str())
                    && domain.as_bytes()[domain.len() - w.len() - 1] == b'.')
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.whitelist_ips.iter().any(|c| c.contains(ip))
    }
}

fn option_error(cfg: &PluginConfig, option: &str, reason: &str) -> OptionError {
    OptionError {
        plugin: cfg.name().to_string(),
        option: option.to_string(),
        value: cfg.get_str(option).unwrap_or_default().to_string(),
        reason: reason.to_string(),
    }
}

fn read_option_file(cfg: &PluginConfig, option: &str, path: &Path) -> Result<String, OptionError> {
    std::fs::read(path)
        .map(|b| decode_text(&b).into_owned())
        .map_err(|e| option_error(cfg, option, &format!("cannot read {}: {e}", path.display())))
}

/// The TLDs of a list in IANA's format (one per line, `#` comments).
pub fn parse_tld_list(text: &str) -> HashSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_start_matches('.').to_ascii_lowercase())
        .collect()
}

/// The TLD list built into the crate (`src/data/tlds.txt`).
pub fn builtin_tlds() -> &'static HashSet<String> {
    static TLDS: OnceLock<HashSet<String>> = OnceLock::new();
    TLDS.get_or_init(|| parse_tld_list(include_str!("data/tlds.txt")))
}

// ---------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------

/// Indicators found in a text; each list in first-seen order, unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Iocs {
    pub md5: Vec<String>,
    pub sha1: Vec<String>,
    pub sha256: Vec<String>,
    pub sha512: Vec<String>,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub mac_address: Vec<String>,
    pub email: Vec<String>,
    pub domain: Vec<String>,
    pub url: Vec<String>,
}

impl Iocs {
    /// `(key, list)` in output order.
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 10] {
        [
            ("md5", &self.md5),
            ("sha1", &self.sha1),
            ("sha256", &self.sha256),
            ("sha512", &self.sha512),
            ("ipv4", &self.ipv4),
            ("ipv6", &self.ipv6),
            ("mac_address", &self.mac_address),
            ("email", &self.email),
            ("domain", &self.domain),
            ("url", &self.url),
        ]
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.lists().iter().all(|(_, l)| l.is_empty())
    }

    /// The worker's results: only keys with findings.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, l) in self.lists() {
            if !l.is_empty() {
                m.insert(k.to_string(), Value::from(l.clone()));
            }
        }
        Value::Object(m)
    }
}

/// A list that keeps first-seen order and drops repeats.
#[derive(Default)]
struct Unique {
    seen: HashSet<String>,
    list: Vec<String>,
}

impl Unique {
    fn push(&mut self, s: String) {
        if !self.seen.contains(&s) {
            self.seen.insert(s.clone());
            self.list.push(s);
        }
    }
}

struct Patterns {
    scheme: Regex,
    brackets: Regex,
    url: Regex,
    email: Regex,
    dotted: Regex,
    ipv6: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // The patterns are constants: failing to compile one is a bug that
        // the unit tests catch. An impossible pattern keeps this panic-free.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|_| Regex::new("[^\\s\\S]").expect("x"));
        // Labels: letters, digits and inner hyphens; the TLD is letters (or
        // xn--); ASCII word boundaries so non-ASCII text does not slow the
        // search down.
        const HOST: &str = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})";
        Patterns {
            scheme: re(concat!(
                r"(?i)(?-u:\b)(?P<scheme>hxxps?|hxxxps?|hxtps?|htxps?|h\*\*ps?|h\[tt\]ps?|fxps?)",
                r"(?P<after>://|:|\[://\]|\[:\])"
            )),
            brackets: re(r"(?i)[\[\(\{]\s*(?:\.|dot|@|at|:|://|/)\s*[\]\)\}]"),
            url: re(r"(?i)(?-u:\b)(?:https?|s?ftps?|file|smb|wss?|tcp|udp)://[^\s<>\x22'\x60\x00-\x1f\x7f]+"),
            email: re(&format!(r"(?i)[a-z0-9][a-z0-9._%+\-]{{0,63}}@{HOST}(?-u:\b)")),
            // Dotted words (domains and IPv4 addresses); labels and octets
            // are checked after the match: the pattern stays simple, and
            // the search fast.
            dotted: re(r"(?i)(?-u:\b)[a-z0-9-]+(?:\.[a-z0-9-]+)+(?-u:\b)"),
            ipv6: re(r"(?i)[0-9a-f]{0,4}:[0-9a-f:.]*:[0-9a-f.]*(?:%[0-9a-z]+)?"),
        }
    })
}

/// Undo the usual defanging (see the module docs). Borrowed when nothing
/// was defanged.
pub fn refang(text: &str) -> Cow<'_, str> {
    let p = patterns();
    // Bracketed separators; one space or tab on each side of a bracketed
    // `.` or `@` goes with it ("example [.] com").
    let mut out: Option<String> = None;
    let mut last = 0;
    for m in p.brackets.find_iter(text) {
        if m.start() < last {
            continue;
        }
        let inner: String = m.as_str()[1..m.len() - 1]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let rep = match inner.as_str() {
            "." | "dot" => ".",
            "@" | "at" => "@",
            ":" => ":",
            "://" => "://",
            _ => "/",
        };
        let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
        let mut seg = &text[last..m.start()];
        let eats_space = rep == "." || rep == "@";
        if eats_space {
            seg = seg.strip_suffix([' ', '\t']).unwrap_or(seg);
        }
        s.push_str(seg);
        s.push_str(rep);
        last = m.end();
        if eats_space && text[last..].starts_with([' ', '\t']) {
            last += 1;
        }
    }
    let text: Cow<'_, str> = match out {
        Some(mut s) => {
            s.push_str(&text[last..]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(text),
    };
    // Defanged schemes.
    let replaced = match p.scheme.replace_all(&text, |c: &regex::Captures<'_>| {
        let s = c
            .name("scheme")
            .map_or("", |m| m.as_str())
            .to_ascii_lowercase();
        let secure = s.ends_with('s');
        let base = if s.starts_with('f') { "ftp" } else { "http" };
        let sep = match c.name("after").map(|a| a.as_str()) {
            Some("://" | "[://]") => "://",
            _ => ":",
        };
        format!("{base}{}{sep}", if secure { "s" } else { "" })
    }) {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    };
    match replaced {
        Some(s) => Cow::Owned(s),
        None => text,
    }
}

/// ASCII letters, digits and `_` (the `(?-u:\b)` notion of a word byte).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Words of 32, 40, 64 or 128 hex digits (MD5, SHA-1, SHA-256, SHA-512),
/// lower-cased. Ignored: all-decimal words, mixed-case words (base64 text)
/// and words of fewer than six distinct digits (runs like `AAAA…` in
/// base64 of zeros).
fn hashes_in(t: &str) -> impl Iterator<Item = String> + '_ {
    let b = t.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if !is_word(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            let w = &b[start..i];
            if !matches!(w.len(), 32 | 40 | 64 | 128) || !w.iter().all(u8::is_ascii_hexdigit) {
                continue;
            }
            let upper = w.iter().any(u8::is_ascii_uppercase);
            let lower = w.iter().any(u8::is_ascii_lowercase);
            if (upper && lower) || !(upper || lower) {
                continue;
            }
            let mut seen = [false; 16];
            for &c in w {
                let v = (c as char).to_digit(16).unwrap_or(0) as usize;
                seen[v & 15] = true;
            }
            if seen.iter().filter(|s| **s).count() < 6 {
                continue;
            }
            return Some(String::from_utf8_lossy(w).to_ascii_lowercase());
        }
        None
    })
}

/// MAC addresses: `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` (one separator
/// throughout) and `aabb.ccdd.eeff`, standing alone (not inside a longer
/// run of hex groups such as an IPv6 address); lower-case, `:`-separated.
fn macs_in(t: &str) -> Vec<String> {
    let b = t.as_bytes();
    let hex2 = |i: usize| b[i].is_ascii_hexdigit() && b[i + 1].is_ascii_hexdigit();
    let free_before =
        |s: usize| s == 0 || !(is_word(b[s - 1]) || matches!(b[s - 1], b':' | b'-' | b'.'));
    let free_after = |e: usize| e >= b.len() || !(is_word(b[e]) || matches!(b[e], b':' | b'-'));
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if (c == b':' || c == b'-') && i >= 2 && i - 2 + 17 <= b.len() {
            let s = i - 2;
            let ok = (0..6).all(|k| hex2(s + 3 * k))
                && (0..5).all(|k| b[s + 3 * k + 2] == c)
                && free_before(s)
                && free_after(s + 17);
            if ok {
                let hex: Vec<String> = (0..6)
                    .map(|k| {
                        String::from_utf8_lossy(&b[s + 3 * k..s + 3 * k + 2]).to_ascii_lowercase()
                    })
                    .collect();
                out.push(hex.join(":"));
                i = s + 17;
                continue;
            }
        } else if c == b'.' && i >= 4 && i - 4 + 14 <= b.len() {
            let s = i - 4;
            let ok = (0..3).all(|k| hex2(s + 5 * k) && hex2(s + 5 * k + 2))
                && b[s + 9] == b'.'
                && free_before(s)
                && free_after(s + 14)
                && !(b.get(s + 14) == Some(&b'.') && b.get(s + 15).is_some_and(|&c| is_word(c)));
            if ok {
                let digits: String = [&b[s..s + 4], &b[s + 5..s + 9], &b[s + 10..s + 14]]
                    .concat()
                    .iter()
                    .map(|&c| c.to_ascii_lowercase() as char)
                    .collect();
                let pairs: Vec<&str> = (0..6).map(|k| &digits[2 * k..2 * k + 2]).collect();
                out.push(pairs.join(":"));
                i = s + 14;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The IPv4 address a dotted word ends with: its last four labels when
/// they are decimal numbers and the label before them (if any) is not (so
/// `1.2.3.4.5`, a version or an OID, is none). Octets are checked by
/// `std::net` (0-255, no leading zeros).
fn ipv4_suffix(word: &str) -> Option<Ipv4Addr> {
    let labels: Vec<&str> = word.split('.').collect();
    let numeric = |l: &&str| !l.is_empty() && l.len() <= 3 && l.bytes().all(|c| c.is_ascii_digit());
    let n = labels.iter().rev().take_while(|l| numeric(l)).count();
    if n != 4 {
        return None;
    }
    labels[labels.len() - 4..].join(".").parse().ok()
}

/// The longest run of valid labels at the end of a dotted word whose last
/// label is a known TLD, lower-case (`None` when fewer than two labels).
fn domain_suffix(word: &str, opts: &IocOptions) -> Option<String> {
    let word = word.to_ascii_lowercase();
    let labels: Vec<&str> = word.split('.').collect();
    let ok = |l: &&str| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-');
    let valid = labels.iter().rev().take_while(|l| ok(l)).count();
    if valid < 2 {
        return None;
    }
    let d = labels[labels.len() - valid..].join(".");
    valid_domain(&d, opts).then_some(d)
}

/// The byte before `start` and the byte at `end` of `s`.
fn around(s: &str, start: usize, end: usize) -> (Option<u8>, Option<u8>) {
    let b = s.as_bytes();
    (
        start.checked_sub(1).and_then(|i| b.get(i).copied()),
        b.get(end).copied(),
    )
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Drop trailing punctuation and unbalanced closing brackets from a URL.
fn trim_url(mut url: &str) -> &str {
    loop {
        let Some(last) = url.chars().last() else {
            return url;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '*' | '>' => true,
            ')' => url.matches('(').count() < url.matches(')').count(),
            ']' => url.matches('[').count() < url.matches(']').count(),
            '}' => url.matches('{').count() < url.matches('}').count(),
            _ => false,
        };
        if !drop {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

/// The host of a URL: lower-case, without user info, port or IPv6 brackets.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Every indicator in `text` (see the module docs).
pub fn extract_iocs(text: &str, opts: &IocOptions) -> Iocs {
    let text = truncate(text, opts.max_bytes);
    let refanged = refang(text);
    let t: &str = &refanged;
    let p = patterns();
    let mut hashes: [Unique; 4] = Default::default();
    for h in hashes_in(t) {
        let slot = match h.len() {
            32 => 0,
            40 => 1,
            64 => 2,
            _ => 3,
        };
        if !opts.whitelist_hashes.contains(&h) {
            hashes[slot].push(h);
        }
    }

    let mut ipv6 = Unique::default();
    for m in p.ipv6.find_iter(t) {
        let (before, after) = around(t, m.start(), m.end());
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b':' || c == b'.')
            || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == b':' || c == b'_')
        {
            continue;
        }
        let cand = m.as_str().trim_end_matches('.');
        let addr = cand.split('%').next().unwrap_or_default();
        if addr.bytes().filter(|&c| c == b':').count() < 2
            || !addr.bytes().any(|c| c.is_ascii_hexdigit())
        {
            continue;
        }
        if let Ok(ip) = addr.parse::<Ipv6Addr>() {
            if !ip.is_unspecified() && !opts.ip_allowed(IpAddr::V6(ip)) {
                ipv6.push(ip.to_string());
            }
        }
    }

    let mut mac = Unique::default();
    for m in macs_in(t) {
        mac.push(m);
    }

    let mut email = Unique::default();
    for m in p.email.find_iter(t) {
        let e = m.as_str().trim_start_matches(['.', '-', '+', '%', '_']);
        let Some((local, domain)) = e.rsplit_once('@') else {
            continue;
        };
        let domain = domain.to_ascii_lowercase();
        if local.is_empty() || !valid_domain(&domain, opts) || opts.domain_allowed(&domain) {
            continue;
        }
        email.push(format!("{}@{domain}", local.to_lowercase()));
    }

    // Dotted words give both the IPv4 addresses and the domains.
    let mut ipv4 = Unique::default();
    let mut domain = Unique::default();
    for m in p.dotted.find_iter(t) {
        let (_, after) = around(t, m.start(), m.end());
        if after == Some(b'@') {
            continue; // the local part of an e-mail address
        }
        let word = m.as_str();
        if let Some(ip) = ipv4_suffix(word) {
            if !opts.ip_allowed(IpAddr::V4(ip)) {
                ipv4.push(ip.to_string());
            }
        } else if let Some(d) = domain_suffix(word, opts) {
            if !opts.domain_allowed(&d) {
                domain.push(d);
            }
        }
    }

    let mut url = Unique::default();
    for m in p.url.find_iter(t) {
        let u = trim_url(m.as_str());
        if u.ends_with("://") {
            continue;
        }
        if let Some(host) = url_host(u) {
            let allowed = match host.parse::<IpAddr>() {
                Ok(ip) => opts.ip_allowed(ip),
                Err(_) => opts.domain_allowed(&host),
            };
            if allowed {
                continue;
            }
        }
        url.push(u.to_string());
    }

    let [md5, sha1, sha256, sha512] = hashes;
    Iocs {
        md5: md5.list,
        sha1: sha1.list,
        sha256: sha256.list,
        sha512: sha512.list,
        ipv4: ipv4.list,
        ipv6: ipv6.list,
        mac_address: mac.list,
        email: email.list,
        domain: domain.list,
        url: url.list,
    }
}

/// A lower-case host name with a known TLD and labels of at most 63 bytes.
fn valid_domain(d: &str, opts: &IocOptions) -> bool {
    let Some((_, tld)) = d.rsplit_once('.') else {
        return false;
    };
    d.len() <= 253 && d.split('.').all(|l| !l.is_empty() && l.len() <= 63) && opts.is_tld(tld)
}

/// Decode a payload and extract; `None` for binary payloads.
pub fn extract_from_bytes(content: &[u8], opts: &IocOptions) -> Option<Iocs> {
    let content = &content[..content.len().min(opts.max_bytes)];
    if looks_binary(content) {
        return None;
    }
    let text = decode_text(content);
    Some(extract_iocs(&text, opts))
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

/// The `iocextract` worker.
#[derive(Debug, Clone, Default)]
pub struct IocExtractWorker {
    opts: Arc<IocOptions>,
}

impl IocExtractWorker {
    pub fn new(opts: IocOptions) -> Self {
        IocExtractWorker {
            opts: Arc::new(opts),
        }
    }
}

#[async_trait]
impl Worker for IocExtractWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let opts = self.opts.clone();
        let found = run_cpu(content.len(), move || extract_from_bytes(&content, &opts)).await?;
        match found {
            None => {
                tracing::debug!(payload = payload.id(), "iocextract: binary payload skipped");
                Ok(None)
            }
            Some(iocs) if iocs.is_empty() => Ok(None),
            Some(iocs) => Ok(Some(WorkerResponse::with_results(iocs.to_json()))),
        }
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Worker], |cfg| {
        let opts = IocOptions::from_config(cfg).map_err(PluginError::from)?;
        Ok(PluginInstance::new().worker(Arc::new(IocExtractWorker::new(opts))))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Extract IOCs (hashes, IPv4/IPv6, MAC and e-mail addresses, domains, URLs) from text, \
         defanged forms included",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(t: &str) -> Iocs {
        extract_iocs(t, &IocOptions::default())
    }

    #[test]
    fn refang_forms() {
        assert_eq!(
            refang("hxxp://a[.]b(.)c{.}d[dot]e(DOT)f hXXps[:]//x [ . ] y"),
            "http://a.b.c.d.e.f https://x.y"
        );
        assert_eq!(
            refang("me[@]x.com you(at)y.org a [at] b"),
            "me@x.com you@y.org a@b"
        );
        assert_eq!(refang("fxp[://]h[/]p"), "ftp://h/p");
        assert_eq!(refang("fxp://h"), "ftp://h");
        assert!(matches!(refang("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn every_kind() {
        let t = "see hxxp://evil[.]example[.]com/a.exe?x=1). Mail bad(at)evil.example.com, \
                 hosts 10.0.0.1 and 1.2.3.4.5 and 256.1.1.1 and 01.2.3.4, ip6 2001:DB8::1 and fe80::1%eth0; \
                 mac 00-1A-2B-3C-4D-5E, cisco 001a.2b3c.4d5e; md5 D41D8CD98F00B204E9800998ECF8427E \
                 sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 \
                 time 12:30:45 std::net 12345678901234567890123456789012 file setup.exe";
        let r = ex(t);
        assert_eq!(r.url, ["http://evil.example.com/a.exe?x=1"]);
        assert_eq!(r.email, ["bad@evil.example.com"]);
        assert_eq!(r.domain, ["evil.example.com"]);
        assert_eq!(r.ipv4, ["10.0.0.1"]);
        assert_eq!(r.ipv6, ["2001:db8::1", "fe80::1"]);
        // Both spellings are the same address.
        assert_eq!(r.mac_address, ["00:1a:2b:3c:4d:5e"]);
        assert_eq!(r.md5, ["d41d8cd98f00b204e9800998ecf8427e"]);
        assert_eq!(r.sha1, ["da39a3ee5e6b4b0d3255bfef95601890afd80709"]);
        assert!(r.sha256.is_empty() && r.sha512.is_empty());
        let keys: Vec<String> = r.to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "md5",
                "sha1",
                "ipv4",
                "ipv6",
                "mac_address",
                "email",
                "domain",
                "url"
            ]
        );
    }

    #[test]
    fn hash_filters() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let t = format!(
            "{md5} {} {} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA aBcDeF0123456789aBcDeF0123456789 x{md5} {md5}_",
            md5.to_uppercase(),
            "1".repeat(32),
        );
        assert_eq!(hashes_in(&t).collect::<Vec<_>>(), [md5, md5]);
    }

    #[test]
    fn domain_labels() {
        let o = IocOptions::default();
        assert_eq!(
            domain_suffix("foo-.Example.COM", &o).as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_suffix("a.example.exe", &o), None);
        assert_eq!(domain_suffix("com", &o), None);
        assert_eq!(domain_suffix("-x.com", &o), None);
        assert_eq!(
            ex("a 2001.0db8.85a3.0000 b 00:11:22:33:44:55:66 c 0a-0b-0c-0d-0e-0f d 0A:0B-0C:0D:0E:0F").mac_address,
            ["0a:0b:0c:0d:0e:0f"]
        );
        assert_eq!(
            ex("see example.com- and x.example.org.").domain,
            ["example.com", "x.example.org"]
        );
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.255.1.2".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!c.contains("2001:db9::5".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("http://u:p@Ex.COM:8080/x").as_deref(),
            Some("ex.com")
        );
        assert_eq!(
            url_host("http://[2001:db8::1]:80/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(url_host("ftp://1.2.3.4").as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn builtin_tld_list() {
        let t = builtin_tlds();
        assert!(t.len() > 1000);
        for tld in ["com", "org", "net", "de", "xn--p1ai", "zip"] {
            assert!(t.contains(tld), "{tld}");
        }
        for not in ["exe", "dll", "invalid", "localhost"] {
            assert!(!t.contains(not), "{not}");
        }
    }
}
