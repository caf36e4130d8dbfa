//! `filetype` dispatcher: send each payload to the workers for its type.
//!
//! The type comes from [`crate::mimetype::detect`] (the `mimetype` worker's
//! function; a dispatcher runs before any worker, so it detects by itself).
//! A routing table maps patterns to worker names. A pattern is a media type
//! (`application/zip`), a label (`PE32 executable (DLL)`) or a glob over
//! either (`application/x-*`, `*macro*`): `*` stands for any run of
//! characters, `?` for one, and matching ignores ASCII case. Every route
//! whose pattern matches the payload's media type or its label contributes
//! its workers, in table order, each worker once; the `always` workers come
//! last.
//!
//! The built-in table ([`default_routes`]) names only plugins compiled into
//! this build: every payload goes to `mimetype` (so its type is in the
//! results), archives and zip-based documents to `decompress`, PE files to
//! `peinfo` and `pecarve`, OLE2 files to `ole` and `pecarve`, Office
//! documents (OLE2, OOXML, Office XML) and anything labelled with macros
//! to `olevba` and `mraptor` (OOXML and plain text, which may be CSV
//! with DDE formulas, to `olevba` only), Java classes
//! to `javaclass`, RTF to `rtf`, PDF to `pdf`, Flash to `swfcarve`, e-mail
//! to `smtp`, TNEF to `tnef`, each only when that plugin is built in.
//!
//! Options (stoq.cfg `[filetype]`, or `--plugin-opts filetype:key=value`):
//! `routes` replaces the table, `add_routes` changes or extends it (one
//! line per type: `add_routes = {"application/pdf": ["yara"]}`), `always`
//! adds workers for every payload.
//!
//! The dispatch meta is `{"mimetype": ..., "label": ...}`. The engine runs
//! dispatchers again for every payload in every round; detection is
//! bounded (see [`crate::mimetype`]), so that costs microseconds.

use std::sync::Arc;

use serde_json::{Map, Value};
use stoq_core::{
    async_trait, Dispatcher, DispatcherResponse, ModuleDescriptor, OptionDoc, OptionError, Payload,
    PluginClass, PluginConfig, PluginInstance, PluginResult, Request,
};

use crate::mimetype::{detect, Detected};

/// One entry of the routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Media type, label or glob, as written.
    pub pattern: String,
    /// Workers to dispatch to, in order.
    pub workers: Vec<String>,
}

