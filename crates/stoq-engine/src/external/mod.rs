//! Plugins in other programs: the host side of the external plugin protocol
//! (docs/PLUGIN_PROTOCOL.md).
//!
//! An [`ExternalPlugin`] owns a small pool of long-lived child processes.
//! Each call takes an idle process (or starts one), writes the call, reads
//! log and `put` messages until the answer, and puts the process back. A
//! process that breaks the protocol, exits, or is still busy when the
//! engine's time limit drops the call is killed (`kill_on_drop`) and
//! replaced on the next call, so a misbehaving plugin costs one error
//! record, never a hung scan.

pub mod python;
pub mod wire;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{json, Value};
use stoq_core::{
    async_trait, Archiver, ArchiverResponse, Bytes, Connector, Decorator, DecoratorResponse,
    Dispatcher, DispatcherResponse, Payload, PluginClass, PluginError, PluginInstance,
    PluginResult, Provider, ProviderQueue, Request, StoqResponse, Worker, WorkerResponse,
    STOQ_COMPAT_VERSION,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use wire::{Message, ReadError, PROTOCOL_VERSION};

/// How long a new process has to answer `hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on the bytes of one message's blobs (option `max_message_bytes`).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 4 << 30;

/// How to start an external plugin and what to tell it.
#[derive(Debug, Clone)]
pub struct ExternalSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Working directory (the manifest's directory).
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Classes the manifest declares; the instance fills exactly these.
    pub classes: Vec<PluginClass>,
    /// Merged options, as strings.
    pub options: IndexMap<String, String>,
    /// Processes serving calls concurrently.
    pub processes: usize,
    pub max_message_bytes: u64,
}

impl ExternalSpec {
    fn command_line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// How a process wants payload content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentMode {
    Blob,
    File,
}

/// One running plugin process.
struct Proc {
    // Held for kill_on_drop and for the exit status.
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    classes: Vec<String>,
    content: ContentMode,
}

/// A plugin served by child processes.
pub struct ExternalPlugin {
    spec: Arc<ExternalSpec>,
    idle: Mutex<Vec<Proc>>,
    slots: Semaphore,
    next_id: AtomicU64,
    /// Set when a process answered `fatal`: the plugin cannot start with
    /// these options, and every later call reports that at once instead of
    /// starting (and failing) a process again.
    fatal: Mutex<Option<String>>,
    /// Processes start one at a time, so a plugin that cannot start is
    /// tried once, not once per concurrent call.
    starting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ExternalPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalPlugin")
            .field("name", &self.spec.name)
            .field("command", &self.spec.command_line())
            .finish()
    }
}

fn err(msg: impl Into<String>) -> PluginError {
    PluginError::new(msg)
}

impl ExternalPlugin {
    pub fn new(spec: ExternalSpec) -> Arc<Self> {
        let processes = spec.processes.max(1);
        Arc::new(ExternalPlugin {
            spec: Arc::new(spec),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(processes),
            next_id: AtomicU64::new(1),
            fatal: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
        })
    }

    /// A plugin instance filling the declared classes with this plugin.
    pub fn instance(self: &Arc<Self>) -> PluginInstance {
        let mut inst = PluginInstance::new();
        for c in &self.spec.classes {
            inst = match c {
                PluginClass::Worker => inst.worker(self.clone()),
                PluginClass::Dispatcher => inst.dispatcher(self.clone()),
                PluginClass::Archiver => inst.archiver(self.clone()),
                PluginClass::Decorator => inst.decorator(self.clone()),
                PluginClass::Connector => inst.connector(self.clone()),
                PluginClass::Provider => inst.provider(self.clone()),
            };
        }
        inst
    }

