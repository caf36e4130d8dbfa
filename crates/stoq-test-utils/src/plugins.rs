//! The test plugins themselves.
//!
//! The reference tests flip class-level knobs (`RAISE_EXCEPTION`,
//! `RETURN_ERRORS`, `EXTRACTED_DISPATCH_TO`, ...) on the loaded instance.
//! Here each knob is a plugin option of the same name in lower case, set
//! with `Stoq::builder().plugin_opt("simple_worker", "raise_exception",
//! "true")` (or in a manifest / stoq.cfg). List knobs are comma-separated.
//! "Raising" means returning an `Err` from the plugin method.

use std::time::Duration;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, Archiver, ArchiverResponse, Connector, Decorator, DecoratorResponse, Dispatcher,
    DispatcherResponse, Error, ExtractedPayload, Map, ModuleDescriptor, OptionDoc, Payload,
    PayloadMeta, PluginClass, PluginConfig, PluginError, PluginInstance, PluginResult, Provider,
    ProviderQueue, Request, RequestMeta, StoqResponse, Worker, WorkerResponse,
};

use crate::probe::{method, Probe};
use crate::{AUTHOR, TEST_ERROR, TEST_EXCEPTION, VERSION, WEBSITE};

/// The error text of `simple_provider` (with a comma, as in the reference).
pub const PROVIDER_EXCEPTION: &str = "Test exception, please ignore";
/// The error text of `dummy_connector` with `raise_exception`.
pub const CONNECTOR_EXCEPTION: &str = "Unexpected exception";
/// The panic message of `simple_worker` with `panic`.
pub const TEST_PANIC: &str = "Test panic please ignore";
/// What `simple_worker` and `multiclass_plugin` extract by default.
pub const LOREM_IPSUM: &[u8] = b"Lorem ipsum";
/// What the providers queue.
pub const IMPORTANT_STUFF: &[u8] = b"Important stuff";

const RAISE: OptionDoc = OptionDoc::new(
    "raise_exception",
    "false",
    "Fail every call with a test exception",
);
const RETURN_ERRORS: OptionDoc = OptionDoc::new(
    "return_errors",
    "false",
    "Return a test error with every response",
);

/// A descriptor with the reference test plugins' documentation.
fn module<F>(
    name: &str,
    classes: &[PluginClass],
    description: &str,
    options: &[OptionDoc],
    probe: &Probe,
    build: F,
) -> ModuleDescriptor
where
    F: Fn(&PluginConfig, Probe) -> Result<PluginInstance, PluginError> + Send + Sync + 'static,
{
    let probe = probe.clone();
    ModuleDescriptor::new(name, classes, move |cfg: &PluginConfig| {
        probe.record_build(cfg);
        build(cfg, probe.clone())
    })
    .author(AUTHOR)
    .version(VERSION)
    .website(WEBSITE)
    .description(description)
    .options(options)
}

fn err(message: &str) -> PluginError {
    PluginError::new(message)
}

fn seconds(cfg: &PluginConfig, key: &str) -> Result<Option<Duration>, PluginError> {
    Ok(cfg.seconds(key)?)
}

fn list_or(cfg: &PluginConfig, key: &str, default: &[&str]) -> Vec<String> {
    match cfg.get_str(key) {
        Some(_) => cfg.list(key),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 36);
    while out.len() < n {
        out.extend_from_slice(stoq_core::new_id().as_bytes());
    }
    out.truncate(n);
    out
}

// ---------------------------------------------------------------- archivers

struct DummyArchiver {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Archiver for DummyArchiver {
    async fn archive(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        self.probe
            .record_payload(&self.name, method::ARCHIVE, payload);
        Ok(None)
    }

