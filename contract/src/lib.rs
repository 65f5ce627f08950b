//! The contract between the two binaries: everything the platform and a tenant runtime must
//! agree on, written once so neither side can drift from the other.
//!
//! - [`files`]: the kinds of file a site is made of and the types they are served as.
//! - [`identity`]: the header the platform signs each relayed request with, and its check.
//! - [`preview`]: the short-lived read-only capability in a preview's URL, and its check.
//! - [`runtime`]: how the platform starts a runtime (environment variable names, the port
//!   it listens on, the data mount) and the paths it probes (health, usage).
//! - [`UsageReport`]: what the runtime answers at [`runtime::USAGE_PATH`].
//! - [`labels`]: the label keys on every container and volume the platform makes.
//! - [`ErrorBody`]: the JSON shape of every error either binary answers.
//!
//! It holds facts and small pure functions only: no I/O, no HTTP framework, nothing that
//! logs. A change here is a change of the wire between the platform and runtimes already
//! running, so keep it backwards compatible or version it (as the identity header is).

pub mod files;
pub mod identity;
pub mod labels;
pub mod preview;
pub mod runtime;

mod error;
mod usage;

pub use error::{ErrorBody, ErrorDetail, sentence};
pub use usage::UsageReport;