    /// Start one process ahead of the first call (in the background), so
    /// the first scan does not pay the start-up. Failures are only logged:
    /// the first call tries again and reports.
    pub fn warm_up(self: &Arc<Self>) {
        if self
            .spec
            .classes
            .iter()
            .all(|c| *c == PluginClass::Provider)
        {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = Arc::downgrade(self);
        handle.spawn(async move {
            let Some(me) = me.upgrade() else { return };
            let Ok(_permit) = me.slots.try_acquire() else {
                return;
            };
            // Started and parked under the start lock, so a call arriving
            // meanwhile waits for this process instead of starting another.
            let _one_at_a_time = me.starting.lock().await;
            match me.spawn_proc().await {
                Ok(p) => me.put_back(p),
                Err(e) => tracing::warn!("plugin {}: {e}", me.spec.name),
            }
        });
    }

    fn put_back(&self, p: Proc) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(p);
        }
    }

    /// An idle process that is still running (one that exited while idle,
    /// say after an idle timeout of its own, is reaped and skipped).
    fn take_idle(&self) -> Option<Proc> {
        loop {
            let mut p = self.idle.lock().ok().and_then(|mut i| i.pop())?;
            if matches!(p.child.try_wait(), Ok(None)) {
                return Some(p);
            }
        }
    }

    /// An idle process, or a new one. Processes start one at a time.
    async fn checkout(&self) -> PluginResult<Proc> {
        if let Some(p) = self.take_idle() {
            return Ok(p);
        }
        let _one_at_a_time = self.starting.lock().await;
        // One may have been parked while we waited (the warm-up).
        if let Some(p) = self.take_idle() {
            return Ok(p);
        }
        self.spawn_proc().await
    }

    /// Start a process and complete the handshake. Callers hold `starting`.
    async fn spawn_proc(&self) -> PluginResult<Proc> {
        if let Some(f) = self.fatal.lock().ok().and_then(|f| f.clone()) {
            return Err(err(f));
        }
        let spec = &self.spec;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        cmd.env("STOQ_PLUGIN_NAME", &spec.name);
        let mut child = cmd.spawn().map_err(|e| {
            err(format!(
                "cannot start external plugin {} ({}): {e}",
                spec.name,
                spec.command_line()
            ))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(err("child process without pipes"));
        };
        // Copy the plugin's stderr to ours, line by line, with its name.
        let name = spec.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
        let mut proc = Proc {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            classes: Vec::new(),
            content: ContentMode::Blob,
        };
        let hello = Message::new(json!({
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "plugin_name": spec.name,
            "classes": spec.classes.iter().map(|c| c.as_str().to_lowercase()).collect::<Vec<_>>(),
            "options": spec.options,
            "plugin_dir": spec.cwd,
            "stoq_version": STOQ_COMPAT_VERSION,
        }));
        let start = async {
            wire::write_message(&mut proc.stdin, &hello)
                .await
                .map_err(|e| (false, format!("cannot send hello: {e}")))?;
            loop {
                let msg = wire::read_message(&mut proc.stdout, spec.max_message_bytes)
                    .await
                    .map_err(|e| (false, describe_read_error(e, "start-up")))?;
                match msg.kind() {
                    "log" => log_message(&spec.name, &msg),
                    "ready" => return Ok(msg),
                    "fatal" => {
                        let text = msg
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("fatal error without a message");
                        return Err((true, text.to_string()));
                    }
                    other => return Err((false, format!("expected \"ready\", got {other:?}"))),
                }
            }
        };
        let ready = match tokio::time::timeout(HELLO_TIMEOUT, start).await {
            Ok(Ok(ready)) => ready,
            Ok(Err((fatal, reason))) => {
                let status = exit_status(&mut proc.child).await;
                let text = format!(
                    "external plugin {} failed to start{status}: {reason}",
                    spec.name
                );
                if fatal {
                    if let Ok(mut f) = self.fatal.lock() {
                        *f = Some(text.clone());
                    }
                }
                return Err(err(text));
            }
            Err(_) => {
                return Err(err(format!(
                    "external plugin {} did not answer hello within {}s",
                    spec.name,
                    HELLO_TIMEOUT.as_secs()
                )))
            }
        };
        let protocol = ready.get("protocol").and_then(Value::as_u64).unwrap_or(0);
        if protocol != PROTOCOL_VERSION {
            return Err(err(format!(
                "external plugin {} speaks protocol {protocol}; this stoq speaks {PROTOCOL_VERSION}",
                spec.name
            )));
        }
        proc.classes = ready
            .get("classes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        proc.content = match ready.get("content").and_then(Value::as_str) {
            Some("file") => ContentMode::File,
            _ => ContentMode::Blob,
        };
        tracing::debug!(
            "started external plugin {} (pid {})",
            spec.name,
            proc.child.id().unwrap_or(0)
        );
        Ok(proc)
    }

    /// Make one call. `on_put` receives the items of `put` messages (for
    /// `ingest`); other calls treat `put` as a protocol error.
    async fn call(
        &self,
        class: PluginClass,
        method: &str,
        args: Value,
        blobs: Vec<Bytes>,
        queue: Option<&ProviderQueue>,
    ) -> PluginResult<(Value, Vec<Bytes>)> {
        let name = &self.spec.name;
        // Providers run for the whole run: they get a process of their own
        // so the pool stays free for the plugin's other roles.
        let _permit = if queue.is_some() {
            None
        } else {
            Some(
                self.slots
                    .acquire()
                    .await
                    .map_err(|_| err("plugin is shutting down"))?,
            )
        };
        let mut proc = self.checkout().await?;
        let wanted = class.as_str().to_lowercase();
        if !proc.classes.contains(&wanted) {
            let has = proc.classes.join(", ");
            self.put_back(proc);
            return Err(err(format!(
                "external plugin {name} does not implement {wanted} (it implements: {has})"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // "type", "id" and "method" first, then the arguments: simple
        // plugins (the shell example) find them without a JSON parser.
        let mut header = serde_json::Map::new();
        header.insert("type".into(), json!("call"));
        header.insert("id".into(), json!(id));
        header.insert("method".into(), json!(method));
        if let Value::Object(m) = args {
            header.extend(m);
        }
        // File mode: the content goes through temporary files instead.
        let mut files = Vec::new();
        let blobs = if proc.content == ContentMode::File && !blobs.is_empty() {
            for b in &blobs {
                let f = tempfile::Builder::new()
                    .prefix("stoq-content-")
                    .tempfile()
                    .map_err(|e| err(format!("cannot create a content file: {e}")))?;
                tokio::fs::write(f.path(), b)
                    .await
                    .map_err(|e| err(format!("cannot write a content file: {e}")))?;
                files.push(f);
            }
            let paths: Vec<String> = files
                .iter()
                .map(|f| f.path().display().to_string())
                .collect();
            let mut v = Value::Object(header);
            blob_refs_to_paths(&mut v, &paths);
            header = match v {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            Vec::new()
        } else {
            blobs
        };
        let msg = Message { header, blobs };
        let outcome = self.exchange(&mut proc, method, id, &msg, queue).await;
        drop(files);
        match outcome {
            Ok(Exchange::Return(v, b)) => {
                self.put_back(proc);
                Ok((v, b))
            }
            Ok(Exchange::Raise(text)) => {
                self.put_back(proc);
                Err(err(text))
            }
            Err(Broken::Exited(reason)) => {
                let status = exit_status(&mut proc.child).await;
                Err(err(format!(
                    "external plugin {name} exited{status} during {method}{reason}"
                )))
            }
            Err(Broken::Protocol(detail)) => {
                // Killed when `proc` drops here.
                Err(err(format!(
                    "external plugin {name} broke the protocol during {method}: {detail}"
                )))
            }
        }
    }

    async fn exchange(
        &self,
        proc: &mut Proc,
        method: &str,
        id: u64,
        msg: &Message,
        queue: Option<&ProviderQueue>,
    ) -> Result<Exchange, Broken> {
        if let Err(e) = wire::write_message(&mut proc.stdin, msg).await {
            return Err(Broken::Exited(format!(" (writing the call: {e})")));
        }
        loop {
            let m = match wire::read_message(&mut proc.stdout, self.spec.max_message_bytes).await {
                Ok(m) => m,
                Err(ReadError::Eof) => return Err(Broken::Exited(String::new())),
                Err(ReadError::Io(e)) => return Err(Broken::Exited(format!(" ({e})"))),
                Err(ReadError::Protocol(p)) => return Err(Broken::Protocol(p)),
            };
            let answer_id = m.get("id").and_then(Value::as_u64);
            match m.kind() {
                "log" => log_message(&self.spec.name, &m),
                "return" | "raise" if answer_id != Some(id) => {
                    return Err(Broken::Protocol(format!(
                        "answer for call {answer_id:?}, expected {id}"
                    )))
                }
                "return" => {
                    let value = m.header.get("value").cloned().unwrap_or(Value::Null);
                    return Ok(Exchange::Return(value, m.blobs));
                }
                "raise" => {
                    let text = m
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("error without a message")
                        .to_string();
                    return Ok(Exchange::Raise(text));
                }
                "put" => {
                    let Some(queue) = queue else {
                        return Err(Broken::Protocol(format!("\"put\" during {method}")));
                    };
                    let item = m.get("item").cloned().unwrap_or(Value::Null);
                    match wire::provider_items(&item, &m.blobs) {
                        Ok(items) => {
                            for it in items {
                                if queue.put(it).await.is_err() {
                                    return Err(Broken::Protocol("the run has stopped".into()));
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("plugin {}: item ignored: {e}", self.spec.name)
                        }
                    }
                }
                other => {
                    return Err(Broken::Protocol(format!(
                        "unexpected message type {other:?}"
                    )))
                }
            }
        }
    }

    fn bad(&self, method: &str, detail: String) -> PluginError {
        err(format!(
            "external plugin {} answered {method} with an invalid value: {detail}",
            self.spec.name
        ))
    }

    async fn payload_call(
        &self,
        class: PluginClass,
        method: &str,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<(Value, Vec<Bytes>)> {
        let args = json!({
            "payload": wire::payload_arg(payload, 0),
            "request": wire::request_arg(request),
        });
        self.call(class, method, args, vec![payload.content.clone()], None)
            .await
    }
}

enum Exchange {
    Return(Value, Vec<Bytes>),
    Raise(String),
}

enum Broken {
    Exited(String),
    Protocol(String),
}

fn describe_read_error(e: ReadError, when: &str) -> String {
    match e {
        ReadError::Eof => format!("it closed its output during {when}"),
        ReadError::Io(e) => format!("reading its output during {when}: {e}"),
        ReadError::Protocol(p) => format!("protocol error during {when}: {p}"),
    }
}

/// " (exit status N)" once the process has gone, or "" if it is still there.
async fn exit_status(child: &mut Child) -> String {
    match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
        Ok(Ok(status)) => format!(" ({status})"),
        _ => String::new(),
    }
}

fn log_message(plugin: &str, msg: &Message) {
    let text = msg.get("message").and_then(Value::as_str).unwrap_or("");
    match msg.get("level").and_then(Value::as_str).unwrap_or("info") {
        "debug" => tracing::debug!("[{plugin}] {text}"),
        "warning" | "warn" => tracing::warn!("[{plugin}] {text}"),
        "error" | "critical" => tracing::error!("[{plugin}] {text}"),
        _ => tracing::info!("[{plugin}] {text}"),
    }
}

/// Replace every `{"blob": i}` in `v` by `{"path": paths[i]}`.
fn blob_refs_to_paths(v: &mut Value, paths: &[String]) {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(i) = m.get("blob").and_then(Value::as_u64) {
                    if let Some(p) = paths.get(i as usize) {
                        *v = json!({ "path": p });
                        return;
                    }
                }
            }
            for (_, child) in m.iter_mut() {
                blob_refs_to_paths(child, paths);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| blob_refs_to_paths(i, paths)),
        _ => {}
    }
}

#[async_trait]
impl Worker for ExternalPlugin {
    async fn scan(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let (v, blobs) = self
            .payload_call(PluginClass::Worker, "scan", payload, request)
            .await?;
        wire::worker_response(&v, &blobs, &self.spec.name, payload.id())
            .map_err(|e| self.bad("scan", e))
    }
}

#[async_trait]
impl Dispatcher for ExternalPlugin {
    async fn get_dispatches(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<DispatcherResponse>> {
        let (v, _) = self
            .payload_call(PluginClass::Dispatcher, "get_dispatches", payload, request)
            .await?;
        wire::dispatcher_response(&v, &self.spec.name, payload.id())
            .map_err(|e| self.bad("get_dispatches", e))
    }
}

#[async_trait]
impl Archiver for ExternalPlugin {
    async fn archive(
        &self,
        payload: &Payload,
        request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        let (v, _) = self
            .payload_call(PluginClass::Archiver, "archive", payload, request)
            .await?;
        wire::archiver_response(&v, &self.spec.name, Some(payload.id()))
            .map_err(|e| self.bad("archive", e))
    }

    async fn get(&self, task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        let args = json!({ "task": task });
        let (v, blobs) = self
            .call(PluginClass::Archiver, "get", args, Vec::new(), None)
            .await?;
        if v.is_null() {
            return Ok(None);
        }
        let (content, meta) = wire::new_payload(&v, &blobs).map_err(|e| self.bad("get", e))?;
        Ok(Some(Payload::with_meta(content, meta)))
    }
}

#[async_trait]
impl Decorator for ExternalPlugin {
    async fn decorate(&self, response: &StoqResponse) -> PluginResult<Option<DecoratorResponse>> {
        let args = json!({ "response": response });
        let (v, _) = self
            .call(PluginClass::Decorator, "decorate", args, Vec::new(), None)
            .await?;
        wire::decorator_response(&v, &self.spec.name).map_err(|e| self.bad("decorate", e))
    }
}

#[async_trait]
impl Connector for ExternalPlugin {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let args = json!({ "response": response });
        self.call(PluginClass::Connector, "save", args, Vec::new(), None)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Provider for ExternalPlugin {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        self.call(
            PluginClass::Provider,
            "ingest",
            json!({}),
            Vec::new(),
            Some(&queue),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_references_become_paths() {
        let mut v = json!({"payload": {"content": {"blob": 0}, "results": {"blob": "x"}}, "n": [{"blob": 1}]});
        blob_refs_to_paths(&mut v, &["/a".into(), "/b".into()]);
        assert_eq!(
            v,
            json!({"payload": {"content": {"path": "/a"}, "results": {"blob": "x"}}, "n": [{"path": "/b"}]})
        );
    }
}
