//! Both sides of the distribution handshake, version 6 (OTP 23's, which OTP 25 requires:
//! `DFLAG_HANDSHAKE_23`). Packets carry a 16-bit length until the handshake ends.
//!
//! The cookie check is the challenge/response of the protocol: each side proves it knows the
//! cookie by the MD5 of the cookie followed by the other side's challenge in decimal.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// The distribution flags (erts `dist.h`) this node uses.
pub mod flags {
    pub const EXTENDED_REFERENCES: u64 = 0x4;
    /// Process monitors (`MONITOR_P`): how the node watches its remote owners.
    pub const DIST_MONITOR: u64 = 0x8;
    pub const FUN_TAGS: u64 = 0x10;
    /// Monitors of registered names (`erlang:monitor(process, {ddll, Node})`).
    pub const DIST_MONITOR_NAME: u64 = 0x20;
    pub const NEW_FUN_TAGS: u64 = 0x80;
    pub const EXTENDED_PIDS_PORTS: u64 = 0x100;
    pub const EXPORT_PTR_TAG: u64 = 0x200;
    pub const BIT_BINARIES: u64 = 0x400;
    pub const NEW_FLOATS: u64 = 0x800;
    pub const UTF8_ATOMS: u64 = 0x10000;
    pub const MAP_TAG: u64 = 0x20000;
    pub const BIG_CREATION: u64 = 0x40000;
    pub const HANDSHAKE_23: u64 = 0x100_0000;
    /// What OTP 25 refuses to connect without (`DFLAG_DIST_MANDATORY_25`).
    pub const MANDATORY_25: u64 = EXTENDED_REFERENCES
        | FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | UTF8_ATOMS
        | NEW_FUN_TAGS
        | BIG_CREATION
        | NEW_FLOATS
        | MAP_TAG
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | HANDSHAKE_23;
    /// What this node announces. Not `DIST_HDR_ATOM_CACHE`: messages then travel in the
    /// pass-through format (tag 112, no atom cache), which OTP sends and accepts for such a
    /// peer. Not `PUBLISHED` (0x1): the node is hidden.
    pub const OURS: u64 = MANDATORY_25 | DIST_MONITOR | DIST_MONITOR_NAME;
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The socket failed or closed.
    Io(io::Error),
    /// The peer sent something the protocol does not allow here.
    Protocol(&'static str),
    /// The peer lacks flags OTP 25 makes mandatory (it is older than OTP 23).
    Flags(u64),
    /// The peer's challenge reply does not prove it knows the cookie.
    BadCookie { peer: String },
    /// The peer refused the connection (its `recv_status`: `nok`, `not_allowed`, `alive`).
    Refused(String),
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "handshake: {e}"),
            HandshakeError::Protocol(what) => write!(f, "handshake: {what}"),
            HandshakeError::Flags(flags) => {
                write!(
                    f,
                    "handshake: the peer's flags {flags:#x} lack OTP 25's mandatory ones"
                )
            }
            // BEAM's wording for the same refusal.
            HandshakeError::BadCookie { peer } => write!(
                f,
                "Connection attempt from node {peer} rejected. Invalid challenge reply."
            ),
            HandshakeError::Refused(status) => {
                write!(f, "handshake: the peer refused the connection ({status})")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Runs the accepting side of the handshake on `stream` for the node `name` of incarnation
/// `creation` with `cookie`; the peer's node name.
pub fn accept(
    stream: &mut TcpStream,
    name: &str,
    creation: u32,
    cookie: &str,
) -> Result<String, HandshakeError> {
    let send_name = read_packet(stream)?;
    let (peer_flags, peer_name) = parse_send_name(&send_name)?;
    if peer_flags & flags::MANDATORY_25 != flags::MANDATORY_25 {
        write_packet(stream, b"snot_allowed")?;
        return Err(HandshakeError::Flags(peer_flags));
    }
    write_packet(stream, b"sok")?;

    let challenge = random_u32();
    let mut packet = vec![b'N'];
    packet.extend_from_slice(&flags::OURS.to_be_bytes());
    packet.extend_from_slice(&challenge.to_be_bytes());
    packet.extend_from_slice(&creation.to_be_bytes());
    let name_len = u16::try_from(name.len()).map_err(|_| HandshakeError::Protocol("long name"))?;
    packet.extend_from_slice(&name_len.to_be_bytes());
    packet.extend_from_slice(name.as_bytes());
    write_packet(stream, &packet)?;

    let reply = read_packet(stream)?;
    let [b'r', c0, c1, c2, c3, digest @ ..] = reply.as_slice() else {
        return Err(HandshakeError::Protocol("expected a challenge reply"));
    };
    if digest != digest_of(cookie, challenge) {
        return Err(HandshakeError::BadCookie { peer: peer_name });
    }
    let peer_challenge = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
    let mut ack = vec![b'a'];
    ack.extend_from_slice(&digest_of(cookie, peer_challenge));
    write_packet(stream, &ack)?;
    Ok(peer_name)
}

/// Runs the initiating side of the handshake on `stream` (connected to the node `peer`) for
/// the node `name` of incarnation `creation` with `cookie`; the peer's name as it sent it.
pub fn initiate(
    stream: &mut TcpStream,
    name: &str,
    creation: u32,
    cookie: &str,
    peer: &str,
) -> Result<String, HandshakeError> {
    let name_len = u16::try_from(name.len()).map_err(|_| HandshakeError::Protocol("long name"))?;
    let mut send_name = vec![b'N'];
    send_name.extend_from_slice(&flags::OURS.to_be_bytes());
    send_name.extend_from_slice(&creation.to_be_bytes());
    send_name.extend_from_slice(&name_len.to_be_bytes());
    send_name.extend_from_slice(name.as_bytes());
    write_packet(stream, &send_name)?;

    let status = read_packet(stream)?;
    match status.as_slice() {
        b"sok" | b"sok_simultaneous" => {}
        [b's', status @ ..] => {
            // `alive`: the peer has a connection from an earlier incarnation of this name; it
            // keeps that one, as this node does not claim to be the same incarnation.
            if status == b"alive" {
                write_packet(stream, b"sfalse")?;
            }
            return Err(HandshakeError::Refused(
                String::from_utf8_lossy(status).into_owned(),
            ));
        }
        _ => return Err(HandshakeError::Protocol("expected a status")),
    }

    let challenge_packet = read_packet(stream)?;
    let [b'N', rest @ ..] = challenge_packet.as_slice() else {
        return Err(HandshakeError::Protocol("expected a version 6 challenge"));
    };
    if rest.len() < 18 {
        return Err(HandshakeError::Protocol("short challenge"));
    }
    let peer_flags = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let peer_challenge = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
    let peer_name = rest
        .get(18..18 + len)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .ok_or(HandshakeError::Protocol("short challenge"))?;
    if peer_flags & flags::MANDATORY_25 != flags::MANDATORY_25 {
        return Err(HandshakeError::Flags(peer_flags));
    }
    if peer_name != peer {
        return Err(HandshakeError::Protocol("the peer has another name"));
    }

    let challenge = random_u32();
    let mut reply = vec![b'r'];
    reply.extend_from_slice(&challenge.to_be_bytes());
    reply.extend_from_slice(&digest_of(cookie, peer_challenge));
    write_packet(stream, &reply)?;

    // A peer that finds the reply wrong closes the connection instead of acknowledging it.
    let ack = read_packet(stream).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            HandshakeError::BadCookie {
                peer: peer_name.clone(),
            }
        }
        _ => HandshakeError::Io(e),
    })?;
    match ack.as_slice() {
        [b'a', digest @ ..] if digest == digest_of(cookie, challenge) => Ok(peer_name),
        [b'a', ..] => Err(HandshakeError::BadCookie { peer: peer_name }),
        _ => Err(HandshakeError::Protocol("expected a challenge ack")),
    }
}

