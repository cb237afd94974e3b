//! Credentials: parsing and checking what the caller gave, before any network call.

pub mod cert;
pub mod private_key;
