//! Parsing the app's response head and writing the head the caller gets: the app's status and
//! end-to-end headers, without hop-by-hop ones (RFC 9110 7.6.1), framed for the caller's connection.

use super::framing::Framing;
use super::request_head::MAX_HEADERS;
use crate::inbound_auth::HOP_BY_HOP_NAMES;

/// The app's response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    /// Length of the head in the app's bytes.
    pub(crate) len: usize,
    pub(crate) status: u16,
    /// How the body the app sends is delimited.
    pub(crate) framing: Framing,
    /// The app keeps the connection open after this response (HTTP/1.1, no `Connection: close`, a body
    /// that ends by its framing).
    pub(crate) reusable: bool,
    /// The head for the caller, up to and excluding the blank line (so `Connection: close` can be
    /// added).
    pub(crate) for_caller: Vec<u8>,
}

/// What the bytes read from the app so far hold.
pub(crate) enum ParsedResponse {
    Partial,
    /// A 1xx other than 101: the final response follows.
    Informational(usize),
    Head(ResponseHead),
}

/// Why the app's response head is unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResponseHeadError {
    #[error("invalid HTTP response from the app: {0}")]
    Parse(httparse::Error),
    #[error("the app answered 101 Switching Protocols to a request without Upgrade")]
    UnexpectedUpgrade,
    #[error("the app answered with status {0}; a status is 100 to 999")]
    Status(u16),
    #[error("the app's response has an invalid Content-Length")]
    Length,
    #[error("the app's response has a Transfer-Encoding other than chunked")]
    TransferEncoding,
}

/// Parses the app's response head at the start of `buf`, for a request that was `HEAD` when
/// `head_request`.
pub(crate) fn parse(buf: &[u8], head_request: bool) -> Result<ParsedResponse, ResponseHeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf).map_err(ResponseHeadError::Parse)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(ParsedResponse::Partial),
    };
    let status = response.code.unwrap_or(0);
    // httparse takes any three digits; below 100 is no status (hyper refuses it too), and writing it
    // back as a number would give the caller a status line of fewer than three digits.
    if status < 100 {
        return Err(ResponseHeadError::Status(status));
    }
    if status == 101 {
        return Err(ResponseHeadError::UnexpectedUpgrade);
    }
    if (100..200).contains(&status) {
        return Ok(ParsedResponse::Informational(len));
    }
    let headers = &*response.headers;
    let mut close = response.version != Some(1);
    let mut named: Vec<&[u8]> = Vec::new();
    for field in headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
    {
        for token in field.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            } else if !token.is_empty() {
                named.push(token);
            }
        }
    }
    let mut for_caller = Vec::with_capacity(len + 32);
    for_caller.extend_from_slice(b"HTTP/1.1 ");
    for_caller.extend_from_slice(status.to_string().as_bytes());
    for_caller.push(b' ');
    for_caller.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    for_caller.extend_from_slice(b"\r\n");
    let mut length = None;
    // Chunked framing wins over a length sent alongside it, which is then not passed on (RFC 9112 6.3).
    let chunked = headers
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("transfer-encoding"));
    for field in headers {
        let name = field.name;
        // The framing headers stay whatever `Connection` names: the body is read by them, so the caller
        // must read it the same way.
        let framing_header =
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding");
        if HOP_BY_HOP_NAMES.iter().any(|h| name.eq_ignore_ascii_case(h))
            || (!framing_header && named.iter().any(|n| n.eq_ignore_ascii_case(name.as_bytes())))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            if chunked {
                continue;
            }
            // Digits only, as the request side takes them: `u64`'s parser also accepts a sign, which
            // the caller's parser may not.
            let value = std::str::from_utf8(field.value.trim_ascii())
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ResponseHeadError::Length)?;
            if length.is_some_and(|l| l != value) {
                return Err(ResponseHeadError::Length);
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let value = field.value.trim_ascii();
            let last = value.rsplit(|&b| b == b',').next().map(<[u8]>::trim_ascii);
            if !last.is_some_and(|l| l.eq_ignore_ascii_case(b"chunked")) {
                return Err(ResponseHeadError::TransferEncoding);
            }
        }
        for_caller.extend_from_slice(name.as_bytes());
        for_caller.extend_from_slice(b": ");
        for_caller.extend_from_slice(field.value);
        for_caller.extend_from_slice(b"\r\n");
    }
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        // The caller's connection stays open: the body is re-framed as chunked.
        for_caller.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::UntilClose
    };
    Ok(ParsedResponse::Head(ResponseHead {
        len,
        status,
        framing,
        reusable: !close && framing != Framing::UntilClose,
        for_caller,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(buf: &[u8], head_request: bool) -> ResponseHead {
        match parse(buf, head_request).unwrap() {
            ParsedResponse::Head(head) => head,
            _ => panic!("no head"),
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: x-private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok";
        let h = head(buf, false);
        assert_eq!(
            String::from_utf8(h.for_caller).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
        );
        assert_eq!(
            (h.len, h.framing, h.reusable),
            (buf.len() - 2, Framing::Length(2), true)
        );
    }

    #[test]
    fn framing_follows_the_status_the_method_and_the_headers() {
        let chunked = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert_eq!(chunked.framing, Framing::Chunked);
        assert_eq!(
            String::from_utf8(chunked.for_caller).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        );
        let to_head = head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert_eq!(to_head.framing, Framing::Empty);
        let no_content = head(b"HTTP/1.1 204 No Content\r\n\r\n", false);
        assert_eq!(no_content.framing, Framing::Empty);
        let until_close = head(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(until_close.framing, Framing::UntilClose);
        assert!(!until_close.reusable);
        assert!(
            String::from_utf8(until_close.for_caller)
                .unwrap()
                .ends_with("transfer-encoding: chunked\r\n")
        );
        let closing = head(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(!closing.reusable);
        let old = head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!old.reusable);
    }

    #[test]
    fn informational_heads_are_skipped_and_bad_ones_refused() {
        assert!(matches!(
            parse(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200", false),
            Ok(ParsedResponse::Informational(n)) if n == 40
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-", false),
            Ok(ParsedResponse::Partial)
        ));
        assert!(parse(b"HTTP/1.1 101 Switching\r\n\r\n", false).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).is_err());
        assert!(parse(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn a_status_below_100_is_refused_not_passed_on_as_a_short_status_line() {
        assert!(matches!(
            parse(b"HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n", false),
            Err(ResponseHeadError::Status(0))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 099 X\r\n\r\n", false),
            Err(ResponseHeadError::Status(99))
        ));
    }

    #[test]
    fn framing_headers_stay_even_when_connection_names_them() {
        let chunked = head(
            b"HTTP/1.1 200 OK\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert_eq!(chunked.framing, Framing::Chunked);
        assert_eq!(
            String::from_utf8(chunked.for_caller).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        );
        let length = head(
            b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok",
            false,
        );
        assert_eq!(length.framing, Framing::Length(2));
        assert_eq!(
            String::from_utf8(length.for_caller).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        );
    }

    #[test]
    fn a_content_length_is_digits_only() {
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false),
            Err(ResponseHeadError::Length)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            Ok(ParsedResponse::Head(_))
        ));
    }
}
