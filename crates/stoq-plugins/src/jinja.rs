//! `jinja` decorator + connector: renders a response with a Jinja template
//! (MiniJinja).
//!
//! The template is read and compiled once, when the plugin is built: a
//! missing file or a syntax error stops the plugin from loading, naming the
//! template and the line.
//!
//! Context: the response serialised to JSON, its top-level keys as
//! variables (`results`, `request_meta`, `errors`, `time`, `decorators`,
//! `scan_id`), plus `response` (the whole object) and `plugin_name` (this
//! plugin's name, so a template can skip its own decorator output). Objects
//! keep the key order of the JSON.
//!
//! Template environment: `trim_blocks` and `lstrip_blocks` on (as the
//! public plugin), no autoescaping, lenient undefined values (a missing key
//! renders as nothing). Besides MiniJinja's built-in filters:
//!
//! - `pretty_json`: JSON indented by four spaces, stoQ's own output style;
//! - `tojson(indent=None)`: Jinja2's filter (HTML-safe JSON);
//! - Python-style `.items()`, `.keys()`, `.values()` and `.get(key,
//!   default)` on mappings, so Jinja2 templates written for the Python
//!   plugin keep working.
//!
//! `{% include %}` / `{% extends %}` load files relative to the template's
//! directory (names with `..` or an absolute path are refused).
//!
//! Roles: as a decorator, `decorators.<name>` is the rendered text; as a
//! connector, the text plus a newline goes to standard output in one locked
//! write, or, with `output_dir`, to `<output_dir>/<scan_id>.txt`, written to
//! a temporary file first and renamed, so readers never see half a report.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectExt, ObjectRepr, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, State, Value};
use stoq_core::{
    async_trait, blocking, Connector, Decorator, DecoratorResponse, ModuleDescriptor, OptionDoc,
    PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, StoqResponse,
};

/// The built-in report template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/stoq.tpl");
/// The name the built-in template has in error messages.
pub const DEFAULT_TEMPLATE_NAME: &str = "stoq.tpl (built-in)";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "template",
        "",
        "template file; a relative path resolves against the plugin's manifest directory, else \
         the working directory. Empty: the built-in plain-text report",
    ),
    OptionDoc::new(
        "output_dir",
        "",
        "connector: write each report to <output_dir>/<scan_id>.txt (created if needed; \
         relative to the working directory) instead of standard output",
    ),
];

/// The `jinja` plugin: one instance serves as decorator and connector.
#[derive(Debug, Clone)]
pub struct JinjaPlugin {
    inner: Arc<Inner>,
    output_dir: Option<PathBuf>,
}

#[derive(Debug)]
struct Inner {
    plugin_name: String,
    template_name: String,
    env: Environment<'static>,
}

impl JinjaPlugin {
    /// A plugin named `plugin_name` rendering `source`; `template_name`
    /// names it in errors and `base_dir` is where includes are looked up.
    pub fn from_source(
        plugin_name: &str,
        template_name: &str,
        source: String,
        base_dir: Option<PathBuf>,
    ) -> PluginResult<Self> {
        let mut env = environment(base_dir);
        env.add_template_owned(template_name.to_string(), source)
            .map_err(|e| template_error(plugin_name, "cannot compile", template_name, &e))?;
        Ok(JinjaPlugin {
            inner: Arc::new(Inner {
                plugin_name: plugin_name.to_string(),
                template_name: template_name.to_string(),
                env,
            }),
            output_dir: None,
        })
    }

    /// Build from plugin options (`template`, `output_dir`).
    pub fn from_config(cfg: &PluginConfig) -> PluginResult<Self> {
        let name = cfg.name();
        let template = cfg
            .get_str("template")
            .filter(|t| !t.trim().is_empty())
            .and_then(|_| cfg.path("template"));
        let mut plugin = match template {
            None => Self::from_source(name, DEFAULT_TEMPLATE_NAME, DEFAULT_TEMPLATE.into(), None)?,
            Some(path) => {
                let source = std::fs::read_to_string(&path).map_err(|e| {
                    PluginError::new(format!(
                        "plugin {name}: cannot read template {}: {e}",
                        path.display()
                    ))
                })?;
                let base = path.parent().map(Path::to_path_buf);
                Self::from_source(name, &path.display().to_string(), source, base)?
            }
        };
        plugin.output_dir = cfg
            .get_str("output_dir")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Ok(plugin)
    }

