//! Encrypted Office documents ([MS-OFFCRYPTO]): recognise the scheme and
//! decrypt with a list of known passwords, the way oletools does with
//! msoffcrypto-tool. Malware authors encrypt with Excel's built-in
//! password `VelvetSweatshop` (Excel opens such files without asking), so
//! the macros and links inside stay hidden from tools that do not try it.
//!
//! Supported:
//!
//! - OOXML in an OLE2 container (`EncryptionInfo` + `EncryptedPackage`):
//!   Agile encryption (version 4.4: AES with SHA-1/SHA-2 key derivation,
//!   4096-byte CBC segments) and Standard encryption (versions 3.2/4.2:
//!   AES-ECB, SHA-1 key derivation). Extensible encryption is recognised
//!   only.
//! - Excel 97-2003 (`FILEPASS` in the `Workbook` stream): RC4 (version
//!   1.1, MD5 key derivation) and RC4 CryptoAPI (versions 2-4.2, SHA-1).
//!   XOR obfuscation is recognised only.
//! - Word 97-2003 (`fEncrypted` in the FIB, the header at the start of the
//!   table stream): RC4 and RC4 CryptoAPI, the `WordDocument`, table and
//!   `Data` streams. XOR obfuscation is recognised only.
//! - PowerPoint 97-2003 (a CryptSession10Container named by the last
//!   UserEditAtom): RC4 CryptoAPI, every persist object of the
//!   `PowerPoint Document` stream.
//!
//! Every field is bounds-checked; the key derivation's spin count is
//! capped, since a crafted file could otherwise ask for billions of hash
//! rounds.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aes::cipher::{BlockCipherDecrypt, KeyInit};
use md5::Md5;
use regex::Regex;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use stoq_core::{OptionDoc, PluginConfig};

use crate::util::{decode_base64_text, u16_at, u32_at, xml_attrs};

/// The passwords tried by default: Excel's and PowerPoint's built-in
/// passwords, then the short ones oletools tries.
pub const DEFAULT_PASSWORDS: &[&str] = &[
    "VelvetSweatshop",
    "/01Hannes Ruescher/01",
    "123",
    "1234",
    "12345",
    "123456",
    "4321",
];

/// Key derivations asking for more hash rounds than this are refused
/// (Office writes 100,000).
const MAX_SPIN_COUNT: u32 = 1_000_000;

/// What is known of an encrypted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// `agile`, `standard`, `extensible`, `rc4`, `rc4_cryptoapi` or `xor`.
    pub method: &'static str,
    /// The password that opened it (`None`: not decrypted).
    pub password: Option<String>,
    /// Why it was not decrypted, when it was not.
    pub note: Option<String>,
}

impl Encryption {
    /// `{method, decrypted, password}`, plus `note` when not decrypted.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "method": self.method,
            "decrypted": self.password.is_some(),
            "password": self.password,
        });
        if let Some(note) = &self.note {
            v["note"] = serde_json::json!(note);
        }
        v
    }

    fn opened(method: &'static str, password: &str) -> Self {
        Encryption {
            method,
            password: Some(password.to_string()),
            note: None,
        }
    }

    fn locked(method: &'static str, note: impl Into<String>) -> Self {
        Encryption {
            method,
            password: None,
            note: Some(note.into()),
        }
    }
}

/// An OLE2 document (Excel, Word or PowerPoint 97-2003) after a
/// decryption attempt: the streams that replace the encrypted ones, by
/// name (none when no password opened it).
#[derive(Debug)]
pub struct Decrypted {
    pub encryption: Encryption,
    pub streams: Vec<(&'static str, Vec<u8>)>,
}

impl Decrypted {
    fn locked(method: &'static str, note: impl Into<String>) -> Self {
        Decrypted {
            encryption: Encryption::locked(method, note),
            streams: Vec::new(),
        }
    }

    fn from_locked(encryption: Encryption) -> Self {
        Decrypted {
            encryption,
            streams: Vec::new(),
        }
    }

    /// The decrypted content of stream `name`, taken out.
    pub fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        let i = self.streams.iter().position(|(n, _)| *n == name)?;
        Some(self.streams.swap_remove(i).1)
    }
}

/// The `passwords` option of the plugins that decrypt (`ole`, `olevba`,
/// `mraptor`); its default is [`DEFAULT_PASSWORDS`] joined by commas.
pub const PASSWORDS_OPTION: OptionDoc = OptionDoc::new(
    "passwords",
    "VelvetSweatshop,/01Hannes Ruescher/01,123,1234,12345,123456,4321",
    "comma list of passwords tried on encrypted documents, in order (empty: none)",
);

/// The value of the `passwords` option: a comma list (blank: none), or
/// [`DEFAULT_PASSWORDS`] when it is not set.
pub fn passwords_option(cfg: &PluginConfig) -> Vec<String> {
    cfg.get_str("passwords")
        .map_or_else(default_passwords, password_list)
}

fn none_worked(n: usize) -> String {
    format!("none of the {n} passwords tried opened it")
}

// ------------------------------------------------------------ primitives

/// RC4 keystream generator.
struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i as u8;
        }
        let mut j = 0u8;
        for i in 0..256 {
            j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
            s.swap(i, usize::from(j));
        }
        Rc4 { s, i: 0, j: 0 }
    }

    fn apply(&mut self, data: &mut [u8]) {
        for b in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[usize::from(self.i)]);
            self.s.swap(usize::from(self.i), usize::from(self.j));
            let k = self.s[usize::from(
                self.s[usize::from(self.i)].wrapping_add(self.s[usize::from(self.j)]),
            )];
            *b ^= k;
        }
    }
}

