//! ims-action: an Apache OpenWhisk / Adobe App Builder action that turns Adobe server-to-server
//! credentials into an IMS access token and calls an Adobe API with it.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod credentials;
pub mod error;
pub mod token;

#[cfg(feature = "emulator")]
pub mod emulator;

pub use error::{Error, Service};

/// The OpenWhisk action.
pub fn main(params: serde_json::Value) -> serde_json::Value {
    let _ = params;
    serde_json::json!({})
}
