//! Tokens kept for their whole life: in this process ([`cache`]: memory, and a private file in
//! one-shot mode) and shared between containers ([`store`]: Redis or Adobe I/O State, sealed,
//! single-flight). Getting a new one is each credential's own business
//! ([`crate::credentials::Credentials::fetch`]).

pub mod cache;
pub mod store;

pub use crate::access_token::AccessToken;
pub use crate::credentials::CacheKey;
pub use cache::{TokenCache, TokenTimes};
