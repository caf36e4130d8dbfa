//! A bounds-checked PE reader shared by `peinfo` and `pecarve`.
//!
//! The rules follow Python `pefile` (2024.8.26, the version the test
//! corpus's reference answers come from) wherever its results are visible
//! to users: which headers make a file "a PE", how RVAs map to file offsets
//! (`FileAlignment` rounding, the "last section used" lookup cache, reads
//! from the header area), how the import table is walked and when a DLL's
//! imports are dropped as corrupt, the imphash string, the Rich header's
//! clear-text bytes, the overlay start (`get_overlay_data_start_offset`,
//! which is also where `trim()` cuts). The code is written from those
//! facts, not translated.
//!
//! Every read is bounds-checked and every loop has a fixed upper bound, so
//! no input can panic or hang the parser. Where pefile raises on malformed
//! input (a truncated section table, a truncated optional header) this
//! reader keeps what it has and records an error instead.
//!
//! `goblin` decodes the COFF file header and the attribute-certificate
//! entries; everything whose leniency must match pefile is read here.

use std::cell::Cell;

use goblin::pe::certificate_table::AttributeCertificate;
use goblin::pe::header::CoffHeader;

/// `MZ`.
pub const DOS_SIGNATURE: u16 = 0x5a4d;
/// `ZM` (pefile refuses these).
pub const DOSZM_SIGNATURE: u16 = 0x4d5a;
const NT_SIGNATURE: u32 = 0x0000_4550;
const NE_SIGNATURE: u16 = 0x454e;
const LE_SIGNATURE: u16 = 0x454c;
const LX_SIGNATURE: u16 = 0x584c;
const TE_SIGNATURE: u16 = 0x5a56;

/// Optional header magic of PE32.
pub const MAGIC_PE32: u16 = 0x10b;
/// Optional header magic of PE32+.
pub const MAGIC_PE32_PLUS: u16 = 0x20b;

const MAX_SECTIONS: usize = 0x800;
const MAX_IMPORT_SYMBOLS: usize = 0x2000;
const MAX_IMPORT_NAME_LENGTH: u64 = 0x200;
const MAX_DLL_LENGTH: u64 = 0x200;
const MAX_SYMBOL_NAME_LENGTH: u64 = 0x200;
const MAX_STRING_LENGTH: u64 = 0x10_0000;
const MAX_SYMBOL_EXPORT_COUNT: usize = 0x2000;
const MAX_REPEATED_EXPORT_SYMBOL: usize = 120;
const MAX_RESOURCE_ENTRIES: usize = 0x8000;
const MAX_RESOURCE_DEPTH: usize = 32;
const MAX_RESOURCE_DIR_ENTRIES: usize = 4096;
const MAX_WARNINGS: usize = 64;
const MAX_DEBUG_ENTRIES: usize = 64;
const MAX_TLS_CALLBACKS: usize = 255;
const MAX_CERTIFICATES: usize = 64;

/// Data directory indices.
pub const DIR_EXPORT: usize = 0;
pub const DIR_IMPORT: usize = 1;
pub const DIR_RESOURCE: usize = 2;
pub const DIR_SECURITY: usize = 4;
pub const DIR_DEBUG: usize = 6;
pub const DIR_TLS: usize = 9;
pub const DIR_CLR: usize = 14;

// ---------------------------------------------------------------- reading

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    let b = d.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// `data[start:end]` with Python's slicing rules (negative indices count
/// from the end, everything is clamped, an inverted range is empty).
pub fn py_slice(data: &[u8], start: i128, end: Option<i128>) -> &[u8] {
    let len = data.len() as i128;
    let norm = |x: i128| {
        if x < 0 {
            (x + len).max(0)
        } else {
            x.min(len)
        }
    };
    let s = norm(start);
    let e = end.map(norm).unwrap_or(len);
    if e <= s {
        &[]
    } else {
        // 0 <= s < e <= len
        &data[s as usize..e as usize]
    }
}

/// Bytes up to (not including) the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Text from bytes: UTF-8 when valid, else Latin-1 (every byte one char),
/// so no byte is lost.
pub fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// Decode UTF-16LE code units, stopping at the first NUL unit.
fn utf16_until_nul(b: &[u8], max_units: usize) -> (String, usize) {
    let mut units = Vec::new();
    let mut i = 0;
    while units.len() < max_units {
        let Some(u) = u16_at(b, i) else { break };
        if u == 0 {
            break;
        }
        units.push(u);
        i += 2;
    }
    (String::from_utf16_lossy(&units), units.len())
}

// ---------------------------------------------------------------- headers

/// The fields of the optional header peinfo and pecarve use.
#[derive(Debug, Clone, Default)]
pub struct OptionalHeader {
    pub magic: u16,
    pub major_linker_version: u8,
    pub minor_linker_version: u8,
    pub address_of_entry_point: u32,
    pub image_base: u64,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub checksum: u32,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub number_of_rva_and_sizes: u32,
    /// 96 (PE32 layout) or 112 (PE32+).
    pub struct_size: usize,
}

impl OptionalHeader {
    fn parse(b: &[u8], plus: bool) -> Option<Self> {
        let struct_size = if plus { 112 } else { 96 };
        if b.len() < struct_size {
            return None;
        }
        let (image_base, nrva) = if plus {
            (u64_at(b, 24)?, u32_at(b, 108)?)
        } else {
            (u64::from(u32_at(b, 28)?), u32_at(b, 92)?)
        };
        Some(OptionalHeader {
            magic: u16_at(b, 0)?,
            major_linker_version: b[2],
            minor_linker_version: b[3],
            address_of_entry_point: u32_at(b, 16)?,
            image_base,
            section_alignment: u32_at(b, 32)?,
            file_alignment: u32_at(b, 36)?,
            size_of_image: u32_at(b, 56)?,
            size_of_headers: u32_at(b, 60)?,
            checksum: u32_at(b, 64)?,
            subsystem: u16_at(b, 68)?,
            dll_characteristics: u16_at(b, 70)?,
            number_of_rva_and_sizes: nrva,
            struct_size,
        })
    }
}

/// One data directory entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataDirectory {
    pub virtual_address: u32,
    pub size: u32,
}

/// One section header plus pefile's derived values.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub raw_size: u32,
    pub raw_ptr: u32,
    pub characteristics: u32,
    ptr_adj: u64,
    va_adj: u64,
    min_addr: u64,
    max_addr: u64,
}

impl Section {
    /// The name without its NUL padding.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .rposition(|&c| c != 0)
            .map(|i| i + 1)
            .unwrap_or(0);
        &self.name[..end]
    }

    fn contains_rva(&self, rva: u64) -> bool {
        self.min_addr <= rva && rva < self.max_addr
    }

    /// pefile `SectionStructure.get_data(start, length)`.
    fn get_data<'a>(&self, data: &'a [u8], start: Option<u64>, length: Option<i128>) -> &'a [u8] {
        let offset: i128 = match start {
            None => i128::from(self.ptr_adj),
            Some(s) => i128::from(s) - i128::from(self.va_adj) + i128::from(self.ptr_adj),
        };
        let mut end = match length {
            Some(l) => offset + l,
            None => offset + i128::from(self.raw_size),
        };
        let limit = i128::from(self.raw_ptr) + i128::from(self.raw_size);
        if end > limit {
            end = limit;
        }
        py_slice(data, offset, Some(end))
    }

    /// The section's bytes as pefile hashes them (`get_data()`).
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        self.get_data(file, None, None)
    }
}

/// pefile `adjust_SectionAlignment`.
fn adjust_section_alignment(val: u32, section_alignment: u32, file_alignment: u32) -> u64 {
    let sa = if section_alignment < 0x1000 {
        file_alignment
    } else {
        section_alignment
    };
    if sa != 0 && !val.is_multiple_of(sa) {
        u64::from(sa) * u64::from(val / sa)
    } else {
        u64::from(val)
    }
}

/// pefile `adjust_PointerToRawData`: rounded down to 512 bytes.
fn adjust_pointer_to_raw_data(val: u32) -> u64 {
    u64::from(val & !0x1ff)
}

/// Why a buffer is not a PE (pefile's `PEFormatError` before the COFF
/// header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPe(pub &'static str);

/// A parsed PE image.
#[derive(Debug)]
pub struct Pe<'a> {
    pub data: &'a [u8],
    pub e_lfanew: usize,
    pub coff: Option<CoffHeader>,
    pub optional_header_offset: usize,
    pub opt: Option<OptionalHeader>,
    pub data_directories: Vec<DataDirectory>,
    /// Sorted by virtual address, as pefile keeps them.
    pub sections: Vec<Section>,
    /// Length of pefile's `header` (the bytes before the first section).
    header_len: usize,
    last_section: Cell<Option<usize>>,
    /// Anomalies that do not stop parsing.
    pub warnings: Vec<String>,
    /// Malformations: truncated headers, data past the end of the file.
    pub errors: Vec<String>,
}