/// The initiator's `send_name`: `N` (version 6) or the old `n` (version 5, 32-bit flags).
fn parse_send_name(packet: &[u8]) -> Result<(u64, String), HandshakeError> {
    let bad = HandshakeError::Protocol("malformed send_name");
    let (flags, name) = match packet {
        [b'N', rest @ ..] if rest.len() >= 14 => {
            let flags = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
            let len = usize::from(u16::from_be_bytes([rest[12], rest[13]]));
            (flags, rest.get(14..14 + len).ok_or(bad)?)
        }
        [b'n', _, _, f0, f1, f2, f3, name @ ..] => {
            (u64::from(u32::from_be_bytes([*f0, *f1, *f2, *f3])), name)
        }
        _ => return Err(bad),
    };
    Ok((flags, String::from_utf8_lossy(name).into_owned()))
}

/// `md5(Cookie ++ integer_to_list(Challenge))`.
fn digest_of(cookie: &str, challenge: u32) -> [u8; 16] {
    md5::compute(format!("{cookie}{challenge}")).0
}

/// A challenge nobody can predict (the cookie's secrecy rests on it).
pub fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u32::from_be_bytes(bytes);
    }
    // No /dev/urandom: std's hasher keys are random per process.
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
    hasher.finish() as u32
}

fn read_packet(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut packet)?;
    Ok(packet)
}

fn write_packet(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let len = u16::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too long"))?;
    let mut packet = len.to_be_bytes().to_vec();
    packet.extend_from_slice(body);
    stream.write_all(&packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_name_parses_both_versions() {
        let check = |packet: &[u8], expected: Option<(u64, &str)>| {
            let got = parse_send_name(packet).ok();
            assert_eq!(
                got.as_ref().map(|(f, n)| (*f, n.as_str())),
                expected,
                "{packet:?}"
            );
        };
        let mut v6 = vec![b'N'];
        v6.extend_from_slice(&flags::MANDATORY_25.to_be_bytes());
        v6.extend_from_slice(&7u32.to_be_bytes());
        v6.extend_from_slice(&3u16.to_be_bytes());
        v6.extend_from_slice(b"a@b");
        check(&v6, Some((flags::MANDATORY_25, "a@b")));
        check(&v6[..v6.len() - 1], None);
        check(b"n\x00\x05\x00\x00\x00\x04x@y", Some((4, "x@y")));
        check(b"", None);
        check(b"Q", None);
    }

    #[test]
    fn digest_is_md5_of_cookie_and_decimal_challenge() {
        // md5("secret12345"), computed independently (Python's hashlib).
        let expected = [
            212, 4, 125, 62, 86, 230, 214, 214, 63, 125, 22, 184, 92, 210, 250, 136,
        ];
        assert_eq!(digest_of("secret", 12345), expected);
        assert_ne!(digest_of("secret", 12345), digest_of("secret", 12346));
    }
}
