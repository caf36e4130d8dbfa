//! `rabbitmq`: an AMQP 0-9-1 queue (RabbitMQ) as a work queue, and results
//! published back to the broker.
//!
//! - **Provider**: consumes the durable queue `queue` with manual
//!   acknowledgements and a prefetch of `prefetch` messages (the bound on
//!   work in flight per worker). A message is acknowledged only once every
//!   connector has saved its result; a message that could not be scanned or
//!   saved is returned to the queue (`nack`, requeue) after `retry_delay`
//!   seconds; a message that cannot be decoded is rejected without requeue
//!   (dead-lettered when the queue has a dead-letter exchange). When the
//!   connection drops (a broker restart), the provider reconnects with
//!   back-off; the broker re-delivers what was not acknowledged.
//! - **Connector**: publishes each response (persistent, JSON) to
//!   `results_exchange` with `results_routing_key`, and waits for the
//!   broker's publisher confirm before reporting it saved; with
//!   `publish_archive`, one `{archiver: locator}` message per archived
//!   payload instead.
//!
//! Message bodies the provider accepts: with content type
//! `application/json` (or `application/vnd.stoq+json`), a JSON message (see
//! [`crate::common::decode_json_message`]); anything else is the raw
//! payload, and string headers become its `extra_data`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value};
use stoq_core::{
    async_trait, Connector, ModuleDescriptor, OptionDoc, OptionError, PluginClass, PluginConfig,
    PluginInstance, PluginResult, Provider, ProviderItem, ProviderQueue, StoqResponse,
};
use uuid::Uuid;

use crate::common::{self, perr, Backoff};

/// The plugin's name.
pub const NAME: &str = "rabbitmq";

const SCAN_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8a41_0d5e_27c3_5b19_b6f4_13e8_90ad_7c52);

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "amqp_url",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "broker URL (amqp:// only; vhost %2f is /)",
    ),
    OptionDoc::new("queue", "stoq", "provider: durable queue to consume"),
    OptionDoc::new(
        "prefetch",
        "16",
        "provider: unacknowledged messages per worker, at most (bounded in-flight work)",
    ),
    OptionDoc::new(
        "retry_delay",
        "5",
        "provider: seconds before a message that failed is returned to the queue",
    ),
    OptionDoc::new(
        "exit_when_empty",
        "false",
        "provider: end when the queue is empty and nothing is in flight (batch jobs, tests)",
    ),
    OptionDoc::new(
        "idle_exit",
        "2",
        "provider: with exit_when_empty, seconds without a delivery before the queue is checked",
    ),
    OptionDoc::new(
        "results_exchange",
        "",
        "connector: exchange results are published to (\"\" = the default exchange)",
    ),
    OptionDoc::new(
        "results_routing_key",
        "stoq-results",
        "connector: routing key (with the default exchange: a durable queue of that name is declared)",
    ),
    OptionDoc::new(
        "publish_archive",
        "false",
        "connector: publish one {archiver: locator} message per archived payload instead of the results",
    ),
    OptionDoc::new(
        "retries",
        "10",
        "connector: publish attempts while the broker is unreachable (back-off up to 5 s)",
    ),
];

/// The typed options.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    pub url: String,
    pub queue: String,
    pub prefetch: u16,
    pub retry_delay: Duration,
    pub exit_when_empty: bool,
    pub idle_exit: Duration,
    pub results_exchange: String,
    pub results_routing_key: String,
    pub publish_archive: bool,
    pub retries: u32,
}

impl RabbitOptions {
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let url = cfg.string("amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f");
        cfg.parse_with("amqp_url", |v| {
            v.parse::<lapin::uri::AMQPUri>()
                .map(|_| ())
                .map_err(|e| format!("not an AMQP URL: {e}"))
        })?;
        let prefetch: u16 = cfg.number("prefetch", 16)?;
        cfg.parse_with("prefetch", |_| {
            if prefetch == 0 {
                Err("must be at least 1".to_string())
            } else {
                Ok(())
            }
        })?;
        Ok(RabbitOptions {
            url,
            queue: cfg.string("queue", "stoq"),
            prefetch,
            retry_delay: cfg
                .seconds("retry_delay")?
                .unwrap_or(Duration::from_secs(5)),
            exit_when_empty: cfg.bool("exit_when_empty", false)?,
            idle_exit: cfg.seconds("idle_exit")?.unwrap_or(Duration::from_secs(2)),
            results_exchange: cfg.string("results_exchange", ""),
            results_routing_key: cfg.string("results_routing_key", "stoq-results"),
            publish_archive: cfg.bool("publish_archive", false)?,
            retries: cfg.number::<u32>("retries", 10)?.max(1),
        })
    }
}

/// The `rabbitmq` provider and connector.
pub struct RabbitMq {
    name: String,
    opts: RabbitOptions,
    /// The connector's connection and confirm-mode channel.
    publisher: tokio::sync::Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for RabbitMq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMq")
            .field("queue", &self.opts.queue)
            .finish_non_exhaustive()
    }
}

