//! `hash` worker: MD5, SHA-1, SHA-256 and SHA-512 of the payload.
//!
//! Output keys follow the public plugin (`sha256`, `md5`, `sha1`) plus
//! `sha512`. Large payloads are hashed on two threads (two digests each),
//! off the async runtime.

use std::sync::Arc;

use md5::Md5;
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use stoq_core::hashing::hex;
use stoq_core::{
    async_trait, blocking, ModuleDescriptor, Payload, PluginClass, PluginInstance, PluginResult,
    Request, Worker, WorkerResponse,
};

/// Below this size the digests are computed inline on one thread: spawning
/// costs more than it saves.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// The four digests, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

/// MD5 of `data`, lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// SHA-1 of `data`, lower-case hex.
pub fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SHA-512 of `data`, lower-case hex.
pub fn sha512_hex(data: &[u8]) -> String {
    hex(&Sha512::digest(data))
}

/// All four digests.
pub fn digests(data: &[u8]) -> Digests {
    digests_with(data, None)
}

/// All four digests, reusing a known SHA-256. Buffers of 1 MiB and more are
/// split over two threads: MD5 (+ SHA-256 when unknown) on one, SHA-1 +
/// SHA-512 on the other, which balances the work on CPUs with SHA
/// extensions.
pub fn digests_with(data: &[u8], known_sha256: Option<[u8; 32]>) -> Digests {
    let sha256 = |data: &[u8]| match known_sha256 {
        Some(h) => hex(&h),
        None => sha256_hex(data),
    };
    if data.len() < PARALLEL_THRESHOLD {
        return Digests {
            md5: md5_hex(data),
            sha1: sha1_hex(data),
            sha256: sha256(data),
            sha512: sha512_hex(data),
        };
    }
    let ((md5, sha256), (sha1, sha512)) = std::thread::scope(|s| {
        let other = s.spawn(|| (sha1_hex(data), sha512_hex(data)));
        let mine = (md5_hex(data), sha256(data));
        // The closures cannot panic on any input; compute inline if the
        // thread could not report back anyway.
        let theirs = other
            .join()
            .unwrap_or_else(|_| (sha1_hex(data), sha512_hex(data)));
        (mine, theirs)
    });
    Digests {
        md5,
        sha1,
        sha256,
        sha512,
    }
}

/// The `hash` worker.
#[derive(Debug, Default)]
pub struct HashWorker;

#[async_trait]
impl Worker for HashWorker {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        // The engine has usually computed the SHA-256 already (dedup).
        let known = payload.sha256_if_known();
        let content = payload.content.clone();
        let d = if content.len() < PARALLEL_THRESHOLD {
            digests_with(&content, known)
        } else {
            blocking(move || digests_with(&content, known)).await?
        };
        Ok(Some(WorkerResponse::with_results(json!({
            "sha256": d.sha256,
            "md5": d.md5,
            "sha1": d.sha1,
            "sha512": d.sha512,
        }))))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("hash", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(HashWorker)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Hash content: md5, sha1, sha256, sha512")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: stoQ's helper tests ("The quick brown fox") and the
    // public hash plugin's test ("This is a payload to hash").
    #[test]
    fn reference_vectors() {
        let d = digests(b"The quick brown fox");
        assert_eq!(d.md5, "a2004f37730b9445670a738fa0fc9ee5");
        assert_eq!(d.sha1, "c519c1a06cdbeb2bc499e22137fb48683858b345");
        assert_eq!(
            d.sha256,
            "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9"
        );
        assert_eq!(
            d.sha512,
            "015e6d23e760f612cca616c54f110cb12dd54213f1e046c7607081372402eff4936b379296ed549236020afb37bd3e728a044a4243754f095498c98bc24f77e0"
        );
        let d = digests(b"This is a payload to hash");
        assert_eq!(d.md5, "cfe671457bc475ef2f51cf12b1457475");
        assert_eq!(d.sha1, "f610f70b1464d97f7897fefd6420ffc904df5e4f");
        assert_eq!(
            d.sha256,
            "2fa284e62b11fea1226b35cdd726a7a56090853ed135240665ceb3939f631af7"
        );
    }

    #[test]
    fn parallel_path_matches_sequential() {
        let data: Vec<u8> = (0..(3 << 20))
            .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let d = digests(&data);
        assert_eq!(
            d,
            digests_with(&data, Some(stoq_core::hashing::sha256(&data)))
        );
        assert_eq!(d.md5, md5_hex(&data));
        assert_eq!(d.sha1, sha1_hex(&data));
        assert_eq!(d.sha256, sha256_hex(&data));
        assert_eq!(d.sha512, sha512_hex(&data));
    }

    #[tokio::test]
    async fn worker_output_keys_in_order() {
        let p = Payload::new(&b"The quick brown fox"[..]);
        let r = HashWorker
            .scan(&p, &Request::default())
            .await
            .unwrap()
            .unwrap();
        let obj = r.results.unwrap();
        let keys: Vec<&String> = obj.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["sha256", "md5", "sha1", "sha512"]);
        assert_eq!(obj["md5"], "a2004f37730b9445670a738fa0fc9ee5");
        assert!(r.extracted.is_empty());
    }
}