impl<'a> Pe<'a> {
    /// Parse the headers and section table. `Err` when the buffer is not a
    /// PE at all (pefile refuses it before the file header); malformed PEs
    /// parse partially with `errors` set.
    pub fn parse(data: &'a [u8]) -> Result<Pe<'a>, NotPe> {
        if data.len() < 64 {
            return Err(NotPe("too short for a DOS header"));
        }
        let e_magic = u16_at(data, 0).unwrap_or(0);
        if e_magic == DOSZM_SIGNATURE {
            return Err(NotPe("ZM executable"));
        }
        if e_magic != DOS_SIGNATURE {
            return Err(NotPe("no MZ signature"));
        }
        let e_lfanew = u32_at(data, 0x3c).unwrap_or(u32::MAX) as usize;
        if e_lfanew > data.len() {
            return Err(NotPe("e_lfanew points past the end"));
        }
        let signature = match u32_at(data, e_lfanew) {
            Some(s) if s != 0 => s,
            _ => return Err(NotPe("no NT headers")),
        };
        match (signature & 0xffff) as u16 {
            NE_SIGNATURE => return Err(NotPe("NE executable")),
            LE_SIGNATURE => return Err(NotPe("LE executable")),
            LX_SIGNATURE => return Err(NotPe("LX executable")),
            TE_SIGNATURE => return Err(NotPe("TE executable")),
            _ => {}
        }
        if signature != NT_SIGNATURE {
            return Err(NotPe("invalid NT headers signature"));
        }

        let mut pe = Pe {
            data,
            e_lfanew,
            coff: None,
            optional_header_offset: e_lfanew + 24,
            opt: None,
            data_directories: Vec::new(),
            sections: Vec::new(),
            header_len: 0,
            last_section: Cell::new(None),
            warnings: Vec::new(),
            errors: Vec::new(),
        };

        let mut off = e_lfanew + 4;
        let coff = match data.get(off..off + 20) {
            Some(_) => CoffHeader::parse(data, &mut off).ok(),
            None => None,
        };
        let Some(coff) = coff else {
            pe.errors
                .push("truncated PE: the COFF file header is incomplete".into());
            return Ok(pe);
        };
        pe.coff = Some(coff);

        // The optional header: pefile reads the PE32 layout, zero-padding
        // it when at least 69 bytes are there, then re-reads PE32+.
        let ooff = pe.optional_header_offset;
        let window = |cap: usize| py_slice(data, ooff as i128, Some((ooff + cap) as i128));
        let read = |plus: bool, cap: usize, minimum: usize| -> Option<OptionalHeader> {
            let w = window(cap);
            let need = if plus { 112 } else { 96 };
            if w.len() >= need {
                OptionalHeader::parse(w, plus)
            } else if window(0x200).len() >= minimum {
                let mut padded = window(0x200).to_vec();
                padded.resize(padded.len() + 128, 0);
                OptionalHeader::parse(&padded, plus)
            } else {
                None
            }
        };
        let mut opt = read(false, 256, 69);
        if let Some(o) = &opt {
            if o.magic == MAGIC_PE32_PLUS {
                opt = read(true, 0x200, 73);
            } else if o.magic != MAGIC_PE32 {
                pe.warn(format!(
                    "invalid optional header magic 0x{:04x}, read as PE32",
                    o.magic
                ));
            }
        }
        let Some(opt) = opt else {
            pe.errors
                .push("truncated PE: the optional header is incomplete".into());
            return Ok(pe);
        };

        // Data directories follow the fixed part of the optional header
        // (pefile ignores SizeOfOptionalHeader here); missing bytes past the
        // end of the file read as zeros.
        let mut doff = ooff + opt.struct_size;
        let count = (opt.number_of_rva_and_sizes & 0x7fff_ffff).min(16) as usize;
        for _ in 0..count {
            if doff == data.len() {
                break;
            }
            let mut e = [0u8; 8];
            let avail = py_slice(data, doff as i128, Some(doff as i128 + 8));
            e[..avail.len()].copy_from_slice(avail);
            pe.data_directories.push(DataDirectory {
                virtual_address: u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                size: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            });
            doff += 8;
        }
        pe.opt = Some(opt);
        pe.parse_sections(ooff + usize::from(coff.size_of_optional_header));
        Ok(pe)
    }

    fn warn(&mut self, w: impl Into<String>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w.into());
        }
    }

    fn parse_sections(&mut self, offset: usize) {
        let Some(coff) = self.coff else { return };
        let Some(opt) = self.opt.clone() else { return };
        let data = self.data;
        let n = usize::from(coff.number_of_sections);
        let mut sections: Vec<Section> = Vec::new();
        for i in 0..n {
            if i >= MAX_SECTIONS {
                self.warn(format!("too many sections ({n}), only {MAX_SECTIONS} read"));
                break;
            }
            let so = offset + 40 * i;
            let raw = py_slice(data, so as i128, Some(so as i128 + 40));
            if raw.len() == 40 && raw.iter().all(|&b| b == 0) {
                self.warn(format!("section header {i} is all zero bytes; stopped"));
                break;
            }
            if raw.is_empty() {
                self.warn(format!("section header {i} lies past the end of the file"));
                self.errors.push(format!(
                    "truncated PE: the section table ends after {i} of {n} headers"
                ));
                break;
            }
            if raw.len() < 40 {
                self.errors.push(format!(
                    "truncated PE: section header {i} of {n} is incomplete"
                ));
                break;
            }
            let mut name = [0u8; 8];
            name.copy_from_slice(&raw[..8]);
            let field = |o: usize| u32_at(raw, o).unwrap_or(0);
            let s = Section {
                name,
                virtual_size: field(8),
                virtual_address: field(12),
                raw_size: field(16),
                raw_ptr: field(20),
                characteristics: field(36),
                ptr_adj: 0,
                va_adj: 0,
                min_addr: 0,
                max_addr: 0,
            };
            let mut problems = 0;
            if u64::from(s.raw_size) + u64::from(s.raw_ptr) > data.len() as u64 {
                problems += 1;
                self.warn(format!(
                    "section {i}: SizeOfRawData is larger than the file"
                ));
            }
            if adjust_pointer_to_raw_data(s.raw_ptr) > data.len() as u64 {
                problems += 1;
                self.warn(format!(
                    "section {i}: PointerToRawData points beyond the end of the file"
                ));
            }
            if s.virtual_size > 0x1000_0000 {
                problems += 1;
                self.warn(format!("section {i}: VirtualSize is larger than 256 MiB"));
            }
            if adjust_section_alignment(
                s.virtual_address,
                opt.section_alignment,
                opt.file_alignment,
            ) > 0x1000_0000
            {
                problems += 1;
                self.warn(format!("section {i}: VirtualAddress is beyond 0x10000000"));
            }
            if opt.file_alignment != 0 && !s.raw_ptr.is_multiple_of(opt.file_alignment) {
                problems += 1;
                self.warn(format!(
                    "section {i}: PointerToRawData is not a multiple of FileAlignment"
                ));
            }
            if problems >= 3 {
                self.warn("too many problems in one section header; stopped reading sections");
                break;
            }
            sections.push(s);
        }
        // Stable sort, as Python's.
        sections.sort_by_key(|s| s.virtual_address);
        let len = data.len() as i128;
        let next_vas: Vec<Option<u32>> = (0..sections.len())
            .map(|i| sections.get(i + 1).map(|s| s.virtual_address))
            .collect();
        for (s, next) in sections.iter_mut().zip(next_vas) {
            let mut ptr_adj = adjust_pointer_to_raw_data(s.raw_ptr);
            if opt.section_alignment < 0x1000 && s.raw_ptr == s.virtual_address {
                ptr_adj = u64::from(s.virtual_address);
            }
            s.ptr_adj = ptr_adj;
            s.va_adj = adjust_section_alignment(
                s.virtual_address,
                opt.section_alignment,
                opt.file_alignment,
            );
            let mut size = if len - i128::from(ptr_adj) < i128::from(s.raw_size) {
                u64::from(s.virtual_size)
            } else {
                u64::from(s.raw_size.max(s.virtual_size))
            };
            if let Some(next) = next {
                let next = u64::from(next);
                if next > u64::from(s.virtual_address) && s.va_adj + size > next {
                    size = next - s.va_adj;
                }
            }
            s.min_addr = s.va_adj;
            s.max_addr = s.va_adj + size;
        }
        let table_end = if n > 0 && !sections.is_empty() {
            offset + 40 * n
        } else {
            offset
        };
        let lowest = sections
            .iter()
            .filter(|s| s.raw_ptr > 0)
            .map(|s| adjust_pointer_to_raw_data(s.raw_ptr))
            .min();
        let header_end = match lowest {
            Some(l) if l != 0 && l >= table_end as u64 => l as usize,
            _ => table_end,
        };
        self.header_len = header_end.min(data.len());
        self.sections = sections;

        if self.sections.iter().any(|s| {
            s.raw_size > 0 && u64::from(s.raw_ptr) + u64::from(s.raw_size) > data.len() as u64
        }) {
            let need = self
                .sections
                .iter()
                .map(|s| u64::from(s.raw_ptr) + u64::from(s.raw_size))
                .max()
                .unwrap_or(0);
            self.errors.push(format!(
                "truncated PE: section data needs {need} bytes but the file has {}",
                data.len()
            ));
        }
        if self
            .section_by_rva(u64::from(opt.address_of_entry_point))
            .is_none()
        {
            self.warn(format!(
                "AddressOfEntryPoint 0x{:x} lies outside the sections",
                opt.address_of_entry_point
            ));
        }
    }

    /// The machine, or 0 when the COFF header is missing.
    pub fn machine(&self) -> u16 {
        self.coff.map(|c| c.machine).unwrap_or(0)
    }

    /// PE32+ (64-bit) layout.
    pub fn is_pe32_plus(&self) -> bool {
        self.opt
            .as_ref()
            .is_some_and(|o| o.magic == MAGIC_PE32_PLUS)
    }

    /// Data directory `idx`, when the header has it.
    pub fn directory(&self, idx: usize) -> Option<DataDirectory> {
        self.data_directories.get(idx).copied()
    }

    /// pefile `get_section_by_rva`, including its last-used cache.
    fn section_by_rva(&self, rva: u64) -> Option<&Section> {
        if let Some(i) = self.last_section.get() {
            if let Some(s) = self.sections.get(i) {
                if s.contains_rva(rva) {
                    return Some(s);
                }
            }
        }
        let i = self.sections.iter().position(|s| s.contains_rva(rva))?;
        self.last_section.set(Some(i));
        self.sections.get(i)
    }

    /// pefile `get_data(rva, length)`; `None` is its `PEFormatError`.
    pub fn get_data(&self, rva: u64, length: Option<i128>) -> Option<&'a [u8]> {
        let data = self.data;
        if let Some(s) = self.section_by_rva(rva) {
            return Some(s.get_data(data, Some(rva), length));
        }
        let end = length.map(|l| i128::from(rva) + l);
        if rva < self.header_len as u64 {
            return Some(py_slice(&data[..self.header_len], i128::from(rva), end));
        }
        if rva < data.len() as u64 {
            return Some(py_slice(data, i128::from(rva), end));
        }
        None
    }

    /// pefile `get_offset_from_rva`; `None` is its `PEFormatError`.
    pub fn offset_from_rva(&self, rva: u64) -> Option<u64> {
        match self.section_by_rva(rva) {
            Some(s) => {
                Some((i128::from(rva) - i128::from(s.va_adj) + i128::from(s.ptr_adj)).max(0) as u64)
            }
            None if rva < self.data.len() as u64 => Some(rva),
            None => None,
        }
    }

    /// pefile `get_string_at_rva`.
    fn string_at_rva(&self, rva: u64, max_length: u64) -> &'a [u8] {
        let data = self.data;
        match self.section_by_rva(rva) {
            Some(s) => cstr(s.get_data(data, Some(rva), Some(i128::from(max_length)))),
            None => cstr(py_slice(
                data,
                i128::from(rva),
                Some(i128::from(rva) + i128::from(max_length)),
            )),
        }
    }

    fn word_at_rva(&self, rva: u64) -> Option<u16> {
        u16_at(self.get_data(rva, Some(2))?, 0)
    }

    fn dword_at_rva(&self, rva: u64) -> Option<u32> {
        u32_at(self.get_data(rva, Some(4))?, 0)
    }

    fn qword_at_rva(&self, rva: u64) -> Option<u64> {
        u64_at(self.get_data(rva, Some(8))?, 0)
    }
}

// ---------------------------------------------------------------- imports

/// One imported symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSymbol {
    /// The name from the hint/name table, or the name the ordinal tables
    /// give an ordinal import from ws2_32/wsock32/oleaut32.
    pub name: Option<Vec<u8>>,
    pub ordinal: Option<u16>,
    pub by_ordinal: bool,
}

