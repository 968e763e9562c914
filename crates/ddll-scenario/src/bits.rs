//! Erlang's bit syntax, construction side: `<<Value:Size/Type-Endian-unit:U, ...>>` built into
//! a binary or bitstring with the results and errors BEAM's evaluator gives (`badarg` for a
//! value that does not fit its segment; `bittype_unit` and `utf_bittype_size_or_unit` for
//! specifier mistakes).

use bytes::Bytes;
use drv_term::Term;

use super::parse::{BinSegment, BinType, Endian};
use crate::atom;
use ddll::Exception;

/// A binary under construction, bit by bit.
#[derive(Default)]
pub(super) struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn push_bit(&mut self, bit: bool) {
        if self.bits % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> (self.bits % 8);
        }
        self.bits += 1;
    }

    /// The `count` low bits of `bits(i)` (bit `i` of the value, 0 the least significant),
    /// most significant first.
    fn push_bits_msb_first(&mut self, count: usize, bit: impl Fn(usize) -> bool) {
        for i in (0..count).rev() {
            self.push_bit(bit(i));
        }
    }

    /// Writes one segment whose value (a string's char, for a string) and size are evaluated.
    pub(super) fn segment(
        &mut self,
        spec: &BinSegment,
        value: &Term,
        size: Option<&Term>,
    ) -> Result<(), Exception> {
        let size = match size {
            None => None,
            Some(Term::Int(n)) if *n >= 0 => Some(*n as u64),
            Some(_) => return Err(Exception::badarg()),
        };
        let unit = u64::from(spec.unit.unwrap_or(match spec.kind {
            BinType::Binary => 8,
            _ => 1,
        }));
        let little = match spec.endian {
            Endian::Big => false,
            Endian::Little => true,
            Endian::Native => cfg!(target_endian = "little"),
        };
        match spec.kind {
            BinType::Integer | BinType::Float if spec.unit.is_some() && size.is_none() => {
                Err(Exception::new(atom("bittype_unit")))
            }
            BinType::Integer => {
                let bits = bit_count(size.unwrap_or(8), unit)?;
                let value = Integer::of(value).ok_or(Exception::badarg())?;
                self.integer(bits, little, &value);
                Ok(())
            }
            BinType::Float => {
                let bits = bit_count(size.unwrap_or(64), unit)?;
                let value = match value {
                    Term::Float(f) => *f,
                    Term::Int(i) => *i as f64,
                    Term::BigInt(b) => b.to_f64(),
                    _ => return Err(Exception::badarg()),
                };
                let encoded: u64 = match bits {
                    64 => value.to_bits(),
                    // Out of range becomes infinity, as BEAM 25 writes it.
                    32 => u64::from((value as f32).to_bits()),
                    16 => u64::from(half_bits(value)),
                    _ => return Err(Exception::badarg()),
                };
                self.integer(bits, little, &Integer::Small(encoded as i128));
                Ok(())
            }
            BinType::Binary | BinType::Bits => {
                let Some((data, available)) = value.bits() else {
                    return Err(Exception::badarg());
                };
                let available = available as u64;
                let bits = match size {
                    Some(size) => bit_count(size, unit)?,
                    None if available % unit != 0 => return Err(Exception::badarg()),
                    None => available as usize,
                };
                if bits as u64 > available {
                    return Err(Exception::badarg());
                }
                if self.bits % 8 == 0 && bits % 8 == 0 {
                    self.bytes.extend_from_slice(&data[..bits / 8]);
                    self.bits += bits;
                } else {
                    for i in 0..bits {
                        self.push_bit(data[i / 8] & (0x80 >> (i % 8)) != 0);
                    }
                }
                Ok(())
            }
            BinType::Utf8 | BinType::Utf16 | BinType::Utf32 => {
                if size.is_some() || spec.unit.is_some() {
                    return Err(Exception::new(atom("utf_bittype_size_or_unit")));
                }
                let c = match value {
                    Term::Int(i) => u32::try_from(*i).ok().and_then(char::from_u32),
                    _ => None,
                }
                .ok_or(Exception::badarg())?;
                match spec.kind {
                    BinType::Utf8 => {
                        let mut buf = [0; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            self.integer(8, false, &Integer::Small(i128::from(b)));
                        }
                    }
                    BinType::Utf16 => {
                        let mut buf = [0; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            self.integer(16, little, &Integer::Small(i128::from(*unit)));
                        }
                    }
                    _ => self.integer(32, little, &Integer::Small(i128::from(u32::from(c)))),
                }
                Ok(())
            }
        }
    }

    /// The `bits` low bits of `value`, two's complement. Little-endian writes the low byte
    /// first and leaves the top `bits % 8` bits for last, as BEAM does (`<<1:12/little>>` is
    /// `<<1,0:4>>`).
    fn integer(&mut self, bits: usize, little: bool, value: &Integer) {
        if !little {
            self.push_bits_msb_first(bits, |i| value.bit(i));
            return;
        }
        let mut low = 0;
        while low < bits {
            let width = (bits - low).min(8);
            self.push_bits_msb_first(width, |i| value.bit(low + i));
            low += width;
        }
    }

    /// The term built: a binary, or a bitstring when the bit count is not a multiple of 8.
    pub(super) fn finish(self) -> Term {
        Term::from_bits(Bytes::from(self.bytes), self.bits)
            .expect("one byte is started per 8 bits written")
    }
}

