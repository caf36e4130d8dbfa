//! `Stoq`: configuration, plugin roles and the scan algorithm.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::{IndexMap, IndexSet};
use stoq_core::{
    to_json_compact, Bytes, Error, Payload, PayloadMeta, PluginClass, Registry, Request,
    RequestMeta, StoqError, StoqResponse,
};

use crate::config::StoqConfig;
use crate::guard::{guarded, Failure};
use crate::plugin_manager::{LoadedPlugin, PluginInfo, PluginManager};

/// The default time limit of one plugin call (`[core] plugin_timeout`).
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_QUEUE: usize = 100;
/// Default bound on the payload bytes queued and in scan in run mode (1 GiB).
pub const DEFAULT_MAX_QUEUE_BYTES: u64 = 1 << 30;
const DEFAULT_PROVIDER_CONSUMERS: usize = 2;
const DEFAULT_MAX_RECURSION: usize = 10;
const DEFAULT_MAX_REQUIRED_WORKER_DEPTH: usize = 10;

/// Payloads at least this large are hashed on a blocking thread.
const INLINE_HASH_LIMIT: usize = 1 << 20;

/// Options for [`Stoq`]. Every value left unset comes from `stoq.cfg`, then
/// from the built-in default.
#[derive(Default)]
pub struct StoqBuilder {
    registry: Registry,
    base_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    config: Option<StoqConfig>,
    plugin_dirs: Option<Vec<PathBuf>>,
    plugin_opts: IndexMap<String, Vec<(String, String)>>,
    providers: Option<Vec<String>>,
    source_archivers: Option<Vec<String>>,
    dest_archivers: Option<Vec<String>>,
    connectors: Option<Vec<String>>,
    dispatchers: Option<Vec<String>>,
    decorators: Option<Vec<String>>,
    always_dispatch: Option<Vec<String>>,
    max_queue: Option<usize>,
    max_queue_bytes: Option<u64>,
    provider_consumers: Option<usize>,
    max_recursion: Option<usize>,
    max_required_worker_depth: Option<usize>,
    plugin_timeout: Option<Duration>,
}

