//! The one digest the engine itself needs: SHA-256, to deduplicate
//! extracted payloads.

use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_reference_string() {
        assert_eq!(
            super::hex(&super::sha256(b"The quick brown fox")),
            "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9"
        );
    }
}
