//! Parsing a caller's request head (`httparse`) and deciding whether the fast path serves it. Anything
//! it does not take (HTTP/1.0, HTTP/2 prior knowledge, upgrades, `Expect`, operations paths, unusual
//! framing, a head hyper would refuse) goes to hyper's server unchanged, which answers as it always has.

use std::ops::Range;

use super::framing::Framing;
use crate::server::OPERATIONS_PATHS;

/// Most header fields in one head, as hyper's server (a head with more goes to hyper, which refuses it).
pub(crate) const MAX_HEADERS: usize = 100;

/// What the bytes read so far hold.
pub(crate) enum Parsed {
    /// No complete head yet.
    Partial,
    /// A head the fast path leaves to hyper.
    Other,
    /// A head the fast path serves.
    Request(RequestHead),
}

/// A parsed request head, as byte ranges into the buffer it was parsed from.
#[derive(Debug, Default)]
pub(crate) struct RequestHead {
    /// Length of the head, blank line included.
    pub(crate) len: usize,
    pub(crate) method: Range<usize>,
    /// Path and query.
    pub(crate) target: Range<usize>,
    /// The `Authorization` value (the first one, as `HeaderMap::remove` returns).
    pub(crate) authorization: Option<Range<usize>>,
    /// The `Host` value.
    pub(crate) host: Option<Range<usize>>,
    pub(crate) has_forwarded_host: bool,
    pub(crate) has_forwarded_proto: bool,
    /// Names and values added up, for the header budget.
    pub(crate) header_bytes: usize,
    pub(crate) framing: Framing,
    /// The caller did not ask to close the connection after this request.
    pub(crate) keep_alive: bool,
    pub(crate) is_head_method: bool,
    /// `(name, value)` of the headers forwarded unchanged: not `Authorization`, `Host`, `kubernetes-*`
    /// or hop-by-hop ones (RFC 9110 7.6.1).
    pub(crate) forwarded: Vec<(Range<usize>, Range<usize>)>,
}

/// Hop-by-hop headers never forwarded (besides `Connection`, which the fast path accepts only naming
/// `close` or `keep-alive`, and `Upgrade`, which it leaves to hyper).
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
];

/// Parses `buf`'s leading request head.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version) else {
        return Parsed::Other;
    };
    if method == "CONNECT" || !is_plain_origin_form(target) || is_operations_path(target) {
        return Parsed::Other;
    }
    let mut forwarded = Vec::with_capacity(request.headers.len());
    let mut new = RequestHead {
        len,
        method: range_of(buf, method.as_bytes()),
        target: range_of(buf, target.as_bytes()),
        keep_alive: true,
        is_head_method: method == "HEAD",
        ..RequestHead::default()
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for field in request.headers.iter() {
        let (name, value) = (field.name, field.value);
        new.header_bytes += name.len() + value.len();
        let lower = |expected: &str| name.eq_ignore_ascii_case(expected);
        if lower("authorization") {
            new.authorization.get_or_insert_with(|| range_of(buf, value));
        } else if lower("host") {
            if new.host.is_some() {
                return Parsed::Other;
            }
            new.host = Some(range_of(buf, value));
        } else if lower("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    new.keep_alive = false;
                } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
                    // Names further hop-by-hop headers (or asks for an upgrade): hyper's path strips them.
                    return Parsed::Other;
                }
            }
        } else if lower("upgrade") || lower("expect") || lower("http2-settings") {
            return Parsed::Other;
        } else if lower("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (parsed, length) {
                (Some(n), None) => length = Some(n),
                // Repeated or malformed lengths: hyper decides.
                _ => return Parsed::Other,
            }
            forwarded.push((range_of(buf, name.as_bytes()), range_of(buf, value)));
        } else if lower("transfer-encoding") {
            if chunked || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Parsed::Other;
            }
            chunked = true;
            forwarded.push((range_of(buf, name.as_bytes()), range_of(buf, value)));
        } else if lower("x-forwarded-host") {
            new.has_forwarded_host = true;
            forwarded.push((range_of(buf, name.as_bytes()), range_of(buf, value)));
        } else if lower("x-forwarded-proto") {
            new.has_forwarded_proto = true;
            forwarded.push((range_of(buf, name.as_bytes()), range_of(buf, value)));
        } else if !is_dropped(name) {
            forwarded.push((range_of(buf, name.as_bytes()), range_of(buf, value)));
        }
    }
    new.framing = match (length, chunked) {
        (Some(_), true) => return Parsed::Other,
        (Some(0), false) | (None, false) => Framing::Empty,
        (Some(n), false) => Framing::Length(n),
        (None, true) => Framing::Chunked,
    };
    new.forwarded = forwarded;
    Parsed::Request(new)
}

