//! The HTTP/1.1 fast path of the proxy: for the common request (HTTP/1.1 to a proxied path, no upgrade)
//! the caller's head is parsed once with `httparse`, rewritten into the app's head in one buffer and
//! written to a kept-alive connection to the app with one write; bodies pass through as they arrive,
//! framing included. This does what hyper's server and client did for such requests without their
//! general machinery (header maps, per-connection tasks, body channels), which was most of the
//! sidecar's CPU per request. Everything else goes to hyper's server ([`serve::Outcome::Handoff`]), and
//! both paths decide with [`crate::proxy::decide`].

pub(crate) mod framing;
pub(crate) mod reply;
pub(crate) mod request_head;
pub(crate) mod response_head;
pub(crate) mod rewind;
pub(crate) mod serve;
pub(crate) mod upstream;
