//! Rule sets: finding the rule files, compiling them once per process,
//! the on-disk cache of compiled rules, and scanning.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use stoq_core::hashing::{hex, sha256};
use yara_x::errors::CompileError;
use yara_x::{Compiler, MetaValue, Rules, Scanner, SourceCode};

use super::matches::{meta_value, RuleMatch, StringMatch};

/// The external variables every rule set can use, all strings, empty
/// unless the payload's `extra_data` provides them (see [`Externals`]).
pub const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// Extensions of the rule files taken from a directory (any case).
pub const RULE_EXTENSIONS: [&str; 2] = ["yar", "yara"];

/// Namespace of the rules of a single rule file.
pub const DEFAULT_NAMESPACE: &str = "default";

/// yara-x's default `max_matches_per_pattern`.
pub const DEFAULT_MAX_MATCHES_PER_PATTERN: usize = 1_000_000;

/// Bumped when the cache file layout or what goes into the key changes.
const CACHE_FORMAT: &str = "stoq-yara-cache-v1";
/// Magic of a cache file, followed by the SHA-256 of the serialised rules.
const CACHE_MAGIC: &[u8; 8] = b"STOQYRC1";

/// How a rule set is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// yara-x's `relaxed_re_syntax` (libyara's more lenient regexps).
    pub relaxed_re_syntax: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            relaxed_re_syntax: true,
        }
    }
}

/// Where a loaded rule set came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from source (and written to the cache if one is set).
    Compiled,
    /// Read from the cache directory.
    Cache,
}

/// One rule file.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    namespace: String,
    content: Vec<u8>,
}

