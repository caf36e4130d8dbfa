//! A read-only, in-memory reader of OLE2 compound files (MS-CFB) that is
//! tolerant in the way olefile is.
//!
//! Why not the `cfb` crate alone: `cfb` validates the whole file when it
//! opens it and refuses it on the first inconsistency (a FAT longer than
//! the file, siblings out of name order, a truncated sector...). Malicious
//! and damaged documents are exactly the files an analysis tool must still
//! read, so this reader follows olefile instead: it reads what can be read,
//! records every inconsistency as an issue, and fails per stream rather
//! than per file. The `cfb` crate stays a dev-dependency and the tests
//! check that both readers agree on well-formed files.
//!
//! Guarantees, on any input: no panic, no unbounded loop (every chain walk
//! remembers the sectors it has seen), and no read larger than the input
//! (a chain visits each sector at most once).
//!
//! Listing order and names follow olefile 0.47 `listdir()`: a depth-first
//! walk in which the children of each storage are sorted by name (code
//! point order), names are the UTF-16 directory names decoded with
//! replacement, and paths join names with `/` (without the root entry).

use crate::util::{u16_at, u32_at};

/// The 8-byte signature of a compound file.
pub const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const FREESECT: u32 = 0xFFFF_FFFF;
const NOSTREAM: u32 = 0xFFFF_FFFF;
/// Largest sector id that can name a real sector.
const MAXREGSECT: u32 = 0xFFFF_FFFA;
/// At most this many inconsistencies are recorded.
const MAX_ISSUES: usize = 100;
/// Storage nesting deeper than this is not followed.
const MAX_DEPTH: usize = 64;
/// Extra bytes every file may read beyond [`READ_BUDGET_FACTOR`] times its
/// size.
const READ_BUDGET_SLACK: usize = 16 << 20;
/// All reads from one file together may return at most this many times
/// the file's size (plus [`READ_BUDGET_SLACK`]). In a well-formed file
/// each sector belongs to one stream, so reading every stream a few times
/// stays far below; a crafted directory whose entries share one long chain
/// would otherwise multiply the file's size by its number of entries.
const READ_BUDGET_FACTOR: usize = 8;

/// Object type of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Empty,
    Storage,
    Stream,
    Root,
    /// Any other (invalid) value.
    Other(u8),
}

impl From<u8> for EntryType {
    fn from(v: u8) -> Self {
        match v {
            0 => EntryType::Empty,
            1 => EntryType::Storage,
            2 => EntryType::Stream,
            5 => EntryType::Root,
            o => EntryType::Other(o),
        }
    }
}

/// One 128-byte directory entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub sid: u32,
    pub name: String,
    pub entry_type: EntryType,
    pub left: u32,
    pub right: u32,
    pub child: u32,
    pub clsid: [u8; 16],
    pub start_sector: u32,
    /// Stream size as olefile reads it: the low 32 bits only for
    /// version 3 (512-byte sector) files.
    pub size: u64,
}

/// A stream or storage reached from the root, in listing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub sid: u32,
    /// Names from the root's child down to this entry.
    pub path: Vec<String>,
    pub is_storage: bool,
}

impl Listed {
    /// The olefile-style path: names joined by `/`.
    pub fn joined(&self) -> String {
        self.path.join("/")
    }
}

/// Data read from a stream: possibly partial, with the reason when it is.
#[derive(Debug, Clone, Default)]
pub struct StreamData {
    pub data: Vec<u8>,
    pub error: Option<String>,
}

/// An opened compound file.
#[derive(Debug, Clone)]
pub struct CompoundFile<'a> {
    data: &'a [u8],
    sector_size: usize,
    mini_sector_size: usize,
    mini_cutoff: u64,
    fat: Vec<u32>,
    minifat: Vec<u32>,
    ministream: Vec<u8>,
    entries: Vec<DirEntry>,
    /// Sorted child sids of each entry reached from the root.
    kids: Vec<Vec<u32>>,
    listing: Vec<Listed>,
    issues: Vec<String>,
    /// Bytes that reads may still return.
    budget: std::cell::Cell<usize>,
}

/// Whether `data` starts with the compound file signature.
pub fn is_ole(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Compare names as olefile sorts them (Python `str` order = code points).
fn name_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.cmp(b)
}

