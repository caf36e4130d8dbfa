//! `redis-queue`: a Redis Stream as a work queue shared by many workers.
//!
//! - **Provider**: reads the stream `redis_queue` through the consumer group
//!   `redis_group` (`XREADGROUP`), at most `max_in_flight` entries at a
//!   time. An entry is acknowledged (`XACK`) only once every connector has
//!   saved its result; an entry whose scan failed or was not saved stays
//!   pending. Entries left pending for `claim_idle` seconds (their worker
//!   died, or failed them) are claimed by a live worker (`XAUTOCLAIM`) and
//!   scanned again. An entry delivered more than `max_deliveries` times
//!   (one that fails every time, or crashes its worker) goes to the
//!   dead-letter stream and is acknowledged instead of being scanned
//!   again. Each entry's scan id is derived from the stream and entry id,
//!   so a re-delivered entry produces the same scan id.
//! - **Connector**: `XADD results_stream * scan_id <id> result <json>` (or
//!   `RPUSH results_list <json>`); with `publish_archive`, one message per
//!   (payload, archiver) `{"<archiver>": {<locator>}}` to `redis_queue`
//!   instead, for a next stage. With `dedup_ttl`, a scan id is published
//!   once (a `SET NX` marker and the publish in one Lua script), so a
//!   re-delivered entry does not publish a second result.
//! - **Archiver**: `SET <archive_prefix><sha256> <content> NX EX
//!   <archive_ttl>` → `{"redis_key", "sha256"}`, which `get` reads back;
//!   with `archive_enqueue`, the locator is also queued on `redis_queue`.
//!
//! Stream entry formats the provider accepts:
//! - `msg` = a JSON message (see [`crate::common::decode_json_message`]):
//!   a payload inline in base64, or archiver tasks;
//! - `content` = the raw payload, with optional `extra_data` (JSON object),
//!   `request_meta` (JSON object) and `dispatch_to` (comma list).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncConnectionConfig, Value as RValue};
use serde_json::{json, Map, Value};
use stoq_core::{
    async_trait, Archiver, ArchiverResponse, Connector, ModuleDescriptor, OptionDoc, OptionError,
    Payload, PayloadMeta, PluginClass, PluginConfig, PluginInstance, PluginResult, Provider,
    ProviderItem, ProviderQueue, Request, StoqResponse,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::common::{self, perr, Backoff};

/// The plugin's name.
pub const NAME: &str = "redis-queue";

/// Namespace of the scan ids given to stream entries.
const SCAN_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2f0c_61d8_44b7_5a0e_9c3b_7d15_e8a2_6c49);

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("redis_host", "127.0.0.1", "Redis host (ignored when redis_url is set)"),
    OptionDoc::new("redis_port", "6379", "Redis port (ignored when redis_url is set)"),
    OptionDoc::new(
        "redis_url",
        "",
        "redis://[:password@]host:port[/db]; overrides redis_host/redis_port",
    ),
    OptionDoc::new(
        "redis_queue",
        "stoq",
        "stream the provider reads (and publish_archive/archive_enqueue write)",
    ),
    OptionDoc::new("redis_group", "stoq", "provider: consumer group"),
    OptionDoc::new(
        "redis_consumer",
        "",
        "provider: consumer name, unique per worker (default <hostname>-<pid>)",
    ),
    OptionDoc::new(
        "start_id",
        "0",
        "provider: where a new consumer group starts: 0 = the whole stream, $ = new entries only",
    ),
    OptionDoc::new(
        "claim_idle",
        "60",
        "provider: seconds an entry stays pending before another worker claims it (longer than your longest scan)",
    ),
    OptionDoc::new(
        "max_in_flight",
        "16",
        "provider: entries read but not yet acknowledged, at most",
    ),
    OptionDoc::new(
        "read_block",
        "2",
        "provider: seconds one XREADGROUP waits for new entries",
    ),
    OptionDoc::new(
        "exit_when_empty",
        "false",
        "provider: end when the stream has no undelivered entries and the group nothing pending (batch jobs, tests)",
    ),
    OptionDoc::new(
        "dead_letter",
        "",
        "provider: stream that undecodable entries, and entries over max_deliveries, are copied to before they are acknowledged (default <redis_queue>:dead)",
    ),
    OptionDoc::new(
        "max_deliveries",
        "5",
        "provider: an entry delivered more times than this without being saved goes to dead_letter and is acknowledged (0: retried for ever)",
    ),
    OptionDoc::new(
        "results_stream",
        "stoq-results",
        "connector: stream results are added to (fields scan_id, result)",
    ),
    OptionDoc::new(
        "results_list",
        "",
        "connector: RPUSH results to this list instead of the stream",
    ),
    OptionDoc::new(
        "results_maxlen",
        "0",
        "connector: trim the results stream to about this many entries (0: no trimming)",
    ),
    OptionDoc::new(
        "publish_archive",
        "false",
        "connector: publish one {archiver: locator} message per archived payload to redis_queue instead of the results",
    ),
    OptionDoc::new(
        "dedup_ttl",
        "86400",
        "connector: seconds a published scan id is remembered so a re-delivered scan is not published twice (0: off)",
    ),
    OptionDoc::new(
        "archive_prefix",
        "stoq:payload:",
        "archiver: key prefix of archived payloads (key = prefix + sha256)",
    ),
    OptionDoc::new(
        "archive_ttl",
        "86400",
        "archiver: seconds an archived payload is kept (0: no expiry)",
    ),
    OptionDoc::new(
        "archive_enqueue",
        "false",
        "archiver: also queue the payload's locator on redis_queue (to feed workers with `stoq scan -A`)",
    ),
    OptionDoc::new(
        "retries",
        "10",
        "connector/archiver: attempts per command while Redis is unreachable (back-off up to 5 s)",
    ),
    OptionDoc::new(
        "max_connections",
        "15",
        "accepted for compatibility; one multiplexed connection is used",
    ),
];

