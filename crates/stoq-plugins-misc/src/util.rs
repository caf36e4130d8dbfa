//! Small helpers shared by the plugins of this crate.

use stoq_core::{PluginConfig, PluginResult};

pub(crate) use stoq_core::run_cpu;

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    stoq_core::hashing::hex(&stoq_core::hashing::sha256(data))
}

/// A positive byte count option (plain integer).
pub(crate) fn byte_limit(cfg: &PluginConfig, key: &str, default: usize) -> PluginResult<usize> {
    Ok(cfg
        .parse_with(key, |v| match v.trim().parse::<usize>() {
            Ok(0) => Err("expected a positive number of bytes".to_string()),
            Ok(n) => Ok(n),
            Err(_) => Err("expected a positive number of bytes".to_string()),
        })?
        .unwrap_or(default))
}

/// Text for JSON: UTF-8 when valid, else each invalid sequence as U+FFFD.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Cut `s` to at most `max_chars` characters; tells whether it was cut.
pub(crate) fn truncate_chars(s: &mut String, max_chars: usize) -> bool {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => {
            s.truncate(idx);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = String::from("héllo");
        assert!(truncate_chars(&mut s, 2));
        assert_eq!(s, "hé");
        let mut s = String::from("ab");
        assert!(!truncate_chars(&mut s, 2));
        assert_eq!(s, "ab");
    }

    #[test]
    fn byte_limits() {
        let cfg = PluginConfig::new("p", [("max", "12"), ("zero", "0"), ("bad", "x")]);
        assert_eq!(byte_limit(&cfg, "max", 5).unwrap(), 12);
        assert_eq!(byte_limit(&cfg, "absent", 5).unwrap(), 5);
        let e = byte_limit(&cfg, "zero", 5).unwrap_err().to_string();
        assert!(e.contains("zero") && e.contains("\"0\""), "{e}");
        assert!(byte_limit(&cfg, "bad", 5).is_err());
    }
}
