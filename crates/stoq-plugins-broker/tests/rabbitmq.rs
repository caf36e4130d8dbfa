//! `rabbitmq` against a real RabbitMQ ($STOQ_TEST_AMQP_URL).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{engine, run_to_end, service, unique, Flaky};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use stoq_core::serde_json::{self, Value};

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

async fn declare(ch: &Channel, q: &str) {
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn publish(ch: &Channel, q: &str, body: &[u8], id: &str) {
    ch.basic_publish(
        "".into(),
        q.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(id.into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Drain a results queue: every message body as JSON.
async fn drain(ch: &Channel, q: &str, expect: usize) -> Vec<Value> {
    let mut consumer = ch
        .basic_consume(
            q.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let wait = if out.len() >= expect {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(20)
        };
        match tokio::time::timeout(wait, consumer.next()).await {
            Ok(Some(Ok(d))) => {
                out.push(serde_json::from_slice(&d.data).unwrap());
                d.acker.ack(BasicAckOptions::default()).await.unwrap();
            }
            _ => break,
        }
    }
    out
}

fn opts(url: &str, q: &str, results: &str) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("rabbitmq", "amqp_url", url.to_string()),
        ("rabbitmq", "queue", q.to_string()),
        ("rabbitmq", "results_routing_key", results.to_string()),
        ("rabbitmq", "exit_when_empty", "true".into()),
        ("rabbitmq", "idle_exit", "0.5".into()),
        ("rabbitmq", "retry_delay", "0.2".into()),
        ("rabbitmq", "prefetch", "8".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_to_queue_with_acks_after_save() {
    let Some(url) = service("STOQ_TEST_AMQP_URL", "queue_to_queue_with_acks_after_save") else {
        return;
    };
    let (q, out) = (unique("in"), unique("out"));
    let (_conn, ch) = channel(&url).await;
    declare(&ch, &q).await;
    for i in 0..40 {
        publish(&ch, &q, format!("message {i}").as_bytes(), &format!("m{i}")).await;
    }
    // The second connector fails its first 3 saves: those messages go back
    // to the queue and are scanned again.
    let flaky = Arc::new(Flaky {
        fail_first: 3,
        ..Flaky::default()
    });
    let stoq = engine(
        flaky.clone(),
        &["rabbitmq"],
        &["rabbitmq", "flaky"],
        &[],
        &opts(&url, &q, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 43, "{summary:?}");
    assert_eq!(summary.unsaved, 3, "{summary:?}");
    let texts: BTreeSet<String> = flaky
        .saved
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.results[0].workers["len"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts.len(), 40);
    // Every message left the input queue (acknowledged).
    let left = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(left, 0);
    // The results queue holds a result for every message; the 3 rescanned
    // ones were published twice (at-least-once), with the same scan id
    // because the messages carry a message_id.
    let results = drain(&ch, &out, 43).await;
    assert_eq!(results.len(), 43);
    let ids: BTreeSet<&str> = results
        .iter()
        .map(|r| r["scan_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_messages_and_bad_messages() {
    let Some(url) = service("STOQ_TEST_AMQP_URL", "json_messages_and_bad_messages") else {
        return;
    };
    let (q, out) = (unique("in"), unique("out"));
    let (_conn, ch) = channel(&url).await;
    declare(&ch, &q).await;
    let json_props = BasicProperties::default().with_content_type("application/json".into());
    let msg = stoq_plugins_broker::common::encode_payload_message(
        b"inline json payload",
        &serde_json::Map::new(),
        None,
    );
    for body in [msg.as_bytes(), b"{not json"] {
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            body,
            json_props.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let stoq = engine(
        Arc::new(Flaky::default()),
        &["rabbitmq"],
        &["rabbitmq"],
        &[],
        &opts(&url, &q, &out),
    );
    let summary = run_to_end(&stoq).await;
    assert_eq!(summary.scanned, 1, "{summary:?}");
    let results = drain(&ch, &out, 1).await;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0]["results"][0]["workers"]["len"]["text"],
        "inline json payload"
    );
}