    async fn get(&self, _task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        self.probe.record(&self.name, method::GET);
        Ok(None)
    }
}

struct SimpleArchiver {
    name: String,
    probe: Probe,
    raise: bool,
    return_errors: bool,
    payload: String,
}

#[async_trait]
impl Archiver for SimpleArchiver {
    async fn archive(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        self.probe
            .record_payload(&self.name, method::ARCHIVE, payload);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let mut resp = ArchiverResponse::with_results(json!({"file_save_id": 12345}));
        if self.return_errors {
            resp.errors.push(
                Error::new(TEST_ERROR)
                    .plugin("simple_archiver")
                    .payload(payload.id()),
            );
        }
        Ok(Some(resp))
    }

    async fn get(&self, task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        self.probe.record(&self.name, method::GET);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let extra_data = match &task.results {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let meta = PayloadMeta {
            extra_data,
            ..PayloadMeta::default()
        };
        Ok(Some(Payload::with_meta(
            self.payload.clone().into_bytes(),
            meta,
        )))
    }
}

// --------------------------------------------------------------- connectors

struct DummyConnector {
    name: String,
    probe: Probe,
    raise: bool,
}

#[async_trait]
impl Connector for DummyConnector {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        self.probe
            .record_response(&self.name, method::SAVE, response);
        if self.raise {
            return Err(err(CONNECTOR_EXCEPTION));
        }
        Ok(())
    }
}

// --------------------------------------------------------------- decorators

struct DummyDecorator {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Decorator for DummyDecorator {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>> {
        self.probe
            .record_response(&self.name, method::DECORATE, response);
        Ok(None)
    }
}

struct SimpleDecorator {
    name: String,
    probe: Probe,
    raise: bool,
    return_errors: bool,
}

#[async_trait]
impl Decorator for SimpleDecorator {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>> {
        self.probe
            .record_response(&self.name, method::DECORATE, response);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let mut resp = DecoratorResponse {
            results: Some(json!({"simple_decoration": 123})),
            errors: Vec::new(),
        };
        if self.return_errors {
            resp.errors
                .push(Error::new(TEST_ERROR).plugin("simple_decorator"));
        }
        Ok(Some(resp))
    }
}

// -------------------------------------------------------------- dispatchers

fn test_meta() -> Map {
    let mut m = Map::new();
    m.insert("test_key".into(), json!("Useful metadata info"));
    m
}

struct ConditionalDispatcher {
    name: String,
    probe: Probe,
    conditional_dispatch_worker: String,
    workers: Vec<String>,
}

#[async_trait]
impl Dispatcher for ConditionalDispatcher {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        self.probe
            .record_payload(&self.name, method::GET_DISPATCHES, payload);
        let triggered = request.payloads.iter().any(|p| {
            p.results
                .plugins_run
                .workers
                .contains(&self.conditional_dispatch_worker)
        });
        Ok(Some(DispatcherResponse {
            plugin_names: if triggered {
                self.workers.clone()
            } else {
                Vec::new()
            },
            meta: test_meta(),
            ..DispatcherResponse::default()
        }))
    }
}

struct DummyDispatcher {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Dispatcher for DummyDispatcher {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        self.probe
            .record_payload(&self.name, method::GET_DISPATCHES, payload);
        Ok(None)
    }
}

struct SimpleDispatcher {
    name: String,
    probe: Probe,
    raise: bool,
    return_errors: bool,
    should_archive: bool,
    workers: Vec<String>,
}

#[async_trait]
impl Dispatcher for SimpleDispatcher {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        self.probe
            .record_payload(&self.name, method::GET_DISPATCHES, payload);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let mut resp = DispatcherResponse {
            plugin_names: self.workers.clone(),
            meta: test_meta(),
            ..DispatcherResponse::default()
        };
        resp.payload_meta_update.should_archive = Some(self.should_archive);
        if self.return_errors {
            // The reference returns a bare string; the engine fills in the
            // plugin name and payload id.
            resp.errors.push(Error::new(TEST_ERROR));
        }
        Ok(Some(resp))
    }
}

// ---------------------------------------------------------------- providers