impl<'a> CompoundFile<'a> {
    /// Open `data`. Fails only when the header is unusable or no directory
    /// entry can be read; every other problem becomes an [`issue`](Self::issues).
    pub fn open(data: &'a [u8]) -> Result<CompoundFile<'a>, String> {
        if data.len() < 512 {
            return Err(format!(
                "not an OLE2 compound file: {} bytes is shorter than the 512-byte header",
                data.len()
            ));
        }
        if !is_ole(data) {
            return Err("not an OLE2 compound file: bad signature".into());
        }
        let mut issues = Vec::new();
        let sector_shift = u16_at(data, 30).unwrap_or(0);
        let mini_shift = u16_at(data, 32).unwrap_or(0);
        if sector_shift != 9 && sector_shift != 12 {
            issues.push(format!("unusual sector shift {sector_shift}"));
        }
        if !(7..=16).contains(&sector_shift) {
            return Err(format!("invalid sector shift {sector_shift}"));
        }
        if mini_shift != 6 {
            issues.push(format!("unusual mini sector shift {mini_shift}"));
        }
        if mini_shift > sector_shift {
            return Err(format!("invalid mini sector shift {mini_shift}"));
        }
        let sector_size = 1usize << sector_shift;
        let mini_sector_size = 1usize << mini_shift;
        let num_fat_sectors = u32_at(data, 44).unwrap_or(0);
        let first_dir = u32_at(data, 48).unwrap_or(ENDOFCHAIN);
        let mini_cutoff = u64::from(u32_at(data, 56).unwrap_or(4096));
        let first_minifat = u32_at(data, 60).unwrap_or(ENDOFCHAIN);
        let first_difat = u32_at(data, 68).unwrap_or(ENDOFCHAIN);
        let num_difat = u32_at(data, 72).unwrap_or(0);

        let mut cf = CompoundFile {
            data,
            sector_size,
            mini_sector_size,
            mini_cutoff,
            fat: Vec::new(),
            minifat: Vec::new(),
            ministream: Vec::new(),
            entries: Vec::new(),
            kids: Vec::new(),
            listing: Vec::new(),
            issues,
            budget: std::cell::Cell::new(
                data.len()
                    .saturating_mul(READ_BUDGET_FACTOR)
                    .saturating_add(READ_BUDGET_SLACK),
            ),
        };
        cf.load_fat(num_fat_sectors, first_difat, num_difat);
        cf.load_directory(first_dir)?;
        cf.load_mini(first_minifat);
        cf.build_tree();
        Ok(cf)
    }

    fn issue(&mut self, msg: String) {
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(msg);
        } else if self.issues.len() == MAX_ISSUES {
            self.issues
                .push("further inconsistencies not listed".into());
        }
    }

    /// The file's inconsistencies, in the order they were met (at most
    /// 100).
    pub fn issues(&self) -> &[String] {
        &self.issues
    }

    /// Sector size in bytes (512 or 4096 in valid files).
    pub fn sector_size(&self) -> usize {
        self.sector_size
    }

    /// Every directory entry, including unused and orphaned ones.
    pub fn entries(&self) -> &[DirEntry] {
        &self.entries
    }

    /// Streams and storages reached from the root, in olefile order.
    pub fn list(&self) -> &[Listed] {
        &self.listing
    }

    /// The root entry's CLSID, formatted like olefile (`""` when null).
    pub fn root_clsid(&self) -> String {
        self.entries
            .first()
            .map(|e| format_clsid(&e.clsid))
            .unwrap_or_default()
    }

    /// The directory entry `sid`.
    pub fn entry(&self, sid: u32) -> Option<&DirEntry> {
        self.entries.get(sid as usize)
    }