/// The typed options.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub url: String,
    pub queue: String,
    pub group: String,
    pub consumer: String,
    pub start_id: String,
    pub claim_idle: Duration,
    pub max_in_flight: usize,
    pub read_block: Duration,
    pub exit_when_empty: bool,
    pub dead_letter: String,
    pub max_deliveries: u64,
    pub results_stream: String,
    pub results_list: Option<String>,
    pub results_maxlen: u64,
    pub publish_archive: bool,
    pub dedup_ttl: u64,
    pub archive_prefix: String,
    pub archive_ttl: u64,
    pub archive_enqueue: bool,
    pub retries: u32,
}

impl RedisOptions {
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let url = match cfg.get_str("redis_url").map(str::trim) {
            Some(u) if !u.is_empty() => {
                cfg.parse_with("redis_url", |v| {
                    redis::Client::open(v.trim())
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })?;
                u.to_string()
            }
            _ => {
                let host = cfg.non_empty("redis_host", "127.0.0.1")?;
                let port: u16 = cfg.number("redis_port", 6379)?;
                format!("redis://{host}:{port}/")
            }
        };
        let queue = cfg.non_empty("redis_queue", "stoq")?;
        let consumer = match cfg.get_str("redis_consumer").map(str::trim) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => common::default_consumer_name(),
        };
        let positive = |key: &str, default: f64| -> Result<Duration, OptionError> {
            let v: f64 = cfg.number(key, default)?;
            cfg.parse_with(key, |_| {
                if v.is_finite() && v > 0.0 {
                    Ok(())
                } else {
                    Err("must be a positive number of seconds".into())
                }
            })?;
            Ok(Duration::from_secs_f64(v))
        };
        let max_in_flight: usize = cfg.number("max_in_flight", 16)?;
        cfg.parse_with("max_in_flight", |_| {
            if (1..=10_000).contains(&max_in_flight) {
                Ok(())
            } else {
                Err("must be between 1 and 10000".into())
            }
        })?;
        let dead_letter = match cfg.get_str("dead_letter").map(str::trim) {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => format!("{queue}:dead"),
        };
        Ok(RedisOptions {
            url,
            group: cfg.non_empty("redis_group", "stoq")?,
            consumer,
            start_id: cfg.non_empty("start_id", "0")?,
            claim_idle: positive("claim_idle", 60.0)?,
            max_in_flight,
            read_block: positive("read_block", 2.0)?,
            exit_when_empty: cfg.bool("exit_when_empty", false)?,
            dead_letter,
            max_deliveries: cfg.number("max_deliveries", 5)?,
            results_stream: cfg.non_empty("results_stream", "stoq-results")?,
            results_list: cfg
                .get_str("results_list")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            results_maxlen: cfg.number("results_maxlen", 0)?,
            publish_archive: cfg.bool("publish_archive", false)?,
            dedup_ttl: cfg.number("dedup_ttl", 86_400)?,
            archive_prefix: cfg.string("archive_prefix", "stoq:payload:"),
            archive_ttl: cfg.number("archive_ttl", 86_400)?,
            archive_enqueue: cfg.bool("archive_enqueue", false)?,
            retries: cfg.number::<u32>("retries", 10)?.max(1),
            queue,
        })
    }
}