/// One import descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDll {
    /// The DLL name, or `*invalid*` when it has characters a DOS file name
    /// cannot have (pefile's rule).
    pub dll: Vec<u8>,
    pub symbols: Vec<ImportedSymbol>,
}

fn is_valid_dos_filename(s: &[u8]) -> bool {
    s.iter()
        .all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~+,.;=[]:\\/".contains(&c))
}

fn is_valid_function_name(s: &[u8], relaxed: bool) -> bool {
    let extra: &[u8] = if relaxed {
        b"!\"#$%&'()*+,-./:<>?[\\]^_`{|}~@"
    } else {
        b"._?@$()<>"
    };
    s.iter()
        .all(|&c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

struct ImportState {
    total_symbols: usize,
}

impl<'a> Pe<'a> {
    /// The import directory, walked as pefile walks it. Empty when there is
    /// none (pefile then has no `DIRECTORY_ENTRY_IMPORT`).
    pub fn imports(&mut self) -> Vec<ImportedDll> {
        let Some(dir) = self.directory(DIR_IMPORT) else {
            return Vec::new();
        };
        if dir.virtual_address == 0 {
            return Vec::new();
        }
        let mut state = ImportState { total_symbols: 0 };
        let mut rva = u64::from(dir.virtual_address);
        let mut out = Vec::new();
        let mut error_count = 0;
        let mut warnings = Vec::new();
        // Every pass advances `rva` by 20 until get_data fails, and the
        // thunk reads are capped in total, so this ends; the explicit bound
        // is a second guard.
        for _ in 0..(self.data.len() / 20 + 2) {
            let Some(desc) = self.get_data(rva, Some(20)) else {
                warnings.push(format!(
                    "import directory: cannot read descriptor at RVA 0x{rva:x}"
                ));
                break;
            };
            let Some(file_offset) = self.offset_from_rva(rva) else {
                break;
            };
            if desc.len() < 20 {
                warnings.push(format!(
                    "import directory: truncated descriptor at RVA 0x{rva:x}"
                ));
                break;
            }
            if desc.iter().all(|&b| b == 0) {
                break;
            }
            let oft = u64::from(u32_at(desc, 0).unwrap_or(0));
            let name_rva = u64::from(u32_at(desc, 12).unwrap_or(0));
            let ft = u64::from(u32_at(desc, 16).unwrap_or(0));
            rva += 20;
            let mut max_len = self.data.len() as i128 - i128::from(file_offset);
            if rva > oft || rva > ft {
                max_len = (i128::from(rva) - i128::from(oft)).max(i128::from(rva) - i128::from(ft));
            }
            let symbols = match self.parse_imports(&mut state, oft, ft, max_len, &mut warnings) {
                Ok(s) => s,
                Err(e) => {
                    warnings.push(format!(
                        "import directory: {e} (descriptor before RVA 0x{rva:x})"
                    ));
                    Vec::new()
                }
            };
            if error_count > 5 {
                warnings.push("import directory: too many errors, stopped".into());
                break;
            }
            if symbols.is_empty() {
                error_count += 1;
                continue;
            }
            let mut dll = self.string_at_rva(name_rva, MAX_DLL_LENGTH).to_vec();
            if !is_valid_dos_filename(&dll) {
                dll = b"*invalid*".to_vec();
            }
            if dll.is_empty() {
                continue;
            }
            let lower = dll.to_ascii_lowercase();
            let symbols = symbols
                .into_iter()
                .map(|mut s| {
                    if s.name.is_none() {
                        if let Some(o) = s.ordinal {
                            s.name = ordinal_table_name(&lower, o).map(|n| n.as_bytes().to_vec());
                        }
                    }
                    s
                })
                .collect();
            out.push(ImportedDll { dll, symbols });
        }
        for w in warnings {
            self.warn(w);
        }
        out
    }

    fn parse_imports(
        &self,
        state: &mut ImportState,
        oft: u64,
        ft: u64,
        max_len: i128,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<ImportedSymbol>, &'static str> {
        let ilt = self.import_table(state, oft, max_len, warnings);
        let iat = self.import_table(state, ft, max_len, warnings);
        let table = match (ilt, iat) {
            (Some(i), _) if !i.is_empty() => i,
            (_, Some(i)) if !i.is_empty() => i,
            _ => {
                warnings.push(format!(
                    "damaged import table (OriginalFirstThunk 0x{oft:x}, FirstThunk 0x{ft:x})"
                ));
                return Ok(Vec::new());
            }
        };
        let (ordinal_flag, mask) = if self.is_pe32_plus() {
            (1u64 << 63, 0x7fff_ffff_ffff_ffffu64)
        } else {
            (1u64 << 31, 0x7fff_ffffu64)
        };
        let mut out = Vec::new();
        let mut num_invalid = 0usize;
        for (idx, &entry) in table.iter().enumerate() {
            let mut ordinal = None;
            let mut name: Option<Vec<u8>> = None;
            let by_ordinal = entry & ordinal_flag != 0;
            if entry != 0 {
                if by_ordinal {
                    ordinal = Some((entry & 0xffff) as u16);
                } else if self.get_data(entry & mask, Some(2)).is_some() {
                    let n = self.string_at_rva(entry.wrapping_add(2), MAX_IMPORT_NAME_LENGTH);
                    name = Some(if is_valid_function_name(n, false) {
                        n.to_vec()
                    } else {
                        b"*invalid*".to_vec()
                    });
                }
            }
            if ordinal.is_none() && name.is_none() {
                return Err("invalid entries, import parsing aborted");
            }
            if name.as_deref() == Some(b"*invalid*") {
                if num_invalid > 1000 && num_invalid == idx {
                    return Err("too many invalid names, import parsing aborted");
                }
                num_invalid += 1;
                continue;
            }
            let keep =
                ordinal.is_some_and(|o| o != 0) || name.as_ref().is_some_and(|n| !n.is_empty());
            if keep {
                out.push(ImportedSymbol {
                    name,
                    ordinal,
                    by_ordinal,
                });
            }
        }
        Ok(out)
    }

    /// pefile `get_import_table`: `None` when a thunk cannot be read.
    fn import_table(
        &self,
        state: &mut ImportState,
        start: u64,
        max_len: i128,
        warnings: &mut Vec<String>,
    ) -> Option<Vec<u64>> {
        let plus = self.is_pe32_plus();
        let (size, ordinal_flag) = if plus {
            (8u64, 1u64 << 63)
        } else {
            (4u64, 1u64 << 31)
        };
        const MAX_ADDRESS_SPREAD: u64 = 128 << 20;
        let mut table = Vec::new();
        let mut repeated = 0;
        let mut set32: std::collections::HashSet<u64> = Default::default();
        let mut set64: std::collections::HashSet<u64> = Default::default();
        let (mut min32, mut max32, mut min64, mut max64) = (u64::MAX, 0u64, u64::MAX, 0u64);
        let mut rva = start;
        while rva != 0 {
            if i128::from(rva) >= i128::from(start) + max_len {
                warnings.push("import table entries go beyond bounds".into());
                break;
            }
            if state.total_symbols > MAX_IMPORT_SYMBOLS {
                warnings.push(format!(
                    "more than {MAX_IMPORT_SYMBOLS} import entries, stopped"
                ));
                break;
            }
            state.total_symbols += 1;
            if repeated >= 15 {
                return Some(Vec::new());
            }
            if (!set32.is_empty() && max32 - min32 > MAX_ADDRESS_SPREAD)
                || (!set64.is_empty() && max64 - min64 > MAX_ADDRESS_SPREAD)
            {
                return Some(Vec::new());
            }
            let bytes = self.get_data(rva, Some(i128::from(size)));
            let value = match bytes {
                Some(b) if b.len() as u64 == size => {
                    if plus {
                        u64_at(b, 0)
                    } else {
                        u32_at(b, 0).map(u64::from)
                    }
                }
                _ => None,
            };
            let Some(value) = value else {
                warnings.push(format!("import table: invalid data at RVA 0x{rva:x}"));
                return None;
            };
            if value >= start && value <= rva {
                warnings.push(format!(
                    "import table: AddressOfData overlaps the thunks at RVA 0x{rva:x}"
                ));
                break;
            }
            if value != 0 {
                if value & ordinal_flag != 0 {
                    if value & 0x7fff_ffff > 0xffff {
                        return Some(Vec::new());
                    }
                } else if value >= 1 << 32 {
                    if !set64.insert(value) {
                        repeated += 1;
                    }
                    min64 = min64.min(value);
                    max64 = max64.max(value);
                } else {
                    if !set32.insert(value) {
                        repeated += 1;
                    }
                    min32 = min32.min(value);
                    max32 = max32.max(value);
                }
            }
            if value == 0 {
                break;
            }
            rva += size;
            table.push(value);
        }
        Some(table)
    }
}

/// The name an ordinal import resolves to, from the ordinal tables pefile
/// uses for the imphash (frozen in the state YARA, VirusTotal and pefile's
/// imphash share): ws2_32.dll and wsock32.dll share one table, oleaut32.dll
/// has its own. `dll` is the lower-cased DLL name with its extension.
pub fn ordinal_table_name(dll: &[u8], ordinal: u16) -> Option<&'static str> {
    let table: &[(u16, &str)] = match dll {
        b"ws2_32.dll" | b"wsock32.dll" => WS2_32_ORDINALS,
        b"oleaut32.dll" => OLEAUT32_ORDINALS,
        _ => return None,
    };
    table
        .binary_search_by_key(&ordinal, |&(o, _)| o)
        .ok()
        .map(|i| table[i].1)
}

// ---------------------------------------------------------------- exports

/// One exported symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSymbol {
    pub name: Option<Vec<u8>>,
    pub ordinal: u64,
    pub address: Option<u32>,
    pub forwarder: Option<Vec<u8>>,
}

impl<'a> Pe<'a> {
    /// The export directory, read with pefile's rules (named exports first,
    /// then ordinal-only ones). Empty when absent or judged corrupt.
    pub fn exports(&mut self) -> Vec<ExportedSymbol> {
        let Some(dir) = self.directory(DIR_EXPORT) else {
            return Vec::new();
        };
        if dir.virtual_address == 0 {
            return Vec::new();
        }
        let mut warnings = Vec::new();
        let out = self
            .parse_exports(
                u64::from(dir.virtual_address),
                u64::from(dir.size),
                &mut warnings,
            )
            .unwrap_or_default();
        for w in warnings {
            self.warn(w);
        }
        out
    }