    /// Write reports to `<dir>/<scan_id>.txt` instead of standard output.
    pub fn with_output_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.output_dir = dir;
        self
    }

    /// Render `response` on the calling thread.
    pub fn render(&self, response: &StoqResponse) -> PluginResult<String> {
        self.inner.render(serde_json::to_value(response)?)
    }

    /// Render off the async runtime (templates over big responses are
    /// CPU work).
    async fn render_blocking(&self, response: &StoqResponse) -> PluginResult<String> {
        let json = serde_json::to_value(response)?;
        let inner = self.inner.clone();
        blocking(move || inner.render(json)).await?
    }
}

impl Inner {
    fn render(&self, json: serde_json::Value) -> PluginResult<String> {
        let mut entries: Vec<(String, Value)> = Vec::with_capacity(8);
        let response = match json {
            serde_json::Value::Object(map) => {
                let map = JsonMap::new(map.into_iter().map(|(k, v)| (k, to_value(v))).collect());
                entries.extend(map.entries.iter().map(|(k, v)| (k.to_string(), v.clone())));
                Value::from_object(map)
            }
            other => to_value(other),
        };
        entries.push(("response".into(), response));
        entries.push(("plugin_name".into(), Value::from(self.plugin_name.as_str())));
        let ctx = Value::from_object(JsonMap::new(entries));
        let render_err = |e: minijinja::Error| {
            template_error(&self.plugin_name, "cannot render", &self.template_name, &e)
        };
        self.env
            .get_template(&self.template_name)
            .and_then(|t| t.render(ctx))
            .map_err(render_err)
    }
}

/// `plugin <name>: <what> template <file>: line <n>: <kind>: <detail>`.
fn template_error(plugin: &str, what: &str, template: &str, e: &minijinja::Error) -> PluginError {
    let file = e.name().unwrap_or(template);
    let line = match e.line() {
        Some(l) if l > 0 => format!(" line {l}:"),
        _ => String::new(),
    };
    let detail = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    PluginError::new(format!(
        "plugin {plugin}: {what} template {file}:{line} {detail}"
    ))
}

/// The template environment (see the module docs).
fn environment(base_dir: Option<PathBuf>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("pretty_json", pretty_json);
    env.add_filter("tojson", tojson);
    env.set_unknown_method_callback(mapping_methods);
    env.set_loader(move |name| {
        let Some(dir) = &base_dir else {
            return Ok(None);
        };
        let rel = Path::new(name);
        if !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("template name {name:?} must be a relative path without '..'"),
            ));
        }
        match std::fs::read_to_string(dir.join(rel)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot read template {name:?}: {e}"),
            )),
        }
    });
    env
}

fn json_text(value: &Value, indent: Option<usize>) -> Result<String, minijinja::Error> {
    let err = |e: serde_json::Error| {
        minijinja::Error::new(
            ErrorKind::BadSerialization,
            format!("cannot serialise: {e}"),
        )
    };
    let Some(width) = indent else {
        return serde_json::to_string(value).map_err(err);
    };
    // serde_json indents by two spaces. JSON text holds no raw newline
    // inside strings, so every line's leading spaces are indentation and
    // can be rescaled.
    let two = serde_json::to_string_pretty(value).map_err(err)?;
    if width == 2 {
        return Ok(two);
    }
    let mut out = String::with_capacity(two.len() + two.len() / 4);
    for (i, line) in two.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start_matches(' ');
        let levels = (line.len() - body.len()) / 2;
        out.extend(std::iter::repeat_n(' ', levels * width));
        out.push_str(body);
    }
    Ok(out)
}

/// `value|pretty_json`: JSON indented by four spaces, nothing escaped.
fn pretty_json(value: &Value) -> Result<String, minijinja::Error> {
    json_text(value, Some(4))
}

/// Jinja2's `tojson(indent=None)`: JSON with `<`, `>`, `&` and `'`
/// escaped so it can sit inside HTML, marked safe.
fn tojson(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let indent = match kwargs.get::<Option<usize>>("indent")? {
        Some(i) => Some(i),
        None => indent,
    };
    kwargs.assert_all_used()?;
    let text = json_text(value, indent)?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            c => out.push(c),
        }
    }
    Ok(Value::from_safe_string(out))
}