/// Compiled rules plus what is needed to report on them.
///
/// The compiled [`Rules`] live until the process exits: each thread that
/// scans keeps a yara-x `Scanner` per rule set for reuse (creating one
/// costs about 0.6 ms, a small scan with a reused one a few microseconds),
/// and a `Scanner` borrows its rules, so the rules must outlive every
/// thread. Rule sets are shared by cache key ([`RuleSet::load`]), so this
/// is one copy per distinct rule set loaded.
pub struct RuleSet {
    rules: &'static Rules,
    /// SHA-256 over the rule sources (see [`RuleSet::sha256`]).
    sha256: String,
    cache_key: String,
    /// (namespace, rule) → position in the rule set, to order matches.
    order: HashMap<(String, String), usize>,
    origin: Origin,
    rule_count: usize,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("sha256", &self.sha256)
            .field("rules", &self.rule_count)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Compiled rule sets loaded in this process, by cache key.
fn memo() -> &'static Mutex<HashMap<String, Arc<RuleSet>>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Arc<RuleSet>>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

thread_local! {
    /// This thread's scanners, by the address of their (leaked) rules.
    static SCANNERS: RefCell<HashMap<usize, Scanner<'static>>> = RefCell::new(HashMap::new());
}

/// Run `f` with this thread's scanner for `rules`. The scanner is put back
/// only when `f` succeeds: after a panic, a timeout or any other scan error
/// the next scan starts with a new one.
fn with_scanner<T, E>(
    rules: &'static Rules,
    f: impl FnOnce(&mut Scanner<'static>) -> Result<T, E>,
) -> Result<T, E> {
    let key = rules as *const Rules as usize;
    let cached = SCANNERS.with(|m| m.borrow_mut().remove(&key));
    let mut scanner = cached.unwrap_or_else(|| Scanner::new(rules));
    let out = f(&mut scanner);
    if out.is_ok() {
        SCANNERS.with(|m| m.borrow_mut().insert(key, scanner));
    }
    out
}

impl RuleSet {
    /// Load the rules at `path`: a rule file (namespace `default`) or a
    /// directory, whose `*.yar`/`*.yara` files (recursively, sorted by
    /// relative path) are each compiled in a namespace named after their
    /// path relative to the directory (`sub/x.yar`).
    ///
    /// A rule set already loaded in this process with the same sources and
    /// options is shared (rules are compiled once per process); otherwise
    /// the compiled rules are read from `cache_dir` when present and valid,
    /// else compiled and written there. Errors name the file and line.
    pub fn load(
        path: &Path,
        options: &CompileOptions,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<RuleSet>, String> {
        Self::load_impl(path, options, cache_dir, true)
    }

    /// [`RuleSet::load`] without sharing: always reads the cache or
    /// compiles, and the result is not offered to later loads. For tools and
    /// tests; each call keeps another copy of the rules until the process
    /// exits.
    pub fn load_unshared(
        path: &Path,
        options: &CompileOptions,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<RuleSet>, String> {
        Self::load_impl(path, options, cache_dir, false)
    }

    fn load_impl(
        path: &Path,
        options: &CompileOptions,
        cache_dir: Option<&Path>,
        shared: bool,
    ) -> Result<Arc<RuleSet>, String> {
        let sources = collect_sources(path)?;
        let include_dirs = include_dirs(&sources);
        let sha256 = sources_sha256(&sources, &include_dirs);
        let cache_key = cache_key(&sha256, options);

        // Held while loading so one rule set is never compiled twice at once.
        let mut memo = memo().lock().unwrap_or_else(|p| p.into_inner());
        if shared {
            if let Some(set) = memo.get(&cache_key) {
                tracing::debug!(path = %path.display(), "yara rules already loaded in this process");
                return Ok(set.clone());
            }
        }

        let cache_file = cache_dir.map(|d| d.join(format!("{cache_key}.yarc")));
        let started = Instant::now();
        let (rules, origin) = match cache_file.as_deref().and_then(read_cache) {
            Some(rules) => (rules, Origin::Cache),
            None => {
                let rules = compile(&sources, &include_dirs, options)?;
                if let Some(file) = &cache_file {
                    if let Err(e) = write_cache(file, &rules) {
                        tracing::warn!("yara: cannot write the rule cache {}: {e}", file.display());
                    }
                }
                (rules, Origin::Compiled)
            }
        };
        let mut set = RuleSet::from_rules(Box::leak(Box::new(rules)), &sha256, &cache_key);
        set.origin = origin;
        tracing::info!(
            path = %path.display(),
            files = sources.len(),
            rules = set.rule_count,
            sha256 = %sha256,
            origin = ?origin,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "yara rules loaded"
        );
        let set = Arc::new(set);
        if shared {
            memo.insert(cache_key, set.clone());
        }
        Ok(set)
    }

    fn from_rules(rules: &'static Rules, sha256: &str, cache_key: &str) -> RuleSet {
        let order: HashMap<(String, String), usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.namespace().to_string(), r.identifier().to_string()), i))
            .collect();
        RuleSet {
            rule_count: order.len(),
            rules,
            sha256: sha256.to_string(),
            cache_key: cache_key.to_string(),
            order,
            origin: Origin::Compiled,
        }
    }

    /// SHA-256 (hex) over the rule sources: each file's namespace, name and
    /// content, and the content of every file they include. It does not
    /// depend on where the rules are stored, nor on the yara-x version.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The name of the cache file, without `.yarc`: the SHA-256 of the
    /// sources' hash, the yara-x version, the externals and the compile
    /// options.
    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }

    /// Where the rules came from when they were loaded (a later
    /// [`RuleSet::load`] of the same rule set shares this instance).
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Scan `data`, returning the matching (non-private) rules in rule-set
    /// order, each with at most `strings_limit` strings (`None`: all),
    /// keeping only XOR matches when `xor_only`.
    pub fn scan(&self, data: &[u8], params: &ScanParams<'_>) -> Result<Vec<RuleMatch>, String> {
        with_scanner(self.rules, |scanner| self.scan_with(scanner, data, params))
    }