/// An AES key of 128, 192 or 256 bits.
enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Option<Self> {
        Some(match key.len() {
            16 => Aes::A128(aes::Aes128::new_from_slice(key).ok()?),
            24 => Aes::A192(aes::Aes192::new_from_slice(key).ok()?),
            32 => Aes::A256(aes::Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }

    /// Decrypt whole 16-byte blocks in place (ECB); a partial tail is left.
    fn decrypt_ecb(&self, data: &mut [u8]) {
        for chunk in data.chunks_exact_mut(16) {
            let Ok(block) = <&mut aes::Block>::try_from(chunk) else {
                continue;
            };
            match self {
                Aes::A128(c) => c.decrypt_block(block),
                Aes::A192(c) => c.decrypt_block(block),
                Aes::A256(c) => c.decrypt_block(block),
            }
        }
    }

    /// Decrypt whole blocks in place, CBC with `iv` (16 bytes).
    fn decrypt_cbc(&self, iv: &[u8], data: &mut [u8]) {
        let mut prev = [0u8; 16];
        prev.copy_from_slice(&iv[..16]);
        for chunk in data.chunks_exact_mut(16) {
            let mut cipher = [0u8; 16];
            cipher.copy_from_slice(chunk);
            self.decrypt_ecb(chunk);
            for (b, p) in chunk.iter_mut().zip(prev) {
                *b ^= p;
            }
            prev = cipher;
        }
    }
}

/// A hash by its MS-OFFCRYPTO name.
#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn by_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Hash::Sha1,
            "SHA256" => Hash::Sha256,
            "SHA384" => Hash::Sha384,
            "SHA512" => Hash::Sha512,
            _ => return None,
        })
    }

    fn of(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha1 => run::<Sha1>(parts),
            Hash::Sha256 => run::<Sha256>(parts),
            Hash::Sha384 => run::<Sha384>(parts),
            Hash::Sha512 => run::<Sha512>(parts),
        }
    }
}

fn utf16(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `data` cut or padded with `pad` to `n` bytes (MS-OFFCRYPTO 2.3.4.12).
fn fit(mut data: Vec<u8>, n: usize, pad: u8) -> Vec<u8> {
    data.resize(n, pad);
    data
}

// ------------------------------------------------------------ OOXML

/// Block keys of the Agile key derivation (MS-OFFCRYPTO 2.3.4.13).
const BLOCK_VERIFIER_INPUT: [u8; 8] = [0xFE, 0xA7, 0xD2, 0x76, 0x3B, 0x4B, 0x9E, 0x79];
const BLOCK_VERIFIER_VALUE: [u8; 8] = [0xD7, 0xAA, 0x0F, 0x6D, 0x30, 0x61, 0x34, 0x4E];
const BLOCK_KEY_VALUE: [u8; 8] = [0x14, 0x6E, 0x0B, 0xE7, 0xAB, 0xAC, 0xD0, 0xD6];

/// A decrypted OOXML package, or why it was not decrypted.
#[derive(Debug)]
pub struct OoxmlOutcome {
    pub encryption: Encryption,
    /// The package (a zip) when a password opened it.
    pub package: Option<Vec<u8>>,
}

/// Decrypt an `EncryptedPackage` stream with the parameters of its
/// `EncryptionInfo` stream, trying `passwords` in order.
pub fn decrypt_ooxml(info: &[u8], package: &[u8], passwords: &[String]) -> OoxmlOutcome {
    let (Some(major), Some(minor)) = (u16_at(info, 0), u16_at(info, 2)) else {
        return locked_ooxml("agile", "EncryptionInfo is too short");
    };
    match (major, minor) {
        (4, 4) => agile(info, package, passwords),
        (2..=4, 2) => standard(info, package, passwords),
        (3 | 4, 3) => locked_ooxml("extensible", "extensible encryption is not supported"),
        _ => locked_ooxml(
            "agile",
            format!("unknown EncryptionInfo version {major}.{minor}"),
        ),
    }
}

fn locked_ooxml(method: &'static str, note: impl Into<String>) -> OoxmlOutcome {
    OoxmlOutcome {
        encryption: Encryption::locked(method, note),
        package: None,
    }
}

fn opened(method: &'static str, password: &str, package: Vec<u8>) -> OoxmlOutcome {
    OoxmlOutcome {
        encryption: Encryption::opened(method, password),
        package: Some(package),
    }
}

/// Cipher parameters of an Agile `keyData` or `encryptedKey` element.
struct AgileParams {
    salt: Vec<u8>,
    block_size: usize,
    key_bytes: usize,
    hash: Hash,
    hash_size: usize,
}

/// An element's attributes as (name without prefix, value) pairs.
type Attrs = Vec<(String, String)>;

/// The value of attribute `name` of an encryption descriptor element.
fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("encryption descriptor lacks {name}"))
}

fn agile_params(attrs: &[(String, String)]) -> Result<AgileParams, String> {
    let get = |name: &str| attr(attrs, name);
    let num = |name: &str| -> Result<usize, String> {
        get(name)?
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("encryption descriptor: bad {name}"))
    };
    let cipher = get("cipherAlgorithm")?;
    if !cipher.eq_ignore_ascii_case("AES") {
        return Err(format!("cipher {cipher} is not supported"));
    }
    let chaining = get("cipherChaining")?;
    if chaining != "ChainingModeCBC" {
        return Err(format!("chaining {chaining} is not supported"));
    }
    let hash_name = get("hashAlgorithm")?;
    let hash =
        Hash::by_name(hash_name).ok_or_else(|| format!("hash {hash_name} is not supported"))?;
    let key_bits = num("keyBits")?;
    if ![128, 192, 256].contains(&key_bits) {
        return Err(format!("key size {key_bits} is not supported"));
    }
    let block_size = num("blockSize")?;
    if block_size != 16 {
        return Err(format!("block size {block_size} is not supported"));
    }
    Ok(AgileParams {
        salt: b64(get("saltValue")?)?,
        block_size,
        key_bytes: key_bits / 8,
        hash,
        hash_size: num("hashSize")?.min(64),
    })
}