fn names<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl StoqBuilder {
    /// The plugin implementations available (built-ins, test plugins, your
    /// own). Manifests in plugin directories refer to these by module name.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Base directory: `stoq.cfg` and `plugins/` are looked for here.
    /// Defaults to the working directory.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Read this config file instead of `<base_dir>/stoq.cfg`. A missing file
    /// means defaults.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Use an already parsed config.
    pub fn config(mut self, config: StoqConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Plugin directories (replaces `plugin_dir_list`).
    pub fn plugin_dirs<I, P>(mut self, dirs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.plugin_dirs = Some(dirs.into_iter().map(Into::into).collect());
        self
    }

    /// One plugin option; these win over stoq.cfg and manifests.
    pub fn plugin_opt(mut self, plugin: &str, key: &str, value: impl Into<String>) -> Self {
        self.plugin_opts
            .entry(plugin.to_string())
            .or_default()
            .push((key.to_string(), value.into()));
        self
    }

    /// Plugin options: plugin name → (key, value) pairs.
    pub fn plugin_opts(mut self, opts: IndexMap<String, Vec<(String, String)>>) -> Self {
        for (plugin, pairs) in opts {
            self.plugin_opts.entry(plugin).or_default().extend(pairs);
        }
        self
    }

    pub fn providers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.providers = Some(names(v));
        self
    }

    pub fn source_archivers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.source_archivers = Some(names(v));
        self
    }

    pub fn dest_archivers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.dest_archivers = Some(names(v));
        self
    }

    pub fn connectors<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.connectors = Some(names(v));
        self
    }

    pub fn dispatchers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.dispatchers = Some(names(v));
        self
    }

    pub fn decorators<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.decorators = Some(names(v));
        self
    }

    /// Workers run on every payload in every round.
    pub fn always_dispatch<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.always_dispatch = Some(names(v));
        self
    }

    pub fn max_queue(mut self, n: usize) -> Self {
        self.max_queue = Some(n);
        self
    }

    /// Run mode: bound the payload bytes queued and in scan at once
    /// (0: no bound; default [`DEFAULT_MAX_QUEUE_BYTES`]).
    pub fn max_queue_bytes(mut self, n: u64) -> Self {
        self.max_queue_bytes = Some(n);
        self
    }

    pub fn provider_consumers(mut self, n: usize) -> Self {
        self.provider_consumers = Some(n);
        self
    }

    /// Maximum number of worker rounds (at least 1).
    pub fn max_recursion(mut self, n: usize) -> Self {
        self.max_recursion = Some(n);
        self
    }

    pub fn max_required_worker_depth(mut self, n: usize) -> Self {
        self.max_required_worker_depth = Some(n);
        self
    }

    /// Default time limit of every plugin call.
    pub fn plugin_timeout(mut self, t: Duration) -> Self {
        self.plugin_timeout = Some(t);
        self
    }

    /// The base directory and the parsed config this builder would use.
    fn base_and_config(&self) -> Result<(PathBuf, Option<StoqConfig>), StoqError> {
        let base_dir = match &self.base_dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| {
                StoqError::Config(format!("cannot read the working directory: {e}"))
            })?,
        };
        let config = match &self.config {
            Some(c) => Some(c.clone()),
            None => {
                let path = self
                    .config_file
                    .clone()
                    .unwrap_or_else(|| base_dir.join("stoq.cfg"));
                if path.is_file() {
                    Some(StoqConfig::load(&path)?)
                } else {
                    None
                }
            }
        };
        Ok((base_dir, config))
    }

    /// Plugin directories: the builder's, else `[core] plugin_dir_list`,
    /// else `<base_dir>/plugins` when it exists.
    fn effective_plugin_dirs(
        &self,
        base_dir: &Path,
        core: &crate::config::CoreConfig,
    ) -> Vec<PathBuf> {
        match (&self.plugin_dirs, &core.plugin_dir_list) {
            (Some(d), _) => d.clone(),
            (None, Some(list)) => list.iter().map(PathBuf::from).collect(),
            (None, None) => {
                // The default directory is optional; only warn about
                // directories somebody asked for.
                let default = base_dir.join("plugins");
                if default.is_dir() {
                    vec![default]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Names of every plugin the built engine would know (registry modules
    /// and manifests), without loading any.
    pub fn plugin_names(&self) -> Result<Vec<String>, StoqError> {
        let (base_dir, config) = self.base_and_config()?;
        let core = config.as_ref().map(|c| c.core.clone()).unwrap_or_default();
        let dirs = self.effective_plugin_dirs(&base_dir, &core);
        let manager = PluginManager::new(
            self.registry.clone(),
            &dirs,
            None,
            IndexMap::new(),
            DEFAULT_PLUGIN_TIMEOUT,
        );
        Ok(manager.list_plugins().into_iter().map(|p| p.name).collect())
    }

    /// Read the config, collect plugins and load every plugin named for a
    /// role. Fails on a bad config, an unknown plugin or a plugin that lacks
    /// the role it was named for.
    pub fn build(self) -> Result<Stoq, StoqError> {
        let (base_dir, config) = self.base_and_config()?;
        let core = config.as_ref().map(|c| c.core.clone()).unwrap_or_default();
        if let Some(c) = &config {
            for k in &c.unknown_core_keys {
                tracing::warn!(
                    "{}: unknown [core] option {k:?} (ignored)",
                    c.path.display()
                );
            }
        }
        let pick_list = |arg: Option<Vec<String>>, cfg: Option<Vec<String>>| -> Vec<String> {
            arg.or(cfg)
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let max_recursion = self
            .max_recursion
            .or(core.max_recursion)
            .unwrap_or(DEFAULT_MAX_RECURSION);
        if max_recursion == 0 {
            return Err(StoqError::Config("max_recursion must be at least 1".into()));
        }
        let plugin_timeout = self
            .plugin_timeout
            .or(core.plugin_timeout)
            .unwrap_or(DEFAULT_PLUGIN_TIMEOUT);
        let plugin_dirs = self.effective_plugin_dirs(&base_dir, &core);
        let manager = PluginManager::new(
            self.registry,
            &plugin_dirs,
            config.clone(),
            self.plugin_opts,
            plugin_timeout,
        );
        let load_role =
            |names: &[String], class: PluginClass| -> Result<Vec<Arc<LoadedPlugin>>, StoqError> {
                names.iter().map(|n| manager.load_as(n, class)).collect()
            };
        let providers = load_role(
            &pick_list(self.providers, core.providers),
            PluginClass::Provider,
        )?;
        let source_archivers = load_role(
            &pick_list(self.source_archivers, core.source_archivers),
            PluginClass::Archiver,
        )?;
        let dest_archivers = load_role(
            &pick_list(self.dest_archivers, core.dest_archivers),
            PluginClass::Archiver,
        )?;
        let connectors = load_role(
            &pick_list(self.connectors, core.connectors),
            PluginClass::Connector,
        )?;
        let dispatchers = load_role(
            &pick_list(self.dispatchers, core.dispatchers),
            PluginClass::Dispatcher,
        )?;
        let decorators = load_role(
            &pick_list(self.decorators, core.decorators),
            PluginClass::Decorator,
        )?;
        let always_names = pick_list(self.always_dispatch, core.always_dispatch);
        load_role(&always_names, PluginClass::Worker)?;

        Ok(Stoq {
            inner: Arc::new(Inner {
                base_dir,
                config,
                manager,
                providers,
                source_archivers,
                dest_archivers,
                connectors,
                dispatchers,
                decorators,
                always_dispatch: always_names,
                max_queue: self
                    .max_queue
                    .or(core.max_queue)
                    .unwrap_or(DEFAULT_MAX_QUEUE)
                    .max(1),
                max_queue_bytes: Some(
                    self.max_queue_bytes
                        .or(core.max_queue_bytes)
                        .unwrap_or(DEFAULT_MAX_QUEUE_BYTES),
                )
                .filter(|n| *n > 0),
                provider_consumers: self
                    .provider_consumers
                    .or(core.provider_consumers)
                    .unwrap_or(DEFAULT_PROVIDER_CONSUMERS)
                    .max(1),
                max_recursion,
                max_required_worker_depth: self
                    .max_required_worker_depth
                    .or(core.max_required_worker_depth)
                    .unwrap_or(DEFAULT_MAX_REQUIRED_WORKER_DEPTH),
                plugin_timeout,
            }),
        })
    }
}

pub(crate) struct Inner {
    pub(crate) base_dir: PathBuf,
    pub(crate) config: Option<StoqConfig>,
    pub(crate) manager: PluginManager,
    pub(crate) providers: Vec<Arc<LoadedPlugin>>,
    pub(crate) source_archivers: Vec<Arc<LoadedPlugin>>,
    pub(crate) dest_archivers: Vec<Arc<LoadedPlugin>>,
    pub(crate) connectors: Vec<Arc<LoadedPlugin>>,
    pub(crate) dispatchers: Vec<Arc<LoadedPlugin>>,
    pub(crate) decorators: Vec<Arc<LoadedPlugin>>,
    pub(crate) always_dispatch: Vec<String>,
    pub(crate) max_queue: usize,
    pub(crate) max_queue_bytes: Option<u64>,
    pub(crate) provider_consumers: usize,
    pub(crate) max_recursion: usize,
    pub(crate) max_required_worker_depth: usize,
    pub(crate) plugin_timeout: Duration,
}

/// The stoQ engine. Cheap to clone; clones share plugins and settings, and
/// any number of scans may run at once.
#[derive(Clone)]
pub struct Stoq {
    pub(crate) inner: Arc<Inner>,
}

/// A (payload index, worker name) pair; its order is the run order.
type Dispatch = (usize, String);

/// The output of one round: extracted payloads and next round's dispatches.
struct RoundOutput {
    extracted: Vec<Payload>,
    next: IndexSet<Dispatch>,
}

fn fill_error(mut e: Error, plugin: &str, payload_id: Option<&str>) -> Error {
    if e.plugin_name.is_none() {
        e.plugin_name = Some(plugin.to_string());
    }
    if e.payload_id.is_none() {
        e.payload_id = payload_id.map(str::to_string);
    }
    e
}

fn failure_error(prefix: &str, f: &Failure, plugin: &str, payload_id: Option<&str>) -> Error {
    Error {
        error: format!("{prefix}: {f}"),
        plugin_name: Some(plugin.to_string()),
        payload_id: payload_id.map(str::to_string),
    }
}

/// Drop repeated identical error records, keeping the first of each.
fn dedup_errors(errors: &mut Vec<Error>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
}

/// The payload's SHA-256 (cached on the payload, shared with its clones).
/// Large payloads are hashed on a blocking thread.
async fn payload_sha256(payload: &Payload) -> [u8; 32] {
    if payload.content.len() < INLINE_HASH_LIMIT || payload.sha256_if_known().is_some() {
        return payload.sha256();
    }
    // Clones share the digest cache, so computing it on the clone fills it
    // for `payload` too.
    let p = payload.clone();
    match tokio::task::spawn_blocking(move || p.sha256()).await {
        Ok(h) => h,
        Err(_) => payload.sha256(),
    }
}

impl Stoq {
    /// Start configuring an engine.
    pub fn builder() -> StoqBuilder {
        StoqBuilder::default()
    }

    /// The base directory in use.
    pub fn base_dir(&self) -> &Path {
        &self.inner.base_dir
    }

    /// The parsed `stoq.cfg`, if one was read.
    pub fn config(&self) -> Option<&StoqConfig> {
        self.inner.config.as_ref()
    }

    pub fn max_recursion(&self) -> usize {
        self.inner.max_recursion
    }

    pub fn max_queue(&self) -> usize {
        self.inner.max_queue
    }

    pub fn provider_consumers(&self) -> usize {
        self.inner.provider_consumers
    }

    pub fn max_required_worker_depth(&self) -> usize {
        self.inner.max_required_worker_depth
    }

    pub fn plugin_timeout(&self) -> Duration {
        self.inner.plugin_timeout
    }

    /// Names of the plugins loaded for each role.
    pub fn role_names(&self, class: PluginClass) -> Vec<String> {
        let list = match class {
            PluginClass::Provider => &self.inner.providers,
            PluginClass::Archiver => &self.inner.dest_archivers,
            PluginClass::Connector => &self.inner.connectors,
            PluginClass::Dispatcher => &self.inner.dispatchers,
            PluginClass::Decorator => &self.inner.decorators,
            PluginClass::Worker => return self.inner.always_dispatch.clone(),
        };
        list.iter().map(|p| p.name.clone()).collect()
    }

    /// Names of the source archivers.
    pub fn source_archiver_names(&self) -> Vec<String> {
        self.inner
            .source_archivers
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// Every plugin this engine knows, in discovery order.
    pub fn list_plugins(&self) -> Vec<PluginInfo> {
        self.inner.manager.list_plugins()
    }

    /// The plugin manager (discovery details, loading).
    pub fn plugins(&self) -> &PluginManager {
        &self.inner.manager
    }

    /// Load a plugin by name (once; later calls return the same instance).
    pub fn load_plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>, StoqError> {
        self.inner.manager.load_plugin(name)
    }

    /// Scan raw bytes.
    pub async fn scan(
        &self,
        content: impl Into<Bytes>,
        payload_meta: Option<PayloadMeta>,
        request_meta: Option<RequestMeta>,
        add_start_dispatch: &[String],
    ) -> StoqResponse {
        let content = content.into();
        let payload_meta = payload_meta.unwrap_or_default();
        let request_meta = request_meta.unwrap_or_default();
        tracing::debug!(
            "Content received ({} bytes): PayloadMeta: {}, RequestMeta: {}",
            content.len(),
            to_json_compact(&payload_meta),
            to_json_compact(&request_meta)
        );
        let payload = Payload::with_meta(content, payload_meta);
        self.scan_request(
            Request::new(vec![payload], request_meta),
            add_start_dispatch,
        )
        .await
    }

    /// Scan a prepared payload.
    pub async fn scan_payload(
        &self,
        payload: Payload,
        request_meta: Option<RequestMeta>,
        add_start_dispatch: &[String],
    ) -> StoqResponse {
        let request = Request::new(vec![payload], request_meta.unwrap_or_default());
        self.scan_request(request, add_start_dispatch).await
    }

    /// Scan a whole request: worker rounds, then dest archivers, decorators
    /// and connectors. Never fails: every plugin failure is an error record
    /// in the response.
    pub async fn scan_request(
        &self,
        request: Request,
        add_start_dispatch: &[String],
    ) -> StoqResponse {
        let start: Vec<String> = add_start_dispatch
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        tracing::debug!(
            "Request received: RequestMeta: {}, start_dispatches: {}",
            to_json_compact(&request.request_meta),
            if start.is_empty() {
                "null".to_string()
            } else {
                to_json_compact(&start)
            }
        );
        let mut state = Arc::new(request);
        let mut dispatches: IndexSet<Dispatch> = IndexSet::new();
        let mut hashes_seen: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
        for (idx, p) in state.payloads.iter().enumerate() {
            if p.results.payload_meta.should_scan {
                for name in &start {
                    dispatches.insert((idx, name.clone()));
                }
            }
            hashes_seen
                .entry(payload_sha256(p).await)
                .or_default()
                .push(idx);
        }

        let max = self.inner.max_recursion;
        for level in 1..=max {
            let Some(round) = self.execute_round(&mut state, dispatches).await else {
                break;
            };
            dispatches = round.next;
            let mut hashes = Vec::with_capacity(round.extracted.len());
            for e in &round.extracted {
                hashes.push(payload_sha256(e).await);
            }
            let req = Arc::make_mut(&mut state);
            for (e, h) in round.extracted.into_iter().zip(hashes) {
                if let Some(indices) = hashes_seen.get(&h) {
                    for &i in indices {
                        let r = &mut req.payloads[i].results;
                        r.extracted_by
                            .extend(e.results.extracted_by.iter().cloned());
                        r.extracted_from
                            .extend(e.results.extracted_from.iter().cloned());
                    }
                    continue;
                }
                let idx = req.payloads.len();
                hashes_seen.insert(h, vec![idx]);
                let meta = &e.results.payload_meta;
                if level >= max {
                    req.errors.push(
                        Error::new(format!(
                            "Final worker round ({level}) reached, unable to process payload"
                        ))
                        .payload(e.id()),
                    );
                } else if meta.should_scan {
                    for name in &meta.dispatch_to {
                        dispatches.insert((idx, name.trim().to_string()));
                    }
                }
                req.payloads.push(e);
            }
        }

        // Dispatchers and requirement resolution run every round, so the
        // same failure can be reported several times; keep the first.
        dedup_errors(&mut Arc::make_mut(&mut state).errors);
        if state.request_meta.archive_payloads {
            self.archive_all(&mut state).await;
        }
        let request = Arc::try_unwrap(state).unwrap_or_else(|shared| (*shared).clone());
        let mut response = StoqResponse::new(request);
        self.decorate(&mut response).await;
        self.save(&mut response).await;
        response
    }

    /// One round: dispatch every scannable payload, resolve requirements,
    /// run every ready (payload, worker) pair at once. `None` when nothing
    /// could run.
    async fn execute_round(
        &self,
        state: &mut Arc<Request>,
        mut total: IndexSet<Dispatch>,
    ) -> Option<RoundOutput> {
        let inner = &self.inner;
        let scannable: Vec<usize> = state
            .payloads
            .iter()
            .enumerate()
            .filter(|(_, p)| p.results.payload_meta.should_scan)
            .map(|(i, _)| i)
            .collect();

        // Dispatchers, for every scannable payload, all at once.
        let mut jobs = Vec::new();
        for &idx in &scannable {
            for d in &inner.dispatchers {
                let Some(dispatcher) = d.instance.dispatcher.clone() else {
                    continue;
                };
                let snap = state.clone();
                jobs.push(guarded(d.timeout, async move {
                    dispatcher.get_dispatches(&snap.payloads[idx], &snap).await
                }));
            }
        }
        let mut outcomes = futures::future::join_all(jobs).await.into_iter();
        let req = Arc::make_mut(state);
        for &idx in &scannable {
            for name in &inner.always_dispatch {
                total.insert((idx, name.clone()));
            }
            for d in &inner.dispatchers {
                if d.instance.dispatcher.is_none() {
                    continue;
                }
                let Some(outcome) = outcomes.next() else {
                    break;
                };
                let payload = &mut req.payloads[idx];
                let pid = payload.results.payload_id.clone();
                match outcome {
                    Err(f) => req.errors.push(failure_error(
                        "dispatcher:failed to dispatch",
                        &f,
                        &d.name,
                        Some(&pid),
                    )),
                    Ok(None) => {}
                    Ok(Some(resp)) => {
                        for n in resp.plugin_names {
                            total.insert((idx, n.trim().to_string()));
                        }
                        payload.dispatch_meta.insert(d.name.clone(), resp.meta);
                        resp.payload_meta_update
                            .apply_to(&mut payload.results.payload_meta);
                        req.errors.extend(
                            resp.errors
                                .into_iter()
                                .map(|e| fill_error(e, &d.name, Some(&pid))),
                        );
                    }
                }
            }
        }

        // Requirements.
        let mut can_run: IndexMap<Dispatch, Arc<LoadedPlugin>> = IndexMap::new();
        let mut deferred: IndexSet<Dispatch> = IndexSet::new();
        for (idx, name) in total {
            if name.is_empty() {
                continue;
            }
            let mut errors = Vec::new();
            let resolved = self.resolve(req, idx, &name, &mut Vec::new(), &mut errors);
            req.errors.extend(errors);
            match resolved {
                Ok((c, d)) => {
                    for (k, v) in c {
                        can_run.entry(k).or_insert(v);
                    }
                    deferred.extend(d);
                }
                Err(msg) => req.errors.push(
                    Error::new(msg)
                        .plugin(name.clone())
                        .payload(req.payloads[idx].results.payload_id.clone()),
                ),
            }
        }
        if can_run.is_empty() {
            return None;
        }
        // Deterministic order: by payload position, then dispatch order.
        can_run.sort_by(|(a, _), _, (b, _), _| a.cmp(b));

        // Workers, all ready pairs at once.
        let snap_jobs: Vec<_> = can_run
            .iter()
            .map(|((idx, _), plugin)| {
                let snap = state.clone();
                let idx = *idx;
                let worker = plugin.instance.worker.clone();
                guarded(plugin.timeout, async move {
                    match worker {
                        Some(w) => w.scan(&snap.payloads[idx], &snap).await,
                        None => Ok(None),
                    }
                })
            })
            .collect();
        let outcomes = futures::future::join_all(snap_jobs).await;
        let req = Arc::make_mut(state);
        let mut extracted = Vec::new();
        for (((idx, name), _), outcome) in can_run.into_iter().zip(outcomes) {
            let payload = &mut req.payloads[idx];
            let pid = payload.results.payload_id.clone();
            payload.results.plugins_run.workers.push(name.clone());
            match outcome {
                Err(f) => req.errors.push(failure_error(
                    "worker:failed to scan",
                    &f,
                    &name,
                    Some(&pid),
                )),
                Ok(None) => {}
                Ok(Some(resp)) => {
                    if let Some(results) = resp.results {
                        payload.results.workers.insert(name.clone(), results);
                    }
                    resp.payload_meta_update
                        .apply_to(&mut payload.results.payload_meta);
                    for n in resp.dispatch_to {
                        deferred.insert((idx, n.trim().to_string()));
                    }
                    for ex in resp.extracted {
                        extracted.push(Payload::extracted(ex, name.clone(), pid.clone()));
                    }
                    req.errors.extend(
                        resp.errors
                            .into_iter()
                            .map(|e| fill_error(e, &name, Some(&pid))),
                    );
                }
            }
        }
        Some(RoundOutput {
            extracted,
            next: deferred,
        })
    }

    /// Which of `name` and its requirements can run on payload `idx` now,
    /// and which must wait. `Err` for a requirement loop or chain too deep.
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        req: &Request,
        idx: usize,
        name: &str,
        chain: &mut Vec<String>,
        errors: &mut Vec<Error>,
    ) -> Result<(Vec<(Dispatch, Arc<LoadedPlugin>)>, Vec<Dispatch>), String> {
        if chain.iter().any(|c| c == name) {
            return Err(format!(
                "Circular required plugin dependency found, unable to process plugin {name}"
            ));
        }
        let depth = self.inner.max_required_worker_depth;
        if chain.len() > depth {
            return Err(format!(
                "Max required plugin depth {depth} reached, unable to generate additional tasks"
            ));
        }
        let payload = &req.payloads[idx];
        let plugin = match self.inner.manager.load_as(name, PluginClass::Worker) {
            Ok(p) => p,
            Err(e) => {
                errors.push(
                    Error::new(format!("Worker plugin {name} failed to load: {e}"))
                        .plugin(name)
                        .payload(payload.id()),
                );
                return Ok((Vec::new(), Vec::new()));
            }
        };
        let ran = &payload.results.plugins_run.workers;
        if ran.iter().any(|w| w == name) {
            return Ok((Vec::new(), Vec::new()));
        }
        let ready = plugin.required_workers.iter().all(|r| ran.contains(r));
        let mut can_run = Vec::new();
        let mut deferred = Vec::new();
        if ready {
            can_run.push(((idx, name.to_string()), plugin.clone()));
        } else {
            deferred.push((idx, name.to_string()));
        }
        chain.push(name.to_string());
        for r in &plugin.required_workers {
            let (c, d) = self.resolve(req, idx, r, chain, errors)?;
            can_run.extend(c);
            deferred.extend(d);
        }
        chain.pop();
        Ok((can_run, deferred))
    }

    /// Every archivable payload through every dest archiver.
    async fn archive_all(&self, state: &mut Arc<Request>) {
        let inner = &self.inner;
        let targets: Vec<usize> = state
            .payloads
            .iter()
            .enumerate()
            .filter(|(_, p)| p.results.payload_meta.should_archive)
            .map(|(i, _)| i)
            .collect();
        let mut jobs = Vec::new();
        for &idx in &targets {
            for a in &inner.dest_archivers {
                let archiver = a.instance.archiver.clone();
                let snap = state.clone();
                jobs.push(guarded(a.timeout, async move {
                    match archiver {
                        Some(a) => a.archive(&snap.payloads[idx], &snap).await,
                        None => Ok(None),
                    }
                }));
            }
        }
        let mut outcomes = futures::future::join_all(jobs).await.into_iter();
        let req = Arc::make_mut(state);
        for &idx in &targets {
            for a in &inner.dest_archivers {
                let Some(outcome) = outcomes.next() else {
                    return;
                };
                let payload = &mut req.payloads[idx];
                let pid = payload.results.payload_id.clone();
                payload.results.plugins_run.archivers.push(a.name.clone());
                match outcome {
                    Err(f) => req.errors.push(failure_error(
                        "archiver:failed to archive",
                        &f,
                        &a.name,
                        Some(&pid),
                    )),
                    Ok(None) => {}
                    Ok(Some(resp)) => {
                        if let Some(results) = resp.results {
                            payload.results.archivers.insert(a.name.clone(), results);
                        }
                        req.errors.extend(
                            resp.errors
                                .into_iter()
                                .map(|e| fill_error(e, &a.name, Some(&pid))),
                        );
                    }
                }
            }
        }
    }

    /// Run every decorator on the response (concurrently, all seeing the
    /// same response) and store their results.
    async fn decorate(&self, response: &mut StoqResponse) {
        if self.inner.decorators.is_empty() {
            return;
        }
        let snap = Arc::new(response.clone());
        let jobs = self.inner.decorators.iter().map(|d| {
            let decorator = d.instance.decorator.clone();
            let snap = snap.clone();
            guarded(d.timeout, async move {
                match decorator {
                    Some(d) => d.decorate(&snap).await,
                    None => Ok(None),
                }
            })
        });
        let outcomes = futures::future::join_all(jobs).await;
        for (d, outcome) in self.inner.decorators.iter().zip(outcomes) {
            match outcome {
                Err(f) => response.errors.push(failure_error(
                    "decorator:failed to decorate",
                    &f,
                    &d.name,
                    None,
                )),
                Ok(None) => {}
                Ok(Some(resp)) => {
                    if let Some(results) = resp.results {
                        response.decorators.insert(d.name.clone(), results);
                    }
                    response.errors.extend(
                        resp.errors
                            .into_iter()
                            .map(|e| fill_error(e, &d.name, None)),
                    );
                }
            }
        }
    }

    /// Save a response through every loaded connector (concurrently). A
    /// failed save is logged, recorded in `response.errors` and named in
    /// `response.failed_connectors`; it never loses the response, which the
    /// caller still holds.
    pub async fn save(&self, response: &mut StoqResponse) {
        if self.inner.connectors.is_empty() {
            return;
        }
        let snap = Arc::new(response.clone());
        let jobs = self.inner.connectors.iter().map(|c| {
            let connector = c.instance.connector.clone();
            let snap = snap.clone();
            guarded(c.timeout, async move {
                match connector {
                    Some(c) => c.save(&snap).await,
                    None => Ok(()),
                }
            })
        });
        let outcomes = futures::future::join_all(jobs).await;
        for (c, outcome) in self.inner.connectors.iter().zip(outcomes) {
            if let Err(f) = outcome {
                tracing::error!(
                    "Failed to save results using {} (scan_id {}): {f}",
                    c.name,
                    response.scan_id
                );
                response
                    .errors
                    .push(failure_error("connector:failed to save", &f, &c.name, None));
                response.failed_connectors.push(c.name.clone());
            }
        }
    }

    /// For each payload of `response`, a response holding that payload and
    /// everything extracted from it (directly or not), with the decorators
    /// run on it. Each keeps the original `time` and `scan_id`; errors start
    /// empty. Connectors are not called.
    pub async fn reconstruct_all_subresponses(&self, response: &StoqResponse) -> Vec<StoqResponse> {
        let mut out = Vec::new();
        for results in response.subresponse_results() {
            let mut sub = StoqResponse {
                results,
                request_meta: response.request_meta.clone(),
                errors: Vec::new(),
                time: response.time.clone(),
                decorators: Default::default(),
                scan_id: response.scan_id.clone(),
                failed_connectors: Vec::new(),
            };
            self.decorate(&mut sub).await;
            out.push(sub);
        }
        out
    }

    /// Fetch a payload through a source archiver.
    pub(crate) async fn source_get(
        &self,
        archiver: &str,
        task: stoq_core::ArchiverResponse,
    ) -> Result<Option<Payload>, String> {
        let Some(a) = self
            .inner
            .source_archivers
            .iter()
            .find(|a| a.name == archiver)
        else {
            return Err(format!("{archiver} is not a loaded source archiver"));
        };
        let Some(plugin) = a.instance.archiver.clone() else {
            return Err(format!("{archiver} is not an archiver"));
        };
        guarded(a.timeout, async move { plugin.get(&task).await })
            .await
            .map_err(|f| f.to_string())
    }
}