    fn parse_exports(
        &self,
        rva: u64,
        size: u64,
        warnings: &mut Vec<String>,
    ) -> Option<Vec<ExportedSymbol>> {
        let d = self.get_data(rva, Some(40))?;
        if d.len() < 40 {
            warnings.push(format!("export directory at RVA 0x{rva:x} is truncated"));
            return None;
        }
        let f = |o: usize| u32_at(d, o).unwrap_or(0);
        let base = u64::from(f(16));
        let n_functions = u64::from(f(20));
        let n_names = u64::from(f(24));
        let aof = u64::from(f(28));
        let aon = u64::from(f(32));
        let aono = u64::from(f(36));
        let until_eof = |r: u64| -> Option<i128> {
            Some(self.data.len() as i128 - i128::from(self.offset_from_rva(r)?))
        };
        let names = self.get_data(aon, Some(until_eof(aon)?.min(i128::from(n_names) * 4)))?;
        let ordinals = self.get_data(aono, Some(until_eof(aono)?.min(i128::from(n_names) * 4)))?;
        let functions =
            self.get_data(aof, Some(until_eof(aof)?.min(i128::from(n_functions) * 4)))?;
        let word = |b: &[u8], i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| u16_at(b, i.checked_mul(2)?))
        };
        let dword = |b: &[u8], i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| u32_at(b, i.checked_mul(4)?))
        };
        let safety = |r: u64| -> i128 {
            match self.section_by_rva(r) {
                Some(s) => {
                    i128::from(s.virtual_address) + s.data(self.data).len() as i128 - i128::from(r)
                }
                None => self.data.len() as i128,
            }
        };
        let in_dir = |a: u64| a >= rva && a < rva + size;

        let mut exports = Vec::new();
        let mut max_failed = 10;
        let mut counts: std::collections::HashMap<(Vec<u8>, u32), usize> = Default::default();
        let mut completed = true;
        let limit = i128::from(n_names).min(safety(aon) / 4).max(0) as u64;
        for i in 0..limit {
            let ord = word(ordinals, i);
            let address = match ord {
                Some(o) if (u64::from(o) * 4) < functions.len() as u64 => {
                    dword(functions, u64::from(o))
                }
                _ => return None,
            };
            let ord = u64::from(ord.unwrap_or(0));
            let Some(address) = address.filter(|&a| a != 0) else {
                continue;
            };
            let forwarder = if in_dir(u64::from(address)) {
                let fwd = self
                    .string_at_rva(u64::from(address), MAX_STRING_LENGTH)
                    .to_vec();
                if self.offset_from_rva(u64::from(address)).is_none() {
                    continue;
                }
                Some(fwd)
            } else {
                None
            };
            let Some(name_rva) = dword(names, i) else {
                completed = false;
                break;
            };
            let name = self.string_at_rva(u64::from(name_rva), MAX_SYMBOL_NAME_LENGTH);
            if !is_valid_function_name(name, true) {
                completed = false;
                break;
            }
            if self.offset_from_rva(u64::from(name_rva)).is_none() {
                max_failed -= 2;
                if max_failed <= 0 {
                    completed = false;
                    break;
                }
                continue;
            }
            let c = counts.entry((name.to_vec(), address)).or_insert(0);
            *c += 1;
            if *c > 10 {
                warnings.push(
                    "export directory repeats one entry more than 10 times; assumed corrupt".into(),
                );
                break;
            }
            if counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                warnings.push("export directory has too many symbols; assumed corrupt".into());
                break;
            }
            // pefile computes these offsets and fails the whole directory
            // when they cannot be mapped.
            self.offset_from_rva(aono + 2 * i)?;
            self.offset_from_rva(aof + 4 * ord)?;
            exports.push(ExportedSymbol {
                name: Some(name.to_vec()).filter(|n| !n.is_empty()),
                ordinal: base + ord,
                address: Some(address),
                forwarder,
            });
        }
        if !completed {
            warnings.push(format!(
                "export directory: AddressOfNames 0x{aon:x} points to an invalid address"
            ));
        }
        let named: std::collections::HashSet<u64> = exports.iter().map(|e| e.ordinal).collect();
        let mut max_failed = 10;
        let mut counts: std::collections::HashMap<Option<u32>, usize> = Default::default();
        let limit = i128::from(n_functions).min(safety(aof) / 4).max(0) as u64;
        for idx in 0..limit {
            if named.contains(&(idx + base)) {
                continue;
            }
            let address = dword(functions, idx);
            if address.is_none() {
                max_failed -= 1;
                if max_failed <= 0 {
                    warnings.push(format!(
                        "export directory: AddressOfFunctions 0x{aof:x} points to an invalid address"
                    ));
                    return None;
                }
            }
            if address == Some(0) {
                continue;
            }
            let forwarder = address
                .filter(|&a| in_dir(u64::from(a)))
                .map(|a| self.string_at_rva(u64::from(a), MAX_STRING_LENGTH).to_vec());
            let c = counts.entry(address).or_insert(0);
            *c += 1;
            if *c > MAX_REPEATED_EXPORT_SYMBOL {
                warnings.push(
                    "export directory repeats one ordinal entry too often; assumed corrupt".into(),
                );
                break;
            }
            if counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                warnings
                    .push("export directory has too many ordinal entries; assumed corrupt".into());
                break;
            }
            exports.push(ExportedSymbol {
                name: None,
                ordinal: base + idx,
                address,
                forwarder,
            });
        }
        Some(exports)
    }
}

// ---------------------------------------------------------------- resources

/// The id or the name of a resource directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKey {
    Id(u32),
    Name(String),
}

/// One resource (a leaf of the resource tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLeaf {
    /// The first-level entry (the resource type).
    pub type_key: Option<ResourceKey>,
    /// The second-level entry (the resource id or name).
    pub id_key: Option<ResourceKey>,
    /// Primary language id (`Name & 0x3ff` of the leaf's entry).
    pub language: u32,
    /// Sub-language id (`Name >> 10`).
    pub sub_language: u32,
    pub rva: u32,
    pub size: u32,
    pub code_page: u32,
    /// Whether this leaf is under the first id/name of an RT_VERSION type,
    /// the entries pefile reads version information from.
    pub version_candidate: bool,
}

struct ResourceWalk {
    total_entries: usize,
    leaves: Vec<ResourceLeaf>,
}

impl<'a> Pe<'a> {
    /// Every resource, depth first in directory order (pefile's limits:
    /// 32 levels, 4096 entries per directory, 0x8000 in all).
    pub fn resources(&mut self) -> Vec<ResourceLeaf> {
        let Some(dir) = self.directory(DIR_RESOURCE) else {
            return Vec::new();
        };
        if dir.virtual_address == 0 {
            return Vec::new();
        }
        let base = u64::from(dir.virtual_address);
        let mut walk = ResourceWalk {
            total_entries: 0,
            leaves: Vec::new(),
        };
        let mut warnings = Vec::new();
        let mut path: Vec<(ResourceKey, usize)> = Vec::new();
        let mut dirs = vec![base];
        if self
            .walk_resources(
                &mut walk,
                base,
                base,
                0,
                &mut dirs,
                &mut path,
                &mut warnings,
            )
            .is_none()
        {
            warnings.push(format!(
                "resource directory at RVA 0x{base:x} cannot be read"
            ));
        }
        for w in warnings {
            self.warn(w);
        }
        walk.leaves
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_resources(
        &self,
        walk: &mut ResourceWalk,
        mut rva: u64,
        base: u64,
        level: usize,
        dirs: &mut Vec<u64>,
        path: &mut Vec<(ResourceKey, usize)>,
        warnings: &mut Vec<String>,
    ) -> Option<()> {
        if level > MAX_RESOURCE_DEPTH {
            warnings.push("resource tree nested too deep".into());
            return None;
        }
        let head = self.get_data(rva, Some(16))?;
        if head.len() < 16 {
            return None;
        }
        let n = usize::from(u16_at(head, 12)?) + usize::from(u16_at(head, 14)?);
        if n > MAX_RESOURCE_DIR_ENTRIES {
            warnings.push(format!("resource directory with {n} entries; ignored"));
            return None;
        }
        walk.total_entries += n;
        if walk.total_entries > MAX_RESOURCE_ENTRIES {
            warnings.push("more than 0x8000 resource entries; stopped".into());
            return None;
        }
        rva += 16;
        for idx in 0..n {
            let Some(e) = self.get_data(rva, Some(8)).filter(|e| e.len() == 8) else {
                warnings.push(format!("resource entry at RVA 0x{rva:x} is invalid"));
                break;
            };
            let name = u32_at(e, 0).unwrap_or(0);
            let off = u32_at(e, 4).unwrap_or(0);
            let key = if name & 0x8000_0000 != 0 {
                ResourceKey::Name(
                    self.resource_name(base + u64::from(name & 0x7fff_ffff))
                        .unwrap_or_default(),
                )
            } else {
                ResourceKey::Id(name)
            };
            if off & 0x8000_0000 != 0 {
                let child = base + u64::from(off & 0x7fff_ffff);
                if dirs.contains(&child) {
                    break;
                }
                dirs.push(child);
                path.push((key, idx));
                let r = self.walk_resources(walk, child, base, level + 1, dirs, path, warnings);
                path.pop();
                dirs.pop();
                if r.is_none() {
                    break;
                }
            } else {
                let Some(d) = self
                    .get_data(base + u64::from(off), Some(16))
                    .filter(|d| d.len() == 16)
                else {
                    break;
                };
                let type_key = path
                    .first()
                    .map(|(k, _)| k.clone())
                    .or_else(|| Some(key.clone()).filter(|_| level == 0));
                let id_key = match level {
                    0 => None,
                    1 => Some(key.clone()),
                    _ => path.get(1).map(|(k, _)| k.clone()),
                };
                let version_candidate = level >= 2
                    && matches!(path.first(), Some((ResourceKey::Id(t), _)) if t & 0xffff == 16)
                    && path.get(1).is_some_and(|(_, i)| *i == 0);
                walk.leaves.push(ResourceLeaf {
                    type_key,
                    id_key,
                    language: name & 0x3ff,
                    sub_language: name >> 10,
                    rva: u32_at(d, 0).unwrap_or(0),
                    size: u32_at(d, 4).unwrap_or(0),
                    code_page: u32_at(d, 8).unwrap_or(0),
                    version_candidate,
                });
            }
            rva += 8;
        }
        Some(())
    }

    /// A resource name: a 16-bit length then that many UTF-16 units.
    fn resource_name(&self, rva: u64) -> Option<String> {
        let n = self.word_at_rva(rva)?;
        let b = self.get_data(rva + 2, Some(i128::from(n) * 2))?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(String::from_utf16_lossy(&units))
    }

    /// A resource's bytes (pefile `get_data(OffsetToData, Size)`).
    pub fn resource_data(&self, leaf: &ResourceLeaf) -> &'a [u8] {
        self.get_data(u64::from(leaf.rva), Some(i128::from(leaf.size)))
            .unwrap_or(&[])
    }
}

// ---------------------------------------------------------------- version info