fn b64(text: &str) -> Result<Vec<u8>, String> {
    decode_base64_text(text).map_err(|e| format!("encryption descriptor: bad base64 ({e})"))
}

/// Attributes (prefix dropped) of the descriptor's first `keyData` and
/// first `encryptedKey` element.
fn key_elements(xml: &str) -> (Option<Attrs>, Option<Attrs>) {
    static TAG: OnceLock<Regex> = OnceLock::new();
    let tag = TAG.get_or_init(|| {
        Regex::new(r"<(?:[A-Za-z_][\w.-]*:)?(keyData|encryptedKey)\b([^>]*)>")
            .expect("constant pattern")
    });
    let (mut key_data, mut key_enc) = (None, None);
    for c in tag.captures_iter(xml) {
        let slot = if &c[1] == "keyData" {
            &mut key_data
        } else {
            &mut key_enc
        };
        if slot.is_none() {
            *slot = Some(xml_attrs(&c[2]).map(|(n, v)| (n.to_string(), v)).collect());
        }
    }
    (key_data, key_enc)
}

fn agile(info: &[u8], package: &[u8], passwords: &[String]) -> OoxmlOutcome {
    const M: &str = "agile";
    let xml = String::from_utf8_lossy(info.get(8..).unwrap_or(&[]));
    let (Some(key_data), Some(key_enc)) = key_elements(&xml) else {
        return locked_ooxml(
            M,
            "encryption descriptor lacks keyData or a password key encryptor",
        );
    };
    let parse = || -> Result<_, String> {
        let data = agile_params(&key_data)?;
        let enc = agile_params(&key_enc)?;
        let get = |name: &str| b64(attr(&key_enc, name)?);
        let spin: u32 = attr(&key_enc, "spinCount")?
            .trim()
            .parse()
            .map_err(|_| "encryption descriptor: bad spinCount")?;
        if spin > MAX_SPIN_COUNT {
            return Err(format!("spin count {spin} is over {MAX_SPIN_COUNT}"));
        }
        Ok((
            data,
            enc,
            spin,
            get("encryptedVerifierHashInput")?,
            get("encryptedVerifierHashValue")?,
            get("encryptedKeyValue")?,
        ))
    };
    let (data, enc, spin, vin, vval, kval) = match parse() {
        Ok(p) => p,
        Err(e) => return locked_ooxml(M, e),
    };
    let iv = fit(enc.salt.clone(), enc.block_size, 0x36);
    let dec = |h: &[u8], block: &[u8], cipher: &[u8]| -> Option<Vec<u8>> {
        let key = fit(enc.hash.of(&[h, block]), enc.key_bytes, 0x36);
        let aes = Aes::new(&key)?;
        let mut out = cipher.to_vec();
        out.truncate(out.len() / 16 * 16);
        aes.decrypt_cbc(&iv, &mut out);
        Some(out)
    };
    for password in passwords {
        let mut h = enc.hash.of(&[&enc.salt, &utf16(password)]);
        for i in 0..spin {
            h = enc.hash.of(&[&i.to_le_bytes(), &h]);
        }
        let (Some(input), Some(value)) = (
            dec(&h, &BLOCK_VERIFIER_INPUT, &vin),
            dec(&h, &BLOCK_VERIFIER_VALUE, &vval),
        ) else {
            continue;
        };
        let salt_size = enc.salt.len().min(input.len());
        let want = enc.hash.of(&[&input[..salt_size]]);
        let n = enc.hash_size.min(want.len());
        if value.len() < n || value[..n] != want[..n] {
            continue;
        }
        let Some(secret) = dec(&h, &BLOCK_KEY_VALUE, &kval) else {
            continue;
        };
        if secret.len() < data.key_bytes {
            continue;
        }
        let Some(aes) = Aes::new(&secret[..data.key_bytes]) else {
            continue;
        };
        return opened(M, password, agile_package(&aes, &data, package));
    }
    locked_ooxml(M, none_worked(passwords.len()))
}

