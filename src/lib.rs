//! ims-action: an Apache OpenWhisk / Adobe App Builder action that turns Adobe server-to-server
//! credentials into an IMS access token and calls an Adobe API with it.
//!
//! The flow reads top to bottom in [`Action::run`]: params → sealed configuration →
//! [`credentials`] → [`token`] (cached, shared) → [`api`] call → result. Modules import only
//! downwards: [`runtime`] → [`action`] → [`api`] → [`token`] → [`credentials`] → the leaves
//! (HTTP, endpoints, params, PEM/DER, time, secrets). The runtimes (actionloop, one-shot, local
//! CLI) only adapt input and output around [`main`] / [`Action::handle`].
//!
//! ```no_run
//! let result = ims_action::main(serde_json::json!({
//!     "OAUTHS2S_CLIENT_ID": "…", "OAUTHS2S_CLIENT_SECRET": "…",
//!     "OAUTHS2S_CECREDENTIALS_METASCOPES": "AdobeID,openid", "IMS_ORG_ID": "…@AdobeOrg"
//! }));
//! assert!(result.get("statusCode").is_some() || result.get("error").is_some());
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod runtime;

pub mod action;
pub mod api;
pub mod credentials;
pub mod token;

pub mod access_token;
pub mod activation;
pub mod der;
pub mod document;
pub mod endpoint;
pub mod error;
pub mod hex;
pub mod http;
pub mod logging;
pub mod params;
pub mod pem;
pub mod preconnect;
pub mod regular_file;
pub mod resolver;
pub mod retry;
pub mod scrub;
pub mod secret;
pub mod time;

use std::sync::OnceLock;

use serde_json::Value;

pub use action::Action;
pub use activation::Activation;
pub use error::{Error, Service};

/// The OpenWhisk action: params in, `{statusCode, headers, body}` or `{error: …}` out.
/// It never panics. Process-wide state (HTTP agent, token cache) is shared by every call.
pub fn main(params: Value) -> Value {
    static ACTION: OnceLock<Action> = OnceLock::new();
    ACTION
        .get_or_init(Action::from_env)
        .handle(params, &Activation::from_env())
}
