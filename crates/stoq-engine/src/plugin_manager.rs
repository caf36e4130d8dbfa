//! Plugin discovery and loading.
//!
//! The plugins a `Stoq` knows are, in order: every module of its registry
//! (as a plugin of the same name), then every `<name>.stoq` manifest found
//! under the plugin directories, in directory order. A later plugin of the
//! same name replaces an earlier one, as in the reference.
//!
//! A manifest binds a plugin name, documentation and default options to a
//! module:
//!
//! ```ini
//! [Core]
//! Name = my_hash
//! Module = hash
//!
//! [Documentation]
//! Author = ...
//! Version = 1.0
//! Description = Hashes with my defaults
//!
//! [options]
//! timeout = 5
//! ```
//!
//! A manifest can also name a plugin that runs in its own process (see
//! `docs/PLUGIN_PROTOCOL.md` and [`crate::external`]): `[Core] Command` (a
//! program speaking the protocol, with `[Core] Classes`), or a `Module`
//! with a `<Module>.py` beside the manifest, a stoQ v3 Python plugin run by
//! the compatibility host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use stoq_core::ini::Ini;
use stoq_core::options::ENGINE_OPTIONS;
use stoq_core::{
    ModuleDescriptor, PluginClass, PluginConfig, PluginInstance, Registry, StoqError,
    STOQ_COMPAT_VERSION,
};

use crate::config::StoqConfig;
use crate::external::{self, ExternalPlugin, ExternalSpec};

/// How a plugin that is not a registry module is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `[Core] Command`: a program speaking the external plugin protocol.
    Command { program: PathBuf, args: Vec<String> },
    /// `[Core] Module` with `<Module>.py` beside the manifest: a stoQ v3
    /// Python plugin, run by the compatibility host.
    PythonV3 {
        module: PathBuf,
        /// `[Core] Python`, the interpreter to use.
        python: Option<String>,
    },
}

/// A plugin that can be loaded.
#[derive(Debug, Clone)]
pub struct PluginEntry {
    pub name: String,
    /// The registry module that implements it.
    pub module: String,
    pub classes: Vec<PluginClass>,
    pub author: String,
    pub version: String,
    pub website: String,
    pub description: String,
    /// `[options]` of the manifest (empty for a bare module).
    pub manifest_options: Vec<(String, String)>,
    /// The manifest file, when the plugin came from one.
    pub manifest: Option<PathBuf>,
    /// Set for plugins that run in their own process.
    pub launch: Option<Launch>,
}

/// A plugin as `list_plugins` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub classes: Vec<PluginClass>,
    pub version: String,
    pub description: String,
}

/// A loaded plugin: the instance plus what the engine needs to call it.
#[derive(Debug)]
pub struct LoadedPlugin {
    pub name: String,
    pub instance: PluginInstance,
    /// Workers that must run on a payload before this one.
    pub required_workers: Vec<String>,
    /// Time limit for each call.
    pub timeout: Duration,
}

/// Collects plugins and loads each at most once.
pub struct PluginManager {
    registry: Registry,
    entries: IndexMap<String, PluginEntry>,
    config: Option<StoqConfig>,
    plugin_opts: IndexMap<String, Vec<(String, String)>>,
    default_timeout: Duration,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
}

