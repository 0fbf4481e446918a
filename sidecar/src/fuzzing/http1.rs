//! Fuzz entry points for the HTTP/1.1 fast path's parsers (`crate::http1`): the caller's request head,
//! the app's response head and the body framing. Each entry point asserts what the code promises to
//! the connection loop (`http1::serve`, `http1::upstream`), so a wrong answer is a crash as much as a
//! panic is.
//!
//! [`run`] takes one input: a selector byte, a byte seeding how bodies are split into reads, then the
//! bytes (see [`run`]).

use crate::http1::framing::{BodyCursor, Framing, FramingError};
use crate::http1::request_head::{self, MAX_HEADERS, Parsed, RequestHead};
use crate::http1::response_head::{self, ParsedResponse, ResponseHead, ResponseHeadError};

/// Hop-by-hop headers (RFC 9110 7.6.1): the oracle's own copy, so a wrong list in the sidecar is caught.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// One fuzz input: `selector % 4` picks the request head (0), the response head (1: to a GET, 2: to a
/// HEAD) or the chunked encoder round trip (3); with `selector & 4` set the bytes go to the framing
/// decoder directly, `selector >> 3` choosing the framing. `splits` seeds the read sizes.
pub fn run(data: &[u8]) {
    let [selector, splits, rest @ ..] = data else {
        return;
    };
    if selector & 4 != 0 {
        let framing = match selector >> 3 {
            0..=15 => Framing::Chunked,
            16..=23 => Framing::Length(u64::from(selector >> 3) * 7),
            24..=27 => Framing::Length(u64::MAX),
            _ => Framing::UntilClose,
        };
        body(framing, rest, *splits);
        return;
    }
    match selector % 4 {
        0 => request(rest, *splits),
        1 => response(rest, false, *splits),
        2 => response(rest, true, *splits),
        _ => chunked_round_trip(rest, *splits),
    }
}

/// The caller's head, then its body with the head's framing.
///
/// Asserts: a complete head is at most the bytes given and every range it reports lies inside it; the
/// same head is parsed from exactly its own bytes (nothing after it was read) and from those bytes
/// followed by anything; every prefix of it is `Partial`; what it forwards is at most
/// [`MAX_HEADERS`] fields, never `Authorization`, `Host`, `kubernetes-*` or hop-by-hop ones; the
/// header budget counts the names and values exactly; framing is never "until close" (a request body
/// must end by its framing). The body after the head then goes through [`body`].
fn request(buf: &[u8], splits: u8) {
    let head = match request_head::parse(buf) {
        Parsed::Request(head) => head,
        Parsed::Partial | Parsed::Other => return,
    };
    assert!(
        head.len <= buf.len(),
        "head of {} in {} bytes",
        head.len,
        buf.len()
    );
    let own = &buf[..head.len];
    let ranges = [
        Some(&head.method),
        Some(&head.target),
        head.authorization.as_ref(),
        head.host.as_ref(),
    ];
    for range in ranges.into_iter().flatten() {
        assert!(
            range.end <= head.len && range.start <= range.end,
            "{range:?} outside the head"
        );
    }
    for (name, value) in &head.forwarded {
        assert!(
            name.end <= head.len && value.end <= head.len,
            "forwarded field outside the head"
        );
        let name = String::from_utf8_lossy(&own[name.clone()]).to_ascii_lowercase();
        assert!(
            name != "authorization"
                && name != "host"
                && !name.starts_with("kubernetes-")
                && !HOP_BY_HOP.contains(&name.as_str()),
            "{name} forwarded"
        );
    }
    assert!(head.forwarded.len() <= MAX_HEADERS);
    assert!(
        own[head.target.clone()].starts_with(b"/"),
        "target not origin-form"
    );
    assert_ne!(head.framing, Framing::UntilClose, "a request body until close");
    assert_eq!(Some(head.header_bytes), header_bytes(own), "header budget");
    same_request(&head, own, "its own bytes");
    let extended = [own, b"GET / HTTP/1.1\r\n\r\nx"].concat();
    same_request(&head, &extended, "its bytes and more");
    // A read that stopped anywhere inside the head must wait for more, never decide early.
    for cut in [
        0,
        1,
        head.len / 2,
        head.len.saturating_sub(2),
        head.len.saturating_sub(1),
    ] {
        if cut < head.len {
            assert!(
                matches!(request_head::parse(&own[..cut]), Parsed::Partial),
                "prefix of {cut} bytes not partial"
            );
        }
    }
    body(head.framing, &buf[head.len..], splits);
}