/// The strings of a VS_VERSIONINFO resource, in file order, plus the
/// VarFileInfo `Translation` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub strings: Vec<(String, String)>,
    pub translations: Vec<(u16, u16)>,
}

struct VsBlock {
    start: usize,
    end: usize,
    value_length: usize,
    key: String,
    value_start: usize,
    children_start: usize,
}

impl<'a> Pe<'a> {
    /// Parse the VS_VERSIONINFO resource `leaf`.
    pub fn version_info(&self, leaf: &ResourceLeaf) -> Option<VersionInfo> {
        let start = self.offset_from_rva(u64::from(leaf.rva))?;
        let raw = py_slice(
            self.data,
            i128::from(start),
            Some(i128::from(start) + i128::from(leaf.size)),
        );
        // Alignment is to 32-bit boundaries of the RVA, as pefile does.
        let base = u64::from(leaf.rva);
        let align = |o: usize| (((o as u64 + base + 3) & !3) - (base & !3)) as usize;
        let block = |at: usize, limit: usize, is_text: bool| -> Option<VsBlock> {
            let length = usize::from(u16_at(raw, at)?);
            let value_length = usize::from(u16_at(raw, at + 2)?);
            let end = if length == 0 {
                limit
            } else {
                (at + length).min(limit)
            };
            let key_bytes = raw.get(at + 6..end)?;
            let (key, units) = utf16_until_nul(key_bytes, 256);
            let value_start = align(at + 6 + 2 * (units + 1));
            let value_bytes = if is_text {
                value_length * 2
            } else {
                value_length
            };
            let children_start = align(value_start + value_bytes).min(end.max(value_start));
            Some(VsBlock {
                start: at,
                end,
                value_length,
                key,
                value_start,
                children_start,
            })
        };
        let root = block(0, raw.len(), false)?;
        if root.key != "VS_VERSION_INFO" {
            return None;
        }
        let mut info = VersionInfo::default();
        let mut budget = 4096usize;
        let mut at = root.children_start;
        while at < root.end && budget > 0 {
            budget -= 1;
            let Some(child) = block(at, root.end, false) else {
                break;
            };
            if child.key.starts_with("StringFileInfo") {
                let mut t = child.children_start;
                while t < child.end && budget > 0 {
                    budget -= 1;
                    let Some(table) = block(t, child.end, false) else {
                        break;
                    };
                    let mut s = table.children_start;
                    while s < table.end && budget > 0 {
                        budget -= 1;
                        let Some(string) = block(s, table.end, true) else {
                            break;
                        };
                        let value = if string.value_length == 0 {
                            String::new()
                        } else {
                            let bytes = raw.get(string.value_start..string.end).unwrap_or(&[]);
                            utf16_until_nul(bytes, string.value_length).0
                        };
                        info.strings.push((string.key.clone(), value));
                        let next = align(string.end);
                        if next <= s {
                            break;
                        }
                        s = next;
                    }
                    let next = align(table.end);
                    if next <= t {
                        break;
                    }
                    t = next;
                }
            } else if child.key.starts_with("VarFileInfo") {
                let mut v = child.children_start;
                while v < child.end && budget > 0 {
                    budget -= 1;
                    let Some(var) = block(v, child.end, false) else {
                        break;
                    };
                    if var.key == "Translation" {
                        let vend = (var.value_start + var.value_length).min(var.end);
                        let mut p = var.value_start;
                        while p + 4 <= vend {
                            if let (Some(a), Some(b)) = (u16_at(raw, p), u16_at(raw, p + 2)) {
                                info.translations.push((a, b));
                            }
                            p += 4;
                        }
                    }
                    let next = align(var.end);
                    if next <= v {
                        break;
                    }
                    v = next;
                }
            }
            let next = align(child.end);
            if next <= child.start {
                break;
            }
            at = next;
        }
        Some(info)
    }
}

// ---------------------------------------------------------------- rich header

/// The Rich header as pefile reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichHeader {
    /// The XOR key (the dword after `Rich`).
    pub key: u32,
    /// From 0x80 up to `Rich`, XOR-ed with the key: `DanS`, three zero
    /// dwords, then the (comp.id, count) pairs.
    pub clear_data: Vec<u8>,
    /// (comp.id, count) pairs, decoded.
    pub values: Vec<(u32, u32)>,
    /// Whether the `DanS` marker and the three padding dwords decode.
    pub well_formed: bool,
}

impl<'a> Pe<'a> {
    /// The Rich header between the DOS stub and the PE header.
    pub fn rich_header(&self) -> Option<RichHeader> {
        const DANS: u32 = 0x536e_6144;
        const RICH: u32 = 0x6863_6952;
        let data = self.data;
        let end = self.optional_header_offset.min(data.len());
        if end <= 0x80 {
            return None;
        }
        let rich_index = 0x80 + data[0x80..end].windows(4).position(|w| w == b"Rich")?;
        let block = py_slice(data, 0x80, Some(rich_index as i128 + 8));
        let block = &block[..block.len() / 4 * 4];
        let dwords: Vec<u32> = block
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let pos = dwords.iter().position(|&d| d == RICH)?;
        let key = *dwords.get(pos + 1)?;
        let raw_end = block
            .windows(4)
            .position(|w| w == b"Rich")
            .unwrap_or(block.len());
        let kb = key.to_le_bytes();
        let clear_data: Vec<u8> = block[..raw_end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ kb[i % 4])
            .collect();
        let well_formed = dwords.len() >= 4
            && dwords[0] ^ key == DANS
            && dwords[1] == key
            && dwords[2] == key
            && dwords[3] == key;
        let mut values = Vec::new();
        for pair in dwords.get(4..).unwrap_or(&[]).chunks_exact(2) {
            if pair[0] == RICH {
                break;
            }
            values.push((pair[0] ^ key, pair[1] ^ key));
        }
        Some(RichHeader {
            key,
            clear_data,
            values,
            well_formed,
        })
    }
}

// ---------------------------------------------------------------- overlay, flags

impl<'a> Pe<'a> {
    /// pefile `get_overlay_data_start_offset`: the end of the furthest of
    /// the optional header, the sections' raw data and the data
    /// directories (except the certificate table) that lies within the
    /// file; `None` when nothing follows it. `trim()` cuts there.
    pub fn overlay_offset(&self) -> Option<u64> {
        let len = self.data.len() as u64;
        let mut largest = 0u64;
        let mut consider = |off: u64, size: u64| {
            let end = off + size;
            if largest < end && end <= len {
                largest = end;
            }
        };
        if let Some(coff) = self.coff {
            if self.opt.is_some() {
                consider(
                    self.optional_header_offset as u64,
                    u64::from(coff.size_of_optional_header),
                );
            }
        }
        for s in &self.sections {
            consider(u64::from(s.raw_ptr), u64::from(s.raw_size));
        }
        for (i, d) in self.data_directories.iter().enumerate() {
            if i == DIR_SECURITY {
                continue;
            }
            if let Some(off) = self.offset_from_rva(u64::from(d.virtual_address)) {
                consider(off, u64::from(d.size));
            }
        }
        (len > largest).then_some(largest)
    }

    /// pefile `is_dll`.
    pub fn is_dll(&self) -> bool {
        self.coff
            .is_some_and(|c| c.characteristics & goblin::pe::characteristic::IMAGE_FILE_DLL != 0)
    }

    /// pefile `is_driver`, given the parsed imports.
    pub fn is_driver(&self, imports: &[ImportedDll]) -> bool {
        if imports.is_empty() {
            return false;
        }
        const SYSTEM_DLLS: [&[u8]; 5] = [
            b"ntoskrnl.exe",
            b"hal.dll",
            b"ndis.sys",
            b"bootvid.dll",
            b"kdcom.dll",
        ];
        if imports
            .iter()
            .any(|i| SYSTEM_DLLS.contains(&i.dll.to_ascii_lowercase().as_slice()))
        {
            return true;
        }
        let native = self.opt.as_ref().is_some_and(|o| {
            o.subsystem == goblin::pe::subsystem::IMAGE_SUBSYSTEM_NATIVE
                || o.subsystem == goblin::pe::subsystem::IMAGE_SUBSYSTEM_NATIVE_WINDOWS
        });
        native
            && self.sections.iter().any(|s| {
                let lower = s.name.to_ascii_lowercase();
                let trimmed = cstr_trailing(&lower);
                trimmed == b"page" || trimmed == b"paged"
            })
    }

    /// pefile `is_exe`.
    pub fn is_exe(&self, imports: &[ImportedDll]) -> bool {
        let exe_flag = goblin::pe::characteristic::IMAGE_FILE_EXECUTABLE_IMAGE;
        !self.is_dll()
            && !self.is_driver(imports)
            && self
                .coff
                .is_some_and(|c| c.characteristics & exe_flag == exe_flag)
    }
}

/// Trailing NULs stripped (Python `rstrip(b"\0")`).
fn cstr_trailing(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map(|i| i + 1).unwrap_or(0);
    &b[..end]
}

// ---------------------------------------------------------------- TLS, debug, certificates

/// A CodeView record from the debug directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeView {
    /// `RSDS` (PDB 7.0) or `NB10` (PDB 2.0).
    pub format: &'static str,
    /// The PDB GUID (`RSDS`) in registry form, or the 32-bit signature
    /// (`NB10`) in hex.
    pub signature: String,
    pub age: u32,
    pub pdb_path: String,
}

/// One debug directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugEntry {
    pub debug_type: u32,
    pub timestamp: u32,
    pub major_version: u16,
    pub minor_version: u16,
    pub size_of_data: u32,
    pub pointer_to_raw_data: u32,
    pub codeview: Option<CodeView>,
}

/// One WIN_CERTIFICATE of the certificate table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// File offset of the WIN_CERTIFICATE header.
    pub offset: usize,
    pub length: u32,
    pub revision: u16,
    pub certificate_type: u16,
    /// File range of the certificate data (after the 8-byte header).
    pub data_start: usize,
    pub data_end: usize,
}

impl<'a> Pe<'a> {
    /// TLS callback addresses (VAs), read from the TLS directory's
    /// AddressOfCallBacks until a zero pointer (at most 255).
    pub fn tls_callbacks(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let (Some(dir), Some(opt)) = (self.directory(DIR_TLS), self.opt.as_ref()) else {
            return out;
        };
        if dir.virtual_address == 0 {
            return out;
        }
        let plus = self.is_pe32_plus();
        let rva = u64::from(dir.virtual_address);
        let callbacks_va = if plus {
            self.qword_at_rva(rva + 24)
        } else {
            self.dword_at_rva(rva + 12).map(u64::from)
        };
        let Some(va) = callbacks_va.filter(|&v| v != 0) else {
            return out;
        };
        let Some(mut at) = va.checked_sub(opt.image_base) else {
            return out;
        };
        for _ in 0..MAX_TLS_CALLBACKS {
            let cb = if plus {
                self.qword_at_rva(at)
            } else {
                self.dword_at_rva(at).map(u64::from)
            };
            match cb {
                Some(c) if c != 0 => out.push(c),
                _ => break,
            }
            match at.checked_add(if plus { 8 } else { 4 }) {
                Some(next) => at = next,
                None => break,
            }
        }
        out
    }

