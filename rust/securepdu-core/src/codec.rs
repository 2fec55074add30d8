//! A bounds-checked reader over peer bytes.
//!
//! Every decoder in this crate reads through [`Reader`]: `take(n)` returns `None`
//! instead of panicking when fewer than `n` bytes remain, so a lying length field
//! becomes a typed error, never an out-of-bounds index or an oversized allocation.

/// A cursor over a byte slice that never reads past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// Offset of the next byte from the start of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread remainder, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Takes the next `n` bytes, or `None` (consuming nothing) if fewer remain.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// A reader over the next `n` bytes, for a nested item with its own length.
    pub fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        self.take(n).map(Reader::new)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    /// Reads a big-endian `u16` (the Upper Layer's byte order).
    pub fn u16_be(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub fn u32_be(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    /// Reads a little-endian `u16` (DIMSE and Part 10 byte order).
    pub fn u16_le(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    pub fn u32_le(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }

    /// Reads exactly `N` bytes into an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_past_end_consumes_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16_be(), Some(0x0102));
        assert_eq!(r.u16_be(), None);
        assert_eq!(r.left(), 1);
        assert_eq!(r.u8(), Some(3));
        assert!(r.is_empty());
        assert_eq!(r.take(usize::MAX), None);
    }

    #[test]
    fn sub_reader_is_bounded() {
        let mut r = Reader::new(&[0, 0, 0, 9, 1]);
        let mut s = r.sub(4).unwrap();
        assert_eq!(s.u32_be(), Some(9));
        assert!(s.is_empty());
        assert_eq!(r.u8(), Some(1));
    }
}
