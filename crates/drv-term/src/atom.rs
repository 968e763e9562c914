//! The global atom table: names are interned once and never freed, as in BEAM.
//!
//! Lookups by index (`as_str`, `from_term_data`) are lock-free: names live in
//! append-only buckets of doubling size. Lookups by name (`Atom::new` on an
//! existing atom) look first among the thread's recently looked-up atoms, then
//! take a read lock on a hash index; only a new name takes the write lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use parking_lot::RwLock;

use crate::TermData;

/// BEAM's limit on an atom's length, in characters.
pub const MAX_ATOM_CHARS: usize = 255;
/// BEAM's default atom table size (`+t`).
pub const MAX_ATOMS: usize = 1 << 20;

/// Tag bits BEAM uses for an immediate atom (`_TAG_IMMED2_ATOM`), below the index.
const ATOM_TAG: TermData = 0x0B;
const ATOM_TAG_BITS: u32 = 6;

const FIRST_BUCKET_BITS: u32 = 6;
/// Bucket `b` holds `64 << b` names; 15 buckets cover `MAX_ATOMS`.
const BUCKETS: usize = 15;

type Slot = OnceLock<&'static str>;
static NAMES: [OnceLock<Box<[Slot]>>; BUCKETS] = [const { OnceLock::new() }; BUCKETS];
/// Number of atoms whose name slot is filled; an index below it is a valid atom.
static COUNT: AtomicU32 = AtomicU32::new(0);
static INDEX: OnceLock<RwLock<NameIndex>> = OnceLock::new();

/// Why an atom could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtomError {
    /// More than [`MAX_ATOM_CHARS`] characters.
    #[error("atom name longer than 255 characters")]
    TooLong,
    /// The table already holds [`MAX_ATOMS`] atoms (BEAM's `system_limit`).
    #[error("atom table full")]
    TableFull,
}

/// An interned atom. Copying and comparing for equality is a `u32` operation;
/// ordering follows Erlang (by name).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Atom(u32);

fn slot_of(index: u32) -> (usize, usize) {
    let n = index as usize + (1 << FIRST_BUCKET_BITS);
    let high = usize::BITS - 1 - n.leading_zeros();
    let bucket = (high - FIRST_BUCKET_BITS) as usize;
    (bucket, n - (1 << high))
}

type NameIndex = HashMap<&'static str, u32, BuildHasherDefault<FxHasher>>;

/// The name of the first atom, [`Atom::LOCAL_NODE`].
const LOCAL_NODE_NAME: &str = "nonode@nohost";

/// The table's index by name, made with the table's first atom, the local node's name.
fn index() -> &'static RwLock<NameIndex> {
    INDEX.get_or_init(|| {
        let mut map = NameIndex::default();
        let node = add(&mut map, LOCAL_NODE_NAME).expect("an empty table has room");
        debug_assert!(node == Atom::LOCAL_NODE, "the first atom has index 0");
        RwLock::new(map)
    })
}

/// Adds `name`, which `map` (the index, locked for writing) does not hold, to the table.
fn add(map: &mut NameIndex, name: &str) -> Result<Atom, AtomError> {
    let ix = map.len();
    if ix >= MAX_ATOMS {
        return Err(AtomError::TableFull);
    }
    let ix = u32::try_from(ix).expect("MAX_ATOMS fits u32");
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let (bucket, offset) = slot_of(ix);
    let slots = NAMES[bucket].get_or_init(|| {
        (0..(1usize << (bucket as u32 + FIRST_BUCKET_BITS)))
            .map(|_| OnceLock::new())
            .collect()
    });
    // The slot is filled before the index becomes visible through COUNT or the map.
    slots[offset]
        .set(leaked)
        .expect("a new atom index has an empty slot");
    COUNT.store(ix + 1, Ordering::Release);
    map.insert(leaked, ix);
    Ok(Atom(ix))
}

impl Atom {
    /// Interns `name` (UTF-8).
    ///
    /// # Panics
    /// If the name is longer than 255 characters or the table is full; use
    /// [`Atom::try_new`] where that must not happen.
    pub fn new(name: &str) -> Atom {
        Atom::try_new(name).expect("atom name too long or atom table full")
    }

    /// Interns `name`, failing like BEAM's `system_limit` instead of panicking.
    #[inline]
    pub fn try_new(name: &str) -> Result<Atom, AtomError> {
        match recent::get(name.as_bytes()) {
            Some(atom) => Ok(atom),
            None => Atom::look_up_or_add(name),
        }
    }

    /// [`Atom::try_new`] through the table's index (a lock), then remembered among the
    /// thread's recent atoms.
    fn look_up_or_add(name: &str) -> Result<Atom, AtomError> {
        let found = index().read().get(name).copied();
        let atom = match found {
            Some(ix) => Atom(ix),
            None => Atom::add_new(name)?,
        };
        recent::put(name.as_bytes(), atom);
        Ok(atom)
    }