/// The Agile `EncryptedPackage`: a u64 size, then 4096-byte segments, each
/// AES-CBC with IV = hash(keyData salt + segment number).
fn agile_package(aes: &Aes, data: &AgileParams, package: &[u8]) -> Vec<u8> {
    let size = package_size(package);
    let body = package.get(8..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(body.len().min(size));
    for (i, seg) in body.chunks(4096).enumerate() {
        if out.len() >= size {
            break;
        }
        let iv = fit(
            data.hash.of(&[&data.salt, &(i as u32).to_le_bytes()]),
            data.block_size,
            0x36,
        );
        let mut seg = seg.to_vec();
        seg.truncate(seg.len() / 16 * 16);
        aes.decrypt_cbc(&iv, &mut seg);
        out.extend_from_slice(&seg);
    }
    out.truncate(size);
    out
}

/// The plaintext size at the start of an `EncryptedPackage` (u64; only
/// the low 32 bits on files some writers produce, which is the same for
/// real sizes).
fn package_size(package: &[u8]) -> usize {
    let lo = u32_at(package, 0).unwrap_or(0);
    let hi = u32_at(package, 4).unwrap_or(0);
    usize::try_from((u64::from(hi) << 32) | u64::from(lo)).unwrap_or(usize::MAX)
}

/// EncryptionHeader and EncryptionVerifier of Standard encryption, or of
/// RC4 CryptoAPI (`data` starts at the header's flags).
struct CryptoApiHeader {
    alg_id: u32,
    key_bits: u32,
    salt: Vec<u8>,
    verifier: Vec<u8>,
    verifier_hash: Vec<u8>,
}

fn cryptoapi_header(data: &[u8], hash_len: usize) -> Option<CryptoApiHeader> {
    let header_size = usize::try_from(u32_at(data, 4)?).ok()?;
    let header = data.get(8..8usize.checked_add(header_size)?)?;
    let verifier = &data[8 + header_size..];
    let salt_size = usize::try_from(u32_at(verifier, 0)?).ok()?.min(16);
    Some(CryptoApiHeader {
        alg_id: u32_at(header, 8)?,
        key_bits: u32_at(header, 16)?,
        salt: verifier.get(4..4 + salt_size)?.to_vec(),
        verifier: verifier.get(20..36)?.to_vec(),
        verifier_hash: verifier.get(40..40 + hash_len)?.to_vec(),
    })
}

/// The Standard encryption key of a password (MS-OFFCRYPTO 2.3.4.7).
fn standard_key(password: &str, salt: &[u8], key_bytes: usize) -> Vec<u8> {
    let mut hash = Hash::Sha1.of(&[salt, &utf16(password)]);
    for i in 0..50_000u32 {
        hash = Hash::Sha1.of(&[&i.to_le_bytes(), &hash]);
    }
    let hfinal = Hash::Sha1.of(&[&hash, &0u32.to_le_bytes()]);
    let derive = |fill: u8| {
        let mut buf = [fill; 64];
        for (b, x) in buf.iter_mut().zip(&hfinal) {
            *b ^= x;
        }
        Hash::Sha1.of(&[&buf])
    };
    let mut key = derive(0x36);
    key.extend(derive(0x5C));
    key.truncate(key_bytes);
    key
}

fn standard(info: &[u8], package: &[u8], passwords: &[String]) -> OoxmlOutcome {
    const M: &str = "standard";
    let Some(h) = info.get(4..).and_then(|d| cryptoapi_header(d, 32)) else {
        return locked_ooxml(M, "EncryptionInfo is truncated");
    };
    // AES-128/192/256 (CALG_AES_*); 0 means AES-128 by default.
    if !matches!(h.alg_id, 0 | 0x660E | 0x660F | 0x6610) {
        return locked_ooxml(M, format!("cipher 0x{:04X} is not supported", h.alg_id));
    }
    let key_bytes = match h.key_bits {
        0 => 16,
        128 | 192 | 256 => h.key_bits as usize / 8,
        n => return locked_ooxml(M, format!("key size {n} is not supported")),
    };
    for password in passwords {
        let key = standard_key(password, &h.salt, key_bytes);
        let Some(aes) = Aes::new(&key) else { continue };
        let mut verifier = h.verifier.clone();
        aes.decrypt_ecb(&mut verifier);
        let mut verifier_hash = h.verifier_hash.clone();
        aes.decrypt_ecb(&mut verifier_hash);
        if Hash::Sha1.of(&[&verifier]) != verifier_hash[..20] {
            continue;
        }
        let size = package_size(package);
        let mut body = package.get(8..).unwrap_or(&[]).to_vec();
        body.truncate(body.len() / 16 * 16);
        aes.decrypt_ecb(&mut body);
        body.truncate(size);
        return opened(M, password, body);
    }
    locked_ooxml(M, none_worked(passwords.len()))
}

// ------------------------------------------------------------ BIFF8

/// BIFF records that are never encrypted (MS-XLS 2.2.10).
const BOF: u16 = 0x0809;
const FILEPASS: u16 = 0x002F;
const CLEAR_RECORDS: &[u16] = &[BOF, FILEPASS, 0x0194, 0x0195, 0x00E1, 0x0196, 0x0138];
const BOUNDSHEET: u16 = 0x0085;

/// The body of the workbook stream's FILEPASS record, if it has one (it
/// is in the globals substream, before its EOF record).
fn filepass(stream: &[u8]) -> Option<&[u8]> {
    let mut pos = 0usize;
    while let (Some(rtype), Some(len)) = (u16_at(stream, pos), u16_at(stream, pos + 2)) {
        let body = stream.get(pos + 4..pos + 4 + usize::from(len))?;
        match rtype {
            FILEPASS => return Some(body),
            0x000A => return None,
            _ => pos += 4 + usize::from(len),
        }
    }
    None
}

/// Decrypt an encrypted BIFF8 workbook stream, trying `passwords`: the
/// decrypted stream as `Workbook` (FILEPASS blanked to a type-0 record);
/// `None` when the stream has no FILEPASS record.
pub fn decrypt_biff(stream: &[u8], passwords: &[String]) -> Option<Decrypted> {
    let fp = filepass(stream)?;
    Some(match u16_at(fp, 0) {
        Some(0) => Decrypted::locked("xor", "XOR obfuscation is not supported"),
        Some(1) => match rc4_open(&fp[2..], passwords, "FILEPASS record") {
            Ok((encryption, key)) => Decrypted {
                encryption,
                streams: vec![("Workbook", decrypt_records(stream, &key))],
            },
            Err(encryption) => Decrypted::from_locked(encryption),
        },
        t => Decrypted::locked(
            "rc4",
            format!("encryption type {} is not supported", t.unwrap_or(0)),
        ),
    })
}

/// The RC4 key of one block of a document, by block number.
type BlockKey = Box<dyn Fn(u32) -> Vec<u8>>;

/// Try `passwords` on an RC4 (version 1.1) or RC4 CryptoAPI (versions
/// 2-4.2) encryption header, `header` starting at its version numbers (as
/// in a FILEPASS record after its type, or a Word table stream). `Ok`: the
/// encryption and the key of each block; `Err`: why it stays locked.
/// `what` names the header in messages.
fn rc4_open(
    header: &[u8],
    passwords: &[String],
    what: &str,
) -> Result<(Encryption, BlockKey), Encryption> {
    let truncated = |method| Encryption::locked(method, format!("{what} is truncated"));
    match (u16_at(header, 0), u16_at(header, 2)) {
        (Some(1), Some(1)) => {
            let (Some(salt), Some(v), Some(vh)) =
                (header.get(4..20), header.get(20..36), header.get(36..52))
            else {
                return Err(truncated("rc4"));
            };
            for password in passwords {
                let h0 = Md5::digest(utf16(password));
                let mut buf = Vec::with_capacity(21 * 16);
                for _ in 0..16 {
                    buf.extend_from_slice(&h0[..5]);
                    buf.extend_from_slice(salt);
                }
                let h1 = Md5::digest(&buf)[..5].to_vec();
                let key = move |block: u32| {
                    Md5::digest([&h1[..], &block.to_le_bytes()].concat()).to_vec()
                };
                if rc4_verifies(&key(0), v, vh, |d| Md5::digest(d).to_vec()) {
                    return Ok((Encryption::opened("rc4", password), Box::new(key)));
                }
            }
            Err(Encryption::locked("rc4", none_worked(passwords.len())))
        }
        (Some(2..=4), Some(2)) => {
            const M: &str = "rc4_cryptoapi";
            let Some(h) = header.get(4..).and_then(|d| cryptoapi_header(d, 20)) else {
                return Err(truncated(M));
            };
            let key_bytes = match h.key_bits {
                0 | 40 => 5,
                n if (40..=128).contains(&n) && n % 8 == 0 => n as usize / 8,
                n => {
                    return Err(Encryption::locked(
                        M,
                        format!("key size {n} is not supported"),
                    ))
                }
            };
            for password in passwords {
                let h0 = Hash::Sha1.of(&[&h.salt, &utf16(password)]);
                let key = move |block: u32| {
                    let mut k = Hash::Sha1.of(&[&h0, &block.to_le_bytes()]);
                    k.truncate(key_bytes);
                    // A 40-bit key is used as 128 bits, zero-padded.
                    if key_bytes == 5 {
                        k.resize(16, 0);
                    }
                    k
                };
                if rc4_verifies(&key(0), &h.verifier, &h.verifier_hash, |d| {
                    Hash::Sha1.of(&[d])
                }) {
                    return Ok((Encryption::opened(M, password), Box::new(key)));
                }
            }
            Err(Encryption::locked(M, none_worked(passwords.len())))
        }
        (major, minor) => Err(Encryption::locked(
            "rc4",
            format!(
                "encryption version {}.{} is not supported",
                major.unwrap_or(0),
                minor.unwrap_or(0)
            ),
        )),
    }
}

/// Whether `key` decrypts the verifier to a value whose hash is the
/// decrypted verifier hash (one RC4 stream over both).
fn rc4_verifies(key: &[u8], verifier: &[u8], hash: &[u8], h: impl Fn(&[u8]) -> Vec<u8>) -> bool {
    let mut rc4 = Rc4::new(key);
    let mut v = verifier.to_vec();
    rc4.apply(&mut v);
    let mut vh = hash.to_vec();
    rc4.apply(&mut vh);
    let want = h(&v);
    vh.len() >= want.len() && vh[..want.len()] == want[..]
}

/// The RC4 keystream over `len` bytes of a stream, re-keyed with the next
/// block key every `block_size` bytes from the stream's start.
fn keystream(len: usize, block_size: usize, key: &BlockKey) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (block, chunk) in out.chunks_mut(block_size).enumerate() {
        Rc4::new(&key(block as u32)).apply(chunk);
    }
    out
}