struct DummyProvider {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Provider for DummyProvider {
    async fn ingest(&self, _queue: ProviderQueue) -> PluginResult<()> {
        self.probe.record(&self.name, method::INGEST);
        Ok(())
    }
}

struct RequestProvider {
    name: String,
    probe: Probe,
    specify_request_meta: bool,
}

#[async_trait]
impl Provider for RequestProvider {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        self.probe.record(&self.name, method::INGEST);
        let meta = if self.specify_request_meta {
            let mut m = RequestMeta::default();
            m.extra_data.insert("dummy".into(), json!("1"));
            m
        } else {
            RequestMeta::default()
        };
        queue
            .put_request(Request::new(
                vec![Payload::new(&b"Dummy payload"[..])],
                meta,
            ))
            .await
    }
}

struct SimpleProvider {
    name: String,
    probe: Probe,
    raise: bool,
    raise_after_queueing: bool,
    return_payload: bool,
}

#[async_trait]
impl Provider for SimpleProvider {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        self.probe.record(&self.name, method::INGEST);
        if self.raise {
            return Err(err(PROVIDER_EXCEPTION));
        }
        if self.return_payload {
            queue.put_payload(Payload::new(IMPORTANT_STUFF)).await?;
        } else {
            queue
                .put_task(
                    "simple_archiver",
                    ArchiverResponse::with_results(json!({"task": "This is a task from provider"})),
                )
                .await?;
        }
        if self.raise_after_queueing {
            return Err(err(PROVIDER_EXCEPTION));
        }
        Ok(())
    }
}

struct SimpleProvider2 {
    name: String,
    probe: Probe,
    raise: bool,
}

#[async_trait]
impl Provider for SimpleProvider2 {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        self.probe.record(&self.name, method::INGEST);
        if self.raise {
            return Err(err(PROVIDER_EXCEPTION));
        }
        queue.put_payload(Payload::new(IMPORTANT_STUFF)).await
    }
}

// ------------------------------------------------------------------ workers

/// `scan` → `None`; used by dummy_worker, dummy_worker2 and
/// configurable_worker.
struct NoneWorker {
    name: String,
    probe: Probe,
}

#[async_trait]
impl Worker for NoneWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        self.probe.record_payload(&self.name, method::SCAN, payload);
        Ok(None)
    }
}

struct ExtractPayload {
    name: String,
    probe: Probe,
    extracted_payload: Option<String>,
}

#[async_trait]
impl Worker for ExtractPayload {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        self.probe.record_payload(&self.name, method::SCAN, payload);
        let content = match &self.extracted_payload {
            Some(s) => s.clone().into_bytes(),
            None => random_bytes(50),
        };
        Ok(Some(WorkerResponse {
            extracted: vec![ExtractedPayload::new(content)],
            ..WorkerResponse::default()
        }))
    }
}

struct MultiClassPlugin {
    name: String,
    probe: Probe,
    raise: bool,
    return_errors: bool,
    should_archive: bool,
    workers: Vec<String>,
    rule_count: usize,
}

#[async_trait]
impl Worker for MultiClassPlugin {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        self.probe.record_payload(&self.name, method::SCAN, payload);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let mut resp = WorkerResponse::with_results(json!({"valuable_insight": "wow"}));
        resp.extracted.push(ExtractedPayload::new(LOREM_IPSUM));
        if self.return_errors {
            // A bare error, as the reference's string error: the engine
            // fills in plugin name and payload id.
            resp.errors.push(Error::new(TEST_ERROR));
        }
        Ok(Some(resp))
    }
}

#[async_trait]
impl Dispatcher for MultiClassPlugin {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        self.probe
            .record_payload(&self.name, method::GET_DISPATCHES, payload);
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let mut resp = DispatcherResponse::default();
        for worker in &self.workers {
            let mut rules = Map::new();
            for count in 0..self.rule_count {
                resp.plugin_names.push(worker.clone());
                rules.insert(format!("rule{count}"), json!(worker));
            }
            resp.meta.insert(worker.clone(), Value::Object(rules));
        }
        resp.payload_meta_update.should_archive = Some(self.should_archive);
        Ok(Some(resp))
    }
}