/// The scan id of a stream entry.
pub fn scan_id_for_entry(stream: &str, entry_id: &str) -> String {
    let mut name = Vec::with_capacity(stream.len() + entry_id.len() + 1);
    name.extend_from_slice(stream.as_bytes());
    name.push(0);
    name.extend_from_slice(entry_id.as_bytes());
    Uuid::new_v5(&SCAN_ID_NAMESPACE, &name).to_string()
}

/// Publish once per scan id: KEYS[1] = marker, KEYS[2] = target;
/// ARGV = ttl, mode ("stream"|"list"), maxlen, scan_id, field, bodies...
const PUBLISH_SCRIPT: &str = r#"
if tonumber(ARGV[1]) > 0 then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return 0
  end
end
for i = 6, #ARGV do
  if ARGV[2] == 'list' then
    redis.call('RPUSH', KEYS[2], ARGV[i])
  elseif tonumber(ARGV[3]) > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'scan_id', ARGV[4], ARGV[5], ARGV[i])
  else
    redis.call('XADD', KEYS[2], '*', 'scan_id', ARGV[4], ARGV[5], ARGV[i])
  end
end
return 1
"#;

/// The `redis-queue` provider, connector and archiver.
pub struct RedisQueue {
    name: String,
    opts: RedisOptions,
    client: redis::Client,
    /// The connection shared by the connector and the archiver.
    shared: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn connection_config(read_block: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(read_block + Duration::from_secs(30)))
}

impl RedisQueue {
    pub fn new(name: &str, opts: RedisOptions) -> Result<Self, String> {
        let client = redis::Client::open(opts.url.as_str()).map_err(|e| e.to_string())?;
        Ok(RedisQueue {
            name: name.to_string(),
            opts,
            client,
            shared: tokio::sync::Mutex::new(None),
        })
    }

    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.client
            .get_multiplexed_async_connection_with_config(&connection_config(self.opts.read_block))
            .await
    }

    /// Run `f` on the shared connection; on a connection error reconnect
    /// with back-off, `retries` attempts in all.
    async fn with_retries<T, F, Fut>(&self, what: &str, f: F) -> PluginResult<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last = String::new();
        for attempt in 0..self.opts.retries {
            if attempt > 0 {
                backoff.wait().await;
            }
            let con = {
                let mut guard = self.shared.lock().await;
                match guard.as_ref() {
                    Some(c) => c.clone(),
                    None => match self.connect().await {
                        Ok(c) => {
                            *guard = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            last = e.to_string();
                            tracing::warn!("{}: cannot connect to Redis: {e}", self.name);
                            continue;
                        }
                    },
                }
            };
            match f(con).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last = e.to_string();
                    if is_connection_error(&e) {
                        tracing::warn!("{}: {what}: {e}; reconnecting", self.name);
                        *self.shared.lock().await = None;
                    } else {
                        return Err(perr(&self.name, format!("{what}: {e}")));
                    }
                }
            }
        }
        Err(perr(
            &self.name,
            format!(
                "{what}: failed after {} attempts: {last}",
                self.opts.retries
            ),
        ))
    }

    /// Publish `bodies` (once per scan id when dedup is on).
    async fn publish(
        &self,
        target: &str,
        list: bool,
        scan_id: &str,
        field: &str,
        bodies: &[String],
    ) -> PluginResult<bool> {
        let marker = format!("stoq:published:{target}:{scan_id}");
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUBLISH_SCRIPT)
            .arg(2)
            .arg(&marker)
            .arg(target)
            .arg(self.opts.dedup_ttl)
            .arg(if list { "list" } else { "stream" })
            .arg(self.opts.results_maxlen)
            .arg(scan_id)
            .arg(field);
        for b in bodies {
            cmd.arg(b.as_str());
        }
        let published: i64 = self
            .with_retries("publish", |mut con| {
                let cmd = cmd.clone();
                async move { cmd.query_async(&mut con).await }
            })
            .await?;
        Ok(published == 1)
    }
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
        )
        || e.to_string().contains("LOADING")
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