fn is_json(props: &BasicProperties) -> bool {
    props
        .content_type()
        .as_ref()
        .map(|c| {
            let c = c.as_str().to_ascii_lowercase();
            c.starts_with("application/json") || c.starts_with("application/vnd.stoq+json")
        })
        .unwrap_or(false)
}

/// Turn a delivery into provider items.
pub fn decode_delivery(
    data: &[u8],
    props: &BasicProperties,
    scan_id: String,
) -> Result<Vec<ProviderItem>, String> {
    let mut items = if is_json(props) {
        common::decode_json_message(data)?
    } else {
        let mut extra = Map::new();
        if let Some(h) = props.headers() {
            for (k, v) in h.inner() {
                let v = match v {
                    AMQPValue::LongString(s) => Value::String(s.to_string()),
                    AMQPValue::ShortString(s) => Value::String(s.to_string()),
                    AMQPValue::Boolean(b) => Value::Bool(*b),
                    AMQPValue::LongLongInt(i) => Value::from(*i),
                    AMQPValue::LongInt(i) => Value::from(*i),
                    _ => continue,
                };
                extra.insert(k.to_string(), v);
            }
        }
        vec![ProviderItem::Request(common::payload_request(
            data.to_vec(),
            extra,
            Vec::new(),
            stoq_core::RequestMeta::default(),
        ))]
    };
    if let [ProviderItem::Request(r)] = items.as_mut_slice() {
        r.scan_id = Some(scan_id);
    }
    Ok(items)
}

impl RabbitMq {
    pub fn new(name: &str, opts: RabbitOptions) -> Self {
        RabbitMq {
            name: name.to_string(),
            opts,
            publisher: tokio::sync::Mutex::new(None),
        }
    }

