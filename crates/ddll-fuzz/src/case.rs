//! A fuzz case: a sequence of the port operations an Erlang program uses, how it is generated
//! from random bytes (`arbitrary`), steered by what the driver accepted, and how it is written
//! as a scenario.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use arbitrary::Unstructured;

use super::coverage::Cmp;

/// Which process an operation runs as: the scenario's `main`, or `other` (the process whose
/// death is [`Op::KillOther`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Main,
    Other,
}

impl Owner {
    /// The scenario process name.
    pub fn name(self) -> &'static str {
        match self {
            Owner::Main => "main",
            Owner::Other => "other",
        }
    }
}

/// One piece of `port_command` iodata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// `<<...>>`
    Binary(Vec<u8>),
    /// `[B1, B2, ...]`, a list of bytes.
    Bytes(Vec<u8>),
}

/// A `port_call` argument: the shapes of term a program passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTerm {
    Int(i64),
    Atom(&'static str),
    Binary(Vec<u8>),
    List(Vec<CallTerm>),
    Tuple(Vec<CallTerm>),
}

/// The atoms a generated call term uses.
const ATOMS: [&str; 5] = ["ok", "true", "false", "undefined", "x"];

/// One operation. `port` is the index of an earlier `open_port` of the case (taken modulo
/// the number of them; an operation with no earlier `open_port` is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `Pn = erlang:open_port({spawn_driver, "NAME ARGS"}, [binary])`, as `owner`.
    Open { owner: Owner, args: String },
    /// `erlang:port_command(P, IoData)`.
    Command { port: usize, data: Vec<Chunk> },
    /// `erlang:port_control(P, Op, <<Data>>)`.
    Control {
        port: usize,
        operation: u32,
        data: Vec<u8>,
    },
    /// `erlang:port_call(P, Op, Term)` (the driver gets the term in external term format).
    Call {
        port: usize,
        operation: u32,
        term: CallTerm,
    },
    /// `erlang:port_close(P)`.
    Close { port: usize },
    /// `kill(other)`: the death of the process owning the ports opened as `other`.
    KillOther,
    /// `erl_ddll:try_unload(NAME, [])` (`unload` would wait for the ports to close).
    Unload,
    /// `erl_ddll:try_load(DriverDir, NAME, [])`.
    Load,
    /// `erl_ddll:try_load(DriverDir, NAME, [{reload, pending_driver}])` (`reload` would wait).
    Reload,
    /// `recv(Ms)`: time for the driver's timers, async jobs and threads.
    Wait { ms: u32 },
}

/// The kind of an operation, as a finding names where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Open,
    Command,
    Control,
    Call,
    Close,
    KillOther,
    Unload,
    Load,
    Reload,
    Wait,
}

impl OpKind {
    /// The Erlang function (or scenario call) of the kind.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Open => "open_port",
            OpKind::Command => "port_command",
            OpKind::Control => "port_control",
            OpKind::Call => "port_call",
            OpKind::Close => "port_close",
            OpKind::KillOther => "owner_death",
            OpKind::Unload => "unload",
            OpKind::Load => "load",
            OpKind::Reload => "reload",
            OpKind::Wait => "wait",
        }
    }
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Open { .. } => OpKind::Open,
            Op::Command { .. } => OpKind::Command,
            Op::Control { .. } => OpKind::Control,
            Op::Call { .. } => OpKind::Call,
            Op::Close { .. } => OpKind::Close,
            Op::KillOther => OpKind::KillOther,
            Op::Unload => OpKind::Unload,
            Op::Load => OpKind::Load,
            Op::Reload => OpKind::Reload,
            Op::Wait { .. } => OpKind::Wait,
        }
    }

    /// The port operand, if any.
    pub fn port(&self) -> Option<usize> {
        match self {
            Op::Command { port, .. }
            | Op::Control { port, .. }
            | Op::Call { port, .. }
            | Op::Close { port } => Some(*port),
            _ => None,
        }
    }
}