    /// Adds `name`, which the index did not hold when read (another thread may have added it
    /// since).
    #[cold]
    fn add_new(name: &str) -> Result<Atom, AtomError> {
        if name.len() > MAX_ATOM_CHARS && name.chars().count() > MAX_ATOM_CHARS {
            return Err(AtomError::TooLong);
        }
        let mut map = index().write();
        if let Some(&ix) = map.get(name) {
            return Ok(Atom(ix));
        }
        add(&mut map, name)
    }

    /// The atom named `name` if it is already in the table, as `list_to_existing_atom/1`;
    /// never adds one.
    pub fn existing(name: &str) -> Option<Atom> {
        index().read().get(name).map(|&ix| Atom(ix))
    }

    /// `nonode@nohost`, the node of local identifiers: always atom 0 (the table is made with
    /// it), so that making or telling a local identifier needs no lookup, and valid before the
    /// table exists.
    pub(crate) const LOCAL_NODE: Atom = Atom(0);

    /// Interns a Latin-1 name, as `driver_mk_atom` and `ATOM_EXT` do.
    pub fn from_latin1(name: &[u8]) -> Result<Atom, AtomError> {
        if name.len() > MAX_ATOM_CHARS {
            return Err(AtomError::TooLong);
        }
        if name.is_ascii() {
            // ASCII is the same in Latin-1 and UTF-8 (a non-ASCII Latin-1 name is not its
            // atom's UTF-8 bytes, so only an ASCII one is looked up as it is).
            if let Some(atom) = recent::get(name) {
                return Ok(atom);
            }
            return Atom::look_up_or_add(std::str::from_utf8(name).expect("ASCII is UTF-8"));
        }
        let text: String = name.iter().map(|&b| char::from(b)).collect();
        Atom::try_new(&text)
    }

    /// The atom's name.
    pub fn as_str(self) -> &'static str {
        if self == Atom::LOCAL_NODE {
            return LOCAL_NODE_NAME;
        }
        let (bucket, offset) = slot_of(self.0);
        NAMES[bucket]
            .get()
            .and_then(|slots| slots[offset].get())
            .copied()
            .expect("an Atom value only exists once its name slot is filled")
    }

    /// The value `driver_mk_atom` returns for this atom: BEAM's immediate atom encoding.
    pub fn to_term_data(self) -> TermData {
        ((self.0 as TermData) << ATOM_TAG_BITS) | ATOM_TAG
    }

    /// The atom a `to_term_data` value stands for; `None` for any value no atom has.
    #[inline]
    pub fn from_term_data(v: TermData) -> Option<Atom> {
        if v & ((1 << ATOM_TAG_BITS) - 1) != ATOM_TAG {
            return None;
        }
        let ix = u32::try_from(v >> ATOM_TAG_BITS).ok()?;
        // Atom 0 exists before the table does (see `LOCAL_NODE`).
        (ix < COUNT.load(Ordering::Acquire).max(1)).then_some(Atom(ix))
    }

    /// The table index of this atom (stable for the life of the process).
    pub fn index(self) -> u32 {
        self.0
    }

    /// The atom with table index `index`, which an existing atom gave (a flat term stores
    /// atoms by index).
    pub(crate) fn from_index(index: u32) -> Atom {
        debug_assert!(
            index < COUNT.load(Ordering::Acquire).max(1),
            "no atom {index}"
        );
        Atom(index)
    }
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    /// Erlang orders atoms by their text (code point order, which UTF-8 byte order preserves).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl std::fmt::Debug for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Atom({:?})", self.as_str())
    }
}

/// Each thread's atoms looked up by name lately (`driver_mk_atom` in a driver's loop, the
/// atoms of terms decoded one after another): a name found here costs its hash and one
/// comparison, where the table's index costs a read lock, whose two atomic writes go to a
/// cache line every thread shares. Atoms are never freed, so an entry never goes stale; one is
/// only replaced by another name with the same slot.
mod recent {
    use std::cell::Cell;
    use std::hash::Hasher;

    use super::{Atom, FxHasher, COUNT};
    use std::sync::atomic::Ordering;

    /// Entries per thread (512 bytes).
    const SLOTS: usize = 64;

    thread_local! {
        /// An entry: the name's hash in the high half, the atom's index + 1 in the low half;
        /// 0 when empty.
        static RECENT: [Cell<u64>; SLOTS] = const { [const { Cell::new(0) }; SLOTS] };
    }

    #[inline]
    fn hash(name: &[u8]) -> u64 {
        let mut hasher = FxHasher::default();
        hasher.write(name);
        hasher.finish()
    }