/// A hop-by-hop header or one of the `kubernetes-*` headers only the sidecar may set.
fn is_dropped(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || name
            .as_bytes()
            .get(..11)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"kubernetes-"))
}

/// `s`'s position in `buf` (`s` is a sub-slice of it).
fn range_of(buf: &[u8], s: &[u8]) -> Range<usize> {
    let start = (s.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + s.len()
}

/// A target of `/` followed by characters every URI parser takes as they are; anything else (absolute
/// form, `*`, fragments, quotes, braces) goes to hyper, whose URI parser decides.
fn is_plain_origin_form(target: &str) -> bool {
    target.starts_with('/')
        && target.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'/'
                        | b'?'
                        | b'%'
                )
        })
}

/// `/healthz`, `/readyz`, `/metrics` (with or without a query) are answered by the router.
fn is_operations_path(target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    OPERATIONS_PATHS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(buf: &[u8]) -> RequestHead {
        match parse(buf) {
            Parsed::Request(head) => head,
            Parsed::Partial => panic!("partial"),
            Parsed::Other => panic!("left to hyper"),
        }
    }

    fn is_other(buf: &[u8]) -> bool {
        matches!(parse(buf), Parsed::Other)
    }

    #[test]
    fn a_head_split_across_reads_is_partial_until_complete() {
        let whole =
            b"POST /mcp?x=1 HTTP/1.1\r\nHost: a:1\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}";
        let head_len = whole.len() - 2;
        for cut in 0..head_len {
            assert!(matches!(parse(&whole[..cut]), Parsed::Partial), "cut at {cut}");
        }
        let head = request(whole);
        assert_eq!(head.len, head_len);
        assert_eq!(&whole[head.method.clone()], b"POST");
        assert_eq!(&whole[head.target.clone()], b"/mcp?x=1");
        assert_eq!(&whole[head.authorization.clone().unwrap()], b"Bearer t");
        assert_eq!(&whole[head.host.clone().unwrap()], b"a:1");
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
    }

    #[test]
    fn pipelined_requests_parse_one_after_the_other() {
        let two =
            b"GET /a HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let first = request(two);
        assert_eq!(&two[first.target.clone()], b"/a");
        assert_eq!(first.framing, Framing::Empty);
        let rest = &two[first.len..];
        let second = request(rest);
        assert_eq!(&rest[second.target.clone()], b"/b");
        assert!(!second.keep_alive);
        assert_eq!(second.len, rest.len());
    }

    #[test]
    fn caller_credentials_and_hop_by_hop_headers_are_not_forwarded() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\nKubernetes-Server: x\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: p\r\nX-Other: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = request(buf);
        let names: Vec<&[u8]> = head.forwarded.iter().map(|(n, _)| &buf[n.clone()]).collect();
        assert_eq!(names, vec![&b"X-Other"[..], b"Transfer-Encoding"]);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(
            head.header_bytes,
            buf.len() - b"GET / HTTP/1.1\r\n\r\n".len() - 8 * b": \r\n".len()
        );
    }

    #[test]
    fn what_the_fast_path_does_not_serve_goes_to_hyper() {
        assert!(is_other(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(is_other(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(is_other(b"GET /healthz HTTP/1.1\r\n\r\n"));
        assert!(is_other(b"GET /metrics?x HTTP/1.1\r\n\r\n"));
        assert!(is_other(
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ));
        assert!(is_other(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(is_other(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(is_other(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"));
        assert!(is_other(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(is_other(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        ));
        assert!(is_other(b"GET http://x/ HTTP/1.1\r\n\r\n"));
        assert!(is_other(b"GET /{x} HTTP/1.1\r\n\r\n"));
        assert!(is_other(b"CONNECT a:1 HTTP/1.1\r\n\r\n"));
        assert!(is_other(b"GET / HTTP/1.1\r\nConnection: x-secret\r\n\r\n"));
        assert!(is_other(b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n"));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(is_other(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()));
    }
}
