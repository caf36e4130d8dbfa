//! `b64decode` worker: base64-decode the whole payload.
//!
//! ASCII whitespace (line breaks included) is ignored and the `=` padding
//! may be missing. A payload that is not base64 (any other character
//! outside the standard alphabet, a misplaced `=`, a dangling final
//! character) or that decodes to nothing gives no results (`Ok(None)`),
//! unlike the Python plugin, which dropped every non-alphabet byte and
//! decoded whatever remained.
//!
//! Results: none. Extracted: one payload, the decoded bytes (no
//! `extra_data`).

use std::sync::Arc;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use stoq_core::{
    async_trait, ExtractedPayload, ModuleDescriptor, Payload, PluginClass, PluginInstance,
    PluginResult, Request, Worker, WorkerResponse,
};

/// Standard alphabet; padding optional; non-zero trailing bits accepted (as
/// Python's `b64decode`).
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decode `data` as base64, whitespace ignored. `None` when it is not
/// base64 or holds nothing.
pub fn decode(data: &[u8]) -> Option<Vec<u8>> {
    // Reject binary data at its first foreign byte, before copying.
    let alphabet = |b: &u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') || b.is_ascii_whitespace()
    };
    if !data.iter().all(alphabet) {
        return None;
    }
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return None;
    }
    let decoded = ENGINE.decode(&compact).ok()?;
    (!decoded.is_empty()).then_some(decoded)
}

/// The `b64decode` worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct B64Decode;

#[async_trait]
impl Worker for B64Decode {
    async fn scan(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<WorkerResponse>> {
        let content = payload.content.clone();
        let decoded = crate::util::run_cpu(content.len(), move || decode(&content)).await?;
        Ok(decoded.map(|d| WorkerResponse {
            extracted: vec![ExtractedPayload::new(d)],
            ..WorkerResponse::default()
        }))
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new("b64decode", &[PluginClass::Worker], |_cfg| {
        Ok(PluginInstance::new().worker(Arc::new(B64Decode)))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description("Decode a base64-encoded payload; the decoded content is extracted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_and_without_padding_and_whitespace() {
        assert_eq!(decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(decode(b"aGk").unwrap(), b"hi");
        assert_eq!(decode(b" aG\r\nk=\n").unwrap(), b"hi");
        assert_eq!(decode(b"aGl=").unwrap(), b"hi");
    }

    #[test]
    fn rejects_what_is_not_base64() {
        for bad in [
            &b""[..],
            b"   \n",
            b"a",
            b"aGk*",
            b"a=Gk",
            b"aGk==aGk=",
            b"\x00\xff",
            b"-_-_",
            b"====",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