    fn scan_with(
        &self,
        scanner: &mut Scanner<'static>,
        data: &[u8],
        params: &ScanParams<'_>,
    ) -> Result<Vec<RuleMatch>, String> {
        // A reused scanner keeps its settings: set every one, every time.
        scanner.set_timeout(params.timeout);
        scanner.max_matches_per_pattern(
            params
                .max_matches_per_pattern
                .unwrap_or(DEFAULT_MAX_MATCHES_PER_PATTERN),
        );
        for (name, value) in params.externals.pairs() {
            scanner
                .set_global(name, value)
                .map_err(|e| format!("yara: cannot set external variable {name}: {e}"))?;
        }
        let results = scanner.scan(data).map_err(|e| match e {
            yara_x::ScanError::Timeout => format!(
                "yara scan timed out after {}s",
                params.timeout.as_secs_f64()
            ),
            e => format!("yara scan failed: {e}"),
        })?;
        let mut out: Vec<(usize, RuleMatch)> = results
            .matching_rules()
            .map(|rule| {
                let ns = rule.namespace().to_string();
                let name = rule.identifier().to_string();
                let pos = self
                    .order
                    .get(&(ns.clone(), name.clone()))
                    .copied()
                    .unwrap_or(usize::MAX);
                let (strings, strings_truncated) =
                    collect_strings(&rule, params.strings_limit, params.xor_only);
                let m = RuleMatch {
                    rule: name,
                    namespace: ns,
                    tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
                    meta: rule
                        .metadata()
                        .map(|(k, v)| (k.to_string(), meta_json(v)))
                        .collect(),
                    strings,
                    strings_truncated,
                };
                (pos, m)
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1.namespace, &a.1.rule).cmp(&(b.0, &b.1.namespace, &b.1.rule)));
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }
}

/// What one scan needs besides the data.
#[derive(Debug, Clone)]
pub struct ScanParams<'a> {
    pub timeout: Duration,
    pub strings_limit: Option<usize>,
    pub max_matches_per_pattern: Option<usize>,
    pub xor_only: bool,
    pub externals: &'a Externals,
}

/// Values of the external variables for one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Externals {
    pub filename: String,
    pub filepath: String,
    pub extension: String,
    pub filetype: String,
    pub owner: String,
}

impl Externals {
    /// From a payload's `extra_data`:
    /// - `filename`: the last path component of `extra_data.filename`;
    /// - `filepath`: `extra_data.filepath` (or `extra_data.path`) when set,
    ///   else `extra_data.source_dir` joined with the file name, else
    ///   `extra_data.filename` as given;
    /// - `extension`: the file name's extension, lower case, with its dot
    ///   (`.exe`; empty when there is none), as Loki and THOR define it;
    /// - `filetype`, `owner`: `extra_data.filetype`, `extra_data.owner`.
    ///
    /// Non-string values count as absent.
    pub fn from_extra_data(extra: &serde_json::Map<String, Value>) -> Externals {
        let get = |k: &str| {
            extra
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let given = get("filename");
        let filename = given.rsplit(['/', '\\']).next().unwrap_or("").to_string();
        let filepath = [get("filepath"), get("path")]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| {
                let dir = get("source_dir");
                if !dir.is_empty() && !filename.is_empty() {
                    Path::new(&dir)
                        .join(&filename)
                        .to_string_lossy()
                        .into_owned()
                } else {
                    given.clone()
                }
            });
        let extension = match filename.rfind('.') {
            Some(i) if i > 0 => filename[i..].to_lowercase(),
            _ => String::new(),
        };
        Externals {
            filename,
            filepath,
            extension,
            filetype: get("filetype"),
            owner: get("owner"),
        }
    }

    fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("filename", &self.filename),
            ("filepath", &self.filepath),
            ("extension", &self.extension),
            ("filetype", &self.filetype),
            ("owner", &self.owner),
        ]
    }
}

fn meta_json(v: MetaValue<'_>) -> Value {
    match v {
        MetaValue::Integer(i) => Value::from(i),
        MetaValue::Float(f) => Value::from(f),
        MetaValue::Bool(b) => Value::Bool(b),
        MetaValue::String(s) => Value::String(s.to_string()),
        MetaValue::Bytes(b) => meta_value(b.as_ref()),
    }
}

