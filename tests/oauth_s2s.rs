//! OAuth server-to-server → AEM Data Service, end to end against the emulator.
#![cfg(feature = "emulator")]

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_good_credential_gets_the_quota() {
    let w = World::new();
    let r = w.call(&w.action(), w.oauth());
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(r["headers"]["content-type"], "application/json");
    assert_eq!(r["body"]["filters"]["imsOrgId"], w.env["IMS_ORG_ID"].as_str());
    assert!(r["body"]["data"]["contentRequestsQuota"].is_object(), "{r}");
    assert_eq!(w.emu.tokens_issued(&w.env["OAUTHS2S_CLIENT_ID"]), 1);
}

#[test]
fn ims_receives_exactly_the_documented_form() {
    let w = World::new();
    let secret = w.env["OAUTHS2S_CLIENT_SECRET"].clone();
    let r = w.call(&w.action(), with(w.oauth(), json!({"OAUTHS2S_CECREDENTIALS_METASCOPES": " AdobeID , openid,read_organizations "})));
    assert_eq!(status(&r), 200, "{r}");
    let reqs = w.emu.requests("/ims/token/v3");
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = req.form();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["grant_type", "client_id", "client_secret", "scope"]);
    assert_eq!(form[0].1, "client_credentials");
    assert_eq!(form[2].1, secret);
    assert_eq!(form[3].1, "AdobeID,openid,read_organizations");
    // Every field is percent-encoded: the comma travels as %2C.
    let raw = String::from_utf8_lossy(&req.body);
    assert!(raw.contains("scope=AdobeID%2Copenid%2Cread_organizations"), "{raw}");
}
