//! Bounds-checked native-endian reads from a kernel buffer.
//!
//! Every decoder reads through these: a field whose last byte is past the end of the
//! buffer is `None`, never a panic and never a zero.

/// Reads the `N` bytes at `off`, or `None` when the buffer is too short.
#[inline]
fn array<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    buf.get(off..end)?.try_into().ok()
}

/// The byte at `off`.
#[inline]
pub(crate) fn u8_at(buf: &[u8], off: usize) -> Option<u8> {
    buf.get(off).copied()
}

/// The native-endian `u16` at `off`.
#[inline]
pub(crate) fn u16_at(buf: &[u8], off: usize) -> Option<u16> {
    array(buf, off).map(u16::from_ne_bytes)
}

/// The native-endian `u32` at `off`.
#[inline]
pub(crate) fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    array(buf, off).map(u32::from_ne_bytes)
}

/// The native-endian `i32` at `off` (C enums).
#[inline]
pub(crate) fn i32_at(buf: &[u8], off: usize) -> Option<i32> {
    array(buf, off).map(i32::from_ne_bytes)
}

/// The native-endian `u64` at `off`.
#[inline]
pub(crate) fn u64_at(buf: &[u8], off: usize) -> Option<u64> {
    array(buf, off).map(u64::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_past_the_end() {
        let buf = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u8_at(&buf, 8), Some(9));
        assert_eq!(u8_at(&buf, 9), None);
        assert_eq!(u32_at(&buf, 5), Some(u32::from_ne_bytes([6, 7, 8, 9])));
        assert_eq!(u32_at(&buf, 6), None);
        assert_eq!(
            u64_at(&buf, 1),
            Some(u64::from_ne_bytes([2, 3, 4, 5, 6, 7, 8, 9]))
        );
        assert_eq!(u64_at(&buf, 2), None);
        assert_eq!(u16_at(&buf, usize::MAX), None);
    }
}