    /// Find a stream or storage by `/`-separated path, case-insensitively
    /// (as olefile does). The empty path is the root.
    pub fn find(&self, path: &str) -> Option<u32> {
        let mut node = 0u32;
        if self.entries.is_empty() {
            return None;
        }
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let lower = part.to_lowercase();
            let kids = self.kids.get(node as usize)?;
            node = *kids.iter().find(|&&k| {
                self.entries
                    .get(k as usize)
                    .is_some_and(|e| e.name.to_lowercase() == lower)
            })?;
        }
        Some(node)
    }

    /// Whether `path` names a stream.
    pub fn is_stream(&self, path: &str) -> bool {
        self.find(path)
            .and_then(|sid| self.entry(sid))
            .is_some_and(|e| e.entry_type == EntryType::Stream)
    }

    /// Read the stream at `path` (case-insensitive), if it exists.
    pub fn read_path(&self, path: &str) -> Option<StreamData> {
        let sid = self.find(path)?;
        let e = self.entry(sid)?;
        (e.entry_type == EntryType::Stream).then(|| self.read(sid))
    }

    /// Read the data of entry `sid` (any entry, orphans included), from the
    /// mini stream or the regular sectors as its size requires.
    pub fn read(&self, sid: u32) -> StreamData {
        let Some(e) = self.entry(sid) else {
            return StreamData {
                data: Vec::new(),
                error: Some(format!("no directory entry {sid}")),
            };
        };
        if e.size == 0 {
            return StreamData::default();
        }
        let left = self.budget.get();
        // Never more than the budget, nor more than the file could hold.
        let size = e.size.min(left as u64);
        let mut out = if e.entry_type != EntryType::Root && e.size < self.mini_cutoff {
            self.read_mini(e.start_sector, size)
        } else {
            self.read_chain(e.start_sector, size)
        };
        self.budget.set(left.saturating_sub(out.data.len()));
        if size < e.size && out.error.is_none() {
            out.error = Some(format!(
                "read budget of this file exhausted after {} of {} bytes \
                 (streams sharing sectors?)",
                out.data.len(),
                e.size
            ));
        }
        out
    }

    /// Bytes of regular sector `sect` (shorter at the end of the file).
    fn sector(&self, sect: u32) -> Option<&'a [u8]> {
        let off = (sect as usize)
            .checked_add(1)?
            .checked_mul(self.sector_size)?;
        if off >= self.data.len() {
            return None;
        }
        let end = off.saturating_add(self.sector_size).min(self.data.len());
        Some(&self.data[off..end])
    }

    /// Follow a FAT chain from `start`, reading up to `size` bytes.
    fn read_chain(&self, start: u32, size: u64) -> StreamData {
        let want = usize::try_from(size).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(want.min(self.data.len()));
        let mut seen = std::collections::HashSet::new();
        let mut sect = start;
        let mut error = None;
        while out.len() < want {
            if sect == ENDOFCHAIN {
                error = Some(format!(
                    "stream ends after {} of {} bytes (end of sector chain)",
                    out.len(),
                    size
                ));
                break;
            }
            if sect > MAXREGSECT || sect as usize >= self.fat.len() {
                error = Some(format!(
                    "sector index {sect:#x} out of range after {} of {} bytes",
                    out.len(),
                    size
                ));
                break;
            }
            if !seen.insert(sect) {
                error = Some(format!("loop in sector chain at sector {sect}"));
                break;
            }
            match self.sector(sect) {
                Some(s) => {
                    let n = s.len().min(want - out.len());
                    out.extend_from_slice(&s[..n]);
                    if s.len() < self.sector_size && out.len() < want {
                        error = Some(format!(
                            "file truncated: stream has {} of {} bytes",
                            out.len(),
                            size
                        ));
                        break;
                    }
                }
                None => {
                    error = Some(format!(
                        "sector {sect} is beyond the end of the file ({} of {} bytes read)",
                        out.len(),
                        size
                    ));
                    break;
                }
            }
            sect = self.fat[sect as usize];
        }
        StreamData { data: out, error }
    }

    /// Follow a MiniFAT chain from `start` in the mini stream.
    fn read_mini(&self, start: u32, size: u64) -> StreamData {
        let want = usize::try_from(size).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(want.min(self.ministream.len()));
        let mut seen = std::collections::HashSet::new();
        let mut sect = start;
        let mut error = None;
        while out.len() < want {
            if sect == ENDOFCHAIN {
                error = Some(format!(
                    "stream ends after {} of {} bytes (end of mini sector chain)",
                    out.len(),
                    size
                ));
                break;
            }
            if sect as usize >= self.minifat.len() {
                error = Some(format!(
                    "mini sector index {sect:#x} out of range after {} of {} bytes",
                    out.len(),
                    size
                ));
                break;
            }
            if !seen.insert(sect) {
                error = Some(format!("loop in mini sector chain at sector {sect}"));
                break;
            }
            let off = (sect as usize).saturating_mul(self.mini_sector_size);
            if off >= self.ministream.len() {
                error = Some(format!(
                    "mini sector {sect} is beyond the mini stream ({} of {} bytes read)",
                    out.len(),
                    size
                ));
                break;
            }
            let end = off
                .saturating_add(self.mini_sector_size)
                .min(self.ministream.len());
            let n = (end - off).min(want - out.len());
            out.extend_from_slice(&self.ministream[off..off + n]);
            if end - off < self.mini_sector_size && out.len() < want {
                error = Some(format!(
                    "mini stream truncated: stream has {} of {} bytes",
                    out.len(),
                    size
                ));
                break;
            }
            sect = self.minifat[sect as usize];
        }
        StreamData { data: out, error }
    }

    /// Number of (possibly partial) sectors after the header.
    fn num_sectors(&self) -> usize {
        (self.data.len().saturating_sub(1)) / self.sector_size
    }

    fn load_fat(&mut self, num_fat_sectors: u32, first_difat: u32, num_difat: u32) {
        let per_sector = self.sector_size / 4;
        let max_fat_sectors = self.num_sectors() + 1;
        let mut fat_sectors: Vec<u32> = Vec::new();
        // The first 109 FAT sector ids are in the header.
        for i in 0..109 {
            let s = u32_at(self.data, 76 + 4 * i).unwrap_or(FREESECT);
            if s == FREESECT || s == ENDOFCHAIN {
                break;
            }
            fat_sectors.push(s);
        }
        // The rest are in the DIFAT sector chain.
        if num_difat > 0 || (first_difat <= MAXREGSECT && num_fat_sectors > 109) {
            let mut seen = std::collections::HashSet::new();
            let mut sect = first_difat;
            let mut done = false;
            while sect <= MAXREGSECT && !done {
                if !seen.insert(sect) {
                    self.issue(format!("loop in DIFAT chain at sector {sect}"));
                    break;
                }
                let Some(s) = self.sector(sect) else {
                    self.issue(format!("DIFAT sector {sect} is beyond the end of the file"));
                    break;
                };
                for i in 0..per_sector - 1 {
                    let v = u32_at(s, 4 * i).unwrap_or(FREESECT);
                    if v == FREESECT || v == ENDOFCHAIN {
                        done = true;
                        break;
                    }
                    fat_sectors.push(v);
                    if fat_sectors.len() > max_fat_sectors {
                        done = true;
                        break;
                    }
                }
                sect = u32_at(s, 4 * (per_sector - 1)).unwrap_or(ENDOFCHAIN);
            }
        }
        if num_fat_sectors as usize != fat_sectors.len() {
            self.issue(format!(
                "header declares {num_fat_sectors} FAT sectors, DIFAT lists {}",
                fat_sectors.len()
            ));
        }
        fat_sectors.truncate(max_fat_sectors);
        let mut fat = Vec::with_capacity(fat_sectors.len() * per_sector);
        for s in fat_sectors {
            match self.sector(s) {
                Some(bytes) if bytes.len() == self.sector_size => {
                    fat.extend((0..per_sector).map(|i| u32_at(bytes, 4 * i).unwrap_or(FREESECT)));
                }
                _ => {
                    self.issue(format!("FAT sector {s} is missing or truncated"));
                    fat.extend(std::iter::repeat_n(FREESECT, per_sector));
                }
            }
        }
        self.fat = fat;
    }

    fn load_directory(&mut self, first_dir: u32) -> Result<(), String> {
        let mut raw = Vec::new();
        let mut seen = vec![false; self.fat.len()];
        let mut sect = first_dir;
        loop {
            if sect == ENDOFCHAIN {
                break;
            }
            if sect > MAXREGSECT {
                self.issue(format!("invalid directory sector id {sect:#x}"));
                break;
            }
            let Some(bytes) = self.sector(sect) else {
                self.issue(format!(
                    "directory sector {sect} is beyond the end of the file"
                ));
                break;
            };
            raw.extend_from_slice(bytes);
            if (sect as usize) >= self.fat.len() {
                self.issue(format!("directory sector {sect} has no FAT entry"));
                break;
            }
            if std::mem::replace(&mut seen[sect as usize], true) {
                self.issue(format!("loop in directory chain at sector {sect}"));
                break;
            }
            sect = self.fat[sect as usize];
        }
        let v3 = self.sector_size == 512;
        for (i, e) in raw.chunks_exact(128).enumerate() {
            let Ok(sid) = u32::try_from(i) else { break };
            self.entries.push(parse_entry(sid, e, v3));
        }
        if self.entries.is_empty() {
            return Err("no readable directory entry (truncated or corrupt directory)".into());
        }
        if self.entries[0].entry_type != EntryType::Root {
            self.issue(format!(
                "first directory entry is not the root entry ({:?})",
                self.entries[0].entry_type
            ));
        }
        Ok(())
    }

    fn load_mini(&mut self, first_minifat: u32) {
        let root_start = self.entries[0].start_sector;
        let root_size = self.entries[0].size;
        let needs_mini =
            self.entries.iter().skip(1).any(|e| {
                e.entry_type == EntryType::Stream && e.size > 0 && e.size < self.mini_cutoff
            });
        if !needs_mini || root_size == 0 {
            return;
        }
        let ms = self.read_chain(root_start, root_size);
        if let Some(err) = ms.error {
            self.issue(format!("mini stream: {err}"));
        }
        self.ministream = ms.data;
        // The MiniFAT: follow its chain to its end.
        let mut minifat = Vec::new();
        let mut seen = vec![false; self.fat.len()];
        let mut sect = first_minifat;
        while sect != ENDOFCHAIN {
            if sect > MAXREGSECT || sect as usize >= self.fat.len() {
                self.issue(format!("MiniFAT sector index {sect:#x} out of range"));
                break;
            }
            if std::mem::replace(&mut seen[sect as usize], true) {
                self.issue(format!("loop in MiniFAT chain at sector {sect}"));
                break;
            }
            let Some(bytes) = self.sector(sect) else {
                self.issue(format!(
                    "MiniFAT sector {sect} is beyond the end of the file"
                ));
                break;
            };
            minifat.extend(bytes.chunks_exact(4).filter_map(|c| u32_at(c, 0)));
            sect = self.fat[sect as usize];
        }
        let used = self.ministream.len().div_ceil(self.mini_sector_size);
        if minifat.len() > used {
            minifat.truncate(used);
        }
        self.minifat = minifat;
    }

    /// Walk the red-black trees of siblings from the root, as olefile does:
    /// each entry is used at most once, children are sorted by name.
    fn build_tree(&mut self) {
        let n = self.entries.len();
        let mut kids: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut used = vec![false; n];
        used[0] = true;
        // Storages whose sibling tree is still to be walked.
        let mut pending: Vec<u32> = vec![0];
        while let Some(parent) = pending.pop() {
            let child = self.entries[parent as usize].child;
            let mut found: Vec<u32> = Vec::new();
            // In-order walk (left, node, right) with an explicit stack.
            let mut stack: Vec<u32> = Vec::new();
            let mut cur = child;
            loop {
                while cur != NOSTREAM {
                    if cur as usize >= n {
                        self.issue(format!("directory index {cur} out of range"));
                        break;
                    }
                    if used[cur as usize] {
                        self.issue(format!("directory entry {cur} referenced more than once"));
                        break;
                    }
                    used[cur as usize] = true;
                    stack.push(cur);
                    cur = self.entries[cur as usize].left;
                }
                let Some(node) = stack.pop() else { break };
                found.push(node);
                cur = self.entries[node as usize].right;
            }
            found.sort_by(|&a, &b| {
                name_cmp(
                    &self.entries[a as usize].name,
                    &self.entries[b as usize].name,
                )
            });
            for &k in &found {
                if self.entries[k as usize].child != NOSTREAM {
                    pending.push(k);
                }
            }
            kids[parent as usize] = found;
        }
        self.kids = kids;
        let (listing, issues) = self.walk();
        self.listing = listing;
        for i in issues {
            self.issue(i);
        }
    }

    /// The listing: depth-first from the root, each storage followed by
    /// its content, without recursion. Returns the listing and the issues
    /// met on the way.
    fn walk(&self) -> (Vec<Listed>, Vec<String>) {
        let mut out = Vec::new();
        let mut issues = Vec::new();
        // Each frame: (storage sid, its path, depth, next kid index).
        let mut frames: Vec<(u32, Vec<String>, usize, usize)> = vec![(0, Vec::new(), 0, 0)];
        while let Some(top) = frames.last_mut() {
            let node = top.0;
            let depth = top.2;
            let Some(&k) = self.kids[node as usize].get(top.3) else {
                frames.pop();
                continue;
            };
            top.3 += 1;
            let e = &self.entries[k as usize];
            let mut path = top.1.clone();
            path.push(e.name.clone());
            match e.entry_type {
                EntryType::Storage => {
                    out.push(Listed {
                        sid: k,
                        path: path.clone(),
                        is_storage: true,
                    });
                    if depth + 1 >= MAX_DEPTH {
                        issues.push(format!("storages nested deeper than {MAX_DEPTH}"));
                    } else {
                        frames.push((k, path, depth + 1, 0));
                    }
                }
                EntryType::Stream => out.push(Listed {
                    sid: k,
                    path,
                    is_storage: false,
                }),
                other => issues.push(format!(
                    "directory entry {k} ({:?}) is neither a stream nor a storage ({other:?})",
                    e.name
                )),
            }
        }
        (out, issues)
    }
}

