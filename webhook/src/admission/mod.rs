//! The admission reviews: what the webhook decides, independent of HTTP (the axum handlers in
//! `crate::routes` parse the body, call a decision here and write its answer).
//!
//! - `review`: decoding an AdmissionReview body into the request fields the webhook uses
//!   (`review_object`: objects read without their managedFields; `review_pod`: pods read with only
//!   what injection reads);
//! - `answer`: the AdmissionReview answer (allowed, denied, JSON Patch, warnings);
//! - `mcpservers`: the MCPServer validation and defaulting reviews;
//! - `pods`: the pod injection review;
//! - `credentials_access`: the SubjectAccessReview check that an MCPServer's author may read the
//!   credentials Secret it names;
//! - `span`: the tracing span every review runs in.

mod answer;
pub(crate) mod credentials_access;
pub(crate) mod mcpservers;
pub(crate) mod pods;
mod review;
pub(crate) mod review_object;
pub(crate) mod review_pod;
pub(crate) mod span;

pub(crate) use answer::AdmissionAnswer;
pub use credentials_access::SAR_TIMEOUT;
pub(crate) use review::{AdmissionRequest, MalformedReview, parse_pod_request, parse_request};