/// Turn a stream entry into provider items.
pub fn decode_entry(stream: &str, entry: &StreamId) -> Result<Vec<ProviderItem>, String> {
    let field = |k: &str| -> Option<Vec<u8>> {
        entry
            .map
            .get(k)
            .and_then(|v| redis::from_redis_value_ref::<Vec<u8>>(v).ok())
    };
    let scan_id = scan_id_for_entry(stream, &entry.id);
    let mut items = if let Some(msg) = field("msg") {
        common::decode_json_message(&msg)?
    } else if let Some(content) = field("content") {
        let extra = match field("extra_data") {
            None => Map::new(),
            Some(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                _ => return Err("extra_data is not a JSON object".into()),
            },
        };
        let request_meta = match field("request_meta") {
            None => stoq_core::RequestMeta::default(),
            Some(b) => {
                let v: Value = serde_json::from_slice(&b)
                    .map_err(|e| format!("request_meta is not JSON: {e}"))?;
                common::request_meta_from(Some(&v))?
            }
        };
        let dispatch = field("dispatch_to")
            .map(|b| stoq_core::options::split_list(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        vec![ProviderItem::Request(common::payload_request(
            content,
            extra,
            dispatch,
            request_meta,
        ))]
    } else {
        return Err("the entry has neither a msg nor a content field".into());
    };
    // One entry, one scan id: a re-delivered entry is saved under the same
    // id. An entry with several archiver tasks gives each its own.
    let n = items.len();
    for (i, item) in items.iter_mut().enumerate() {
        if let ProviderItem::Request(r) = item {
            r.scan_id = Some(if n == 1 {
                scan_id.clone()
            } else {
                scan_id_for_entry(stream, &format!("{}#{i}", entry.id))
            });
        }
    }
    Ok(items)
}

/// Collects entry ids to acknowledge and acknowledges them in batches,
/// reconnecting when Redis goes away. Ends when every sender is gone and
/// everything has been acknowledged (or given up on: those entries stay
/// pending and are claimed again; at-least-once).
async fn acker(
    name: String,
    client: redis::Client,
    opts: RedisOptions,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
    let mut con: Option<MultiplexedConnection> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if con.is_none() {
                match client
                    .get_multiplexed_async_connection_with_config(&connection_config(
                        Duration::ZERO,
                    ))
                    .await
                {
                    Ok(c) => con = Some(c),
                    Err(e) => tracing::warn!("{name}: acknowledger cannot connect: {e}"),
                }
            }
            if let Some(c) = con.as_mut() {
                let r: redis::RedisResult<i64> = redis::cmd("XACK")
                    .arg(&opts.queue)
                    .arg(&opts.group)
                    .arg(&batch)
                    .query_async(c)
                    .await;
                match r {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!("{name}: XACK failed: {e}");
                        con = None;
                    }
                }
            }
            if attempts >= 60 {
                tracing::error!(
                    "{name}: could not acknowledge {} entries; they stay pending and will be scanned again",
                    batch.len()
                );
                break;
            }
            backoff.wait().await;
        }
    }
}