/// Python dict methods on mappings: `items()`, `keys()`, `values()`,
/// `get(key, default=None)`.
fn mapping_methods(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    if value.kind() != ValueKind::Map {
        return Err(minijinja::Error::from(ErrorKind::UnknownMethod));
    }
    match method {
        "items" => {
            let () = from_args(args)?;
            state.apply_filter("items", std::slice::from_ref(value))
        }
        "keys" => {
            let () = from_args(args)?;
            Ok(Value::from(value.try_iter()?.collect::<Vec<_>>()))
        }
        "values" => {
            let () = from_args(args)?;
            let pairs = value.as_object().and_then(|o| o.try_iter_pairs());
            Ok(Value::from(
                pairs
                    .into_iter()
                    .flatten()
                    .map(|(_, v)| v)
                    .collect::<Vec<_>>(),
            ))
        }
        "get" => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            let v = value.get_item(&key)?;
            Ok(if v.is_undefined() {
                default.unwrap_or_else(|| Value::from(()))
            } else {
                v
            })
        }
        _ => Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
    }
}

/// A JSON object for templates: keeps the JSON key order (MiniJinja's own
/// maps are sorted unless its `preserve_order` feature is on).
#[derive(Debug)]
struct JsonMap {
    entries: Vec<(Arc<str>, Value)>,
    /// Key → position, for objects too big for a linear scan.
    index: Option<HashMap<Arc<str>, usize>>,
}

/// Up to this many keys, a lookup scans the entries.
const LINEAR_LOOKUP: usize = 12;

impl JsonMap {
    fn new(entries: Vec<(String, Value)>) -> Self {
        let entries: Vec<(Arc<str>, Value)> = entries
            .into_iter()
            .map(|(k, v)| (Arc::from(k), v))
            .collect();
        let index = (entries.len() > LINEAR_LOOKUP).then(|| {
            let mut m = HashMap::with_capacity(entries.len());
            for (i, (k, _)) in entries.iter().enumerate() {
                // The first of duplicate keys wins, like a linear scan.
                m.entry(k.clone()).or_insert(i);
            }
            m
        });
        JsonMap { entries, index }
    }
}

impl Object for JsonMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let i = match &self.index {
            Some(index) => *index.get(key)?,
            None => self.entries.iter().position(|(k, _)| &**k == key)?,
        };
        Some(self.entries[i].1.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_key_value_enumerator(|this| {
            Box::new(
                this.entries
                    .iter()
                    .map(|(k, v)| (Value::from(k.clone()), v.clone())),
            )
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Convert JSON to template values, keeping object key order.
fn to_value(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s),
        J::Array(a) => Value::from(a.into_iter().map(to_value).collect::<Vec<_>>()),
        J::Object(m) => Value::from_object(JsonMap::new(
            m.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        )),
    }
}

/// A scan id usable as a file name.
fn file_stem(scan_id: &str) -> PluginResult<&str> {
    let bad = scan_id.is_empty()
        || scan_id == "."
        || scan_id == ".."
        || scan_id.contains(['/', '\\', '\0']);
    if bad {
        return Err(PluginError::new(format!(
            "scan id {scan_id:?} cannot be used as a file name"
        )));
    }
    Ok(scan_id)
}

/// Write `text` to `<dir>/<stem>.txt` through a temporary file + rename.
fn write_atomic(dir: &Path, stem: &str, text: &str) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let target = dir.join(format!("{stem}.txt"));
    let tmp = dir.join(format!(
        ".{stem}.txt.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &target));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

#[async_trait]
impl Decorator for JinjaPlugin {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>> {
        let text = self.render_blocking(response).await?;
        Ok(Some(DecoratorResponse {
            results: Some(serde_json::Value::String(text)),
            errors: Vec::new(),
        }))
    }
}

#[async_trait]
impl Connector for JinjaPlugin {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let mut text = self.render_blocking(response).await?;
        text.push('\n');
        match &self.output_dir {
            None => blocking(move || {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()
            })
            .await?
            .map_err(|e| PluginError::new(format!("cannot write to stdout: {e}"))),
            Some(dir) => {
                let stem = file_stem(&response.scan_id)?.to_string();
                let dir = dir.clone();
                let shown = dir.display().to_string();
                blocking(move || write_atomic(&dir, &stem, &text))
                    .await?
                    .map(|_| ())
                    .map_err(|e| PluginError::new(format!("cannot write report to {shown}: {e}")))
            }
        }
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        "jinja",
        &[PluginClass::Decorator, PluginClass::Connector],
        |cfg| {
            let plugin = Arc::new(JinjaPlugin::from_config(cfg)?);
            Ok(PluginInstance::new()
                .decorator(plugin.clone())
                .connector(plugin))
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Render results with a Jinja template (decorator and connector)")
    .options(OPTIONS)
}