/// Parse one directory entry (olefile's name rules included: a name length
/// is a byte count including the terminating NUL, read as a Python slice).
fn parse_entry(sid: u32, e: &[u8], v3: bool) -> DirEntry {
    let name_len = i64::from(u16_at(e, 64).unwrap_or(0)).min(64);
    // olefile takes name_raw[:namelength-2], a Python slice: negative ends
    // count from the end of the 64-byte field.
    let end = name_len - 2;
    let end = if end < 0 { (64 + end).max(0) } else { end } as usize;
    let name_bytes = &e[..end.min(64)];
    let units: Vec<u16> = name_bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut name = String::from_utf16_lossy(&units);
    if name_bytes.len() % 2 == 1 {
        name.push(char::REPLACEMENT_CHARACTER);
    }
    let mut clsid = [0u8; 16];
    clsid.copy_from_slice(&e[80..96]);
    let low = u64::from(u32_at(e, 120).unwrap_or(0));
    let high = u64::from(u32_at(e, 124).unwrap_or(0));
    DirEntry {
        sid,
        name,
        entry_type: EntryType::from(e[66]),
        left: u32_at(e, 68).unwrap_or(NOSTREAM),
        right: u32_at(e, 72).unwrap_or(NOSTREAM),
        child: u32_at(e, 76).unwrap_or(NOSTREAM),
        clsid,
        start_sector: u32_at(e, 116).unwrap_or(ENDOFCHAIN),
        size: if v3 { low } else { low | (high << 32) },
    }
}

