//! A process whose jsonwebtoken `CryptoProvider` is not ims-action's: signing refuses with a 500
//! that says why, instead of signing with a provider that may not be constant time, and nothing
//! panics. Its own test binary, because the provider is process-wide.

mod common;

use common::*;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::json;

fn refuse_signing(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::Provider("a library user's provider".into()).into())
}

fn refuse_verifying(_: &Algorithm, _: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Err(ErrorKind::Provider("a library user's provider".into()).into())
}

static FOREIGN: CryptoProvider = CryptoProvider {
    signer_factory: refuse_signing,
    verifier_factory: refuse_verifying,
    key_utils: KeyUtils::new_unimplemented(),
};

#[test]
fn another_provider_installed_first_is_an_error_not_a_panic() {
    FOREIGN.install_default().unwrap();
    let w = World::new();
    let params = with(
        w.jwt(),
        json!({
            "OPERATION": "analytics-report",
            "ANALYTICS_COMPANY_ID": w.env["ANALYTICS_COMPANY_ID"],
            "ANALYTICS_RSID": w.env["ANALYTICS_RSID"],
        }),
    );
    let action = w.action();
    for _ in 0..2 {
        let r = w.call(&action, params.clone());
        assert_eq!(status(&r), 500, "{r}");
        let msg = message(&r);
        assert!(
            msg.contains("another jsonwebtoken CryptoProvider is installed"),
            "{msg}"
        );
    }
    assert_eq!(w.emu.request_count("/ims/exchange/jwt"), 0);
}