impl PluginManager {
    /// Collect the registry's modules and the manifests under `plugin_dirs`.
    pub fn new(
        registry: Registry,
        plugin_dirs: &[PathBuf],
        config: Option<StoqConfig>,
        plugin_opts: IndexMap<String, Vec<(String, String)>>,
        default_timeout: Duration,
    ) -> Self {
        let mut entries = IndexMap::new();
        for m in registry.iter() {
            entries.insert(m.name.clone(), entry_for_module(m));
        }
        for dir in plugin_dirs {
            collect_dir(&registry, dir, &mut entries);
        }
        PluginManager {
            registry,
            entries,
            config,
            plugin_opts,
            default_timeout,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Every known plugin, in discovery order.
    pub fn list_plugins(&self) -> Vec<PluginInfo> {
        self.entries
            .values()
            .map(|e| PluginInfo {
                name: e.name.clone(),
                classes: e.classes.clone(),
                version: e.version.clone(),
                description: e.description.clone(),
            })
            .collect()
    }

    /// The entry of a known plugin.
    pub fn entry(&self, name: &str) -> Option<&PluginEntry> {
        self.entries.get(name.trim())
    }

    /// Whether the plugin has been loaded already.
    pub fn is_loaded(&self, name: &str) -> bool {
        self.loaded
            .lock()
            .map(|m| m.contains_key(name.trim()))
            .unwrap_or(false)
    }

    /// Load a plugin (or return the instance loaded before).
    pub fn load_plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>, StoqError> {
        let name = name.trim();
        // Holding the lock while building keeps "one instance per name" true
        // even when two scans ask for the same plugin at once.
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| StoqError::Other("plugin cache lock poisoned".into()))?;
        if let Some(p) = loaded.get(name) {
            return Ok(p.clone());
        }
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| StoqError::PluginNotFound(name.to_string()))?;
        let module = match entry.launch {
            Some(_) => None,
            None => Some(
                self.registry
                    .get(&entry.module)
                    .ok_or_else(|| StoqError::PluginNotFound(name.to_string()))?,
            ),
        };
        let plugin = Arc::new(self.build(entry, module)?);
        loaded.insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Load a plugin that must have `class`.
    pub fn load_as(&self, name: &str, class: PluginClass) -> Result<Arc<LoadedPlugin>, StoqError> {
        let p = self.load_plugin(name)?;
        if p.instance.has(class) {
            Ok(p)
        } else {
            let has: Vec<&str> = p.instance.classes().iter().map(|c| c.as_str()).collect();
            Err(StoqError::WrongClass {
                name: p.name.clone(),
                class: class.as_str(),
                has: has.join(", "),
            })
        }
    }

    fn build(
        &self,
        entry: &PluginEntry,
        module: Option<&ModuleDescriptor>,
    ) -> Result<LoadedPlugin, StoqError> {
        let load_err = |reason: String| StoqError::PluginLoad {
            name: entry.name.clone(),
            reason,
        };
        // Precedence, lowest first: manifest [options], stoq.cfg [<name>],
        // plugin_opts (which the CLI's --plugin-opts feeds).
        let mut options: IndexMap<String, String> = IndexMap::new();
        for (k, v) in &entry.manifest_options {
            options.insert(k.to_lowercase(), v.clone());
        }
        if let Some(cfg) = &self.config {
            for (k, v) in cfg.plugin_options(&entry.name)? {
                options.insert(k, v);
            }
        }
        if let Some(opts) = self.plugin_opts.get(&entry.name) {
            for (k, v) in opts {
                options.insert(k.to_lowercase(), v.clone());
            }
        }
        let config = PluginConfig::new(entry.name.clone(), options).with_plugin_dir(
            entry
                .manifest
                .as_ref()
                .and_then(|m| m.parent().map(Path::to_path_buf)),
        );

        if let Some(min) = config.get_str("min_stoq_version") {
            if version_lt(STOQ_COMPAT_VERSION, min) {
                tracing::warn!(
                    "Plugin {} not compatible with this version of stoQ. Unpredictable results may occur!",
                    entry.name
                );
            }
        }
        // External plugins read whatever options they like.
        if let Some(module) = module {
            for (key, _) in config.iter() {
                let known =
                    ENGINE_OPTIONS.contains(&key) || module.options.iter().any(|o| o.name == key);
                if !known {
                    tracing::warn!("plugin {}: unknown option {key:?} (ignored)", entry.name);
                }
            }
        }
        let timeout = config
            .seconds("timeout")
            .map_err(|e| load_err(e.to_string()))?
            .unwrap_or(self.default_timeout);

        let instance = match (module, &entry.launch) {
            (Some(module), _) => (module.build)(&config).map_err(|e| load_err(e.to_string()))?,
            (None, Some(launch)) => {
                let spec = external_spec(entry, launch, &config).map_err(load_err)?;
                let plugin = ExternalPlugin::new(spec);
                plugin.warm_up();
                plugin.instance()
            }
            (None, None) => return Err(StoqError::PluginNotFound(entry.name.clone())),
        };
        if instance.classes().is_empty() {
            return Err(load_err(format!(
                "No valid plugin classes found in the module for {}",
                entry.name
            )));
        }
        let mut required_workers = config.list("required_workers");
        if let Some(w) = &instance.worker {
            for r in w.required_workers() {
                if !required_workers.contains(&r) {
                    required_workers.push(r);
                }
            }
        }
        Ok(LoadedPlugin {
            name: entry.name.clone(),
            instance,
            required_workers,
            timeout,
        })
    }
}

fn entry_for_module(m: &ModuleDescriptor) -> PluginEntry {
    PluginEntry {
        name: m.name.clone(),
        module: m.name.clone(),
        classes: m.classes.clone(),
        author: m.author.clone(),
        version: m.version.clone(),
        website: m.website.clone(),
        description: m.description.clone(),
        manifest_options: Vec::new(),
        manifest: None,
        launch: None,
    }
}

fn external_spec(
    entry: &PluginEntry,
    launch: &Launch,
    config: &PluginConfig,
) -> Result<ExternalSpec, String> {
    let dir = entry
        .manifest
        .as_ref()
        .and_then(|m| m.parent().map(Path::to_path_buf));
    let runtime = external::python::runtime_dir()?;
    let mut env = vec![
        (
            "PYTHONPATH".to_string(),
            external::python::python_path(&runtime),
        ),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
    ];
    let (program, args) = match launch {
        Launch::Command { program, args } => (program.clone(), args.clone()),
        Launch::PythonV3 { module, python } => {
            // Keep the plugin's directory free of __pycache__ litter.
            env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
            let plugin_dir = dir.clone().unwrap_or_default();
            let mut args = vec![
                runtime.join("stoq_host.py").display().to_string(),
                module.display().to_string(),
            ];
            if let Some(m) = &entry.manifest {
                args.push(m.display().to_string());
            }
            (
                external::python::interpreter(&plugin_dir, python.as_deref()),
                args,
            )
        }
    };
    let processes: usize = config.number("processes", 2).map_err(|e| e.to_string())?;
    if processes == 0 {
        return Err("option processes must be at least 1".into());
    }
    Ok(ExternalSpec {
        name: entry.name.clone(),
        program,
        args,
        cwd: dir,
        env,
        classes: entry.classes.clone(),
        options: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        processes,
        max_message_bytes: config
            .number("max_message_bytes", external::DEFAULT_MAX_MESSAGE_BYTES)
            .map_err(|e| e.to_string())?,
    })
}

/// Split a command line like a POSIX shell would, without expansions:
/// whitespace separates words; single quotes keep everything; double quotes
/// keep everything but `\"` and `\\`; a backslash outside quotes escapes the
/// next character.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parse `Classes = Worker, Dispatcher` (case-insensitive, with or without
/// the `Plugin` suffix).
pub fn parse_classes(list: &str) -> Result<Vec<PluginClass>, String> {
    let mut out = Vec::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let bare = word.to_lowercase();
        let bare = bare.strip_suffix("plugin").unwrap_or(&bare);
        let class = PluginClass::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(bare))
            .ok_or_else(|| format!("unknown plugin class {word:?}"))?;
        if !out.contains(&class) {
            out.push(class);
        }
    }
    if out.is_empty() {
        return Err("no classes listed".into());
    }
    out.sort();
    Ok(out)
}

