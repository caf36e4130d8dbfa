//! Error types of the framework (as opposed to [`crate::Error`], the error
//! *record* that goes into results).

use std::fmt;

/// An error a plugin returns from one of its methods. The engine turns it
/// into an error record with the plugin's name and the payload's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    message: String,
}

impl PluginError {
    pub fn new(message: impl Into<String>) -> Self {
        PluginError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<std::io::Error> for PluginError {
    fn from(e: std::io::Error) -> Self {
        PluginError::new(format!("I/O error: {e}"))
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        PluginError::new(format!("JSON error: {e}"))
    }
}

impl From<OptionError> for PluginError {
    fn from(e: OptionError) -> Self {
        PluginError::new(e.to_string())
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        PluginError::new(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        PluginError::new(message)
    }
}

/// A plugin option with a value the plugin cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: option {option} = {value:?}: {reason}")]
pub struct OptionError {
    pub plugin: String,
    pub option: String,
    pub value: String,
    pub reason: String,
}

/// Errors of the framework itself: configuration, plugin loading, run mode.
#[derive(Debug, thiserror::Error)]
pub enum StoqError {
    /// The reference's `StoqPluginNotFound`.
    #[error("The plugin \"{0}\" is invalid or does not exist in your plugin path")]
    PluginNotFound(String),
    /// A plugin exists but could not be built from its options.
    #[error("plugin {name} failed to load: {reason}")]
    PluginLoad { name: String, reason: String },
    /// A plugin was asked for in a role it does not implement.
    #[error("plugin {name} is not a {class} plugin (it is: {has})")]
    WrongClass {
        name: String,
        class: &'static str,
        has: String,
    },
    /// A configuration file or value is invalid.
    #[error("{0}")]
    Config(String),
    /// `run()` without any provider.
    #[error("No activated provider plugins")]
    NoProviders,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}
