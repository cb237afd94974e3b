//! Access tokens: fetching them from IMS and caching them.

pub mod jwt;