/// Walk `dir` recursively (in name order, so discovery is deterministic) and
/// register every valid manifest.
fn collect_dir(registry: &Registry, dir: &Path, entries: &mut IndexMap<String, PluginEntry>) {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !dir.is_dir() {
        tracing::warn!(
            "Invalid plugin directory specified, skipping: {}",
            dir.display()
        );
        return;
    }
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            tracing::warn!("Unable to read plugin directory, skipping: {}", d.display());
            continue;
        };
        let mut children: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        let mut subdirs = Vec::new();
        for path in children {
            if path.is_dir() {
                subdirs.push(path);
            } else if path.extension().is_some_and(|e| e == "stoq") {
                if let Some(entry) = read_manifest(registry, &path) {
                    entries.insert(entry.name.clone(), entry);
                }
            }
        }
        // Depth-first in name order: push in reverse so the first pops first.
        stack.extend(subdirs.into_iter().rev());
    }
}

fn read_manifest(registry: &Registry, path: &Path) -> Option<PluginEntry> {
    let ini = match Ini::load(path, false) {
        Ok(ini) => ini,
        Err(e) => {
            tracing::warn!("Error parsing config file: {} ({e})", path.display());
            return None;
        }
    };
    let get = |section: &str, key: &str| ini.get(section, key).ok().flatten();
    let Some(name) = get("Core", "Name") else {
        tracing::warn!(
            "Error parsing config file: {} ([Core] Name is required)",
            path.display()
        );
        return None;
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let skip = |why: String| -> Option<PluginEntry> {
        tracing::warn!("Skipping plugin {name} ({}): {why}", path.display());
        None
    };
    let (module, classes, launch) = if let Some(command) = get("Core", "Command") {
        let words = match split_command(&command) {
            Ok(w) if !w.is_empty() => w,
            Ok(_) => return skip("[Core] Command is empty".into()),
            Err(e) => return skip(format!("[Core] Command: {e}")),
        };
        let classes = match get("Core", "Classes").as_deref().map(parse_classes) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return skip(format!("[Core] Classes: {e}")),
            None => return skip("[Core] Classes is required with [Core] Command".into()),
        };
        let mut words = words.into_iter();
        let program = PathBuf::from(words.next().unwrap_or_default());
        // A program given with a directory part is relative to the manifest.
        let program = if program.is_relative() && program.components().count() > 1 {
            dir.join(program)
        } else {
            program
        };
        let launch = Launch::Command {
            program,
            args: words.collect(),
        };
        (command, classes, Some(launch))
    } else if let Some(module) = get("Core", "Module") {
        let py = dir.join(format!("{module}.py"));
        if py.is_file() {
            let source = std::fs::read_to_string(&py).unwrap_or_default();
            let classes = external::python::classes_in_source(&source);
            let launch = Launch::PythonV3 {
                module: py,
                python: get("Core", "Python"),
            };
            (module, classes, Some(launch))
        } else if let Some(m) = registry.get(&module) {
            (module, m.classes.clone(), None)
        } else if dir.join(format!("{module}.pyc")).is_file() {
            return skip(format!(
                "{module}.pyc: compiled-only Python plugins are not supported; ship {module}.py"
            ));
        } else {
            tracing::warn!(
                "Unable to find module at: {} (and no built-in module is named {module:?}); skipping {}",
                py.display(),
                path.display()
            );
            return None;
        }
    } else {
        tracing::warn!(
            "Error parsing config file: {} ([Core] needs Module or Command)",
            path.display()
        );
        return None;
    };
    let doc = |key: &str| get("Documentation", key).unwrap_or_default();
    let manifest_options = if ini.has_section("options") {
        match ini.items("options") {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!("Error parsing config file: {} ({e})", path.display());
                return None;
            }
        }
    } else {
        Vec::new()
    };
    Some(PluginEntry {
        name,
        module,
        classes,
        author: doc("Author"),
        version: doc("Version"),
        website: doc("Website"),
        description: doc("Description"),
        manifest_options,
        manifest: Some(path.to_path_buf()),
        launch,
    })
}

/// `a < b` for dotted version strings; non-numeric parts count as 0.
pub fn version_lt(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    };
    let (mut a, mut b) = (parse(a), parse(b));
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    a < b
}

#[cfg(test)]
mod tests {
    use super::version_lt;

    #[test]
    fn versions() {
        assert!(version_lt("3.0.1", "9999.9999"));
        assert!(!version_lt("3.0.1", "3.0.0"));
        assert!(!version_lt("3.0.1", "3.0"));
        assert!(!version_lt("3.0.1", "3.0.1"));
        assert!(version_lt("3.0.1", "3.1"));
    }
}