fn same_request(head: &RequestHead, buf: &[u8], what: &str) {
    let again = match request_head::parse(buf) {
        Parsed::Request(again) => format!("{again:?}"),
        Parsed::Partial => "partial".into(),
        Parsed::Other => "left to hyper".into(),
    };
    assert_eq!(again, format!("{head:?}"), "parsed differently from {what}");
}

/// Names and values of a complete head's fields added up, as `httparse` reads them.
fn header_bytes(head: &[u8]) -> Option<usize> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {
            Some(request.headers.iter().map(|f| f.name.len() + f.value.len()).sum())
        }
        _ => None,
    }
}

/// The app's response head (to a `HEAD` request when `head_request`), then its body.
///
/// Asserts: a head (or a 1xx to skip) is at most the bytes given, parses the same from exactly its own
/// bytes and from them followed by anything, and every prefix of it is `Partial`; the head written
/// for the caller is an HTTP/1.1 head with the app's status, without hop-by-hop headers or those
/// `Connection` names, and announces the framing the body is read with (a body until close is
/// re-chunked); an answer to `HEAD`, a 204 and a 304 have no body; a connection is reusable only if
/// its body ends by its framing. The body after the head then goes through [`body`].
fn response(buf: &[u8], head_request: bool, splits: u8) {
    let (len, head) = match response_head::parse(buf, head_request) {
        Ok(ParsedResponse::Head(head)) => (head.len, Some(head)),
        Ok(ParsedResponse::Informational(len)) => (len, None),
        Ok(ParsedResponse::Partial) | Err(_) => return,
    };
    assert!(len <= buf.len(), "head of {len} in {} bytes", buf.len());
    let own = &buf[..len];
    let summary = describe(response_head::parse(own, head_request));
    assert_eq!(summary, describe(response_head::parse(buf, head_request)));
    let extended = [own, b"HTTP/1.1 200 OK\r\n\r\n"].concat();
    assert_eq!(summary, describe(response_head::parse(&extended, head_request)));
    for cut in [0, 1, len / 2, len.saturating_sub(2), len.saturating_sub(1)] {
        if cut < len {
            assert!(
                matches!(
                    response_head::parse(&own[..cut], head_request),
                    Ok(ParsedResponse::Partial)
                ),
                "prefix of {cut} bytes not partial"
            );
        }
    }
    let Some(head) = head else {
        return;
    };
    check_for_caller(&head, own, head_request);
    body(head.framing, &buf[len..], splits);
}

fn describe(parsed: Result<ParsedResponse, ResponseHeadError>) -> String {
    match parsed {
        Ok(ParsedResponse::Partial) => "partial".into(),
        Ok(ParsedResponse::Informational(len)) => format!("informational {len}"),
        Ok(ParsedResponse::Head(head)) => format!("{head:?}"),
        Err(e) => format!("error {e}"),
    }
}