    /// The slot of a hash, and the part of it an entry keeps.
    #[inline]
    fn slot_and_tag(hash: u64) -> (usize, u64) {
        // A multiplicative hash mixes into its high bits.
        ((hash >> (64 - SLOTS.trailing_zeros())) as usize, hash >> 32)
    }

    /// The atom named `name` (UTF-8) if this thread looked it up lately.
    #[inline]
    pub(super) fn get(name: &[u8]) -> Option<Atom> {
        let (slot, tag) = slot_and_tag(hash(name));
        let entry = RECENT.try_with(|recent| recent[slot].get()).ok()?;
        let ix = (entry as u32).checked_sub(1)?;
        // The tag rules out most other names without reading one; the name decides.
        let atom = Atom(ix);
        (entry >> 32 == tag && atom.as_str().as_bytes() == name).then_some(atom)
    }

    /// Remembers that `atom` is named `name` (UTF-8).
    #[inline]
    pub(super) fn put(name: &[u8], atom: Atom) {
        debug_assert!(atom.0 < COUNT.load(Ordering::Relaxed).max(1));
        let (slot, tag) = slot_and_tag(hash(name));
        let entry = (tag << 32) | u64::from(atom.0 + 1);
        // A thread being torn down keeps no cache: nothing to do.
        let _ = RECENT.try_with(|recent| recent[slot].set(entry));
    }
}

/// A small fast hasher for atom names (FxHash's mixing step).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("chunk of 8"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_node_is_atom_zero_before_and_after_the_table_exists() {
        // Before any other use of the table in this test binary, as far as order allows.
        assert_eq!(Atom::LOCAL_NODE.as_str(), "nonode@nohost");
        let td = Atom::LOCAL_NODE.to_term_data();
        assert_eq!(Atom::from_term_data(td), Some(Atom::LOCAL_NODE));
        assert_eq!(Atom::new("nonode@nohost"), Atom::LOCAL_NODE);
        assert_eq!(Atom::new("tcp").as_str(), "tcp");
        assert_ne!(Atom::new("tcp"), Atom::LOCAL_NODE);
    }

    #[test]
    fn slots_cover_bucket_boundaries() {
        let cases = [
            (0, (0, 0)),
            (63, (0, 63)),
            (64, (1, 0)),
            (191, (1, 127)),
            (192, (2, 0)),
        ];
        for (ix, expected) in cases {
            assert_eq!(slot_of(ix), expected, "index {ix}");
        }
        let (last_bucket, _) = slot_of(MAX_ATOMS as u32 - 1);
        assert!(last_bucket < BUCKETS);
    }

    #[test]
    fn interning_is_stable_and_round_trips() {
        let a = Atom::new("atom_table_test");
        assert_eq!(a, Atom::new("atom_table_test"));
        assert_eq!(a.as_str(), "atom_table_test");
        assert_eq!(Atom::from_term_data(a.to_term_data()), Some(a));
        assert_eq!(
            Atom::from_term_data(a.to_term_data() + 64 * 1_000_000),
            None
        );
        assert_eq!(Atom::from_term_data(0), None);
        assert_eq!(Atom::from_term_data(a.to_term_data() ^ 1), None);
    }

    /// Names looked up again come from the thread's recent atoms: each is still its own atom,
    /// whatever shares its slot, on every thread; a Latin-1 name whose bytes are another
    /// atom's UTF-8 name is not taken for it.
    #[test]
    fn recent_atoms_are_the_named_ones() {
        let names: Vec<String> = (0..2000).map(|i| format!("recent_{i}")).collect();
        let first: Vec<Atom> = names.iter().map(|n| Atom::new(n)).collect();
        let check = || {
            for _ in 0..2 {
                for (name, &atom) in names.iter().zip(&first) {
                    assert_eq!(Atom::new(name), atom);
                    assert_eq!(Atom::from_latin1(name.as_bytes()), Ok(atom));
                    assert_eq!(atom.as_str(), name);
                }
            }
        };
        check();
        std::thread::scope(|scope| {
            scope.spawn(check);
        });
        let cases: [(&[u8], &str); 3] =
            [("é".as_bytes(), "Ã©"), (&[0xE9], "é"), (b"plain", "plain")];
        for (latin1, name) in cases {
            // The UTF-8 reading of the same bytes first, where it is one.
            if let Ok(utf8) = std::str::from_utf8(latin1) {
                Atom::new(utf8);
            }
            assert_eq!(Atom::from_latin1(latin1).map(Atom::as_str), Ok(name));
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        assert!(Atom::try_new(&"é".repeat(255)).is_ok());
        assert_eq!(Atom::try_new(&"é".repeat(256)), Err(AtomError::TooLong));
        assert_eq!(Atom::from_latin1(&[b'a'; 256]), Err(AtomError::TooLong));
        assert_eq!(Atom::from_latin1(&[0xE9]).map(Atom::as_str), Ok("é"));
    }
}