impl Route {
    pub fn new<S: Into<String>>(pattern: &str, workers: impl IntoIterator<Item = S>) -> Self {
        Route {
            pattern: pattern.to_string(),
            workers: workers.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether this route applies to a payload of type `d`.
    pub fn matches(&self, d: &Detected) -> bool {
        glob_match(&self.pattern, d.mimetype) || glob_match(&self.pattern, d.label)
    }
}

/// Every route of the built-in table, whether or not its workers are
/// compiled into this build. [`default_routes`] is this table fitted to the
/// build.
pub fn builtin_routes() -> Vec<Route> {
    const ARCHIVE: &[&str] = &["decompress"];
    const PE: &[&str] = &["peinfo", "pecarve"];
    // `ole` extracts embedded objects; `pecarve` finds executables stored
    // in any stream (the reference's dispatcher.yar sends OLE2 files to
    // both, through its ole_file and exe_file rules).
    const OLE: &[&str] = &["ole", "pecarve"];
    // Office documents also go to `olevba` (VBA source, XLM macro sheets,
    // DDE, keyword flags) and `mraptor` (the verdict): VBA in a PowerPoint
    // stream or Excel 4 macros in a workbook do not show in the OLE2
    // directory, so the "*macro*" label route below cannot catch them.
    const OFFICE: &[&str] = &["ole", "pecarve", "olevba", "mraptor"];
    let table: &[(&str, &[&str])] = &[
        // Every payload: its type in the results (the dispatch meta is not
        // part of the output).
        ("*", &["mimetype"]),
        // Archives and compressed files.
        ("application/zip", ARCHIVE),
        ("application/java-archive", ARCHIVE),
        ("application/vnd.android.package-archive", ARCHIVE),
        ("application/x-7z-compressed", ARCHIVE),
        ("application/gzip", ARCHIVE),
        ("application/x-bzip2", ARCHIVE),
        ("application/x-xz", ARCHIVE),
        ("application/x-tar", ARCHIVE),
        ("application/vnd.ms-cab-compressed", ARCHIVE),
        ("application/x-rar", ARCHIVE),
        // Zip-based documents: their parts (embedded objects, macros,
        // media) are payloads of their own. OOXML also goes to `olevba`:
        // DDE fields and links need no macros ("*macro*" below).
        (
            "application/vnd.openxmlformats-officedocument.*",
            &["decompress", "olevba"],
        ),
        ("application/vnd.oasis.opendocument.*", ARCHIVE),
        ("application/vnd.sun.xml.*", ARCHIVE),
        ("application/epub+zip", ARCHIVE),
        // Executables.
        ("application/vnd.microsoft.portable-executable", PE),
        ("application/x-dosexec", PE),
        ("application/x-ms-ne-executable", &["pecarve"]),
        ("application/x-java-applet", &["javaclass"]),
        // OLE2 documents.
        ("application/msword", OFFICE),
        ("application/vnd.ms-excel", OFFICE),
        ("application/vnd.ms-powerpoint", OFFICE),
        ("application/vnd.ms-outlook", OLE),
        // Encrypted OOXML (an OLE2 container): `ole` decrypts it with the
        // default passwords and extracts the document, which is routed by
        // its own type.
        ("application/encrypted", &["ole"]),
        ("application/x-ole-storage", OLE),
        ("application/x-msi", &["ole"]),
        // Other documents whose directory shows VBA or XLM macros (by
        // label: "... with VBA macros", "... (macro-enabled)").
        ("*macro*", &["olevba", "mraptor"]),
        // Office documents saved as one XML file (VBA, DDE).
        ("Microsoft * XML *", &["olevba", "mraptor"]),
        // ActiveMime (the macros of Word 2003 XML / MHTML documents, as
        // `smtp` extracts them from an .mht).
        ("application/x-mso", &["olevba", "mraptor"]),
        // Text, which may be CSV with DDE formulas (`=cmd|' /c calc'!A0`).
        ("text/plain", &["olevba"]),
        // Other documents, Flash and mail.
        ("text/rtf", &["rtf"]),
        ("application/pdf", &["pdf"]),
        ("application/x-shockwave-flash", &["swfcarve"]),
        ("message/rfc822", &["smtp"]),
        // MHTML web archives (libmagic: "MIME entity text"): their parts,
        // an ActiveMime macro container among them, are extracted by smtp.
        ("MIME entity*", &["smtp"]),
        ("application/vnd.ms-tnef", &["tnef"]),
    ];
    table
        .iter()
        .map(|(p, w)| Route::new(p, w.iter().copied()))
        .collect()
}

/// The built-in routing table of this build: [`builtin_routes`] without the
/// workers that are not built in (see [`crate::builtin_registry`]), and
/// without the routes left with no worker. So the default table never
/// names a plugin that is missing, and a worker joins it as soon as it is
/// compiled in.
pub fn default_routes() -> Vec<Route> {
    let registry = crate::builtin_registry();
    builtin_routes()
        .into_iter()
        .map(|mut r| {
            r.workers.retain(|w| registry.get(w).is_some());
            r
        })
        .filter(|r| !r.workers.is_empty())
        .collect()
}

/// A routing table as the JSON object the `routes` option takes.
pub fn routes_to_json(routes: &[Route]) -> Value {
    Value::Object(
        routes
            .iter()
            .map(|r| (r.pattern.clone(), Value::from(r.workers.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// Parse a `routes` / `add_routes` value: a JSON object whose keys are
/// patterns and whose values are arrays of worker names (or one string of
/// comma-separated names). An empty array is allowed (in `add_routes` it
/// removes a route).
pub fn parse_routes(v: &str) -> Result<Vec<Route>, String> {
    const SHAPE: &str = r#"expected a JSON object like {"application/zip": ["decompress"]}"#;
    let value: Value = serde_json::from_str(v).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(SHAPE.into());
    };
    map.into_iter()
        .map(|(key, workers)| {
            let pattern = key.trim();
            if pattern.is_empty() {
                return Err(format!("empty pattern; {SHAPE}"));
            }
            let workers: Vec<String> = match workers {
                Value::Array(items) => items
                    .into_iter()
                    .map(|w| match w {
                        Value::String(s) => Ok(s.trim().to_string()),
                        other => Err(format!(
                            "route {pattern:?}: worker names must be strings, not {other}"
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Value::String(s) => stoq_core::options::split_list(&s),
                other => {
                    return Err(format!(
                        "route {pattern:?}: expected a list of worker names, not {other}"
                    ))
                }
            };
            if workers.iter().any(String::is_empty) {
                return Err(format!("route {pattern:?}: empty worker name"));
            }
            Ok(Route::new(pattern, workers))
        })
        .collect()
}

/// Whether `text` matches `pattern` (`*` any run, `?` one character),
/// ignoring ASCII case.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and the text position it currently covers to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "routes",
        "",
        "JSON object {\"<pattern>\": [\"worker\", ...]} replacing the built-in routing table \
         (empty: the built-in table). A pattern is a media type, a label or a glob (* and ?) \
         matched against both, ignoring case; every matching route adds its workers",
    ),
    OptionDoc::new(
        "add_routes",
        "",
        "JSON object of the same form merged over the table: a pattern already in it gets the \
         new worker list (an empty list removes the route), a new pattern is appended",
    ),
    OptionDoc::new(
        "always",
        "",
        "comma list of workers to dispatch every payload to, after the routed ones",
    ),
];

/// The `filetype` dispatcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiletypeDispatcher {
    routes: Vec<Route>,
    always: Vec<String>,
}

impl Default for FiletypeDispatcher {
    /// The built-in table, nothing for every payload.
    fn default() -> Self {
        FiletypeDispatcher::new(default_routes(), Vec::new())
    }
}

impl FiletypeDispatcher {
    /// A dispatcher with this table (routes without workers are dropped)
    /// and these workers for every payload.
    pub fn new(routes: Vec<Route>, always: Vec<String>) -> Self {
        FiletypeDispatcher {
            routes: routes
                .into_iter()
                .filter(|r| !r.workers.is_empty())
                .collect(),
            always,
        }
    }

    /// Build from plugin options (`routes`, `add_routes`, `always`).
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let table = |key: &str| -> Result<Option<Vec<Route>>, OptionError> {
            Ok(cfg
                .parse_with(key, |v| {
                    if v.trim().is_empty() {
                        Ok(None)
                    } else {
                        parse_routes(v).map(Some)
                    }
                })?
                .flatten())
        };
        let mut routes = table("routes")?.unwrap_or_else(default_routes);
        for add in table("add_routes")?.unwrap_or_default() {
            match routes
                .iter_mut()
                .find(|r| r.pattern.eq_ignore_ascii_case(&add.pattern))
            {
                Some(r) => r.workers = add.workers,
                None => routes.push(add),
            }
        }
        Ok(FiletypeDispatcher::new(routes, cfg.list("always")))
    }

    /// The routing table in use.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The workers for every payload.
    pub fn always(&self) -> &[String] {
        &self.always
    }

    /// The workers a payload of type `d` goes to.
    pub fn workers_for(&self, d: &Detected) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let matched = self.routes.iter().filter(|r| r.matches(d));
        for w in matched.flat_map(|r| &r.workers).chain(&self.always) {
            if !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    /// The dispatch decision for `data`.
    pub fn dispatch(&self, data: &[u8]) -> DispatcherResponse {
        let d = detect(data);
        let mut meta = Map::new();
        meta.insert("mimetype".into(), d.mimetype.into());
        meta.insert("label".into(), d.label.into());
        DispatcherResponse {
            plugin_names: self.workers_for(&d),
            meta,
            ..DispatcherResponse::default()
        }
    }
}

#[async_trait]
impl Dispatcher for FiletypeDispatcher {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        let r = self.dispatch(&payload.content);
        tracing::debug!(
            payload = payload.id(),
            mimetype = ?r.meta.get("mimetype"),
            workers = ?r.plugin_names,
            "filetype"
        );
        Ok(Some(r))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("filetype", &[PluginClass::Dispatcher], |cfg| {
        Ok(PluginInstance::new().dispatcher(Arc::new(FiletypeDispatcher::from_config(cfg)?)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Dispatch each payload to the workers for its detected type (routing table by media \
         type, label or glob)",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("application/x-*", "application/x-tar"));
        assert!(glob_match("APPLICATION/ZIP", "application/zip"));
        assert!(glob_match(
            "*macro*",
            "Microsoft Word 2007+ document (macro-enabled)"
        ));
        assert!(glob_match("image/???", "image/png"));
        assert!(!glob_match("image/???", "image/jpeg"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a--b--b--c"));
        assert!(!glob_match("a*b*c", "a--b--b--"));
        assert!(!glob_match("application/zip", "application/zip2"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn default_table_names_only_compiled_plugins() {
        let known: Vec<String> = crate::builtin_registry()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        for r in default_routes() {
            assert!(!r.workers.is_empty());
            for w in &r.workers {
                assert!(known.contains(w), "{w} in {r:?}");
            }
        }
    }

    #[test]
    fn parse_errors() {
        assert!(parse_routes("{").unwrap_err().contains("invalid JSON"));
        assert!(parse_routes("[]").unwrap_err().contains("JSON object"));
        assert!(parse_routes(r#"{"a": 1}"#).is_err());
        assert!(parse_routes(r#"{"a": [1]}"#).is_err());
        assert!(parse_routes(r#"{"": ["x"]}"#).is_err());
        assert!(parse_routes(r#"{"a": ["x", " "]}"#).is_err());
        assert_eq!(
            parse_routes(r#"{"a": "x, y", "b": []}"#).unwrap(),
            [Route::new("a", ["x", "y"]), Route::new::<&str>("b", [])]
        );
    }
}