/// The first `limit` matches of a rule by offset (then pattern order).
fn collect_strings(
    rule: &yara_x::Rule<'_, '_>,
    limit: Option<usize>,
    xor_only: bool,
) -> (Vec<StringMatch>, bool) {
    let mut all: Vec<(usize, usize, StringMatch)> = Vec::new();
    let mut total = 0usize;
    for (pi, pattern) in rule.patterns().enumerate() {
        let id = pattern.identifier();
        let matches = pattern.matches();
        let mut kept = 0usize;
        for mt in matches {
            let xor_key = mt.xor_key();
            if xor_only && xor_key.is_none() {
                continue;
            }
            total += 1;
            // Matches of one pattern come in offset order: the first
            // `limit` of each pattern hold the first `limit` overall.
            if limit.is_some_and(|l| kept >= l) {
                continue;
            }
            kept += 1;
            let range = mt.range();
            all.push((
                range.start,
                pi,
                StringMatch {
                    identifier: id.to_string(),
                    offset: range.start,
                    data: mt.data().to_vec(),
                    xor_key,
                },
            ));
        }
    }
    all.sort_by_key(|(offset, pi, _)| (*offset, *pi));
    let mut strings: Vec<StringMatch> = all.into_iter().map(|(_, _, s)| s).collect();
    let limit = limit.unwrap_or(usize::MAX);
    strings.truncate(limit);
    (strings, total > limit)
}

/// The rule files at `path`.
fn collect_sources(path: &Path) -> Result<Vec<Source>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "Nonexistent yara rules file provided: {} ({e})",
            path.display()
        )
    })?;
    if meta.is_file() {
        let content = std::fs::read(path)
            .map_err(|e| format!("cannot read yara rules {}: {e}", path.display()))?;
        return Ok(vec![Source {
            path: path.to_path_buf(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            content,
        }]);
    }
    let mut files = Vec::new();
    walk(path, path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no *.yar or *.yara rule files under {}",
            path.display()
        ));
    }
    files
        .into_iter()
        .map(|(namespace, p)| {
            let content = std::fs::read(&p)
                .map_err(|e| format!("cannot read yara rules {}: {e}", p.display()))?;
            Ok(Source {
                path: p,
                namespace,
                content,
            })
        })
        .collect()
}

/// Rule files under `dir` as (relative path with `/`, path). Symbolic links
/// to files are followed, links to directories are not (no cycles).
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list yara rules directory {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let p = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| format!("cannot stat {}: {e}", p.display()))?;
        if ft.is_dir() {
            walk(root, &p, out)?;
            continue;
        }
        let is_rule_file = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| RULE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if is_rule_file && p.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let ns = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((ns, p));
        }
    }
    Ok(())
}

