//! The registry of plugin implementations ("modules").
//!
//! A module is native code that can build plugin instances: its descriptor
//! names it, documents it and its options, and holds the build function.
//! Every module is also available as a plugin of the same name. A manifest
//! (`<name>.stoq`) in a plugin directory can bind another name, other
//! documentation and default options to a module, as the reference's
//! `[Core] Module =` does.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::PluginError;
use crate::options::PluginConfig;
use crate::plugin::{PluginClass, PluginInstance};

/// Builds an instance from options.
pub type BuildFn = Arc<dyn Fn(&PluginConfig) -> Result<PluginInstance, PluginError> + Send + Sync>;

/// One documented option of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionDoc {
    pub name: &'static str,
    /// The default, as it would be written in stoq.cfg ("" for none).
    pub default: &'static str,
    pub description: &'static str,
}

impl OptionDoc {
    pub const fn new(name: &'static str, default: &'static str, description: &'static str) -> Self {
        OptionDoc {
            name,
            default,
            description,
        }
    }
}

/// Describes a module and builds its instances.
#[derive(Clone)]
pub struct ModuleDescriptor {
    pub name: String,
    pub classes: Vec<PluginClass>,
    pub version: String,
    pub author: String,
    pub website: String,
    pub description: String,
    pub options: Vec<OptionDoc>,
    pub build: BuildFn,
}

impl fmt::Debug for ModuleDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleDescriptor")
            .field("name", &self.name)
            .field("classes", &self.classes)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl ModuleDescriptor {
    /// A descriptor with empty documentation; fill it with the setters.
    pub fn new<F>(name: impl Into<String>, classes: &[PluginClass], build: F) -> Self
    where
        F: Fn(&PluginConfig) -> Result<PluginInstance, PluginError> + Send + Sync + 'static,
    {
        ModuleDescriptor {
            name: name.into(),
            classes: classes.to_vec(),
            version: String::new(),
            author: String::new(),
            website: String::new(),
            description: String::new(),
            options: Vec::new(),
            build: Arc::new(build),
        }
    }

    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }

    pub fn author(mut self, v: impl Into<String>) -> Self {
        self.author = v.into();
        self
    }

    pub fn website(mut self, v: impl Into<String>) -> Self {
        self.website = v.into();
        self
    }

    pub fn description(mut self, v: impl Into<String>) -> Self {
        self.description = v.into();
        self
    }

    pub fn options(mut self, options: &[OptionDoc]) -> Self {
        self.options = options.to_vec();
        self
    }
}

/// Registering two modules under one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Multiple possible plugin classes found in the module for {0}, unable to distinguish which to use.")]
pub struct DuplicateModule(pub String);

/// Module name → descriptor, in registration order.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    modules: IndexMap<String, ModuleDescriptor>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a module; a second module with the same name is refused.
    pub fn register(&mut self, module: ModuleDescriptor) -> Result<(), DuplicateModule> {
        if self.modules.contains_key(&module.name) {
            return Err(DuplicateModule(module.name));
        }
        self.modules.insert(module.name.clone(), module);
        Ok(())
    }

    /// Add every module of `other` (used to combine plugin crates).
    pub fn extend(&mut self, other: Registry) -> Result<(), DuplicateModule> {
        for (_, m) in other.modules {
            self.register(m)?;
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&ModuleDescriptor> {
        self.modules.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ModuleDescriptor> {
        self.modules.values()
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}