/// Where the provider's read loop is.
struct ReadState {
    /// Entries of an earlier life of this consumer name were read.
    own_pending_done: bool,
    /// XAUTOCLAIM cursor, and when the last full claim pass ended.
    claim_cursor: String,
    last_claim: Option<Instant>,
}

impl RedisQueue {
    async fn ensure_group(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let r: redis::RedisResult<RValue> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.opts.queue)
            .arg(&self.opts.group)
            .arg(&self.opts.start_id)
            .arg("MKSTREAM")
            .query_async(con)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The next entries for this consumer: its own pending ones (first
    /// call), then stale entries of others (every `claim_idle`/2), then
    /// new ones (blocking up to `read_block`). The flag says the entries
    /// were delivered before (pending or claimed).
    async fn next_entries(
        &self,
        con: &mut MultiplexedConnection,
        state: &mut ReadState,
        count: usize,
    ) -> redis::RedisResult<(Vec<StreamId>, bool)> {
        let o = &self.opts;
        if !state.own_pending_done {
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&o.group)
                .arg(&o.consumer)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&o.queue)
                .arg("0")
                .query_async(con)
                .await?;
            let ids = flatten(reply);
            // Fewer than asked: nothing more of ours is pending.
            if ids.len() < count {
                state.own_pending_done = true;
            }
            if !ids.is_empty() {
                tracing::info!(
                    "{}: resuming {} entries pending for consumer {}",
                    self.name,
                    ids.len(),
                    o.consumer
                );
                return Ok((ids, true));
            }
        }
        let claim_every = o.claim_idle / 2;
        if state
            .last_claim
            .is_none_or(|t| t.elapsed() >= claim_every.max(Duration::from_millis(200)))
        {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&o.queue)
                .arg(&o.group)
                .arg(&o.consumer)
                .arg(o.claim_idle.as_millis() as u64)
                .arg(&state.claim_cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(con)
                .await?;
            state.claim_cursor = reply.next_stream_id;
            if state.claim_cursor == "0-0" {
                state.last_claim = Some(Instant::now());
            }
            for id in &reply.deleted_ids {
                tracing::warn!(
                    "{}: pending entry {id} was deleted from the stream before it was scanned",
                    self.name
                );
            }
            if !reply.claimed.is_empty() {
                tracing::info!(
                    "{}: claimed {} entries idle for over {:?}",
                    self.name,
                    reply.claimed.len(),
                    o.claim_idle
                );
                return Ok((reply.claimed, true));
            }
        }
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&o.group)
            .arg(&o.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(o.read_block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&o.queue)
            .arg(">")
            .query_async(con)
            .await?;
        Ok((flatten(reply), false))
    }

    /// How many times each of `entries` (pending for this consumer) has
    /// been delivered, from `XPENDING`'s extended form.
    async fn delivery_counts(
        &self,
        con: &mut MultiplexedConnection,
        entries: &[StreamId],
    ) -> redis::RedisResult<HashMap<String, u64>> {
        // XREADGROUP and XAUTOCLAIM both list entries in id order.
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(HashMap::new());
        };
        // Entries of ours in that range that are still being scanned are
        // listed too.
        let reply: RValue = redis::cmd("XPENDING")
            .arg(&self.opts.queue)
            .arg(&self.opts.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len() + self.opts.max_in_flight)
            .arg(&self.opts.consumer)
            .query_async(con)
            .await?;
        let mut counts = HashMap::new();
        if let RValue::Array(rows) = reply {
            for row in rows {
                let RValue::Array(fields) = row else { continue };
                let id = fields
                    .first()
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
                let n = fields
                    .get(3)
                    .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
                if let (Some(id), Some(n)) = (id, n) {
                    counts.insert(id, n);
                }
            }
        }
        Ok(counts)
    }

    /// Nothing undelivered (the last read came back empty) and nothing
    /// pending in the whole group.
    async fn group_is_drained(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
        let summary: RValue = redis::cmd("XPENDING")
            .arg(&self.opts.queue)
            .arg(&self.opts.group)
            .query_async(con)
            .await?;
        let pending = match summary {
            RValue::Array(v) => v
                .first()
                .and_then(|x| redis::from_redis_value_ref::<u64>(x).ok())
                .unwrap_or(0),
            _ => 0,
        };
        Ok(pending == 0)
    }

    /// Copy an undecodable entry to the dead-letter stream (best effort).
    async fn dead_letter(&self, con: &mut MultiplexedConnection, entry: &StreamId, reason: &str) {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.opts.dead_letter)
            .arg("*")
            .arg("source_id")
            .arg(&entry.id)
            .arg("error")
            .arg(reason);
        for (k, v) in &entry.map {
            if let Ok(b) = redis::from_redis_value_ref::<Vec<u8>>(v) {
                cmd.arg(k).arg(b);
            }
        }
        if let Err(e) = cmd.query_async::<RValue>(con).await {
            tracing::warn!(
                "{}: cannot write to {}: {e}",
                self.name,
                self.opts.dead_letter
            );
        }
    }
}

