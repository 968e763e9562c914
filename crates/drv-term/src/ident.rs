//! Process, port and reference identifiers.
//!
//! "Local" identifiers live on node `nonode@nohost` with creation 0, which is
//! what a BEAM started without distribution uses, so their ETF encoding has
//! the same shape as `term_to_binary` of a local pid, port or reference.

use std::cmp::Ordering;

use crate::{Atom, TermData};

/// The node name of a non-distributed BEAM.
#[inline]
pub fn local_node() -> Atom {
    Atom::LOCAL_NODE
}

/// BEAM's immediate pid tag (`_TAG_IMMED1_PID`), used by [`Pid::to_local_term_data`].
const PID_TAG: TermData = 0x3;
/// BEAM's immediate port tag (`_TAG_IMMED1_PORT`).
const PORT_TAG: TermData = 0x7;
const IMMED1_BITS: u32 = 4;

/// A process identifier, printed `<0.Id.Serial>` when local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pid {
    /// Node the process lives on.
    pub node: Atom,
    /// Process number.
    pub id: u32,
    /// High bits of the process number.
    pub serial: u32,
    /// Incarnation of the node.
    pub creation: u32,
}

impl Pid {
    /// The local pid with number `n` (low 32 bits as id, high 32 bits as serial).
    #[inline]
    pub fn local(n: u64) -> Pid {
        Pid {
            node: local_node(),
            id: n as u32,
            serial: (n >> 32) as u32,
            creation: 0,
        }
    }

    /// The number given to [`Pid::local`], or `None` for a pid of another node.
    #[inline]
    pub fn local_id(&self) -> Option<u64> {
        (self.node == Atom::LOCAL_NODE && self.creation == 0)
            .then_some((u64::from(self.serial) << 32) | u64::from(self.id))
    }

    /// A BEAM-style immediate for a local pid (`None` if the number does not fit),
    /// usable as the `ErlDrvTermData` of `driver_connected`/`driver_caller`.
    pub fn to_local_term_data(&self) -> Option<TermData> {
        let n = self.local_id()?;
        (n < 1 << (TermData::BITS - IMMED1_BITS))
            .then_some(((n as TermData) << IMMED1_BITS) | PID_TAG)
    }

    /// Inverse of [`Pid::to_local_term_data`].
    #[inline]
    pub fn from_local_term_data(v: TermData) -> Option<Pid> {
        (v & 0xF == PID_TAG).then(|| Pid::local(crate::word_to_u64(v >> IMMED1_BITS)))
    }
}

/// A port identifier, printed `#Port<0.Id>` when local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    /// Node the port lives on.
    pub node: Atom,
    /// Port number.
    pub id: u64,
    /// Incarnation of the node.
    pub creation: u32,
}

impl Port {
    /// The local port with number `n`.
    #[inline]
    pub fn local(n: u64) -> Port {
        Port {
            node: local_node(),
            id: n,
            creation: 0,
        }
    }

    /// The number given to [`Port::local`], or `None` for a port of another node.
    #[inline]
    pub fn local_id(&self) -> Option<u64> {
        (self.node == Atom::LOCAL_NODE && self.creation == 0).then_some(self.id)
    }

    /// A BEAM-style immediate for a local port (`None` if the number does not fit),
    /// usable as what `driver_mk_port` returns.
    pub fn to_local_term_data(&self) -> Option<TermData> {
        let n = self.local_id()?;
        (n < 1 << (TermData::BITS - IMMED1_BITS))
            .then_some(((n as TermData) << IMMED1_BITS) | PORT_TAG)
    }

    /// Inverse of [`Port::to_local_term_data`].
    #[inline]
    pub fn from_local_term_data(v: TermData) -> Option<Port> {
        (v & 0xF == PORT_TAG).then(|| Port::local(crate::word_to_u64(v >> IMMED1_BITS)))
    }
}

/// Most words a reference carries (`NEWER_REFERENCE_EXT` allows up to 5).
pub const MAX_REF_WORDS: usize = 5;

/// A reference, printed `#Ref<0.W2.W1.W0>` when local (words in reverse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ref {
    /// Node the reference was made on.
    pub node: Atom,
    /// Incarnation of the node.
    pub creation: u32,
    words: [u32; MAX_REF_WORDS],
    len: u8,
}

impl Ref {
    /// The local reference with number `n`: words `[low 32 bits, high 32 bits, 0]`.
    pub fn local(n: u64) -> Ref {
        Ref::new(local_node(), 0, &[n as u32, (n >> 32) as u32, 0]).expect("3 words is valid")
    }

    /// A reference from its parts; `None` unless it has 1 to 5 words.
    pub fn new(node: Atom, creation: u32, words: &[u32]) -> Option<Ref> {
        if words.is_empty() || words.len() > MAX_REF_WORDS {
            return None;
        }
        let mut all = [0; MAX_REF_WORDS];
        all[..words.len()].copy_from_slice(words);
        Some(Ref {
            node,
            creation,
            words: all,
            len: words.len() as u8,
        })
    }

    /// The reference's words, least significant first (as in ETF).
    pub fn words(&self) -> &[u32] {
        &self.words[..usize::from(self.len)]
    }

    /// The number given to [`Ref::local`], or `None` for any other reference.
    pub fn local_id(&self) -> Option<u64> {
        match self.words() {
            [lo, hi, 0] if self.node == Atom::LOCAL_NODE && self.creation == 0 => {
                Some((u64::from(*hi) << 32) | u64::from(*lo))
            }
            _ => None,
        }
    }
}

impl PartialOrd for Pid {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pid {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.node, self.serial, self.id, self.creation).cmp(&(
            other.node,
            other.serial,
            other.id,
            other.creation,
        ))
    }
}
impl PartialOrd for Port {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Port {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.node, self.id, self.creation).cmp(&(other.node, other.id, other.creation))
    }
}
impl PartialOrd for Ref {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ref {
    /// Node, then the words from the most significant one down.
    fn cmp(&self, other: &Self) -> Ordering {
        self.node
            .cmp(&other.node)
            .then_with(|| self.words().len().cmp(&other.words().len()))
            .then_with(|| self.words().iter().rev().cmp(other.words().iter().rev()))
            .then_with(|| self.creation.cmp(&other.creation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ids_round_trip() {
        for n in [0, 1, 9, u64::from(u32::MAX), 1 << 40, u64::MAX] {
            assert_eq!(Pid::local(n).local_id(), Some(n));
            assert_eq!(Port::local(n).local_id(), Some(n));
            assert_eq!(Ref::local(n).local_id(), Some(n));
        }
        let remote = Pid {
            node: Atom::new("a@b"),
            ..Pid::local(3)
        };
        assert_eq!(remote.local_id(), None);
    }

    #[test]
    fn term_data_encodings_round_trip_and_differ() {
        let pid = Pid::local(77);
        let port = Port::local(77);
        let pv = pid.to_local_term_data().expect("small pid");
        let qv = port.to_local_term_data().expect("small port");
        assert_ne!(pv, qv);
        assert_eq!(Pid::from_local_term_data(pv), Some(pid));
        assert_eq!(Port::from_local_term_data(qv), Some(port));
        assert_eq!(Pid::from_local_term_data(qv), None);
        assert_eq!(Port::from_local_term_data(pv), None);
        assert_eq!(Pid::local(u64::MAX).to_local_term_data(), None);
    }
}