struct SimpleWorker {
    name: String,
    probe: Probe,
    raise: bool,
    return_errors: bool,
    panic: bool,
    sleep: Option<Duration>,
    additional_dispatch_to: Vec<String>,
    extracted_dispatch_to: Vec<String>,
    should_scan: bool,
    extracted_payload: Option<String>,
}

#[async_trait]
impl Worker for SimpleWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        self.probe.record_payload(&self.name, method::SCAN, payload);
        if let Some(d) = self.sleep {
            tokio::time::sleep(d).await;
        }
        if self.panic {
            panic!("{TEST_PANIC}");
        }
        if self.raise {
            return Err(err(TEST_EXCEPTION));
        }
        let content = match &self.extracted_payload {
            Some(s) => s.clone().into_bytes(),
            None => LOREM_IPSUM.to_vec(),
        };
        let meta = PayloadMeta {
            should_scan: self.should_scan,
            dispatch_to: self.extracted_dispatch_to.clone(),
            ..PayloadMeta::default()
        };
        let mut resp = WorkerResponse::with_results(json!({"valuable_insight": "wow"}));
        resp.extracted
            .push(ExtractedPayload::with_meta(content, meta));
        if self.return_errors {
            resp.errors.push(
                Error::new(TEST_ERROR)
                    .plugin("simple_worker")
                    .payload(payload.id()),
            );
        }
        resp.dispatch_to
            .extend(self.additional_dispatch_to.iter().cloned());
        Ok(Some(resp))
    }
}

// ----------------------------------------------------------------- registry

