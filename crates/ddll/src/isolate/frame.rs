//! The transport between a runtime and a driver's host process: one Unix stream socket
//! (a socketpair, the child's end as its standard input) carrying frames, each a big-endian
//! `u32` length and a term in the external term format.

use std::io::{self, Read, Write};

use drv_term::Term;

/// The largest frame either side accepts: a larger length means the stream is corrupt.
const MAX_FRAME: usize = 1 << 30;

/// Writes `term` as one frame (one `write` for the length and the term together).
pub(crate) fn write(out: &mut impl Write, term: &Term) -> io::Result<()> {
    let mut buf = vec![0; 4];
    drv_term::encode_into(term, &mut buf);
    let len = u32::try_from(buf.len() - 4)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    out.write_all(&buf)
}

/// Reads one frame; `UnexpectedEof` when the other side has gone.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Term> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0; len];
    input.read_exact(&mut buf)?;
    drv_term::decode(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_order() {
        let terms = [
            Term::Tuple(vec![crate::runtime::atom("msgs"), Term::Int(-1)]),
            Term::Binary(bytes::Bytes::from_static(&[0, 1, 2, 255])),
            Term::Pid(drv_term::Pid::local(7)),
            Term::Port(drv_term::Port::local(1 << 33 | 5)),
        ];
        let mut wire = Vec::new();
        for term in &terms {
            write(&mut wire, term).expect("written");
        }
        let mut input = wire.as_slice();
        for term in &terms {
            assert_eq!(&read(&mut input).expect("read"), term);
        }
        assert_eq!(
            read(&mut input).expect_err("nothing left").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