/// The RC4 keystream runs over the whole stream by offset, re-keyed every
/// 1024 bytes; record headers, the never-encrypted records and the first
/// four bytes of BOUNDSHEET stay as they are. FILEPASS becomes a type-0
/// record of zeros, so readers see an unencrypted workbook.
fn decrypt_records(stream: &[u8], key: &BlockKey) -> Vec<u8> {
    let keystream = keystream(stream.len(), 1024, key);
    let mut out = stream.to_vec();
    let mut pos = 0usize;
    while let (Some(rtype), Some(len)) = (u16_at(stream, pos), u16_at(stream, pos + 2)) {
        let start = pos + 4;
        let end = (start + usize::from(len)).min(stream.len());
        pos = start + usize::from(len);
        if rtype == FILEPASS {
            out[start - 4..start - 2].fill(0);
            out[start..end].fill(0);
            continue;
        }
        if CLEAR_RECORDS.contains(&rtype) {
            continue;
        }
        let from = if rtype == BOUNDSHEET {
            (start + 4).min(end)
        } else {
            start
        };
        for i in from..end {
            out[i] ^= keystream[i];
        }
    }
    out
}

// ------------------------------------------------------------ Word 97-2003

/// FIB flags (offset 0x0A): `fEncrypted`, `fWhichTblStm`, `fObfuscation`.
const FIB_ENCRYPTED: u16 = 0x0100;
const FIB_TABLE_1: u16 = 0x0200;
const FIB_OBFUSCATED: u16 = 0x8000;
/// The FIB's first 68 bytes are never encrypted.
const FIB_CLEAR: usize = 68;

/// The name of the table stream a `WordDocument` stream's FIB uses.
pub fn word_table_stream(word_document: &[u8]) -> &'static str {
    match u16_at(word_document, 0x0A) {
        Some(flags) if flags & FIB_TABLE_1 != 0 => "1Table",
        _ => "0Table",
    }
}