/// The head the caller gets, read back with `httparse` against the app's head `own`.
fn check_for_caller(head: &ResponseHead, own: &[u8], head_request: bool) {
    assert!(!(100..200).contains(&head.status), "a 1xx as the final head");
    if head_request || head.status == 204 || head.status == 304 {
        assert_eq!(head.framing, Framing::Empty, "a body where none may be");
    }
    if head.reusable {
        assert_ne!(
            head.framing,
            Framing::UntilClose,
            "reusable although the body runs until close"
        );
    }
    let written = [head.for_caller.as_slice(), b"\r\n"].concat();
    // One more field than the app sent (the re-chunking header) can exceed what httparse takes here;
    // the caller's own parser has its own bound.
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS + 1];
    let mut parsed = httparse::Response::new(&mut fields);
    let complete = parsed.parse(&written);
    assert!(
        matches!(complete, Ok(httparse::Status::Complete(n)) if n == written.len()),
        "the caller's head does not parse whole: {complete:?}"
    );
    assert!(written.starts_with(b"HTTP/1.1 "));
    assert_eq!(parsed.code, Some(head.status));
    let connection_named = connection_names(own);
    let mut chunked = false;
    let mut length = None;
    for field in parsed.headers.iter() {
        let name = field.name.to_ascii_lowercase();
        assert!(
            !HOP_BY_HOP.contains(&name.as_str()),
            "hop-by-hop {name} passed to the caller"
        );
        // The framing headers stay even when named: the caller reads the body by them.
        let framing_header = name == "content-length" || name == "transfer-encoding";
        assert!(
            framing_header || !connection_named.contains(&name),
            "{name} named by Connection passed to the caller"
        );
        if name == "transfer-encoding" {
            chunked = true;
        } else if name == "content-length" {
            let value = field.value.trim_ascii();
            assert!(
                !value.is_empty() && value.iter().all(u8::is_ascii_digit),
                "Content-Length {value:?} passed to the caller"
            );
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    match head.framing {
        Framing::Chunked | Framing::UntilClose => {
            assert!(chunked, "a chunked body without Transfer-Encoding");
            assert_eq!(length, None, "Content-Length next to chunking");
        }
        Framing::Length(n) => {
            assert!(!chunked);
            assert_eq!(length, Some(n));
        }
        // A HEAD answer or a 204/304 may announce what a GET would have had.
        Framing::Empty => {}
    }
}

/// The tokens of the app's `Connection` headers other than `close` and `keep-alive`, lowercased.
fn connection_names(head: &[u8]) -> Vec<String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    if parsed.parse(head).is_err() {
        return Vec::new();
    }
    parsed
        .headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .flat_map(|f| f.value.split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive")
        .collect()
}

/// Feeds `bytes` to a body cursor with `framing` whole and in reads of sizes drawn from `splits`.
///
/// Asserts: each read takes at most what it was given; the body takes the same bytes and ends (or
/// fails, with the same error) the same way however the bytes are split; once it ended it takes
/// nothing more; a `Content-Length` body takes exactly its length; a body until close takes everything
/// and never ends.
fn body(framing: Framing, bytes: &[u8], splits: u8) {
    let whole = feed(framing, bytes, &[bytes.len().max(1)]);
    let sizes = read_sizes(splits);
    let split = feed(framing, bytes, &sizes);
    assert_eq!(
        whole, split,
        "{framing:?} body read whole and in reads of {sizes:?}"
    );
    let one_by_one = feed(framing, bytes, &[1]);
    assert_eq!(whole, one_by_one, "{framing:?} body read whole and byte by byte");
    assert!(
        whole.is_ok() || framing == Framing::Chunked,
        "{framing:?} framing failed: {whole:?}"
    );
    match (framing, &whole) {
        (Framing::Length(n), Ok((taken, done))) => {
            let expected = usize::try_from(n).map_or(bytes.len(), |n| n.min(bytes.len()));
            assert_eq!(*taken, expected);
            assert_eq!(*done, *taken as u64 == n);
        }
        (Framing::Empty, Ok((taken, done))) => assert!(*taken == 0 && *done),
        (Framing::UntilClose, Ok((taken, done))) => assert!(*taken == bytes.len() && !done),
        _ => {}
    }
}

/// How many bytes the body took and whether it ended, reading `bytes` in pieces cycling through
/// `sizes`, as the connection loop does: a piece the body does not take in full ends it.
fn feed(framing: Framing, bytes: &[u8], sizes: &[usize]) -> Result<(usize, bool), FramingError> {
    let mut cursor = BodyCursor::new(framing);
    let mut at = 0;
    let mut size = sizes.iter().cycle();
    while at < bytes.len() {
        let step = size.next().copied().unwrap_or(1).max(1);
        let piece = &bytes[at..bytes.len().min(at + step)];
        let was_done = cursor.is_done();
        let taken = cursor.advance(piece)?;
        assert!(taken <= piece.len(), "took {taken} of {} bytes", piece.len());
        if was_done {
            assert_eq!(taken, 0, "took bytes after the body ended");
        }
        at += taken;
        if taken < piece.len() {
            assert!(cursor.is_done(), "stopped short of a piece without ending");
            break;
        }
    }
    Ok((at, cursor.is_done()))
}

/// Read sizes from 1 to 16 bytes, a small generator seeded by `seed`.
fn read_sizes(seed: u8) -> Vec<usize> {
    let mut state = u32::from(seed) | 0x100;
    (0..8)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 16) as usize + 1
        })
        .collect()
}