    /// The debug directory entries (at most 64).
    pub fn debug_entries(&self) -> Vec<DebugEntry> {
        let mut out = Vec::new();
        let Some(dir) = self.directory(DIR_DEBUG) else {
            return out;
        };
        if dir.virtual_address == 0 {
            return out;
        }
        let count = (dir.size / 28) as usize;
        for i in 0..count.min(MAX_DEBUG_ENTRIES) {
            let rva = u64::from(dir.virtual_address) + 28 * i as u64;
            let Some(e) = self.get_data(rva, Some(28)).filter(|e| e.len() == 28) else {
                break;
            };
            let f = |o: usize| u32_at(e, o).unwrap_or(0);
            let debug_type = f(12);
            let size_of_data = f(16);
            let ptr = f(24);
            let codeview = if debug_type == 2 {
                let raw = py_slice(
                    self.data,
                    i128::from(ptr),
                    Some(i128::from(ptr) + i128::from(size_of_data)),
                );
                codeview(raw)
            } else {
                None
            };
            out.push(DebugEntry {
                debug_type,
                timestamp: f(4),
                major_version: u16_at(e, 8).unwrap_or(0),
                minor_version: u16_at(e, 10).unwrap_or(0),
                size_of_data,
                pointer_to_raw_data: ptr,
                codeview,
            });
        }
        out
    }

    /// The entries of the certificate table (the security directory holds
    /// a file offset, not an RVA). Decoded with goblin; stops at the first
    /// entry goblin rejects or that leaves the table.
    pub fn certificates(&mut self) -> Vec<Certificate> {
        let mut out = Vec::new();
        let Some(dir) = self.directory(DIR_SECURITY) else {
            return out;
        };
        if dir.virtual_address == 0 || dir.size == 0 {
            return out;
        }
        let start = dir.virtual_address as usize;
        let table_end = start.saturating_add(dir.size as usize);
        if table_end > self.data.len() {
            self.errors.push(format!(
                "certificate table (offset {start}, size {}) extends past the end of the file ({} bytes)",
                dir.size,
                self.data.len()
            ));
        }
        let table = &self.data[..table_end.min(self.data.len())];
        let mut at = start;
        let mut problem = None;
        while at < table.len() && out.len() < MAX_CERTIFICATES {
            let here = at;
            match AttributeCertificate::parse(table, &mut at) {
                Ok(c) => {
                    let data_start = here + 8;
                    out.push(Certificate {
                        offset: here,
                        length: c.length,
                        revision: c.revision as u16,
                        certificate_type: c.certificate_type as u16,
                        data_start,
                        data_end: data_start + c.certificate.len(),
                    });
                }
                Err(e) => {
                    problem = Some(format!("certificate table entry at offset {here}: {e}"));
                    break;
                }
            }
            if at <= here {
                break;
            }
        }
        if let Some(p) = problem {
            self.warn(p);
        }
        out
    }
}

fn codeview(raw: &[u8]) -> Option<CodeView> {
    match raw.get(..4)? {
        b"RSDS" => {
            let d1 = u32_at(raw, 4)?;
            let d2 = u16_at(raw, 8)?;
            let d3 = u16_at(raw, 10)?;
            let d4 = raw.get(12..20)?;
            let signature = format!(
                "{d1:08X}-{d2:04X}-{d3:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]
            );
            Some(CodeView {
                format: "RSDS",
                signature,
                age: u32_at(raw, 20)?,
                pdb_path: bytes_to_string(cstr(raw.get(24..).unwrap_or(&[]))),
            })
        }
        b"NB10" => Some(CodeView {
            format: "NB10",
            signature: format!("{:08X}", u32_at(raw, 8)?),
            age: u32_at(raw, 12)?,
            pdb_path: bytes_to_string(cstr(raw.get(16..).unwrap_or(&[]))),
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------- names

/// pefile's `IMAGE_FILE_MACHINE_*` name of a machine value.
pub fn machine_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        0x0 => "IMAGE_FILE_MACHINE_UNKNOWN",
        0x014c => "IMAGE_FILE_MACHINE_I386",
        0x0162 => "IMAGE_FILE_MACHINE_R3000",
        0x0166 => "IMAGE_FILE_MACHINE_R4000",
        0x0168 => "IMAGE_FILE_MACHINE_R10000",
        0x0169 => "IMAGE_FILE_MACHINE_WCEMIPSV2",
        0x0184 => "IMAGE_FILE_MACHINE_ALPHA",
        0x01a2 => "IMAGE_FILE_MACHINE_SH3",
        0x01a3 => "IMAGE_FILE_MACHINE_SH3DSP",
        0x01a4 => "IMAGE_FILE_MACHINE_SH3E",
        0x01a6 => "IMAGE_FILE_MACHINE_SH4",
        0x01a8 => "IMAGE_FILE_MACHINE_SH5",
        0x01c0 => "IMAGE_FILE_MACHINE_ARM",
        0x01c2 => "IMAGE_FILE_MACHINE_THUMB",
        0x01c4 => "IMAGE_FILE_MACHINE_ARMNT",
        0x01d3 => "IMAGE_FILE_MACHINE_AM33",
        0x01f0 => "IMAGE_FILE_MACHINE_POWERPC",
        0x01f1 => "IMAGE_FILE_MACHINE_POWERPCFP",
        0x0200 => "IMAGE_FILE_MACHINE_IA64",
        0x0266 => "IMAGE_FILE_MACHINE_MIPS16",
        0x0284 => "IMAGE_FILE_MACHINE_ALPHA64",
        0x0366 => "IMAGE_FILE_MACHINE_MIPSFPU",
        0x0466 => "IMAGE_FILE_MACHINE_MIPSFPU16",
        0x0520 => "IMAGE_FILE_MACHINE_TRICORE",
        0x0cef => "IMAGE_FILE_MACHINE_CEF",
        0x0ebc => "IMAGE_FILE_MACHINE_EBC",
        0x5032 => "IMAGE_FILE_MACHINE_RISCV32",
        0x5064 => "IMAGE_FILE_MACHINE_RISCV64",
        0x5128 => "IMAGE_FILE_MACHINE_RISCV128",
        0x6232 => "IMAGE_FILE_MACHINE_LOONGARCH32",
        0x6264 => "IMAGE_FILE_MACHINE_LOONGARCH64",
        0x8664 => "IMAGE_FILE_MACHINE_AMD64",
        0x9041 => "IMAGE_FILE_MACHINE_M32R",
        0xaa64 => "IMAGE_FILE_MACHINE_ARM64",
        0xc0ee => "IMAGE_FILE_MACHINE_CEE",
        _ => return None,
    })
}

/// pefile's `IMAGE_SUBSYSTEM_*` name of a subsystem value.
pub fn subsystem_name(subsystem: u16) -> Option<&'static str> {
    Some(match subsystem {
        0 => "IMAGE_SUBSYSTEM_UNKNOWN",
        1 => "IMAGE_SUBSYSTEM_NATIVE",
        2 => "IMAGE_SUBSYSTEM_WINDOWS_GUI",
        3 => "IMAGE_SUBSYSTEM_WINDOWS_CUI",
        5 => "IMAGE_SUBSYSTEM_OS2_CUI",
        7 => "IMAGE_SUBSYSTEM_POSIX_CUI",
        8 => "IMAGE_SUBSYSTEM_NATIVE_WINDOWS",
        9 => "IMAGE_SUBSYSTEM_WINDOWS_CE_GUI",
        10 => "IMAGE_SUBSYSTEM_EFI_APPLICATION",
        11 => "IMAGE_SUBSYSTEM_EFI_BOOT_SERVICE_DRIVER",
        12 => "IMAGE_SUBSYSTEM_EFI_RUNTIME_DRIVER",
        13 => "IMAGE_SUBSYSTEM_EFI_ROM",
        14 => "IMAGE_SUBSYSTEM_XBOX",
        16 => "IMAGE_SUBSYSTEM_WINDOWS_BOOT_APPLICATION",
        _ => return None,
    })
}

/// pefile's `RT_*` name of a resource type id.
pub fn resource_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        1 => "RT_CURSOR",
        2 => "RT_BITMAP",
        3 => "RT_ICON",
        4 => "RT_MENU",
        5 => "RT_DIALOG",
        6 => "RT_STRING",
        7 => "RT_FONTDIR",
        8 => "RT_FONT",
        9 => "RT_ACCELERATOR",
        10 => "RT_RCDATA",
        11 => "RT_MESSAGETABLE",
        12 => "RT_GROUP_CURSOR",
        14 => "RT_GROUP_ICON",
        16 => "RT_VERSION",
        17 => "RT_DLGINCLUDE",
        19 => "RT_PLUGPLAY",
        20 => "RT_VXD",
        21 => "RT_ANICURSOR",
        22 => "RT_ANIICON",
        23 => "RT_HTML",
        24 => "RT_MANIFEST",
        _ => return None,
    })
}

/// pefile's `IMAGE_DEBUG_TYPE_*` name of a debug entry type.
pub fn debug_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0 => "IMAGE_DEBUG_TYPE_UNKNOWN",
        1 => "IMAGE_DEBUG_TYPE_COFF",
        2 => "IMAGE_DEBUG_TYPE_CODEVIEW",
        3 => "IMAGE_DEBUG_TYPE_FPO",
        4 => "IMAGE_DEBUG_TYPE_MISC",
        5 => "IMAGE_DEBUG_TYPE_EXCEPTION",
        6 => "IMAGE_DEBUG_TYPE_FIXUP",
        7 => "IMAGE_DEBUG_TYPE_OMAP_TO_SRC",
        8 => "IMAGE_DEBUG_TYPE_OMAP_FROM_SRC",
        9 => "IMAGE_DEBUG_TYPE_BORLAND",
        10 => "IMAGE_DEBUG_TYPE_RESERVED10",
        11 => "IMAGE_DEBUG_TYPE_CLSID",
        12 => "IMAGE_DEBUG_TYPE_VC_FEATURE",
        13 => "IMAGE_DEBUG_TYPE_POGO",
        14 => "IMAGE_DEBUG_TYPE_ILTCG",
        15 => "IMAGE_DEBUG_TYPE_MPX",
        16 => "IMAGE_DEBUG_TYPE_REPRO",
        20 => "IMAGE_DEBUG_TYPE_EX_DLLCHARACTERISTICS",
        _ => return None,
    })
}

// ---------------------------------------------------------------- ordinal tables