/// Decrypt an encrypted Word 97-2003 document's streams, trying
/// `passwords`; `None` when the FIB says it is not encrypted. Every
/// stream is decrypted from its first byte in 512-byte RC4 blocks; the
/// FIB's clear part is kept, with the encryption flags and key cleared,
/// so readers see an unencrypted document (as msoffcrypto-tool writes it).
pub fn decrypt_word(
    word_document: &[u8],
    table: Option<&[u8]>,
    data: Option<&[u8]>,
    passwords: &[String],
) -> Option<Decrypted> {
    let flags = u16_at(word_document, 0x0A)?;
    if flags & FIB_ENCRYPTED == 0 {
        return None;
    }
    if flags & FIB_OBFUSCATED != 0 {
        return Some(Decrypted::locked("xor", "XOR obfuscation is not supported"));
    }
    let Some(table) = table else {
        let missing = format!("the {} stream is missing", word_table_stream(word_document));
        return Some(Decrypted::locked("rc4", missing));
    };
    let (encryption, key) = match rc4_open(table, passwords, "encryption header") {
        Ok(opened) => opened,
        Err(e) => return Some(Decrypted::from_locked(e)),
    };
    let decrypt = |stream: &[u8]| {
        let ks = keystream(stream.len(), 512, &key);
        stream
            .iter()
            .zip(ks)
            .map(|(b, k)| b ^ k)
            .collect::<Vec<u8>>()
    };
    let mut word = decrypt(word_document);
    let clear = FIB_CLEAR.min(word.len());
    word[..clear].copy_from_slice(&word_document[..clear]);
    word[0x0A..0x0C].copy_from_slice(&(flags & !(FIB_ENCRYPTED | FIB_OBFUSCATED)).to_le_bytes());
    if let Some(lkey) = word.get_mut(0x0E..0x12) {
        lkey.fill(0);
    }
    let mut streams = vec![
        ("WordDocument", word),
        (word_table_stream(word_document), decrypt(table)),
    ];
    if let Some(data) = data {
        streams.push(("Data", decrypt(data)));
    }
    Some(Decrypted {
        encryption,
        streams,
    })
}

// ------------------------------------------------------------ PowerPoint 97-2003

const PPT_CURRENT_USER_ATOM: u16 = 0x0FF6;
const PPT_USER_EDIT_ATOM: u16 = 0x0FF5;
const PPT_PERSIST_DIRECTORY_ATOM: u16 = 0x1772;
const PPT_CRYPT_SESSION: u16 = 0x2F14;
/// CurrentUserAtom.headerToken of an unencrypted document.
const PPT_PLAIN_TOKEN: u32 = 0xE391_C05F;
/// Edits followed back through `offsetLastEdit`, at most.
const PPT_MAX_EDITS: usize = 1024;

/// A record header at `pos`: (type, length).
fn ppt_record(doc: &[u8], pos: usize) -> Option<(u16, u32)> {
    Some((u16_at(doc, pos.checked_add(2)?)?, u32_at(doc, pos + 4)?))
}

/// The persist object directory ([MS-PPT] 2.1.2): persist id to stream
/// offset, older edits first so newer ones replace them, and the offset
/// of the last UserEditAtom with its encryptSessionPersistIdRef.
fn ppt_directory(
    current_user: &[u8],
    doc: &[u8],
) -> Option<(BTreeMap<u32, usize>, usize, Option<u32>)> {
    if ppt_record(current_user, 0)?.0 != PPT_CURRENT_USER_ATOM {
        return None;
    }
    let last_edit = usize::try_from(u32_at(current_user, 16)?).ok()?;
    let mut edits = Vec::new();
    let mut at = last_edit;
    while edits.len() < PPT_MAX_EDITS && !edits.contains(&at) {
        let (rtype, len) = ppt_record(doc, at)?;
        if rtype != PPT_USER_EDIT_ATOM || len < 0x1C {
            return None;
        }
        edits.push(at);
        match u32_at(doc, at + 16)? {
            0 => break,
            prev => at = usize::try_from(prev).ok()?,
        }
    }
    let session = match ppt_record(doc, last_edit)? {
        (_, 0x20) => u32_at(doc, last_edit + 36),
        _ => None,
    };
    let mut directory = BTreeMap::new();
    for &edit in edits.iter().rev() {
        let dir = usize::try_from(u32_at(doc, edit + 20)?).ok()?;
        let (rtype, len) = ppt_record(doc, dir)?;
        if rtype != PPT_PERSIST_DIRECTORY_ATOM {
            return None;
        }
        let end = (dir + 8).saturating_add(len as usize).min(doc.len());
        let mut pos = dir + 8;
        while pos + 4 <= end {
            let entry = u32_at(doc, pos)?;
            let (first, count) = (entry & 0xF_FFFF, (entry >> 20) as usize);
            for i in 0..count {
                let Some(offset) = u32_at(doc, pos + 4 + 4 * i) else {
                    break;
                };
                directory.insert(first + i as u32, offset as usize);
            }
            pos += 4 + 4 * count;
        }
    }
    Some((directory, last_edit, session))
}

