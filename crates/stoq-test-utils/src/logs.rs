//! [`LogCapture`]: collects `tracing` events, as the reference tests'
//! `assertLogs` does.
//!
//! The capture is installed as the *thread's* default subscriber, so it sees
//! events emitted on the test's own thread: everything a `#[tokio::test]`
//! body awaits directly (the engine's own log lines, plugin loading), but not
//! events emitted inside tasks spawned onto other runtime threads.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub level: Level,
    pub target: String,
    pub message: String,
}

/// The captured events of one test. Dropping it stops the capture.
pub struct LogCapture {
    records: Arc<Mutex<Vec<LogRecord>>>,
    _guard: DefaultGuard,
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture")
            .field("records", &self.records())
            .finish()
    }
}

impl LogCapture {
    /// Start capturing every event (all levels) on this thread.
    pub fn start() -> LogCapture {
        install_global_fallback();
        let records = Arc::new(Mutex::new(Vec::new()));
        let subscriber = CaptureSubscriber {
            records: records.clone(),
            next_span: AtomicU64::new(1),
        };
        let guard = tracing::subscriber::set_default(subscriber);
        LogCapture {
            records,
            _guard: guard,
        }
    }

    /// Every event so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The messages of the events at `level`, in order.
    pub fn messages(&self, level: Level) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.level == level)
            .map(|r| r.message)
            .collect()
    }
}

/// A global subscriber that records nothing but answers "sometimes" for
/// every callsite. Without it, a callsite first reached on a thread with no
/// capture (tests run in parallel) can have its interest cached as "never"
/// just as another thread starts a capture, and that capture then misses the
/// event. "Sometimes" makes every event ask the current thread's subscriber.
struct Fallback;

impl Subscriber for Fallback {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn install_global_fallback() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Fails harmlessly when the test binary installed its own.
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Fallback);
    });
}

struct CaptureSubscriber {
    records: Arc<Mutex<Vec<LogRecord>>>,
    next_span: AtomicU64,
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: Vec<String>,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push(format!("{}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={value:?}", field.name()));
        }
    }
}

impl Subscriber for CaptureSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        let mut message = v.message;
        for f in v.fields {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(&f);
        }
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(LogRecord {
                level: *event.metadata().level(),
                target: event.metadata().target().to_string(),
                message,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