/// ws2_32.dll (and wsock32.dll) ordinals, as frozen for the imphash.
const WS2_32_ORDINALS: &[(u16, &str)] = &[
    (1, "accept"),
    (2, "bind"),
    (3, "closesocket"),
    (4, "connect"),
    (5, "getpeername"),
    (6, "getsockname"),
    (7, "getsockopt"),
    (8, "htonl"),
    (9, "htons"),
    (10, "ioctlsocket"),
    (11, "inet_addr"),
    (12, "inet_ntoa"),
    (13, "listen"),
    (14, "ntohl"),
    (15, "ntohs"),
    (16, "recv"),
    (17, "recvfrom"),
    (18, "select"),
    (19, "send"),
    (20, "sendto"),
    (21, "setsockopt"),
    (22, "shutdown"),
    (23, "socket"),
    (24, "GetAddrInfoW"),
    (25, "GetNameInfoW"),
    (26, "WSApSetPostRoutine"),
    (27, "FreeAddrInfoW"),
    (28, "WPUCompleteOverlappedRequest"),
    (29, "WSAAccept"),
    (30, "WSAAddressToStringA"),
    (31, "WSAAddressToStringW"),
    (32, "WSACloseEvent"),
    (33, "WSAConnect"),
    (34, "WSACreateEvent"),
    (35, "WSADuplicateSocketA"),
    (36, "WSADuplicateSocketW"),
    (37, "WSAEnumNameSpaceProvidersA"),
    (38, "WSAEnumNameSpaceProvidersW"),
    (39, "WSAEnumNetworkEvents"),
    (40, "WSAEnumProtocolsA"),
    (41, "WSAEnumProtocolsW"),
    (42, "WSAEventSelect"),
    (43, "WSAGetOverlappedResult"),
    (44, "WSAGetQOSByName"),
    (45, "WSAGetServiceClassInfoA"),
    (46, "WSAGetServiceClassInfoW"),
    (47, "WSAGetServiceClassNameByClassIdA"),
    (48, "WSAGetServiceClassNameByClassIdW"),
    (49, "WSAHtonl"),
    (50, "WSAHtons"),
    (51, "gethostbyaddr"),
    (52, "gethostbyname"),
    (53, "getprotobyname"),
    (54, "getprotobynumber"),
    (55, "getservbyname"),
    (56, "getservbyport"),
    (57, "gethostname"),
    (58, "WSAInstallServiceClassA"),
    (59, "WSAInstallServiceClassW"),
    (60, "WSAIoctl"),
    (61, "WSAJoinLeaf"),
    (62, "WSALookupServiceBeginA"),
    (63, "WSALookupServiceBeginW"),
    (64, "WSALookupServiceEnd"),
    (65, "WSALookupServiceNextA"),
    (66, "WSALookupServiceNextW"),
    (67, "WSANSPIoctl"),
    (68, "WSANtohl"),
    (69, "WSANtohs"),
    (70, "WSAProviderConfigChange"),
    (71, "WSARecv"),
    (72, "WSARecvDisconnect"),
    (73, "WSARecvFrom"),
    (74, "WSARemoveServiceClass"),
    (75, "WSAResetEvent"),
    (76, "WSASend"),
    (77, "WSASendDisconnect"),
    (78, "WSASendTo"),
    (79, "WSASetEvent"),
    (80, "WSASetServiceA"),
    (81, "WSASetServiceW"),
    (82, "WSASocketA"),
    (83, "WSASocketW"),
    (84, "WSAStringToAddressA"),
    (85, "WSAStringToAddressW"),
    (86, "WSAWaitForMultipleEvents"),
    (87, "WSCDeinstallProvider"),
    (88, "WSCEnableNSProvider"),
    (89, "WSCEnumProtocols"),
    (90, "WSCGetProviderPath"),
    (91, "WSCInstallNameSpace"),
    (92, "WSCInstallProvider"),
    (93, "WSCUnInstallNameSpace"),
    (94, "WSCUpdateProvider"),
    (95, "WSCWriteNameSpaceOrder"),
    (96, "WSCWriteProviderOrder"),
    (97, "freeaddrinfo"),
    (98, "getaddrinfo"),
    (99, "getnameinfo"),
    (101, "WSAAsyncSelect"),
    (102, "WSAAsyncGetHostByAddr"),
    (103, "WSAAsyncGetHostByName"),
    (104, "WSAAsyncGetProtoByNumber"),
    (105, "WSAAsyncGetProtoByName"),
    (106, "WSAAsyncGetServByPort"),
    (107, "WSAAsyncGetServByName"),
    (108, "WSACancelAsyncRequest"),
    (109, "WSASetBlockingHook"),
    (110, "WSAUnhookBlockingHook"),
    (111, "WSAGetLastError"),
    (112, "WSASetLastError"),
    (113, "WSACancelBlockingCall"),
    (114, "WSAIsBlocking"),
    (115, "WSAStartup"),
    (116, "WSACleanup"),
    (151, "__WSAFDIsSet"),
    (500, "WEP"),
];
/// oleaut32.dll ordinals, as frozen for the imphash.
const OLEAUT32_ORDINALS: &[(u16, &str)] = &[
    (2, "SysAllocString"),
    (3, "SysReAllocString"),
    (4, "SysAllocStringLen"),
    (5, "SysReAllocStringLen"),
    (6, "SysFreeString"),
    (7, "SysStringLen"),
    (8, "VariantInit"),
    (9, "VariantClear"),
    (10, "VariantCopy"),
    (11, "VariantCopyInd"),
    (12, "VariantChangeType"),
    (13, "VariantTimeToDosDateTime"),
    (14, "DosDateTimeToVariantTime"),
    (15, "SafeArrayCreate"),
    (16, "SafeArrayDestroy"),
    (17, "SafeArrayGetDim"),
    (18, "SafeArrayGetElemsize"),
    (19, "SafeArrayGetUBound"),
    (20, "SafeArrayGetLBound"),
    (21, "SafeArrayLock"),
    (22, "SafeArrayUnlock"),
    (23, "SafeArrayAccessData"),
    (24, "SafeArrayUnaccessData"),
    (25, "SafeArrayGetElement"),
    (26, "SafeArrayPutElement"),
    (27, "SafeArrayCopy"),
    (28, "DispGetParam"),
    (29, "DispGetIDsOfNames"),
    (30, "DispInvoke"),
    (31, "CreateDispTypeInfo"),
    (32, "CreateStdDispatch"),
    (33, "RegisterActiveObject"),
    (34, "RevokeActiveObject"),
    (35, "GetActiveObject"),
    (36, "SafeArrayAllocDescriptor"),
    (37, "SafeArrayAllocData"),
    (38, "SafeArrayDestroyDescriptor"),
    (39, "SafeArrayDestroyData"),
    (40, "SafeArrayRedim"),
    (41, "SafeArrayAllocDescriptorEx"),
    (42, "SafeArrayCreateEx"),
    (43, "SafeArrayCreateVectorEx"),
    (44, "SafeArraySetRecordInfo"),
    (45, "SafeArrayGetRecordInfo"),
    (46, "VarParseNumFromStr"),
    (47, "VarNumFromParseNum"),
    (48, "VarI2FromUI1"),
    (49, "VarI2FromI4"),
    (50, "VarI2FromR4"),
    (51, "VarI2FromR8"),
    (52, "VarI2FromCy"),
    (53, "VarI2FromDate"),
    (54, "VarI2FromStr"),
    (55, "VarI2FromDisp"),
    (56, "VarI2FromBool"),
    (57, "SafeArraySetIID"),
    (58, "VarI4FromUI1"),
    (59, "VarI4FromI2"),
    (60, "VarI4FromR4"),
    (61, "VarI4FromR8"),
    (62, "VarI4FromCy"),
    (63, "VarI4FromDate"),
    (64, "VarI4FromStr"),
    (65, "VarI4FromDisp"),
    (66, "VarI4FromBool"),
    (67, "SafeArrayGetIID"),
    (68, "VarR4FromUI1"),
    (69, "VarR4FromI2"),
    (70, "VarR4FromI4"),
    (71, "VarR4FromR8"),
    (72, "VarR4FromCy"),
    (73, "VarR4FromDate"),
    (74, "VarR4FromStr"),
    (75, "VarR4FromDisp"),
    (76, "VarR4FromBool"),
    (77, "SafeArrayGetVartype"),
    (78, "VarR8FromUI1"),
    (79, "VarR8FromI2"),
    (80, "VarR8FromI4"),
    (81, "VarR8FromR4"),
    (82, "VarR8FromCy"),
    (83, "VarR8FromDate"),
    (84, "VarR8FromStr"),
    (85, "VarR8FromDisp"),
    (86, "VarR8FromBool"),
    (87, "VarFormat"),
    (88, "VarDateFromUI1"),
    (89, "VarDateFromI2"),
    (90, "VarDateFromI4"),
    (91, "VarDateFromR4"),
    (92, "VarDateFromR8"),
    (93, "VarDateFromCy"),
    (94, "VarDateFromStr"),
    (95, "VarDateFromDisp"),
    (96, "VarDateFromBool"),
    (97, "VarFormatDateTime"),
    (98, "VarCyFromUI1"),
    (99, "VarCyFromI2"),
    (100, "VarCyFromI4"),
    (101, "VarCyFromR4"),
    (102, "VarCyFromR8"),
    (103, "VarCyFromDate"),
    (104, "VarCyFromStr"),
    (105, "VarCyFromDisp"),
    (106, "VarCyFromBool"),
    (107, "VarFormatNumber"),
    (108, "VarBstrFromUI1"),
    (109, "VarBstrFromI2"),
    (110, "VarBstrFromI4"),
    (111, "VarBstrFromR4"),
    (112, "VarBstrFromR8"),
    (113, "VarBstrFromCy"),
    (114, "VarBstrFromDate"),
    (115, "VarBstrFromDisp"),
    (116, "VarBstrFromBool"),
    (117, "VarFormatPercent"),
    (118, "VarBoolFromUI1"),
    (119, "VarBoolFromI2"),
    (120, "VarBoolFromI4"),
    (121, "VarBoolFromR4"),
    (122, "VarBoolFromR8"),
    (123, "VarBoolFromDate"),
    (124, "VarBoolFromCy"),
    (125, "VarBoolFromStr"),
    (126, "VarBoolFromDisp"),
    (127, "VarFormatCurrency"),
    (128, "VarWeekdayName"),
    (129, "VarMonthName"),
    (130, "VarUI1FromI2"),
    (131, "VarUI1FromI4"),
    (132, "VarUI1FromR4"),
    (133, "VarUI1FromR8"),
    (134, "VarUI1FromCy"),
    (135, "VarUI1FromDate"),
    (136, "VarUI1FromStr"),
    (137, "VarUI1FromDisp"),
    (138, "VarUI1FromBool"),
    (139, "VarFormatFromTokens"),
    (140, "VarTokenizeFormatString"),
    (141, "VarAdd"),
    (142, "VarAnd"),
    (143, "VarDiv"),
    (144, "DllCanUnloadNow"),
    (145, "DllGetClassObject"),
    (146, "DispCallFunc"),
    (147, "VariantChangeTypeEx"),
    (148, "SafeArrayPtrOfIndex"),
    (149, "SysStringByteLen"),
    (150, "SysAllocStringByteLen"),
    (151, "DllRegisterServer"),
    (152, "VarEqv"),
    (153, "VarIdiv"),
    (154, "VarImp"),
    (155, "VarMod"),
    (156, "VarMul"),
    (157, "VarOr"),
    (158, "VarPow"),
    (159, "VarSub"),
    (160, "CreateTypeLib"),
    (161, "LoadTypeLib"),
    (162, "LoadRegTypeLib"),
    (163, "RegisterTypeLib"),
    (164, "QueryPathOfRegTypeLib"),
    (165, "LHashValOfNameSys"),
    (166, "LHashValOfNameSysA"),
    (167, "VarXor"),
    (168, "VarAbs"),
    (169, "VarFix"),
    (170, "OaBuildVersion"),
    (171, "ClearCustData"),
    (172, "VarInt"),
    (173, "VarNeg"),
    (174, "VarNot"),
    (175, "VarRound"),
    (176, "VarCmp"),
    (177, "VarDecAdd"),
    (178, "VarDecDiv"),
    (179, "VarDecMul"),
    (180, "CreateTypeLib2"),
    (181, "VarDecSub"),
    (182, "VarDecAbs"),
    (183, "LoadTypeLibEx"),
    (184, "SystemTimeToVariantTime"),
    (185, "VariantTimeToSystemTime"),
    (186, "UnRegisterTypeLib"),
    (187, "VarDecFix"),
    (188, "VarDecInt"),
    (189, "VarDecNeg"),
    (190, "VarDecFromUI1"),
    (191, "VarDecFromI2"),
    (192, "VarDecFromI4"),
    (193, "VarDecFromR4"),
    (194, "VarDecFromR8"),
    (195, "VarDecFromDate"),
    (196, "VarDecFromCy"),
    (197, "VarDecFromStr"),
    (198, "VarDecFromDisp"),
    (199, "VarDecFromBool"),
    (200, "GetErrorInfo"),
    (201, "SetErrorInfo"),
    (202, "CreateErrorInfo"),
    (203, "VarDecRound"),
    (204, "VarDecCmp"),
    (205, "VarI2FromI1"),
    (206, "VarI2FromUI2"),
    (207, "VarI2FromUI4"),
    (208, "VarI2FromDec"),
    (209, "VarI4FromI1"),
    (210, "VarI4FromUI2"),
    (211, "VarI4FromUI4"),
    (212, "VarI4FromDec"),
    (213, "VarR4FromI1"),
    (214, "VarR4FromUI2"),
    (215, "VarR4FromUI4"),
    (216, "VarR4FromDec"),
    (217, "VarR8FromI1"),
    (218, "VarR8FromUI2"),
    (219, "VarR8FromUI4"),
    (220, "VarR8FromDec"),
    (221, "VarDateFromI1"),
    (222, "VarDateFromUI2"),
    (223, "VarDateFromUI4"),
    (224, "VarDateFromDec"),
    (225, "VarCyFromI1"),
    (226, "VarCyFromUI2"),
    (227, "VarCyFromUI4"),
    (228, "VarCyFromDec"),
    (229, "VarBstrFromI1"),
    (230, "VarBstrFromUI2"),
    (231, "VarBstrFromUI4"),
    (232, "VarBstrFromDec"),
    (233, "VarBoolFromI1"),
    (234, "VarBoolFromUI2"),
    (235, "VarBoolFromUI4"),
    (236, "VarBoolFromDec"),
    (237, "VarUI1FromI1"),
    (238, "VarUI1FromUI2"),
    (239, "VarUI1FromUI4"),
    (240, "VarUI1FromDec"),
    (241, "VarDecFromI1"),
    (242, "VarDecFromUI2"),
    (243, "VarDecFromUI4"),
    (244, "VarI1FromUI1"),
    (245, "VarI1FromI2"),
    (246, "VarI1FromI4"),
    (247, "VarI1FromR4"),
    (248, "VarI1FromR8"),
    (249, "VarI1FromDate"),
    (250, "VarI1FromCy"),
    (251, "VarI1FromStr"),
    (252, "VarI1FromDisp"),
    (253, "VarI1FromBool"),
    (254, "VarI1FromUI2"),
    (255, "VarI1FromUI4"),
    (256, "VarI1FromDec"),
    (257, "VarUI2FromUI1"),
    (258, "VarUI2FromI2"),
    (259, "VarUI2FromI4"),
    (260, "VarUI2FromR4"),
    (261, "VarUI2FromR8"),
    (262, "VarUI2FromDate"),
    (263, "VarUI2FromCy"),
    (264, "VarUI2FromStr"),
    (265, "VarUI2FromDisp"),
    (266, "VarUI2FromBool"),
    (267, "VarUI2FromI1"),
    (268, "VarUI2FromUI4"),
    (269, "VarUI2FromDec"),
    (270, "VarUI4FromUI1"),
    (271, "VarUI4FromI2"),
    (272, "VarUI4FromI4"),
    (273, "VarUI4FromR4"),
    (274, "VarUI4FromR8"),
    (275, "VarUI4FromDate"),
    (276, "VarUI4FromCy"),
    (277, "VarUI4FromStr"),
    (278, "VarUI4FromDisp"),
    (279, "VarUI4FromBool"),
    (280, "VarUI4FromI1"),
    (281, "VarUI4FromUI2"),
    (282, "VarUI4FromDec"),
    (283, "BSTR_UserSize"),
    (284, "BSTR_UserMarshal"),
    (285, "BSTR_UserUnmarshal"),
    (286, "BSTR_UserFree"),
    (287, "VARIANT_UserSize"),
    (288, "VARIANT_UserMarshal"),
    (289, "VARIANT_UserUnmarshal"),
    (290, "VARIANT_UserFree"),
    (291, "LPSAFEARRAY_UserSize"),
    (292, "LPSAFEARRAY_UserMarshal"),
    (293, "LPSAFEARRAY_UserUnmarshal"),
    (294, "LPSAFEARRAY_UserFree"),
    (295, "LPSAFEARRAY_Size"),
    (296, "LPSAFEARRAY_Marshal"),
    (297, "LPSAFEARRAY_Unmarshal"),
    (298, "VarDecCmpR8"),
    (299, "VarCyAdd"),
    (300, "DllUnregisterServer"),
    (301, "OACreateTypeLib2"),
    (303, "VarCyMul"),
    (304, "VarCyMulI4"),
    (305, "VarCySub"),
    (306, "VarCyAbs"),
    (307, "VarCyFix"),
    (308, "VarCyInt"),
    (309, "VarCyNeg"),
    (310, "VarCyRound"),
    (311, "VarCyCmp"),
    (312, "VarCyCmpR8"),
    (313, "VarBstrCat"),
    (314, "VarBstrCmp"),
    (315, "VarR8Pow"),
    (316, "VarR4CmpR8"),
    (317, "VarR8Round"),
    (318, "VarCat"),
    (319, "VarDateFromUdateEx"),
    (322, "GetRecordInfoFromGuids"),
    (323, "GetRecordInfoFromTypeInfo"),
    (325, "SetVarConversionLocaleSetting"),
    (326, "GetVarConversionLocaleSetting"),
    (327, "SetOaNoCache"),
    (329, "VarCyMulI8"),
    (330, "VarDateFromUdate"),
    (331, "VarUdateFromDate"),
    (332, "GetAltMonthNames"),
    (333, "VarI8FromUI1"),
    (334, "VarI8FromI2"),
    (335, "VarI8FromR4"),
    (336, "VarI8FromR8"),
    (337, "VarI8FromCy"),
    (338, "VarI8FromDate"),
    (339, "VarI8FromStr"),
    (340, "VarI8FromDisp"),
    (341, "VarI8FromBool"),
    (342, "VarI8FromI1"),
    (343, "VarI8FromUI2"),
    (344, "VarI8FromUI4"),
    (345, "VarI8FromDec"),
    (346, "VarI2FromI8"),
    (347, "VarI2FromUI8"),
    (348, "VarI4FromI8"),
    (349, "VarI4FromUI8"),
    (360, "VarR4FromI8"),
    (361, "VarR4FromUI8"),
    (362, "VarR8FromI8"),
    (363, "VarR8FromUI8"),
    (364, "VarDateFromI8"),
    (365, "VarDateFromUI8"),
    (366, "VarCyFromI8"),
    (367, "VarCyFromUI8"),
    (368, "VarBstrFromI8"),
    (369, "VarBstrFromUI8"),
    (370, "VarBoolFromI8"),
    (371, "VarBoolFromUI8"),
    (372, "VarUI1FromI8"),
    (373, "VarUI1FromUI8"),
    (374, "VarDecFromI8"),
    (375, "VarDecFromUI8"),
    (376, "VarI1FromI8"),
    (377, "VarI1FromUI8"),
    (378, "VarUI2FromI8"),
    (379, "VarUI2FromUI8"),
    (401, "OleLoadPictureEx"),
    (402, "OleLoadPictureFileEx"),
    (411, "SafeArrayCreateVector"),
    (412, "SafeArrayCopyData"),
    (413, "VectorFromBstr"),
    (414, "BstrFromVector"),
    (415, "OleIconToCursor"),
    (416, "OleCreatePropertyFrameIndirect"),
    (417, "OleCreatePropertyFrame"),
    (418, "OleLoadPicture"),
    (419, "OleCreatePictureIndirect"),
    (420, "OleCreateFontIndirect"),
    (421, "OleTranslateColor"),
    (422, "OleLoadPictureFile"),
    (423, "OleSavePictureFile"),
    (424, "OleLoadPicturePath"),
    (425, "VarUI4FromI8"),
    (426, "VarUI4FromUI8"),
    (427, "VarI8FromUI8"),
    (428, "VarUI8FromI8"),
    (429, "VarUI8FromUI1"),
    (430, "VarUI8FromI2"),
    (431, "VarUI8FromR4"),
    (432, "VarUI8FromR8"),
    (433, "VarUI8FromCy"),
    (434, "VarUI8FromDate"),
    (435, "VarUI8FromStr"),
    (436, "VarUI8FromDisp"),
    (437, "VarUI8FromBool"),
    (438, "VarUI8FromI1"),
    (439, "VarUI8FromUI2"),
    (440, "VarUI8FromUI4"),
    (441, "VarUI8FromDec"),
    (442, "RegisterTypeLibForUser"),
    (443, "UnRegisterTypeLibForUser"),
];