/// Encodes `bytes` as a chunked body (chunk sizes, extensions, trailers and digit case drawn from the
/// bytes themselves), followed by the next message.
///
/// Asserts: every valid encoding is taken exactly up to its end and ends, however it is split.
fn chunked_round_trip(bytes: &[u8], splits: u8) {
    let mut encoded = Vec::new();
    let mut rest = bytes;
    while let Some((&control, tail)) = rest.split_first() {
        let size = usize::from(control & 0x1f).min(tail.len());
        let (data, tail) = tail.split_at(size);
        rest = tail;
        if size == 0 {
            // A zero size would be the last chunk; the data byte just goes into the next one.
            continue;
        }
        let digits = if control & 0x20 == 0 {
            format!("{size:x}")
        } else {
            format!("{size:X}")
        };
        if control & 0x40 != 0 {
            encoded.extend_from_slice(b"00");
        }
        encoded.extend_from_slice(digits.as_bytes());
        if control & 0x80 != 0 {
            encoded.extend_from_slice(b" ;name=\"v;\\\"x\"");
        }
        encoded.extend_from_slice(b"\r\n");
        encoded.extend_from_slice(data);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n");
    if splits & 1 != 0 {
        encoded.extend_from_slice(b"x-checksum: 0\r\nx-more: a\r\n");
    }
    encoded.extend_from_slice(b"\r\n");
    let end = encoded.len();
    encoded.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
    for sizes in [vec![encoded.len()], vec![1], read_sizes(splits)] {
        assert_eq!(
            feed(Framing::Chunked, &encoded, &sizes),
            Ok((end, true)),
            "a valid chunked body read in reads of {sizes:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seeds of `fuzz/seeds/sidecar_http1`, so `cargo test` runs the target's assertions.
    #[test]
    fn the_fuzz_seeds_pass_the_targets_assertions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sidecar_http1");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            // Each seed with every selector too, so each parser sees every seed.
            run(&data);
            for selector in [0u8, 1, 2, 3, 4, 0x84, 0xc4, 0xf4] {
                let mut other = data.clone();
                if let Some(first) = other.first_mut() {
                    *first = selector;
                }
                run(&other);
            }
            count += 1;
        }
        assert!(count >= 10, "only {count} seeds in {}", dir.display());
    }

    #[test]
    fn seeds_reach_each_parsers_accepting_path() {
        let get = b"GET /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        assert!(matches!(request_head::parse(get), Parsed::Request(_)));
        request(get, 7);
        response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            false,
            3,
        );
        body(Framing::Chunked, b"3;x\r\nabc\r\n0\r\nt: 1\r\n\r\nNEXT", 9);
        chunked_round_trip(b"\x83abc\x21xyz\x45hello", 1);
    }
}
