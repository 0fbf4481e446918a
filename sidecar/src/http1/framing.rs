//! Where an HTTP/1.1 message body ends: `Content-Length` bytes, the last chunk of a chunked body (with
//! its trailers), or the connection's end. Bodies are passed on as they arrive, framing included, so
//! this only finds the boundary: the bytes after it belong to the next message on the connection.

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Framing {
    /// No body (no length header, `Content-Length: 0`, a response to `HEAD`, 204, 304).
    #[default]
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response without length or chunking: the body runs until the app closes the connection.
    UntilClose,
}

/// Why a body's framing is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    /// A chunk-size line is not hexadecimal digits (with optional extensions).
    #[error("malformed chunk size")]
    ChunkSize,
    /// A chunk size beyond `u64`.
    #[error("chunk size too large")]
    ChunkTooLarge,
    /// The CRLF after a chunk's data is missing.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// A line (chunk extensions, trailers) longer than [`MAX_LINE`].
    #[error("chunk extension or trailer line too long")]
    LineTooLong,
}

/// Longest chunk-size line (with extensions) or trailer section accepted; bytes of neither are kept, the
/// bound only stops a peer from sending an endless line.
const MAX_LINE: usize = 64 * 1024;

/// Where a chunked body is in its grammar (RFC 9112 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In the hexadecimal size; `digits` read so far.
    Size {
        value: u64,
        digits: usize,
    },
    /// After the size: optional whitespace, then `;` extensions or CR.
    SizeSpace {
        value: u64,
    },
    /// In a chunk extension, up to CR.
    Extension {
        value: u64,
    },
    /// After the size line's CR.
    SizeLf {
        value: u64,
    },
    /// Data bytes still to come.
    Data(u64),
    /// After the data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line or the final empty line.
    TrailerStart,
    /// In a trailer line, up to CR.
    Trailer,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    EndLf,
    Done,
}