/// Decrypt an encrypted PowerPoint 97-2003 document, trying `passwords`;
/// `None` when it is not one (no encryption session in its last edit).
/// Each persist object is decrypted with its own RC4 stream, keyed by its
/// persist id; the encryption session is zeroed and the edit, directory
/// and current-user records are rewritten to say "not encrypted", as
/// msoffcrypto-tool writes them.
pub fn decrypt_powerpoint(
    current_user: &[u8],
    document: &[u8],
    passwords: &[String],
) -> Option<Decrypted> {
    let (directory, last_edit, session_id) = ppt_directory(current_user, document)?;
    let session_id = session_id?;
    let session = directory.get(&session_id).copied();
    let header = session.and_then(|at| match ppt_record(document, at)? {
        (PPT_CRYPT_SESSION, len) => {
            document.get(at + 8..(at + 8).saturating_add(len as usize).min(document.len()))
        }
        _ => None,
    });
    let Some(header) = header else {
        let missing = "the encryption session record is missing";
        return Some(Decrypted::locked("rc4_cryptoapi", missing));
    };
    let (encryption, key) = match rc4_open(header, passwords, "encryption header") {
        Ok(opened) => opened,
        Err(e) => return Some(Decrypted::from_locked(e)),
    };
    let mut doc = document.to_vec();
    for (&id, &at) in &directory {
        match ppt_record(document, at) {
            Some((PPT_CRYPT_SESSION, len)) => {
                let end = (at + 8).saturating_add(len as usize).min(doc.len());
                doc[at..end].fill(0);
            }
            Some((PPT_USER_EDIT_ATOM | PPT_PERSIST_DIRECTORY_ATOM, _)) | None => {}
            Some(_) => {
                // The header first, to learn the length; the same RC4
                // stream goes on over the body.
                let mut rc4 = Rc4::new(&key(id));
                let head_end = (at + 8).min(doc.len());
                rc4.apply(&mut doc[at..head_end]);
                let len = u32_at(&doc, at + 4).unwrap_or(0) as usize;
                let end = head_end.saturating_add(len).min(doc.len());
                rc4.apply(&mut doc[head_end..end]);
            }
        }
    }
    // The last edit loses its session reference (length 0x1C, id 0).
    doc[last_edit + 4..last_edit + 8].copy_from_slice(&0x1Cu32.to_le_bytes());
    doc[last_edit + 36..last_edit + 40].fill(0);
    // The directory entry ending with the session loses it.
    if let Some(dir) = u32_at(document, last_edit + 20).map(|d| d as usize) {
        let end =
            ppt_record(document, dir).map_or(0, |(_, len)| (dir + 8).saturating_add(len as usize));
        let mut pos = dir + 8;
        while let Some(entry) = u32_at(document, pos).filter(|_| pos + 4 <= end) {
            let (first, count) = (entry & 0xF_FFFF, entry >> 20);
            if count > 0 && first + count - 1 == session_id {
                let entry = first | ((count - 1) << 20);
                doc[pos..pos + 4].copy_from_slice(&entry.to_le_bytes());
                break;
            }
            pos += 4 + 4 * count as usize;
        }
    }
    let mut user = current_user.to_vec();
    user[12..16].copy_from_slice(&PPT_PLAIN_TOKEN.to_le_bytes());
    Some(Decrypted {
        encryption,
        streams: vec![("Current User", user), ("PowerPoint Document", doc)],
    })
}

// ------------------------------------------------------------ others