/// Every test module, each recording into `probe`.
pub fn descriptors(probe: &Probe) -> Vec<ModuleDescriptor> {
    use PluginClass::*;
    let mut out = Vec::new();

    out.push(module(
        "dummy_archiver",
        &[Archiver],
        "Dummy stoQ Archiver plugin",
        &[],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(DummyArchiver {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().archiver(p))
        },
    ));
    out.push(module(
        "simple_archiver",
        &[Archiver],
        "Simple stoQ Archiver plugin",
        &[
            RAISE,
            RETURN_ERRORS,
            OptionDoc::new("payload", "", "Content of the payload `get` returns"),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleArchiver {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                return_errors: cfg.bool("return_errors", false)?,
                payload: cfg.string("payload", ""),
            });
            Ok(PluginInstance::new().archiver(p))
        },
    ));
    out.push(module(
        "dummy_connector",
        &[Connector],
        "Dummy stoQ Connector plugin",
        &[
            OptionDoc::new(
                "raise_exception",
                "false",
                "Fail every save with 'Unexpected exception'",
            ),
            OptionDoc::new("connector_test_option_bool", "", "Read by the option tests"),
            OptionDoc::new("connector_test_option_str", "", "Read by the option tests"),
            OptionDoc::new("connector_test_option_int", "", "Read by the option tests"),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(DummyConnector {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
            });
            Ok(PluginInstance::new().connector(p))
        },
    ));
    out.push(module(
        "dummy_decorator",
        &[Decorator],
        "Dummy stoQ Decorator plugin",
        &[],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(DummyDecorator {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().decorator(p))
        },
    ));
    out.push(module(
        "simple_decorator",
        &[Decorator],
        "Simple stoQ Decorator plugin",
        &[RAISE, RETURN_ERRORS],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleDecorator {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                return_errors: cfg.bool("return_errors", false)?,
            });
            Ok(PluginInstance::new().decorator(p))
        },
    ));
    out.push(
        module(
            "conditional_dispatcher",
            &[Dispatcher],
            "Conditional stoQ Dispatcher plugin",
            &[
                OptionDoc::new(
                    "conditional_dispatch_worker",
                    "dummy_worker",
                    "Dispatch only once this worker ran on some payload of the request",
                ),
                OptionDoc::new("workers", "simple_worker", "Workers to dispatch to"),
            ],
            probe,
            |cfg, probe| {
                let p = std::sync::Arc::new(ConditionalDispatcher {
                    name: cfg.name().to_string(),
                    probe,
                    conditional_dispatch_worker: cfg
                        .string("conditional_dispatch_worker", "dummy_worker"),
                    workers: list_or(cfg, "workers", &["simple_worker"]),
                });
                Ok(PluginInstance::new().dispatcher(p))
            },
        )
        .author("Jeremy Fan")
        .website(""),
    );
    out.push(module(
        "dummy_dispatcher",
        &[Dispatcher],
        "Dummy stoQ Dispatcher plugin",
        &[],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(DummyDispatcher {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().dispatcher(p))
        },
    ));
    out.push(module(
        "simple_dispatcher",
        &[Dispatcher],
        "Simple stoQ Dispatcher plugin",
        &[
            RAISE,
            RETURN_ERRORS,
            OptionDoc::new(
                "should_archive",
                "true",
                "Value set on the payload's should_archive",
            ),
            OptionDoc::new("workers", "dummy_worker", "Workers to dispatch to"),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleDispatcher {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                return_errors: cfg.bool("return_errors", false)?,
                should_archive: cfg.bool("should_archive", true)?,
                workers: list_or(cfg, "workers", &["dummy_worker"]),
            });
            Ok(PluginInstance::new().dispatcher(p))
        },
    ));
    out.push(module(
        "dummy_provider",
        &[Provider],
        "Dummy stoQ Provider plugin",
        &[],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(DummyProvider {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().provider(p))
        },
    ));
    out.push(
        module(
            "request_provider",
            &[Provider],
            "Provider that provides request objects",
            &[OptionDoc::new(
                "specify_request_meta",
                "true",
                "Queue the request with extra_data {\"dummy\": \"1\"} (else default meta)",
            )],
            probe,
            |cfg, probe| {
                let p = std::sync::Arc::new(RequestProvider {
                    name: cfg.name().to_string(),
                    probe,
                    specify_request_meta: cfg.bool("specify_request_meta", true)?,
                });
                Ok(PluginInstance::new().provider(p))
            },
        )
        .author("Yair Treister"),
    );
    out.push(module(
        "simple_provider",
        &[Provider],
        "Simple stoQ Provider plugin",
        &[
            OptionDoc::new("raise_exception", "false", "Fail before queueing anything"),
            OptionDoc::new(
                "raise_after_queueing",
                "false",
                "Fail after queueing the item",
            ),
            OptionDoc::new(
                "return_payload",
                "true",
                "Queue a payload (else a task for simple_archiver)",
            ),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleProvider {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                raise_after_queueing: cfg.bool("raise_after_queueing", false)?,
                return_payload: cfg.bool("return_payload", true)?,
            });
            Ok(PluginInstance::new().provider(p))
        },
    ));
    out.push(module(
        "simple_provider2",
        &[Provider],
        "Duplicate simple stoQ Provider plugin",
        &[OptionDoc::new(
            "raise_exception",
            "false",
            "Fail before queueing anything",
        )],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleProvider2 {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
            });
            Ok(PluginInstance::new().provider(p))
        },
    ));
    out.push(module(
        "configurable_worker",
        &[Worker],
        "Configurable stoQ Worker plugin",
        &[
            OptionDoc::new("important_option", "", "Read by the option tests"),
            OptionDoc::new(
                "crazy_runtime_option",
                "",
                "Read by the option tests (integer)",
            ),
            OptionDoc::new("list", "", "Read by the option tests (JSON)"),
            OptionDoc::new("dict", "", "Read by the option tests (JSON)"),
            OptionDoc::new("invalid", "", "Read by the option tests (broken JSON)"),
            OptionDoc::new("sq_dict", "", "Read by the option tests (JSON)"),
            OptionDoc::new("dq_dict", "", "Read by the option tests (JSON)"),
            OptionDoc::new("worker_test_option_bool", "", "Read by the option tests"),
            OptionDoc::new("worker_test_option_str", "", "Read by the option tests"),
            OptionDoc::new("worker_test_option_int", "", "Read by the option tests"),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(NoneWorker {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().worker(p))
        },
    ));
    out.push(module(
        "dummy_worker",
        &[Worker],
        "Dummy stoQ Worker plugin",
        &[OptionDoc::new(
            "plugins2_dup_marker",
            "",
            "Set by the plugins2 manifest of dummy_worker (override test)",
        )],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(NoneWorker {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().worker(p))
        },
    ));
    out.push(module(
        "dummy_worker2",
        &[Worker],
        "Dummy stoQ Worker plugin 2",
        &[],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(NoneWorker {
                name: cfg.name().to_string(),
                probe,
            });
            Ok(PluginInstance::new().worker(p))
        },
    ));
    out.push(module(
        "extract_payload",
        &[Worker],
        "stoQ Worker plugin that 'extracts' random bytes or original payload",
        &[OptionDoc::new(
            "extracted_payload",
            "",
            "Content to extract (default: 50 random bytes)",
        )],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(ExtractPayload {
                name: cfg.name().to_string(),
                probe,
                extracted_payload: cfg.get_str("extracted_payload").map(String::from),
            });
            Ok(PluginInstance::new().worker(p))
        },
    ));
    out.push(module(
        "multiclass_plugin",
        &[Worker, Dispatcher],
        "Simple stoQ multiclass plugin",
        &[
            RAISE,
            RETURN_ERRORS,
            OptionDoc::new(
                "should_archive",
                "true",
                "Value set on the payload's should_archive",
            ),
            OptionDoc::new("workers", "multiclass_plugin", "Workers to dispatch to"),
            OptionDoc::new("rule_count", "1", "Rules per worker in the dispatch meta"),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(MultiClassPlugin {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                return_errors: cfg.bool("return_errors", false)?,
                should_archive: cfg.bool("should_archive", true)?,
                workers: list_or(cfg, "workers", &[cfg.name()]),
                rule_count: cfg.number("rule_count", 1usize)?,
            });
            // One instance in both slots.
            Ok(PluginInstance::new().worker(p.clone()).dispatcher(p))
        },
    ));
    out.push(module(
        "simple_worker",
        &[Worker],
        "Simple stoQ Worker plugin",
        &[
            RAISE,
            RETURN_ERRORS,
            OptionDoc::new("panic", "false", "Panic in scan (not in the reference)"),
            OptionDoc::new(
                "sleep",
                "",
                "Seconds to sleep at the start of scan (not in the reference)",
            ),
            OptionDoc::new("additional_dispatch_to", "", "WorkerResponse.dispatch_to"),
            OptionDoc::new(
                "extracted_dispatch_to",
                "",
                "dispatch_to of the extracted payload",
            ),
            OptionDoc::new(
                "should_scan",
                "true",
                "should_scan of the extracted payload",
            ),
            OptionDoc::new(
                "extracted_payload",
                "Lorem ipsum",
                "Content of the extracted payload",
            ),
        ],
        probe,
        |cfg, probe| {
            let p = std::sync::Arc::new(SimpleWorker {
                name: cfg.name().to_string(),
                probe,
                raise: cfg.bool("raise_exception", false)?,
                return_errors: cfg.bool("return_errors", false)?,
                panic: cfg.bool("panic", false)?,
                sleep: seconds(cfg, "sleep")?,
                additional_dispatch_to: cfg.list("additional_dispatch_to"),
                extracted_dispatch_to: cfg.list("extracted_dispatch_to"),
                should_scan: cfg.bool("should_scan", true)?,
                extracted_payload: cfg.get_str("extracted_payload").map(String::from),
            });
            Ok(PluginInstance::new().worker(p))
        },
    ));
    // The reference's `missing_plugin` module holds a class that is not a
    // plugin: its instance fills no plugin class, so loading fails.
    out.push(module(
        "random_class_not_a_plugin",
        &[],
        "A module without any plugin class",
        &[],
        probe,
        |_cfg, _probe| Ok(PluginInstance::new()),
    ));
    out
}
