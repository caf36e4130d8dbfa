//! The layer around every plugin call: its own task (so a panic is caught
//! and CPU work can use another core), and a time limit.

use std::future::Future;
use std::time::Duration;

use stoq_core::PluginError;

/// Why a guarded plugin call produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The plugin returned an error.
    Error(String),
    /// The plugin panicked; the panic message.
    Panic(String),
    /// The call did not finish in time.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error(m) => f.write_str(m),
            Failure::Panic(m) => write!(f, "plugin panicked: {m}"),
            Failure::Timeout(d) => write!(f, "timed out after {}s", format_secs(*d)),
        }
    }
}

fn format_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Run `fut` as its own task with a time limit. On timeout the task is
/// aborted at its next await point; work it handed to a blocking thread
/// finishes in the background and its result is dropped.
pub async fn guarded<T, F>(timeout: Duration, fut: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PluginError>> + Send + 'static,
{
    let handle = tokio::spawn(fut);
    let abort = handle.abort_handle();
    match tokio::time::timeout(timeout, handle).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(Failure::Error(e.to_string())),
        Ok(Err(join)) => match join.try_into_panic() {
            Ok(panic) => Err(Failure::Panic(panic_message(panic.as_ref()))),
            Err(join) => Err(Failure::Error(format!("task failed: {join}"))),
        },
        Err(_) => {
            abort.abort();
            Err(Failure::Timeout(timeout))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn value_error_panic_timeout() {
        let t = Duration::from_secs(5);
        assert_eq!(guarded(t, async { Ok::<_, PluginError>(7) }).await, Ok(7));
        assert_eq!(
            guarded(t, async { Err::<(), _>(PluginError::new("bad")) }).await,
            Err(Failure::Error("bad".into()))
        );
        let r = guarded(t, async move {
            if t.as_secs() == 5 {
                panic!("boom {}", 1);
            }
            Ok::<(), PluginError>(())
        })
        .await;
        assert_eq!(r, Err(Failure::Panic("boom 1".into())));
        let r = guarded(Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<(), PluginError>(())
        })
        .await;
        assert_eq!(r, Err(Failure::Timeout(Duration::from_millis(50))));
        assert_eq!(r.unwrap_err().to_string(), "timed out after 0.05s");
    }
}