/// What the driver was seen to accept (no `badarg`): steers generation towards the operation
/// numbers, payloads and lengths that get past the driver's argument checks.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    pub control_ops: BTreeSet<u32>,
    pub call_ops: BTreeSet<u32>,
    pub lengths: BTreeSet<usize>,
    pub payloads: Vec<Vec<u8>>,
    /// Comparisons the driver made (with sanitizer coverage): their constants are tried as
    /// operation numbers and payload bytes.
    pub cmps: Vec<Cmp>,
}

impl Dictionary {
    /// At most this many payloads are kept.
    const PAYLOADS: usize = 64;
    /// At most this many comparisons are kept.
    const CMPS: usize = 256;

    /// Keeps comparisons the driver made.
    pub fn compared(&mut self, cmps: &[Cmp]) {
        for c in cmps {
            if self.cmps.len() >= Self::CMPS {
                return;
            }
            if !self.cmps.contains(c) {
                self.cmps.push(*c);
            }
        }
    }

    pub fn accepted_payload(&mut self, bytes: &[u8]) {
        self.lengths.insert(bytes.len());
        if self.payloads.len() < Self::PAYLOADS && !self.payloads.iter().any(|p| p == bytes) {
            self.payloads.push(bytes.to_vec());
        }
    }
}

fn pick<'a, T>(u: &mut Unstructured<'_>, set: impl ExactSizeIterator<Item = &'a T>) -> Option<&'a T>
where
    T: 'a,
{
    let mut set = set;
    let n = set.len();
    if n == 0 {
        return None;
    }
    let i = u.choose_index(n).ok()?;
    set.nth(i)
}

/// An operation number: mostly small (drivers number their operations from 0 or 1), often one
/// the driver accepted, sometimes anything.
fn operation(
    u: &mut Unstructured<'_>,
    accepted: &BTreeSet<u32>,
    cmps: &[Cmp],
) -> arbitrary::Result<u32> {
    Ok(match u.int_in_range(0..=9)? {
        0..=1 => u.int_in_range(0..=12)?,
        2..=3 => match cmps.get(u.choose_index(cmps.len().max(1))?) {
            Some(c) => u32::try_from(c.constant).unwrap_or(0),
            None => u.int_in_range(0..=12)?,
        },
        4..=7 => match pick(u, accepted.iter()) {
            Some(&op) => op,
            None => u.int_in_range(0..=12)?,
        },
        8 => u.int_in_range(0..=255)?,
        _ => u.arbitrary()?,
    })
}

/// A payload length: small, one the driver accepted, or up to a few kilobytes.
fn length(u: &mut Unstructured<'_>, dict: &Dictionary) -> arbitrary::Result<usize> {
    Ok(match u.int_in_range(0..=9)? {
        0..=3 => u.int_in_range(0..=16)?,
        4..=6 => match pick(u, dict.lengths.iter()) {
            Some(&n) => n,
            None => u.int_in_range(0..=16)?,
        },
        7..=8 => u.int_in_range(0..=300)?,
        _ => u.int_in_range(0..=4096)?,
    })
}

/// Payload bytes: an accepted payload (perhaps cut or grown to `len`), one repeated byte, or
/// random bytes.
fn payload(u: &mut Unstructured<'_>, dict: &Dictionary) -> arbitrary::Result<Vec<u8>> {
    let len = length(u, dict)?;
    Ok(match u.int_in_range(0..=5)? {
        0..=1 => match pick(u, dict.payloads.iter()) {
            Some(p) => {
                let mut p = p.clone();
                if u.arbitrary()? {
                    p.resize(len, 0);
                }
                p
            }
            None => vec![b'a'; len],
        },
        2 => vec![u.arbitrary()?; len],
        _ => (0..len)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?,
    })
}

