//! `olevba` and `mraptor` workers: VBA source, MacroRaptor flags, XLM
//! macro sheets and DDE fields of Office documents (see [`crate::vba`]).
//!
//! `olevba` results (`results.workers.olevba`), keys in this order:
//!
//! | key | value |
//! |---|---|
//! | `filetype` | `OLE`, `OpenXML`, `PPT`, `FlatOPC_XML` or `Word2003_XML` (olevba's container types), `Excel2003_XML`, `ActiveMime` or `CSV` |
//! | `vba_macros` | a VBA project (or compressed VBA source) is present |
//! | `macros` | `[{container, stream, module, code}]`: `container` is the zip member or PPT record holding the VBA project (`null` for the document itself), `stream` the code stream's path, `module` olevba's file name (`ThisDocument.cls`), `code` the source (omitted when `include_code` is false) |
//! | `autoexec`, `write`, `execute` | every distinct keyword of each MacroRaptor rule found in the code |
//! | `suspicious` | MacroRaptor's verdict: AutoExec and (Write or Execute) |
//! | `flags` | MacroRaptor's flags string, `A`/`W`/`X` or `-` each (`"A-X"`) |
//! | `matches` | MacroRaptor's `matches`: the first match of each rule that matched |
//! | `xlm` | an Excel 4 macro sheet is present |
//! | `xlm_sheets` | `[{name, visibility}]` of the macro sheets (`visibility` null for OOXML) |
//! | `dde` | DDE/DDEAUTO field instructions, and Excel DDE links and formulas as `service topic` |
//! | `encryption` | only for encrypted documents: `{method, decrypted, password}`; a decrypted OOXML package is analysed in place of its container, a decrypted workbook's records are read (option `passwords`, Excel's `VelvetSweatshop` first) |
//!
//! `mraptor` results, only when the document has VBA macros (the public
//! plugin's shape, key spelled `suspicous` as there): `{suspicous, flags:
//! ["AutoExec", "Write", "Execute"] subset, filetype, matches}`.
//!
//! Both return nothing for files that are neither OLE2, zip-based nor
//! XML Office documents (text gets an `olevba` result only when it holds a
//! CSV DDE formula); `mraptor` also for documents without VBA.

use std::sync::Arc;

use stoq_core::{
    async_trait, blocking, ModuleDescriptor, OptionDoc, Payload, PluginClass, PluginConfig,
    PluginInstance, PluginResult, Request, Worker, WorkerResponse,
};

use crate::crypto;
use crate::ole::INLINE_LIMIT;
use crate::vba::{find_vba_with, VbaReport};

const OLEVBA_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "include_code",
        "true",
        "include each module's source code in the results (`macros[].code`)",
    ),
    crypto::PASSWORDS_OPTION,
];

/// Which result shape a worker produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The full `olevba` results.
    Olevba { include_code: bool },
    /// The public `mraptor` plugin's results.
    Mraptor,
}

/// The `olevba` / `mraptor` worker.
#[derive(Debug, Clone)]
pub struct VbaWorker {
    pub shape: Shape,
    /// Tried in order on encrypted documents.
    pub passwords: Vec<String>,
}

impl VbaWorker {
    /// A worker of `shape` with the default passwords.
    pub fn new(shape: Shape) -> Self {
        VbaWorker {
            shape,
            passwords: crypto::default_passwords(),
        }
    }
}

fn response(report: &VbaReport, shape: Shape) -> Option<WorkerResponse> {
    let results = match shape {
        Shape::Olevba { include_code } => Some(report.to_json(include_code)),
        Shape::Mraptor => Some(report.mraptor_json()?),
    };
    Some(WorkerResponse {
        results,
        errors: crate::util::error_records(&report.errors),
        ..WorkerResponse::default()
    })
}

#[async_trait]
impl Worker for VbaWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let shape = self.shape;
        let passwords = self.passwords.clone();
        let run = move || {
            let report = find_vba_with(&content, &passwords)?;
            tracing::debug!(
                filetype = report.filetype,
                modules = report.modules.len(),
                flags = %report.verdict.flags(),
                "olevba: analysed document"
            );
            response(&report, shape)
        };
        if payload.content.len() < INLINE_LIMIT {
            Ok(run())
        } else {
            blocking(run).await
        }
    }
}

/// The `olevba` module descriptor.
pub fn olevba_descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("olevba", &[PluginClass::Worker], |cfg: &PluginConfig| {
        let include_code = cfg.bool("include_code", true)?;
        Ok(PluginInstance::new().worker(Arc::new(VbaWorker {
            shape: Shape::Olevba { include_code },
            passwords: crypto::passwords_option(cfg),
        })))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Extract VBA macros (OLE, OOXML, PPT), MacroRaptor flags, Excel 4 macro sheets and DDE fields",
    )
    .options(OLEVBA_OPTIONS)
}

/// The `mraptor` module descriptor.
pub fn mraptor_descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("mraptor", &[PluginClass::Worker], |cfg| {
        Ok(PluginInstance::new().worker(Arc::new(VbaWorker {
            shape: Shape::Mraptor,
            passwords: crypto::passwords_option(cfg),
        })))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("MacroRaptor: flag VBA macros that run automatically and write or execute")
    .options(&[crypto::PASSWORDS_OPTION])
}
