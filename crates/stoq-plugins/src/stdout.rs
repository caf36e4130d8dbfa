//! `stdout` connector: writes each response as JSON to standard output.

use std::io::Write;
use std::sync::Arc;

use stoq_core::{
    async_trait, blocking, to_json_compact, to_json_pretty, Connector, ModuleDescriptor, OptionDoc,
    PluginClass, PluginError, PluginInstance, PluginResult, StoqResponse,
};

const OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "compactly",
    "false",
    "one line per response (JSON Lines) instead of indented JSON",
)];

/// The `stdout` connector.
#[derive(Debug, Default)]
pub struct StdoutConnector {
    pub compactly: bool,
}

#[async_trait]
impl Connector for StdoutConnector {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let mut text = if self.compactly {
            to_json_compact(response)
        } else {
            to_json_pretty(response)
        };
        text.push('\n');
        // A pipe may block; keep the runtime free. One locked write keeps
        // concurrent responses from interleaving.
        blocking(move || {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        })
        .await?
        .map_err(|e| PluginError::new(format!("cannot write to stdout: {e}")))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("stdout", &[PluginClass::Connector], |cfg| {
        let compactly = cfg.bool("compactly", false)?;
        Ok(PluginInstance::new().connector(Arc::new(StdoutConnector { compactly })))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Sends results to STDOUT")
    .options(OPTIONS)
}