fn call_term(
    u: &mut Unstructured<'_>,
    dict: &Dictionary,
    depth: u32,
) -> arbitrary::Result<CallTerm> {
    let leaf = depth >= 2;
    Ok(match u.int_in_range(0..=if leaf { 2 } else { 4 })? {
        0 => CallTerm::Int(match u.int_in_range(0..=2)? {
            0 => u.int_in_range(-2..=300)?,
            _ => u.arbitrary()?,
        }),
        1 => CallTerm::Atom(ATOMS[u.choose_index(ATOMS.len())?]),
        2 => CallTerm::Binary(payload(u, dict)?),
        3 => CallTerm::List(
            (0..u.int_in_range(0..=3)?)
                .map(|_| call_term(u, dict, depth + 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
        _ => CallTerm::Tuple(
            (0..u.int_in_range(0..=3)?)
                .map(|_| call_term(u, dict, depth + 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
    })
}

/// A generated operation.
pub fn op(u: &mut Unstructured<'_>, dict: &Dictionary) -> arbitrary::Result<Op> {
    // Mostly the first port: a bug behind two operations needs both on one port.
    let port = if u.ratio(3, 4)? {
        0
    } else {
        u.int_in_range(1..=3)?
    };
    Ok(match u.int_in_range(0..=99)? {
        0..=7 => Op::Open {
            owner: if u.ratio(1, 4)? {
                Owner::Other
            } else {
                Owner::Main
            },
            args: start_args(u)?,
        },
        8..=35 => {
            let mut data = Vec::new();
            for _ in 0..u.int_in_range(1..=3)? {
                let bytes = payload(u, dict)?;
                data.push(if u.ratio(1, 4)? {
                    Chunk::Bytes(bytes)
                } else {
                    Chunk::Binary(bytes)
                });
                if u.ratio(2, 3)? {
                    break;
                }
            }
            Op::Command { port, data }
        }
        36..=63 => Op::Control {
            port,
            operation: operation(u, &dict.control_ops, &dict.cmps)?,
            data: payload(u, dict)?,
        },
        64..=83 => Op::Call {
            port,
            operation: operation(u, &dict.call_ops, &dict.cmps)?,
            term: call_term(u, dict, 0)?,
        },
        84..=87 => Op::Close { port },
        88..=89 => Op::KillOther,
        90 => Op::Unload,
        91 => Op::Load,
        92 => Op::Reload,
        _ => Op::Wait {
            ms: u.int_in_range(0..=30)?,
        },
    })
}

/// The bytes an operation sends, which [`mutate_op`] changes.
fn payload_mut<'o>(
    op: &'o mut Op,
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<Option<&'o mut Vec<u8>>> {
    Ok(match op {
        Op::Command { data, .. } if !data.is_empty() => {
            let i = u.choose_index(data.len())?;
            match &mut data[i] {
                Chunk::Binary(b) | Chunk::Bytes(b) => Some(b),
            }
        }
        Op::Control { data, .. } => Some(data),
        Op::Call {
            term: CallTerm::Binary(b),
            ..
        } => Some(b),
        _ => None,
    })
}

/// Whether [`mutate_op`] has something to change.
pub fn has_payload(op: &Op) -> bool {
    matches!(
        op,
        Op::Command { .. }
            | Op::Control { .. }
            | Op::Call {
                term: CallTerm::Binary(_),
                ..
            }
    )
}

/// Changes an operation's payload (a byte set, flipped, inserted or removed; bytes the
/// driver compared replaced by what it compared them with) or its operation number (a
/// constant the driver compared with). `cmps`: what the driver compared running the case;
/// otherwise the dictionary's.
pub fn mutate_op(
    op: &mut Op,
    u: &mut Unstructured<'_>,
    dict: &Dictionary,
    cmps: &[Cmp],
) -> arbitrary::Result<()> {
    let cmps = if cmps.is_empty() || u.ratio(1, 4)? {
        &dict.cmps[..]
    } else {
        cmps
    };
    let choice = u.int_in_range(0..=7)?;
    if choice == 7 {
        if let (Op::Control { operation, .. } | Op::Call { operation, .. }, false) =
            (&mut *op, cmps.is_empty())
        {
            let c = cmps[u.choose_index(cmps.len())?];
            *operation = u32::try_from(c.constant).unwrap_or(*operation);
            return Ok(());
        }
    }
    let Some(bytes) = payload_mut(op, u)? else {
        return Ok(());
    };
    match choice {
        // What the driver compared a part of the input with, in place of that part.
        0..=2 if !cmps.is_empty() => {
            let c = cmps[u.choose_index(cmps.len())?];
            let (from, to) = if u.ratio(3, 4)? {
                (c.operand, c.constant)
            } else {
                (c.constant, c.operand)
            };
            let from = Cmp::bytes(from, c.size);
            let to = Cmp::bytes(to, c.size);
            match bytes.windows(from.len()).position(|w| w == from.as_slice()) {
                Some(at) => bytes[at..at + to.len()].copy_from_slice(&to),
                None if bytes.len() >= to.len() => {
                    let at = u.int_in_range(0..=bytes.len() - to.len())?;
                    bytes[at..at + to.len()].copy_from_slice(&to);
                }
                None => bytes.extend_from_slice(&to),
            }
        }
        3 if !bytes.is_empty() => {
            let at = u.choose_index(bytes.len())?;
            bytes[at] = u.arbitrary()?;
        }
        4 if !bytes.is_empty() => {
            let at = u.choose_index(bytes.len())?;
            bytes[at] ^= 1 << u.int_in_range(0..=7)?;
        }
        5 if !bytes.is_empty() => {
            bytes.remove(u.choose_index(bytes.len())?);
        }
        _ => {
            let at = u.int_in_range(0..=bytes.len())?;
            bytes.insert(at, u.arbitrary()?);
        }
    }
    Ok(())
}

/// The cases made from `ops` by putting, where the input holds the operand of a comparison
/// the driver made, the value it was compared with (input-to-state substitution, as Redqueen
/// does): one case per comparison and payload where the operand was found, at most `max`.
pub fn substitutions(ops: &[Op], cmps: &[Cmp], max: usize) -> Vec<Vec<Op>> {
    let mut out = Vec::new();
    for c in cmps {
        let from = Cmp::bytes(c.operand, c.size);
        let to = Cmp::bytes(c.constant, c.size);
        for (i, op) in ops.iter().enumerate() {
            let mut changed = op.clone();
            let replaced = match &mut changed {
                Op::Command { data, .. } => data.iter_mut().any(|chunk| match chunk {
                    Chunk::Binary(b) | Chunk::Bytes(b) => replace_first(b, &from, &to),
                }),
                Op::Control { data, .. } => replace_first(data, &from, &to),
                Op::Call {
                    term: CallTerm::Binary(b),
                    ..
                } => replace_first(b, &from, &to),
                _ => false,
            };
            if replaced {
                let mut case = ops.to_vec();
                case[i] = changed;
                out.push(case);
                if out.len() >= max {
                    return out;
                }
            }
        }
    }
    out
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (as long): whether it did.
fn replace_first(bytes: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    match bytes.windows(from.len()).position(|w| w == from) {
        Some(at) => {
            bytes[at..at + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

/// Start arguments: empty, a word or two of `[a-z0-9]` (no escapes needed in the scenario).
fn start_args(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    if u.ratio(1, 2)? {
        return Ok(String::new());
    }
    let len = u.int_in_range(1..=16)?;
    (0..len)
        .map(|_| Ok(char::from(CHARS[u.choose_index(CHARS.len())?])))
        .collect()
}

/// A generated case: an `open_port` first, then up to `max_ops` operations.
pub fn case(
    u: &mut Unstructured<'_>,
    dict: &Dictionary,
    max_ops: usize,
) -> arbitrary::Result<Vec<Op>> {
    let mut ops = vec![Op::Open {
        owner: Owner::Main,
        args: start_args(u)?,
    }];
    let n = u.int_in_range(1..=max_ops)?;
    for _ in 0..n {
        ops.push(op(u, dict)?);
    }
    Ok(ops)
}

/// `ops` as a scenario for driver `name` in `DriverDir`: a load, one line per operation, then
/// `drain` lines `recv(1000)` for each process named (which print what is in its mailbox,
/// the crash among it).
pub fn render(name: &str, ops: &[Op], drain: &[(Owner, usize)]) -> String {
    let mut text = format!("erl_ddll:load(DriverDir, {name}).\n");
    let mut opened = 0usize;
    for op in ops {
        let port = |i: usize| format!("P{}", i % opened.max(1) + 1);
        if op.port().is_some() && opened == 0 {
            continue;
        }
        let line = match op {
            Op::Open { owner, args } => {
                opened += 1;
                let command = if args.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name} {args}")
                };
                let open = format!("erlang:open_port({{spawn_driver, \"{command}\"}}, [binary])");
                match owner {
                    Owner::Main => format!("P{opened} = {open}."),
                    Owner::Other => format!("P{opened} = as(other, {open})."),
                }
            }
            Op::Command { port: p, data } => {
                format!("erlang:port_command({}, {}).", port(*p), iodata(data))
            }
            Op::Control {
                port: p,
                operation,
                data,
            } => format!(
                "erlang:port_control({}, {operation}, {}).",
                port(*p),
                binary(data)
            ),
            Op::Call {
                port: p,
                operation,
                term,
            } => {
                let mut t = String::new();
                write_term(&mut t, term);
                format!("erlang:port_call({}, {operation}, {t}).", port(*p))
            }
            Op::Close { port: p } => format!("erlang:port_close({}).", port(*p)),
            Op::KillOther => "kill(other).".to_owned(),
            Op::Unload => format!("erl_ddll:try_unload({name}, [])."),
            Op::Load => format!("erl_ddll:try_load(DriverDir, {name}, [])."),
            Op::Reload => {
                format!("erl_ddll:try_load(DriverDir, {name}, [{{reload, pending_driver}}]).")
            }
            Op::Wait { ms } => format!("recv({ms})."),
        };
        text.push_str(&line);
        text.push('\n');
    }
    for &(owner, n) in drain {
        for _ in 0..n {
            match owner {
                Owner::Main => text.push_str("recv(1000).\n"),
                Owner::Other => text.push_str("as(other, recv(1000)).\n"),
            }
        }
    }
    text
}

fn binary(bytes: &[u8]) -> String {
    let mut s = String::from("<<");
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{b}");
    }
    s.push_str(">>");
    s
}

fn byte_list(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(","))
}

fn chunk(c: &Chunk) -> String {
    match c {
        Chunk::Binary(b) => binary(b),
        Chunk::Bytes(b) => byte_list(b),
    }
}

/// One binary as itself; anything else as a list of its chunks.
fn iodata(data: &[Chunk]) -> String {
    match data {
        [Chunk::Binary(b)] => binary(b),
        _ => format!(
            "[{}]",
            data.iter().map(chunk).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn write_term(out: &mut String, term: &CallTerm) {
    let seq = |out: &mut String, items: &[CallTerm], open: char, close: char| {
        out.push(open);
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_term(out, t);
        }
        out.push(close);
    };
    match term {
        CallTerm::Int(i) => {
            let _ = write!(out, "{i}");
        }
        CallTerm::Atom(a) => out.push_str(a),
        CallTerm::Binary(b) => out.push_str(&binary(b)),
        CallTerm::List(items) => seq(out, items, '[', ']'),
        CallTerm::Tuple(items) => seq(out, items, '{', '}'),
    }
}

/// The port operation count of `ops` as the scenario shows it (operations without a port to
/// act on are left out).
pub fn effective_len(ops: &[Op]) -> usize {
    let mut opened = false;
    ops.iter()
        .filter(|op| {
            opened |= matches!(op, Op::Open { .. });
            op.port().is_none() || opened
        })
        .count()
}

/// Simpler variants of one operation, simplest first (for the shrinker).
pub fn simpler(op: &Op) -> Vec<Op> {
    let mut out = Vec::new();
    let shorter = |bytes: &[u8]| -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if !bytes.is_empty() {
            v.push(Vec::new());
            if bytes.len() > 2 {
                // Often one byte is all a check needs: one step instead of halving's many.
                v.push(bytes[..1].to_vec());
            }
            if bytes.len() > 1 {
                v.push(bytes[..bytes.len() / 2].to_vec());
                v.push(bytes[bytes.len() / 2..].to_vec());
            }
            v.push(bytes[..bytes.len() - 1].to_vec());
        }
        // Simpler values: all `a` (the simplest: nothing is offered for it, so shrinking
        // ends there rather than going back and forth), else zeroes.
        if bytes.iter().any(|&b| b != b'a') {
            v.push(vec![b'a'; bytes.len()]);
            if bytes.iter().any(|&b| b != 0) {
                v.push(vec![0; bytes.len()]);
            }
        }
        v
    };
    match op {
        Op::Open { owner, args } => {
            if !args.is_empty() {
                out.push(Op::Open {
                    owner: *owner,
                    args: String::new(),
                });
            }
            if *owner == Owner::Other {
                out.push(Op::Open {
                    owner: Owner::Main,
                    args: args.clone(),
                });
            }
        }
        Op::Command { port, data } => {
            if *port != 0 {
                out.push(Op::Command {
                    port: 0,
                    data: data.clone(),
                });
            }
            let flat: Vec<u8> = data
                .iter()
                .flat_map(|c| match c {
                    Chunk::Binary(b) | Chunk::Bytes(b) => b.clone(),
                })
                .collect();
            if data.len() != 1 || !matches!(data[0], Chunk::Binary(_)) {
                out.push(Op::Command {
                    port: *port,
                    data: vec![Chunk::Binary(flat.clone())],
                });
            }
            for bytes in shorter(&flat) {
                out.push(Op::Command {
                    port: *port,
                    data: vec![Chunk::Binary(bytes)],
                });
            }
        }
        Op::Control {
            port,
            operation,
            data,
        } => {
            if *port != 0 {
                out.push(Op::Control {
                    port: 0,
                    operation: *operation,
                    data: data.clone(),
                });
            }
            for bytes in shorter(data) {
                out.push(Op::Control {
                    port: *port,
                    operation: *operation,
                    data: bytes,
                });
            }
        }
        Op::Call {
            port,
            operation,
            term,
        } => {
            if *port != 0 {
                out.push(Op::Call {
                    port: 0,
                    operation: *operation,
                    term: term.clone(),
                });
            }
            for t in simpler_terms(term) {
                out.push(Op::Call {
                    port: *port,
                    operation: *operation,
                    term: t,
                });
            }
        }
        Op::Close { port } if *port != 0 => out.push(Op::Close { port: 0 }),
        Op::Wait { ms } if *ms > 0 => {
            out.push(Op::Wait { ms: 0 });
            out.push(Op::Wait { ms: ms / 2 });
        }
        _ => {}
    }
    out
}

fn simpler_terms(term: &CallTerm) -> Vec<CallTerm> {
    let mut out = Vec::new();
    if *term != CallTerm::Int(0) {
        out.push(CallTerm::Int(0));
    }
    match term {
        CallTerm::Int(i) if *i != 0 && i.unsigned_abs() > 1 => out.push(CallTerm::Int(i / 2)),
        CallTerm::Binary(b) if !b.is_empty() => {
            out.push(CallTerm::Binary(Vec::new()));
            out.push(CallTerm::Binary(b[..b.len() / 2].to_vec()));
        }
        CallTerm::List(items) | CallTerm::Tuple(items) => {
            out.extend(items.iter().cloned());
            for i in 0..items.len() {
                let mut fewer = items.clone();
                fewer.remove(i);
                out.push(match term {
                    CallTerm::List(_) => CallTerm::List(fewer),
                    _ => CallTerm::Tuple(fewer),
                });
            }
        }
        _ => {}
    }
    out
}
