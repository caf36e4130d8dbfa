//! `entropy` worker: Shannon entropy of the payload, in bits per byte.
//!
//! Output: `{"entropy": <f64>}`, from 0.0 (one byte value repeated, or an
//! empty payload) to 8.0 (every byte value equally frequent). The whole
//! payload is counted; payloads of 1 MiB and more are counted on the
//! blocking thread pool (`stoq_core::run_cpu`), off the async runtime.

use std::sync::Arc;

use serde_json::json;
use stoq_core::{
    async_trait, run_cpu, ModuleDescriptor, Payload, PluginClass, PluginInstance, PluginResult,
    Request, Worker, WorkerResponse,
};

/// Occurrences of each byte value.
pub fn byte_histogram(data: &[u8]) -> [u64; 256] {
    // Four tables, so consecutive equal bytes do not wait on one another's
    // increment.
    let mut t = [[0u64; 256]; 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        t[0][usize::from(c[0])] += 1;
        t[1][usize::from(c[1])] += 1;
        t[2][usize::from(c[2])] += 1;
        t[3][usize::from(c[3])] += 1;
    }
    for &b in chunks.remainder() {
        t[0][usize::from(b)] += 1;
    }
    let mut out = [0u64; 256];
    for (i, o) in out.iter_mut().enumerate() {
        *o = t[0][i] + t[1][i] + t[2][i] + t[3][i];
    }
    out
}

/// Shannon entropy of `data` in bits per byte: `-sum(p * log2(p))` over the
/// byte values present, `p` being a value's share of the bytes. 0.0 for
/// empty data.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let n = data.len() as f64;
    let mut h = 0.0f64;
    for &c in byte_histogram(data).iter().filter(|&&c| c > 0) {
        let p = c as f64 / n;
        h -= p * p.log2();
    }
    h
}

/// The `entropy` worker.
#[derive(Debug, Default)]
pub struct EntropyWorker;

#[async_trait]
impl Worker for EntropyWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let entropy = run_cpu(content.len(), move || shannon_entropy(&content)).await?;
        tracing::debug!(payload = payload.id(), entropy, "entropy");
        Ok(Some(WorkerResponse::with_results(
            json!({ "entropy": entropy }),
        )))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("entropy", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(EntropyWorker)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Shannon entropy of the payload, in bits per byte")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The public plugin's test vectors.
    #[test]
    fn reference_vectors() {
        assert_eq!(shannon_entropy(&[b'a'; 256]), 0.0);
        assert_eq!(shannon_entropy(&b"abc".repeat(256)), 1.584962500721156);
        assert_eq!(shannon_entropy(&b"abc".repeat(256)), 3f64.log2());
        assert_eq!(shannon_entropy(b""), 0.0);
    }

    #[test]
    fn extremes_and_histogram() {
        let all: Vec<u8> = (0..=255u8).cycle().take(256 * 7 + 3).collect();
        let h = byte_histogram(&all);
        assert_eq!(h.iter().sum::<u64>(), all.len() as u64);
        assert_eq!((h[0], h[2], h[3]), (8, 8, 7));
        let uniform: Vec<u8> = (0..=255u8).cycle().take(256 * 4).collect();
        assert_eq!(shannon_entropy(&uniform), 8.0);
        assert_eq!(shannon_entropy(b"ab"), 1.0);
    }
}