/// Tracks one body through the bytes that arrive for it.
#[derive(Debug, Clone)]
pub(crate) struct BodyCursor {
    state: State,
    /// Bytes of the current size line or trailer section (bounded by [`MAX_LINE`]).
    line: usize,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

impl BodyCursor {
    /// A cursor at the start of a body framed by `framing`.
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size { value: 0, digits: 0 }),
            Framing::UntilClose => State::UntilClose,
        };
        Self { state, line: 0 }
    }

    /// Whether the body has ended (never, for a body that runs until the connection closes).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// How many leading bytes of `bytes` belong to this body; fewer than all of them only when the body
    /// ends inside `bytes` (the rest is the next message).
    pub(crate) fn advance(&mut self, bytes: &[u8]) -> Result<usize, FramingError> {
        match &mut self.state {
            State::Done => Ok(0),
            State::UntilClose => Ok(bytes.len()),
            State::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                *remaining -= take as u64;
                if *remaining == 0 {
                    self.state = State::Done;
                }
                Ok(take)
            }
            State::Chunked(_) => self.advance_chunked(bytes),
        }
    }

    fn advance_chunked(&mut self, bytes: &[u8]) -> Result<usize, FramingError> {
        let State::Chunked(mut chunk) = self.state else {
            return Ok(0);
        };
        let mut at = 0;
        while at < bytes.len() && chunk != Chunk::Done {
            // Data is skipped in one step; everything else goes byte by byte.
            if let Chunk::Data(remaining) = chunk {
                let take = usize::try_from(remaining).map_or(bytes.len() - at, |r| r.min(bytes.len() - at));
                at += take;
                let left = remaining - take as u64;
                chunk = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            let byte = bytes[at];
            at += 1;
            chunk = self.step(chunk, byte)?;
        }
        self.state = if chunk == Chunk::Done {
            State::Done
        } else {
            State::Chunked(chunk)
        };
        Ok(at)
    }

    /// One byte of the chunked grammar outside data.
    fn step(&mut self, chunk: Chunk, byte: u8) -> Result<Chunk, FramingError> {
        self.line += 1;
        if self.line > MAX_LINE {
            return Err(FramingError::LineTooLong);
        }
        let next = match chunk {
            Chunk::Size { value, digits } => match (byte as char).to_digit(16) {
                Some(digit) => {
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(digit)))
                        .ok_or(FramingError::ChunkTooLarge)?;
                    Chunk::Size {
                        value,
                        digits: digits + 1,
                    }
                }
                None if digits == 0 => return Err(FramingError::ChunkSize),
                None => return Self::after_size(value, byte),
            },
            Chunk::SizeSpace { value } => return Self::after_size(value, byte),
            Chunk::Extension { value } => match byte {
                b'\r' => Chunk::SizeLf { value },
                _ => Chunk::Extension { value },
            },
            Chunk::SizeLf { value } => {
                if byte != b'\n' {
                    return Err(FramingError::ChunkSize);
                }
                self.line = 0;
                if value == 0 {
                    Chunk::TrailerStart
                } else {
                    Chunk::Data(value)
                }
            }
            Chunk::DataCr if byte == b'\r' => Chunk::DataLf,
            Chunk::DataLf if byte == b'\n' => {
                self.line = 0;
                Chunk::Size { value: 0, digits: 0 }
            }
            Chunk::DataCr | Chunk::DataLf => return Err(FramingError::ChunkEnd),
            Chunk::TrailerStart if byte == b'\r' => Chunk::EndLf,
            Chunk::TrailerStart | Chunk::Trailer if byte != b'\r' => Chunk::Trailer,
            Chunk::Trailer => Chunk::TrailerLf,
            Chunk::TrailerLf if byte == b'\n' => Chunk::TrailerStart,
            Chunk::EndLf if byte == b'\n' => Chunk::Done,
            Chunk::TrailerStart | Chunk::TrailerLf | Chunk::EndLf => return Err(FramingError::ChunkEnd),
            // Data and Done never reach here.
            Chunk::Data(_) | Chunk::Done => chunk,
        };
        Ok(next)
    }

    /// The first byte after a chunk size's digits.
    fn after_size(value: u64, byte: u8) -> Result<Chunk, FramingError> {
        match byte {
            b' ' | b'\t' => Ok(Chunk::SizeSpace { value }),
            b';' => Ok(Chunk::Extension { value }),
            b'\r' => Ok(Chunk::SizeLf { value }),
            _ => Err(FramingError::ChunkSize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; how many bytes the body took, and whether it ended.
    fn feed(framing: Framing, input: &[u8], step: usize) -> Result<(usize, bool), FramingError> {
        let mut cursor = BodyCursor::new(framing);
        let mut taken = 0;
        for piece in input.chunks(step) {
            let n = cursor.advance(piece)?;
            taken += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((taken, cursor.is_done()))
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_in_any_split() {
        let body = b"5\r\nhello\r\n1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        let next = b"GET /next HTTP/1.1\r\n\r\n";
        let input = [&body[..], &next[..]].concat();
        for step in 1..=input.len() {
            assert_eq!(
                feed(Framing::Chunked, &input, step),
                Ok((body.len(), true)),
                "step {step}"
            );
        }
    }

    #[test]
    fn trailers_belong_to_the_body() {
        let body = b"3\r\nabc\r\n0\r\nx-checksum: 1\r\nx-more: 2\r\n\r\n";
        let input = [&body[..], b"NEXT"].concat();
        for step in [1, 2, 7, input.len()] {
            assert_eq!(feed(Framing::Chunked, &input, step), Ok((body.len(), true)));
        }
    }

    #[test]
    fn an_unfinished_chunked_body_is_not_done() {
        assert_eq!(feed(Framing::Chunked, b"5\r\nhel", 100), Ok((6, false)));
        assert_eq!(feed(Framing::Chunked, b"0\r\n\r", 100), Ok((4, false)));
    }

    #[test]
    fn chunk_sizes_are_hex_of_either_case_with_optional_whitespace() {
        let body = b"a \r\n0123456789\r\nA\t;ext\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(feed(Framing::Chunked, body, 3), Ok((body.len(), true)));
    }

    #[test]
    fn broken_chunking_is_refused() {
        assert_eq!(feed(Framing::Chunked, b"zz\r\n", 1), Err(FramingError::ChunkSize));
        assert_eq!(feed(Framing::Chunked, b"\r\n", 1), Err(FramingError::ChunkSize));
        assert_eq!(feed(Framing::Chunked, b"5\rx", 1), Err(FramingError::ChunkSize));
        assert_eq!(
            feed(Framing::Chunked, b"2\r\nabX", 1),
            Err(FramingError::ChunkEnd)
        );
        assert_eq!(
            feed(Framing::Chunked, b"fffffffffffffffff\r\n", 4),
            Err(FramingError::ChunkTooLarge)
        );
        let endless = [b"1;".as_slice(), &vec![b'x'; MAX_LINE]].concat();
        assert_eq!(
            feed(Framing::Chunked, &endless, 4096),
            Err(FramingError::LineTooLong)
        );
    }

    #[test]
    fn a_length_body_takes_exactly_its_length() {
        assert_eq!(feed(Framing::Length(5), b"helloGET", 3), Ok((5, true)));
        assert_eq!(feed(Framing::Length(5), b"hel", 3), Ok((3, false)));
        assert_eq!(feed(Framing::Empty, b"GET", 3), Ok((0, true)));
        assert_eq!(feed(Framing::Length(0), b"GET", 3), Ok((0, true)));
        let mut cursor = BodyCursor::new(Framing::Length(10));
        assert_eq!(cursor.advance(b"abcd"), Ok(4));
        assert_eq!(cursor.advance(b"efghijklmn"), Ok(6));
        assert!(cursor.is_done());
    }

    #[test]
    fn a_body_until_close_takes_everything_and_never_ends() {
        assert_eq!(feed(Framing::UntilClose, b"abcdef", 2), Ok((6, false)));
    }
}
