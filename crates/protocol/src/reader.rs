//! Reading a binary body field by field: every read checks the bytes are there.

use crate::error::malformed;
use crate::ProtocolError;

pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
    /// What is read, to name it in an error ("pull page", "checkpoint").
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { rest: bytes, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.rest.len() < n {
            return Err(malformed(format!("{}: it is cut short", self.what)));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ProtocolError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    /// An unsigned LEB128.
    pub(crate) fn v(&mut self) -> Result<u64, ProtocolError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(malformed(format!(
            "{}: a number runs past 64 bits",
            self.what
        )))
    }
}