    async fn connect(&self) -> lapin::Result<(Connection, Channel)> {
        let conn = Connection::connect(&self.opts.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        Ok((conn, channel))
    }

    /// The scan id of a message: its `message_id` property when it has one
    /// (so a re-delivered message gets the same id), else a new one.
    fn scan_id(&self, props: &BasicProperties) -> String {
        match props.message_id() {
            Some(id) if !id.as_str().is_empty() => Uuid::new_v5(
                &SCAN_ID_NAMESPACE,
                format!("{}\0{}", self.opts.queue, id.as_str()).as_bytes(),
            )
            .to_string(),
            _ => stoq_core::new_id(),
        }
    }

    /// One connection's worth of consuming. Returns `Ok(true)` when done
    /// (drained, with `exit_when_empty`, or the engine stopped), `Ok(false)`
    /// or an error when the connection was lost.
    async fn consume(
        &self,
        queue: &ProviderQueue,
        in_flight: &Arc<AtomicUsize>,
        closed: &Arc<AtomicBool>,
    ) -> lapin::Result<bool> {
        let o = &self.opts;
        let (conn, channel) = self.connect().await?;
        channel
            .basic_qos(o.prefetch, BasicQosOptions::default())
            .await?;
        channel
            .queue_declare(
                o.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let tag = format!("stoq-{}", common::default_consumer_name());
        let mut consumer = channel
            .basic_consume(
                o.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(
            "{}: consuming queue {} (prefetch {})",
            self.name,
            o.queue,
            o.prefetch
        );
        loop {
            let next = if o.exit_when_empty {
                match tokio::time::timeout(o.idle_exit, consumer.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        if in_flight.load(Ordering::SeqCst) == 0 {
                            let q = channel
                                .queue_declare(
                                    o.queue.as_str().into(),
                                    QueueDeclareOptions {
                                        passive: true,
                                        ..QueueDeclareOptions::default()
                                    },
                                    FieldTable::default(),
                                )
                                .await?;
                            if q.message_count() == 0 && in_flight.load(Ordering::SeqCst) == 0 {
                                let _ = conn.close(200, "done".into()).await;
                                return Ok(true);
                            }
                        }
                        continue;
                    }
                }
            } else {
                consumer.next().await
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(e),
                None => return Ok(false),
            };
            let scan_id = self.scan_id(&delivery.properties);
            let items = match decode_delivery(&delivery.data, &delivery.properties, scan_id) {
                Ok(items) => items,
                Err(why) => {
                    tracing::warn!(
                        "{}: message {} cannot be used ({why}); rejected",
                        self.name,
                        delivery.delivery_tag
                    );
                    let _ = delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await;
                    continue;
                }
            };
            in_flight.fetch_add(1, Ordering::SeqCst);
            let mut receipts = Vec::new();
            for item in items {
                match queue.put_tracked(item).await {
                    Ok(r) => receipts.push(r),
                    Err(_) => {
                        closed.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
            let acker = delivery.acker;
            let name = self.name.clone();
            let in_flight = in_flight.clone();
            let retry_delay = o.retry_delay;
            let all_queued = !closed.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let all_saved = crate::common::wait_all_saved(
                    receipts,
                    &format!("{name}: a message"),
                    "it goes back to the queue",
                )
                .await;
                let saved = all_queued && all_saved;
                let result = if saved {
                    acker.ack(BasicAckOptions::default()).await
                } else {
                    tokio::time::sleep(retry_delay).await;
                    acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                };
                if let Err(e) = result {
                    // The channel is gone; the broker re-delivers the
                    // message (at-least-once).
                    tracing::debug!("{name}: cannot acknowledge: {e}");
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
            if closed.load(Ordering::SeqCst) {
                return Ok(true);
            }
        }
    }

    async fn publish(&self, bodies: &[String]) -> PluginResult<()> {
        let o = &self.opts;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last = String::new();
        for attempt in 0..o.retries {
            if attempt > 0 {
                backoff.wait().await;
            }
            let channel = {
                let mut guard = self.publisher.lock().await;
                let usable = guard
                    .as_ref()
                    .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected());
                if !usable {
                    let setup = async {
                        let (conn, ch) = self.connect().await?;
                        ch.confirm_select(ConfirmSelectOptions::default()).await?;
                        if o.results_exchange.is_empty() && !o.publish_archive {
                            ch.queue_declare(
                                o.results_routing_key.as_str().into(),
                                QueueDeclareOptions {
                                    durable: true,
                                    ..QueueDeclareOptions::default()
                                },
                                FieldTable::default(),
                            )
                            .await?;
                        }
                        Ok::<_, lapin::Error>((conn, ch))
                    };
                    match setup.await {
                        Ok(pair) => *guard = Some(pair),
                        Err(e) => {
                            last = e.to_string();
                            tracing::warn!("{}: cannot connect to the broker: {e}", self.name);
                            continue;
                        }
                    }
                }
                match guard.as_ref() {
                    Some((_, ch)) => ch.clone(),
                    None => continue,
                }
            };
            let (exchange, key) = if o.publish_archive {
                ("", o.queue.as_str())
            } else {
                (o.results_exchange.as_str(), o.results_routing_key.as_str())
            };
            let mut ok = true;
            for body in bodies {
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2);
                let confirm = match channel
                    .basic_publish(
                        exchange.into(),
                        key.into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        props,
                    )
                    .await
                {
                    Ok(c) => c.await,
                    Err(e) => Err(e),
                };
                match confirm {
                    Ok(c) if c.is_ack() => {}
                    Ok(_) => {
                        last = "the broker did not confirm the message".into();
                        ok = false;
                        break;
                    }
                    Err(e) => {
                        last = e.to_string();
                        tracing::warn!("{}: publish failed: {e}; reconnecting", self.name);
                        *self.publisher.lock().await = None;
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Ok(());
            }
        }
        Err(perr(
            &self.name,
            format!("publish failed after {} attempts: {last}", o.retries),
        ))
    }
}

#[async_trait]
impl Provider for RabbitMq {
    async fn ingest(&self, queue: ProviderQueue) -> PluginResult<()> {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.consume(&queue, &in_flight, &closed).await {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!("{}: the consumer was cancelled; reconnecting", self.name)
                }
                Err(e) => {
                    tracing::warn!("{}: broker connection lost: {e}; reconnecting", self.name)
                }
            }
            if closed.load(Ordering::SeqCst) {
                break;
            }
            backoff.wait().await;
            if backoff.attempts() > 3 {
                // Reset now and then so a long outage keeps trying at the cap.
                backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(5));
            }
        }
        while in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Connector for RabbitMq {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let bodies = if self.opts.publish_archive {
            common::archiver_messages(response)
        } else {
            vec![stoq_core::to_json_compact(response)]
        };
        if bodies.is_empty() {
            return Ok(());
        }
        self.publish(&bodies).await
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        NAME,
        &[PluginClass::Provider, PluginClass::Connector],
        |cfg| {
            let plugin = Arc::new(RabbitMq::new(cfg.name(), RabbitOptions::from_config(cfg)?));
            Ok(PluginInstance::new()
                .provider(plugin.clone())
                .connector(plugin))
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "RabbitMQ (AMQP 0-9-1) work queue with manual acks after save, prefetch and reconnection; results published with confirms",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = RabbitOptions::from_config(&PluginConfig::new(NAME, [("prefetch", "4")])).unwrap();
        assert_eq!(o.prefetch, 4);
        assert_eq!(o.queue, "stoq");
        for (k, v) in [
            ("prefetch", "0"),
            ("amqp_url", "http://x"),
            ("retry_delay", "-1"),
        ] {
            let e = RabbitOptions::from_config(&PluginConfig::new(NAME, [(k, v)])).unwrap_err();
            assert_eq!(e.option, k);
        }
    }

    #[test]
    fn raw_bodies_become_payloads_with_header_metadata() {
        let mut headers = FieldTable::default();
        headers.insert("filename".into(), AMQPValue::LongString("a.bin".into()));
        let props = BasicProperties::default().with_headers(headers);
        let items = decode_delivery(b"raw", &props, "id-1".into()).unwrap();
        let [ProviderItem::Request(r)] = items.as_slice() else {
            panic!()
        };
        assert_eq!(&r.payloads[0].content[..], b"raw");
        assert_eq!(r.payloads[0].meta().extra_data["filename"], "a.bin");
        assert_eq!(r.scan_id.as_deref(), Some("id-1"));
        let json_props = BasicProperties::default().with_content_type("application/json".into());
        assert!(decode_delivery(b"raw", &json_props, "x".into()).is_err());
    }
}