/// `size * unit` as a bit count; sizes that cannot exist are `badarg`.
fn bit_count(size: u64, unit: u64) -> Result<usize, Exception> {
    size.checked_mul(unit)
        .and_then(|bits| usize::try_from(bits).ok())
        .filter(|bits| *bits <= MAX_SEGMENT_BITS)
        .ok_or(Exception::badarg())
}

/// Larger segments than any scenario needs are refused rather than allocated.
const MAX_SEGMENT_BITS: usize = 1 << 30;

/// An integer of any size, read bit by bit in two's complement (infinitely sign-extended).
enum Integer {
    Small(i128),
    /// Little-endian two's complement bytes and the fill byte above them.
    Big(Vec<u8>, u8),
}

impl Integer {
    fn of(term: &Term) -> Option<Integer> {
        match term {
            Term::Int(i) => Some(Integer::Small(i128::from(*i))),
            Term::BigInt(big) => {
                let mut bytes = big.magnitude_le_bytes().to_vec();
                if !big.is_negative() {
                    return Some(Integer::Big(bytes, 0));
                }
                // Negate: invert and add one.
                let mut carry = true;
                for b in &mut bytes {
                    let (sum, overflow) = (!*b).overflowing_add(u8::from(carry));
                    *b = sum;
                    carry = overflow;
                }
                Some(Integer::Big(bytes, 0xff))
            }
            _ => None,
        }
    }

    fn bit(&self, i: usize) -> bool {
        match self {
            Integer::Small(v) => (v >> i.min(127)) & 1 == 1,
            Integer::Big(bytes, fill) => {
                let byte = bytes.get(i / 8).copied().unwrap_or(*fill);
                byte & (1 << (i % 8)) != 0
            }
        }
    }
}

/// IEEE 754 half precision, rounded to nearest even; too large becomes infinity (as BEAM 25).
fn half_bits(value: f64) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1 << 52) - 1);
    if exponent == 0x7ff {
        let nan = if mantissa != 0 { 0x200 } else { 0 };
        return sign | 0x7c00 | nan;
    }
    let unbiased = exponent - 1023;
    if unbiased > 15 {
        return sign | 0x7c00;
    }
    // The significand with its implicit bit, and how far to shift it into 10 bits (more for
    // subnormal results).
    let significand = mantissa | (1 << 52);
    let (shift, biased) = if unbiased < -14 {
        (42 + (-14 - unbiased), 0)
    } else {
        (42, unbiased + 15)
    };
    if exponent == 0 || shift > 53 {
        return sign;
    }
    let shift = shift as u32;
    let kept = significand >> shift;
    let rest = significand & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let rounded = if rest > half || (rest == half && kept & 1 == 1) {
        kept + 1
    } else {
        kept
    };
    // Normal results keep the implicit bit in `rounded`: adding the exponent above it lets a
    // rounding carry step the exponent up (to infinity at the top).
    let magnitude = if biased == 0 {
        rounded as u32
    } else {
        ((biased as u32) << 10) + (rounded as u32 - 0x400)
    };
    sign | magnitude.min(0x7c00) as u16
}

#[cfg(test)]
mod tests {
    use super::half_bits;

    /// The half-precision encodings BEAM 25 writes for `<<F:16/float>>`.
    #[test]
    fn half_precision_matches_beam() {
        let cases: &[(f64, u16)] = &[
            (1.0, 0x3c00),
            (1.5, 0x3e00),
            (-2.0, 0xc000),
            (0.0, 0x0000),
            (0.1, 0x2e66),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00),
            (1.0e10, 0x7c00),
            (5.96e-8, 0x0001),
            (6.0e-5, 0x03ef),
            (1.0e-10, 0x0000),
        ];
        for &(value, want) in cases {
            assert_eq!(half_bits(value), want, "{value}");
        }
    }
}
