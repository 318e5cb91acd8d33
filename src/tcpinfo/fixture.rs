//! Test support: lays out a C struct from its header's field list, the way a C compiler
//! does (each member aligned to its own alignment, the struct padded to its largest
//! alignment), so fixtures are built from the declaration rather than from the
//! decoder's offset table — and the offsets can be asserted against the reference.

/// A C member type, as far as layout goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum C {
    /// `u_int8_t`, `UCHAR`, `BOOLEAN`.
    U8,
    /// `u_int32_t`, `ULONG`, or a 32-bit bitfield word.
    U32,
    /// `int` / C enum (`TCPSTATE`).
    I32,
    /// `u_int64_t`, `ULONG64`.
    U64,
    /// `u_int32_t name[n]` (reserved or padding words, written as zeros).
    U32Array(usize),
}

impl C {
    fn size(self) -> usize {
        match self {
            C::U8 => 1,
            C::U32 | C::I32 => 4,
            C::U64 => 8,
            C::U32Array(n) => 4 * n,
        }
    }

    fn align(self) -> usize {
        match self {
            C::U8 => 1,
            C::U32 | C::I32 | C::U32Array(_) => 4,
            C::U64 => 8,
        }
    }
}

/// A struct being laid out member by member, with native-endian values.
#[derive(Debug, Default)]
pub(crate) struct CStruct {
    buf: Vec<u8>,
    align: usize,
}

impl CStruct {
    pub(crate) fn new() -> Self {
        CStruct {
            buf: Vec::new(),
            align: 1,
        }
    }

    /// Appends member `ty` holding `value` (truncated to the member's width; ignored for
    /// arrays, which are zero) and returns its offset.
    pub(crate) fn field(&mut self, ty: C, value: u64) -> usize {
        let off = self.buf.len().next_multiple_of(ty.align());
        self.buf.resize(off, 0);
        self.align = self.align.max(ty.align());
        match ty {
            C::U8 => self.buf.push(value as u8),
            C::U32 => self.buf.extend((value as u32).to_ne_bytes()),
            C::I32 => self.buf.extend((value as i32).to_ne_bytes()),
            C::U64 => self.buf.extend(value.to_ne_bytes()),
            C::U32Array(n) => self.buf.resize(off + 4 * n, 0),
        }
        assert_eq!(self.buf.len(), off + ty.size());
        off
    }

    /// The finished struct: padded to its alignment, i.e. `sizeof`.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let size = self.buf.len().next_multiple_of(self.align);
        self.buf.resize(size, 0);
        self.buf
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), for the "never panics" loops.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}