fn flatten(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default()
}

/// Entry ids in flight in this process (so a claim pass does not start a
/// second scan of an entry this worker is still scanning).
type InFlight = Arc<Mutex<HashSet<String>>>;

#[async_trait]
impl Provider for RedisQueue {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        let o = &self.opts;
        tracing::info!(
            "{}: consuming stream {} as {}/{} ({})",
            self.name,
            o.queue,
            o.group,
            o.consumer,
            redacted(&o.url)
        );
        let permits = Arc::new(Semaphore::new(o.max_in_flight));
        let in_flight: InFlight = Arc::default();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<String>();
        let acker = tokio::spawn(acker(
            self.name.clone(),
            self.client.clone(),
            o.clone(),
            ack_rx,
        ));
        let queue_closed = Arc::new(AtomicBool::new(false));
        let mut reader: Option<MultiplexedConnection> = None;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut state = ReadState {
            own_pending_done: false,
            claim_cursor: "0-0".into(),
            last_claim: None,
        };
        loop {
            if queue_closed.load(Ordering::Relaxed) {
                break;
            }
            let mut con = match reader.take() {
                Some(c) => c,
                None => {
                    let attempt = async {
                        let mut c = self.connect().await?;
                        self.ensure_group(&mut c).await?;
                        Ok::<_, redis::RedisError>(c)
                    };
                    match attempt.await {
                        Ok(c) => {
                            if backoff.attempts() > 0 {
                                tracing::info!("{}: reconnected to Redis", self.name);
                            }
                            backoff.reset();
                            c
                        }
                        Err(e) => {
                            tracing::warn!("{}: cannot reach Redis: {e}; retrying", self.name);
                            backoff.wait().await;
                            continue;
                        }
                    }
                }
            };
            // Wait for room, then take all the room there is.
            let Ok(first) = permits.clone().acquire_owned().await else {
                break;
            };
            let mut held: Vec<OwnedSemaphorePermit> = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                held.push(p);
            }
            let (entries, redelivered) =
                match self.next_entries(&mut con, &mut state, held.len()).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!("{}: reading {}: {e}; reconnecting", self.name, o.queue);
                        drop(held);
                        backoff.wait().await;
                        continue;
                    }
                };
            if entries.is_empty() {
                drop(held);
                if o.exit_when_empty
                    && permits.available_permits() == o.max_in_flight
                    && matches!(self.group_is_drained(&mut con).await, Ok(true))
                {
                    break;
                }
                reader = Some(con);
                continue;
            }
            let deliveries = match (redelivered, o.max_deliveries) {
                (true, 1..) => self
                    .delivery_counts(&mut con, &entries)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!("{}: reading delivery counts: {e}", self.name);
                        HashMap::new()
                    }),
                _ => HashMap::new(),
            };
            for entry in entries {
                let permit = held.pop();
                if !in_flight
                    .lock()
                    .map(|mut s| s.insert(entry.id.clone()))
                    .unwrap_or(true)
                {
                    // Already being scanned here (a claim pass picked it up).
                    continue;
                }
                let delivered = deliveries.get(&entry.id).copied().unwrap_or(1);
                let decoded = if delivered > o.max_deliveries && o.max_deliveries > 0 {
                    Err(format!(
                        "delivered {delivered} times without being saved (max_deliveries {})",
                        o.max_deliveries
                    ))
                } else {
                    decode_entry(&o.queue, &entry)
                };
                let items = match decoded {
                    Ok(items) => items,
                    Err(reason) => {
                        tracing::warn!(
                            "{}: entry {} cannot be used ({reason}); moved to {}",
                            self.name,
                            entry.id,
                            o.dead_letter
                        );
                        self.dead_letter(&mut con, &entry, &reason).await;
                        let _ = ack_tx.send(entry.id.clone());
                        if let Ok(mut s) = in_flight.lock() {
                            s.remove(&entry.id);
                        }
                        continue;
                    }
                };
                let mut receipts = Vec::with_capacity(items.len());
                for item in items {
                    match queue.put_tracked(item).await {
                        Ok(r) => receipts.push(r),
                        Err(_) => {
                            queue_closed.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                let ack_tx = ack_tx.clone();
                let in_flight = in_flight.clone();
                let name = self.name.clone();
                let id = entry.id.clone();
                tokio::spawn(async move {
                    let all_saved = crate::common::wait_all_saved(
                        receipts,
                        &format!("{name}: entry {id}"),
                        "left pending for another attempt",
                    )
                    .await;
                    if all_saved {
                        let _ = ack_tx.send(id.clone());
                    }
                    if let Ok(mut s) = in_flight.lock() {
                        s.remove(&id);
                    }
                    drop(permit);
                });
            }
            reader = Some(con);
        }
        // Let the scans in flight finish and their acknowledgements go out.
        let _ = permits.acquire_many(o.max_in_flight as u32).await;
        drop(ack_tx);
        let _ = acker.await;
        Ok(())
    }
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Connector
// ---------------------------------------------------------------------------

#[async_trait]
impl Connector for RedisQueue {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let o = &self.opts;
        if o.publish_archive {
            let bodies = common::archiver_messages(response);
            if bodies.is_empty() {
                return Ok(());
            }
            self.publish(&o.queue, false, &response.scan_id, "msg", &bodies)
                .await?;
            return Ok(());
        }
        let body = stoq_core::to_json_compact(response);
        let (target, list) = match &o.results_list {
            Some(l) => (l.as_str(), true),
            None => (o.results_stream.as_str(), false),
        };
        let published = self
            .publish(target, list, &response.scan_id, "result", &[body])
            .await?;
        if !published {
            tracing::debug!(
                "{}: scan {} was published before; not again",
                self.name,
                response.scan_id
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Archiver
// ---------------------------------------------------------------------------

#[async_trait]
impl Archiver for RedisQueue {
    async fn archive(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        let sha = common::hex(&payload.sha256());
        let key = format!("{}{sha}", self.opts.archive_prefix);
        let ttl = self.opts.archive_ttl;
        let content = payload.content.clone();
        let k = key.clone();
        self.with_retries("archive", move |mut con| {
            let mut set = redis::cmd("SET");
            set.arg(&k).arg(&content[..]).arg("NX");
            if ttl > 0 {
                set.arg("EX").arg(ttl);
            }
            let mut expire = redis::cmd("EXPIRE");
            expire.arg(&k).arg(ttl);
            async move {
                let stored: RValue = set.query_async(&mut con).await?;
                if ttl > 0 && stored == RValue::Nil {
                    // Stored before: keep it as long as a new one would be.
                    let _: RValue = expire.query_async(&mut con).await?;
                }
                Ok(())
            }
        })
        .await?;
        let locator = json!({"redis_key": key, "sha256": sha});
        if self.opts.archive_enqueue {
            let mut msg = Map::new();
            msg.insert(self.name.clone(), locator.clone());
            let body = Value::Object(msg).to_string();
            let q = self.opts.queue.clone();
            self.with_retries("enqueue", move |mut con| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&q).arg("*").arg("msg").arg(&body);
                async move { cmd.query_async::<RValue>(&mut con).await.map(|_| ()) }
            })
            .await?;
        }
        Ok(Some(ArchiverResponse::with_results(locator)))
    }

    async fn get(&self, task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        let results = task
            .results
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| perr(&self.name, "the task has no results object"))?;
        let key = results
            .get("redis_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| perr(&self.name, "the task has no \"redis_key\" string"))?
            .to_string();
        let k = key.clone();
        let data: Option<Vec<u8>> = self
            .with_retries("get", move |mut con| {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&k);
                async move { cmd.query_async(&mut con).await }
            })
            .await?;
        let data = data.ok_or_else(|| {
            perr(
                &self.name,
                format!("{key} does not exist (expired, or never archived)"),
            )
        })?;
        let payload = Payload::with_meta(
            data,
            PayloadMeta {
                extra_data: results.clone(),
                ..PayloadMeta::default()
            },
        );
        if let Some(expected) = results.get("sha256").and_then(Value::as_str) {
            let actual = common::hex(&payload.sha256());
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(perr(
                    &self.name,
                    format!("{key} has sha256 {actual}, the task expects {expected}"),
                ));
            }
        }
        Ok(Some(payload))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        NAME,
        &[
            PluginClass::Provider,
            PluginClass::Archiver,
            PluginClass::Connector,
        ],
        |cfg| {
            let opts = RedisOptions::from_config(cfg)?;
            let plugin = Arc::new(
                RedisQueue::new(cfg.name(), opts).map_err(|e| perr(cfg.name(), e))?,
            );
            Ok(PluginInstance::new()
                .provider(plugin.clone())
                .archiver(plugin.clone())
                .connector(plugin))
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Redis Streams work queue (consumer groups, ack after save, claim of stale entries); results to a stream or list; payload archive with a TTL",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_defaults_and_errors() {
        let o =
            RedisOptions::from_config(&PluginConfig::new(NAME, [("redis_port", "16379")])).unwrap();
        assert_eq!(o.url, "redis://127.0.0.1:16379/");
        assert_eq!(o.queue, "stoq");
        assert_eq!(o.dead_letter, "stoq:dead");
        assert_eq!(o.max_deliveries, 5);
        assert_eq!(o.claim_idle, Duration::from_secs(60));
        assert!(!o.consumer.is_empty());
        let e =
            RedisOptions::from_config(&PluginConfig::new(NAME, [("claim_idle", "0")])).unwrap_err();
        assert_eq!(e.option, "claim_idle");
        let e = RedisOptions::from_config(&PluginConfig::new(NAME, [("max_in_flight", "0")]))
            .unwrap_err();
        assert_eq!(e.option, "max_in_flight");
        let e = RedisOptions::from_config(&PluginConfig::new(NAME, [("redis_url", "http://x")]))
            .unwrap_err();
        assert_eq!(e.option, "redis_url");
    }

    #[test]
    fn entries_decode_to_requests_with_stable_scan_ids() {
        let mut map = std::collections::HashMap::new();
        map.insert("content".to_string(), RValue::BulkString(b"abc".to_vec()));
        map.insert(
            "extra_data".to_string(),
            RValue::BulkString(br#"{"filename":"x"}"#.to_vec()),
        );
        let entry = StreamId {
            id: "1-0".into(),
            map,
            ..StreamId::default()
        };
        let items = decode_entry("q", &entry).unwrap();
        let ProviderItem::Request(r) = &items[0] else {
            panic!()
        };
        assert_eq!(&r.payloads[0].content[..], b"abc");
        assert_eq!(
            r.scan_id.as_deref(),
            Some(scan_id_for_entry("q", "1-0").as_str())
        );
        assert_ne!(scan_id_for_entry("q", "1-0"), scan_id_for_entry("q", "1-1"));
        let empty = StreamId {
            id: "2-0".into(),
            ..StreamId::default()
        };
        assert!(decode_entry("q", &empty).is_err());
    }

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(redacted("redis://:s3cret@h:1/"), "redis://***@h:1/");
        assert_eq!(redacted("redis://h:1/"), "redis://h:1/");
    }
}
