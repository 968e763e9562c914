//! A term seen one level at a time, the same way whether it is a [`Term`] or a
//! [`FlatTerm`](crate::FlatTerm): printing and ETF encoding are written once, against
//! [`TermRef`], and work on both forms.

use crate::{Atom, BigInt, Bitstring, Pid, Port, Ref, Term};

/// A reference to a term in one of this crate's representations.
pub trait TermRef<'a>: Copy {
    /// The elements of a list or a tuple, in order.
    type Items: Iterator<Item = Self> + Clone;

    /// What the term is, one level deep.
    fn node(self) -> Node<'a, Self>;
}

/// One level of a term: its type and value, or its elements.
#[derive(Debug)]
pub enum Node<'a, R: TermRef<'a>> {
    /// An atom.
    Atom(Atom),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer outside `i64`.
    BigInt(&'a BigInt),
    /// A (finite) float.
    Float(f64),
    /// A binary.
    Binary(&'a [u8]),
    /// A bitstring that is not a whole number of bytes.
    Bitstring(&'a Bitstring),
    /// A list: `len` elements (`[]` when 0) and, if the list is improper, its tail (which is
    /// not a list). A list built from parts (a string consed onto a list, say) is one list.
    List {
        /// The elements.
        items: R::Items,
        /// How many elements there are.
        len: usize,
        /// The tail of an improper list.
        tail: Option<R>,
    },
    /// A tuple of `len` elements.
    Tuple {
        /// The elements.
        items: R::Items,
        /// How many elements there are.
        len: usize,
    },
    /// A map, pairs sorted by key in map-key order (maps are always [`Term`]s).
    Map(&'a [(Term, Term)]),
    /// A process identifier.
    Pid(Pid),
    /// A port identifier.
    Port(Port),
    /// A reference.
    Ref(Ref),
}

impl<'a, R: TermRef<'a>> Node<'a, R> {
    /// The same node seen through another kind of reference `S`: `items` makes a list's or
    /// tuple's elements (given their iterator and number), `one` a list's tail; everything
    /// else is the same value.
    #[inline]
    pub fn map_refs<S: TermRef<'a>>(
        self,
        items: impl FnOnce(R::Items, usize) -> S::Items,
        one: impl FnOnce(R) -> S,
    ) -> Node<'a, S> {
        match self {
            Node::Atom(a) => Node::Atom(a),
            Node::Int(i) => Node::Int(i),
            Node::BigInt(b) => Node::BigInt(b),
            Node::Float(f) => Node::Float(f),
            Node::Binary(b) => Node::Binary(b),
            Node::Bitstring(b) => Node::Bitstring(b),
            Node::List {
                items: elements,
                len,
                tail,
            } => Node::List {
                items: items(elements, len),
                len,
                tail: tail.map(one),
            },
            Node::Tuple {
                items: elements,
                len,
            } => Node::Tuple {
                items: items(elements, len),
                len,
            },
            Node::Map(pairs) => Node::Map(pairs),
            Node::Pid(p) => Node::Pid(p),
            Node::Port(p) => Node::Port(p),
            Node::Ref(r) => Node::Ref(r),
        }
    }
}

impl<'a> TermRef<'a> for &'a Term {
    type Items = std::slice::Iter<'a, Term>;

    #[inline]
    fn node(self) -> Node<'a, Self> {
        match self {
            Term::Atom(a) => Node::Atom(*a),
            Term::Int(i) => Node::Int(*i),
            Term::BigInt(b) => Node::BigInt(b),
            Term::Float(f) => Node::Float(*f),
            Term::Binary(b) => Node::Binary(b),
            Term::Bitstring(b) => Node::Bitstring(b),
            Term::List(items) => Node::List {
                items: items.iter(),
                len: items.len(),
                tail: None,
            },
            Term::ImproperList(items, tail) => Node::List {
                items: items.iter(),
                len: items.len(),
                tail: Some(tail),
            },
            Term::Tuple(items) => Node::Tuple {
                items: items.iter(),
                len: items.len(),
            },
            Term::Map(pairs) => Node::Map(pairs),
            Term::Pid(p) => Node::Pid(*p),
            Term::Port(p) => Node::Port(*p),
            Term::Ref(r) => Node::Ref(*r),
        }
    }
}
