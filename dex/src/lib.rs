//! RFC 8693 token exchange against Dex, shared by the sidecar (real exchanges) and the controller
//! (probe exchanges and discovery checks).