/// Directories searched for `include`d files: each rule file's directory,
/// in rule-file order.
fn include_dirs(sources: &[Source]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for s in sources {
        let dir = s
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Hash of the sources, including the files they include (found the way
/// yara-x finds them: next to the including file, then in `include_dirs`).
fn sources_sha256(sources: &[Source], include_dirs: &[PathBuf]) -> String {
    let mut manifest = String::new();
    let mut seen = HashSet::new();
    for s in sources {
        let _ = writeln!(
            manifest,
            "source\t{}\t{}\t{}",
            s.namespace,
            s.content.len(),
            hex(&sha256(&s.content))
        );
        hash_includes(&s.content, None, include_dirs, &mut manifest, &mut seen, 0);
    }
    hex(&sha256(manifest.as_bytes()))
}

fn hash_includes(
    content: &[u8],
    own_dir: Option<&Path>,
    include_dirs: &[PathBuf],
    manifest: &mut String,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    for name in include_names(content) {
        let found = own_dir
            .into_iter()
            .chain(include_dirs.iter().map(PathBuf::as_path))
            .map(|d| d.join(&name))
            .find(|p| p.is_file());
        let Some(path) = found else {
            let _ = writeln!(manifest, "include\t{name}\tmissing");
            continue;
        };
        let Ok(data) = std::fs::read(&path) else {
            let _ = writeln!(manifest, "include\t{name}\tunreadable");
            continue;
        };
        let _ = writeln!(manifest, "include\t{name}\t{}", hex(&sha256(&data)));
        let canonical = path.canonicalize().unwrap_or(path.clone());
        if seen.insert(canonical) {
            hash_includes(
                &data,
                path.parent(),
                include_dirs,
                manifest,
                seen,
                depth + 1,
            );
        }
    }
}

/// The file names of `include "name"` lines (a textual scan: an include in
/// a comment is hashed too, which only costs a recompilation).
fn include_names(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("include")?;
            let rest = rest.trim_start().strip_prefix('"')?;
            let end = rest.find('"')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

fn cache_key(sources_sha256: &str, options: &CompileOptions) -> String {
    let key = format!(
        "{CACHE_FORMAT}\nyara-x {}\nsources {sources_sha256}\nexternals {}\nrelaxed_re_syntax {}\n",
        yara_x::VERSION,
        EXTERNALS.join(","),
        options.relaxed_re_syntax,
    );
    hex(&sha256(key.as_bytes()))
}

fn compile(
    sources: &[Source],
    include_dirs: &[PathBuf],
    options: &CompileOptions,
) -> Result<Rules, String> {
    let mut compiler = Compiler::new();
    compiler.relaxed_re_syntax(options.relaxed_re_syntax);
    for dir in include_dirs {
        compiler.add_include_dir(dir);
    }
    for name in EXTERNALS {
        compiler
            .define_global(name, "")
            .map_err(|e| format!("yara: cannot define external variable {name}: {e}"))?;
    }
    for s in sources {
        compiler.new_namespace(&s.namespace);
        let origin = s.path.display().to_string();
        // Every error is kept by the compiler; carry on to report them all.
        let _ = compiler.add_source(SourceCode::from(s.content.as_slice()).with_origin(origin));
    }
    let errors = compiler.errors();
    if !errors.is_empty() {
        const SHOWN: usize = 5;
        let mut msg = errors
            .iter()
            .take(SHOWN)
            .map(describe_error)
            .collect::<Vec<_>>()
            .join("; ");
        if errors.len() > SHOWN {
            let _ = write!(msg, "; and {} more errors", errors.len() - SHOWN);
        }
        return Err(format!("yara rules do not compile: {msg}"));
    }
    let warnings = compiler.warnings();
    if !warnings.is_empty() {
        tracing::warn!(
            "yara: {} compiler warnings (RUST_LOG=debug shows them)",
            warnings.len()
        );
        for w in warnings {
            tracing::debug!("yara: {w}");
        }
    }
    Ok(compiler.build())
}

/// `<file>:<line>:<column>: <title>: <label>` for one compile error (the
/// line and column are 1-based).
pub fn describe_error(e: &CompileError) -> String {
    let mut out = String::new();
    if let Some(label) = e.labels().next() {
        let v = serde_json::to_value(&label).unwrap_or(Value::Null);
        let _ = write!(
            out,
            "{}:{}:{}: ",
            label.origin().unwrap_or("<rules>"),
            v.get("line").and_then(Value::as_u64).unwrap_or(0),
            v.get("column").and_then(Value::as_u64).unwrap_or(0),
        );
        let _ = write!(out, "{} [{}]: {}", e.title(), e.code(), label.text());
    } else {
        let _ = write!(out, "{} [{}]", e.title(), e.code());
    }
    out
}

/// Rules read back from a cache file, or `None` (absent, corrupt, another
/// yara-x) after which the caller compiles and overwrites it.
fn read_cache(file: &Path) -> Option<Rules> {
    let bytes = std::fs::read(file).ok()?;
    let invalid = |why: &str| {
        tracing::warn!("yara: ignoring the rule cache {}: {why}", file.display());
        None
    };
    let Some(rest) = bytes.strip_prefix(CACHE_MAGIC.as_slice()) else {
        return invalid("not a stoQ yara cache file");
    };
    if rest.len() < 32 {
        return invalid("truncated");
    }
    let (digest, body) = rest.split_at(32);
    if sha256(body) != digest {
        return invalid("checksum mismatch");
    }
    match Rules::deserialize(body) {
        Ok(rules) => Some(rules),
        Err(e) => invalid(&e.to_string()),
    }
}

/// Write `rules` to `file` through a temporary file and a rename, so a
/// reader never sees half a file.
fn write_cache(file: &Path, rules: &Rules) -> Result<(), String> {
    let body = rules.serialize().map_err(|e| e.to_string())?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut data = Vec::with_capacity(body.len() + 40);
    data.extend_from_slice(CACHE_MAGIC);
    data.extend_from_slice(&sha256(&body));
    data.extend_from_slice(&body);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, &data).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