/// The passwords of a comma-separated option value (blank: none).
pub fn password_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`DEFAULT_PASSWORDS`] as owned strings.
pub fn default_passwords() -> Vec<String> {
    DEFAULT_PASSWORDS.iter().map(|p| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_published_test_vector() {
        // RFC 6229 key 0x0102030405, first 16 keystream bytes.
        let mut out = [0u8; 16];
        Rc4::new(&[1, 2, 3, 4, 5]).apply(&mut out);
        assert_eq!(
            out,
            [
                0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27, 0xcc, 0xc3, 0x52, 0x4a, 0x0a, 0x11,
                0x18, 0xa8
            ]
        );
    }

    #[test]
    fn aes_cbc_matches_the_nist_vector() {
        // NIST SP 800-38A F.2.2, CBC-AES128 decrypt, first block.
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let iv: Vec<u8> = (0u8..16).collect();
        let mut data = [
            0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9,
            0x19, 0x7d,
        ];
        Aes::new(&key).unwrap().decrypt_cbc(&iv, &mut data);
        assert_eq!(
            data,
            [
                0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
                0x17, 0x2a
            ]
        );
    }

    #[test]
    fn malformed_headers_are_reported_not_panicked_on() {
        let pw = default_passwords();
        for info in [
            &b""[..],
            b"\x04\x00\x04\x00",
            b"\x04\x00\x02\x00\x00",
            b"\x09\x00\x09\x00",
        ] {
            let out = decrypt_ooxml(info, b"", &pw);
            assert!(out.package.is_none() && out.encryption.note.is_some());
        }
        // An Agile descriptor asking for too many spins is refused.
        let xml = r#"....<keyData saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="AAAAAAAAAAAAAAAAAAAAAA=="/><p:encryptedKey spinCount="4000000000" saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="AAAAAAAAAAAAAAAAAAAAAA==" encryptedVerifierHashInput="" encryptedVerifierHashValue="" encryptedKeyValue=""/>"#;
        let info = [&[4u8, 0, 4, 0][..], xml.as_bytes()].concat();
        let out = decrypt_ooxml(&info, b"", &pw);
        assert!(out.encryption.note.unwrap().contains("spin count"));
        // A FILEPASS record cut short.
        let stream = [&[0x2Fu8, 0, 6, 0, 1, 0, 1, 0, 1, 0][..]].concat();
        let out = decrypt_biff(&stream, &pw).unwrap();
        assert_eq!(out.encryption.method, "rc4");
        assert!(out.streams.is_empty());
        assert!(decrypt_biff(b"\x09\x08\x00\x00\x0a\x00\x00\x00", &pw).is_none());
    }

    /// Vectors from msoffcrypto-tool 6.1.0's documentation (its doctests
    /// of ECMA376Standard.makekey_from_password and verifykey).
    #[test]
    fn standard_encryption_matches_msoffcrypto_vectors() {
        let salt = b"\xe8\x82fI\x0c[\xd1\xee\xbd+C\x94\xe3\xf80\xef";
        let key = b"@\xb1:q\xf9\x0b\x96n7T\x08\xf2\xd1\x81\xa1\xaa";
        assert_eq!(standard_key("Password1234_", salt, 16), key);
        // An EncryptionInfo around the documented verifier opens with that
        // password, not with the defaults; the package is decrypted too.
        let verifier = b"Qos.\x96o\xac\x17\xb1\xc5\xd7\xd8\xcc6\xc9(";
        let verifier_hash =
            b"+ah\xda\xbe)\x11\xad+\xd3|\x17Ft\\\x14\xd3\xcf\x1b\xb1@\xa4\x8fNo=#\x88\x08r\xb1j";
        let mut header = Vec::new();
        for v in [0x24u32, 0, 0x660E, 0x8004, 128, 0x18, 0, 0] {
            header.extend(v.to_le_bytes());
        }
        let mut info = vec![4, 0, 2, 0, 0x24, 0, 0, 0];
        info.extend((header.len() as u32).to_le_bytes());
        info.extend(&header);
        info.extend(16u32.to_le_bytes());
        info.extend(salt);
        info.extend(verifier);
        info.extend(20u32.to_le_bytes());
        info.extend(verifier_hash);
        // The package: size 16, then one block that the key decrypts to
        // the verifier's plaintext (so its hash is the verifier hash).
        let aes = Aes::new(key).unwrap();
        let mut plain_verifier = verifier.to_vec();
        aes.decrypt_ecb(&mut plain_verifier);
        let mut package = 5u64.to_le_bytes().to_vec();
        package.extend(verifier);
        assert!(decrypt_ooxml(&info, &package, &default_passwords())
            .package
            .is_none());
        let out = decrypt_ooxml(&info, &package, &["x".into(), "Password1234_".into()]);
        assert_eq!(out.encryption.method, "standard");
        assert_eq!(out.encryption.password.as_deref(), Some("Password1234_"));
        assert_eq!(out.package.unwrap(), plain_verifier[..5]);
    }

    #[test]
    fn password_lists() {
        assert_eq!(password_list(" a, b ,,"), ["a", "b"]);
        assert!(password_list("  ").is_empty());
        assert_eq!(default_passwords()[0], "VelvetSweatshop");
        // The documented default is the list the plugins use.
        assert_eq!(PASSWORDS_OPTION.default, DEFAULT_PASSWORDS.join(","));
        let cfg = |v: Option<&str>| PluginConfig::new("ole", v.map(|v| ("passwords", v)));
        assert_eq!(passwords_option(&cfg(None)), default_passwords());
        assert_eq!(passwords_option(&cfg(Some("a,b"))), ["a", "b"]);
        assert!(passwords_option(&cfg(Some(""))).is_empty());
    }

    #[test]
    fn word_97_flags_and_malformed_headers() {
        let pw = default_passwords();
        let mut fib = vec![0u8; 80];
        assert!(decrypt_word(&fib, None, None, &pw).is_none());
        assert!(decrypt_word(b"short", None, None, &pw).is_none());
        fib[0x0B] = 0x01;
        let missing = decrypt_word(&fib, None, None, &pw).unwrap();
        assert_eq!(missing.encryption.method, "rc4");
        assert!(missing.encryption.note.unwrap().contains("0Table"));
        assert!(missing.streams.is_empty());
        // A header cut short, an unknown version, XOR obfuscation.
        let cut = decrypt_word(&fib, Some(&[1, 0, 1, 0, 9]), None, &pw).unwrap();
        assert!(cut.encryption.note.unwrap().contains("truncated"));
        let unknown = decrypt_word(&fib, Some(&[7, 0, 7, 0]), None, &pw).unwrap();
        assert!(unknown.encryption.note.unwrap().contains("7.7"));
        fib[0x0B] = 0x83;
        assert_eq!(word_table_stream(&fib), "1Table");
        let xor = decrypt_word(&fib, Some(&[]), None, &pw).unwrap();
        assert_eq!(xor.encryption.method, "xor");
    }

    #[test]
    fn powerpoint_97_malformed_records() {
        let pw = default_passwords();
        // A CurrentUserAtom pointing at an edit with a session reference
        // (persist id 1) whose directory does not list it.
        let mut user = vec![0u8; 20];
        user[2..4].copy_from_slice(&PPT_CURRENT_USER_ATOM.to_le_bytes());
        user[16..20].copy_from_slice(&40u32.to_le_bytes());
        let mut doc = vec![0u8; 40];
        // PersistDirectoryAtom at 0: one entry, persist id 2 at offset 0.
        doc[2..4].copy_from_slice(&PPT_PERSIST_DIRECTORY_ATOM.to_le_bytes());
        doc[4..8].copy_from_slice(&8u32.to_le_bytes());
        doc[8..12].copy_from_slice(&(2u32 | (1 << 20)).to_le_bytes());
        let mut edit = vec![0u8; 40];
        edit[2..4].copy_from_slice(&PPT_USER_EDIT_ATOM.to_le_bytes());
        edit[4..8].copy_from_slice(&0x20u32.to_le_bytes());
        edit[36..40].copy_from_slice(&1u32.to_le_bytes());
        doc.extend(&edit);
        let out = decrypt_powerpoint(&user, &doc, &pw).unwrap();
        assert!(out.encryption.note.unwrap().contains("missing"));
        assert!(out.streams.is_empty());
        // An edit that points at itself is read once; no session: None.
        doc[40 + 4..40 + 8].copy_from_slice(&0x1Cu32.to_le_bytes());
        doc[40 + 16..40 + 20].copy_from_slice(&40u32.to_le_bytes());
        assert!(decrypt_powerpoint(&user, &doc, &pw).is_none());
        assert!(decrypt_powerpoint(b"", &doc, &pw).is_none());
        assert!(decrypt_powerpoint(&user, &doc[..50], &pw).is_none());
    }
}
