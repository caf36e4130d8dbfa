//! [`Probe`]: the shared call recorder every test plugin reports to.
//!
//! The reference tests replace plugin methods with mocks to count calls and
//! look at their arguments. Here every test plugin records each call (plugin
//! name, method, the payload it was given and that payload's
//! `dispatch_meta`, or the response it was given) and each build (with the
//! options it was built from) into a `Probe` the test holds.

use std::sync::{Arc, Mutex, MutexGuard};

use stoq_core::{Bytes, Map, Payload, PluginConfig, StoqResponse};

/// Method names recorded in [`Call::method`].
pub mod method {
    pub const SCAN: &str = "scan";
    pub const GET_DISPATCHES: &str = "get_dispatches";
    pub const ARCHIVE: &str = "archive";
    pub const GET: &str = "get";
    pub const DECORATE: &str = "decorate";
    pub const SAVE: &str = "save";
    pub const INGEST: &str = "ingest";
}

/// One call of a plugin method.
#[derive(Clone, Debug)]
pub struct Call {
    /// The name the plugin was loaded under.
    pub plugin: String,
    /// One of the [`method`] constants.
    pub method: &'static str,
    /// The id of the payload passed in (scan, get_dispatches, archive).
    pub payload_id: Option<String>,
    /// The content of the payload passed in.
    pub content: Option<Bytes>,
    /// The payload's `dispatch_meta` at call time (dispatcher name → meta).
    pub dispatch_meta: Map,
    /// The response passed in (decorate, save).
    pub response: Option<StoqResponse>,
}

/// One build of a plugin instance.
#[derive(Clone, Debug)]
pub struct Build {
    pub plugin: String,
    pub config: PluginConfig,
}

#[derive(Default, Debug)]
struct State {
    calls: Vec<Call>,
    builds: Vec<Build>,
}

/// A cheap-to-clone handle on a shared call log.
#[derive(Clone, Default, Debug)]
pub struct Probe {
    state: Arc<Mutex<State>>,
}

impl Probe {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test plugin that panics on purpose never holds this lock, but be
        // robust anyway: the data is append-only.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a call that received a payload.
    pub fn record_payload(&self, plugin: &str, method: &'static str, payload: &Payload) {
        let dispatch_meta = payload
            .dispatch_meta
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::Object(v.clone())))
            .collect();
        self.lock().calls.push(Call {
            plugin: plugin.to_string(),
            method,
            payload_id: Some(payload.id().to_string()),
            content: Some(payload.content.clone()),
            dispatch_meta,
            response: None,
        });
    }

    /// Record a call that received a response.
    pub fn record_response(&self, plugin: &str, method: &'static str, response: &StoqResponse) {
        self.lock().calls.push(Call {
            plugin: plugin.to_string(),
            method,
            payload_id: None,
            content: None,
            dispatch_meta: Map::new(),
            response: Some(response.clone()),
        });
    }

    /// Record a call without payload or response (get, ingest).
    pub fn record(&self, plugin: &str, method: &'static str) {
        self.lock().calls.push(Call {
            plugin: plugin.to_string(),
            method,
            payload_id: None,
            content: None,
            dispatch_meta: Map::new(),
            response: None,
        });
    }

    /// Record that a plugin instance was built.
    pub fn record_build(&self, config: &PluginConfig) {
        self.lock().builds.push(Build {
            plugin: config.name().to_string(),
            config: config.clone(),
        });
    }

    /// Every call so far, in call order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls of one plugin's method, in call order.
    pub fn calls_to(&self, plugin: &str, method: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.plugin == plugin && c.method == method)
            .cloned()
            .collect()
    }

    /// How many times a plugin's method was called.
    pub fn count(&self, plugin: &str, method: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.plugin == plugin && c.method == method)
            .count()
    }

    /// How many times a plugin's method was called with the given payload.
    pub fn count_on(&self, plugin: &str, method: &str, payload_id: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.plugin == plugin && c.method == method)
            .filter(|c| c.payload_id.as_deref() == Some(payload_id))
            .count()
    }

    /// How many instances of a plugin were built.
    pub fn builds(&self, plugin: &str) -> usize {
        self.lock()
            .builds
            .iter()
            .filter(|b| b.plugin == plugin)
            .count()
    }

    /// The options the last instance of a plugin was built from.
    pub fn config(&self, plugin: &str) -> Option<PluginConfig> {
        self.lock()
            .builds
            .iter()
            .rev()
            .find(|b| b.plugin == plugin)
            .map(|b| b.config.clone())
    }

    /// Forget every call (builds are kept).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }
}