/// A CLSID as olefile prints it: upper-case
/// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, or `""` when all zero.
pub fn format_clsid(c: &[u8; 16]) -> String {
    if c.iter().all(|&b| b == 0) {
        return String::new();
    }
    let d1 = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    let d2 = u16::from_le_bytes([c[4], c[5]]);
    let d3 = u16::from_le_bytes([c[6], c[7]]);
    let mut s = format!("{d1:08X}-{d2:04X}-{d3:04X}-{:02X}{:02X}-", c[8], c[9]);
    for b in &c[10..16] {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_ole_and_short_input() {
        assert!(CompoundFile::open(b"").is_err());
        assert!(CompoundFile::open(&[0u8; 600]).is_err());
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(&MAGIC);
        // Sector shift 0 is unusable.
        assert!(CompoundFile::open(&h).is_err());
    }

    #[test]
    fn header_only_file_has_no_directory() {
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(&MAGIC);
        h[30] = 9;
        h[32] = 6;
        let err = CompoundFile::open(&h).unwrap_err();
        assert!(err.contains("directory"), "{err}");
    }

    #[test]
    fn clsid_format() {
        let c = [
            0x06, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x46,
        ];
        assert_eq!(format_clsid(&c), "00020906-0000-0000-C000-000000000046");
        assert_eq!(format_clsid(&[0; 16]), "");
    }
}
