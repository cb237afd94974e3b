//! A complete set of throwaway credentials for `make demo`: one of each credential kind the
//! action supports, registered with an emulator and written out as a `.env` file.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use super::keys::{self, TestKey};
use super::{Emulator, JwtClient, OAuthClient};

/// Demo credentials. All values are random per run and only mean something to an emulator
/// they were [registered](DemoCredentials::register) with.
#[derive(Clone, Debug)]
pub struct DemoCredentials {
    /// The IMS org of every credential.
    pub org_id: String,
    /// The OAuth Server-to-Server credential.
    pub oauth: OAuthClient,
    /// The Service Account (JWT) credential; its key is [`Self::jwt_key`].
    pub jwt: JwtClient,
    /// The 2048-bit key of the JWT and AEM credentials.
    pub jwt_key: TestKey,
    /// The technical account behind the AEM service credentials.
    pub aem: JwtClient,
    /// The technical account's e-mail (informational, as in the real JSON).
    pub aem_email: String,
    /// Self-signed certificate of the AEM credential, PEM with `\r\n` line ends.
    pub aem_certificate_pem: String,
    /// A local development token accepted by the AEM author endpoints.
    pub dev_token: String,
    /// Analytics global company id.
    pub analytics_company_id: String,
    /// Analytics report suite id.
    pub analytics_rsid: String,
}

/// Random upper- or lower-case hex.
///
/// # Panics
/// If the OS random number generator fails.
fn random_hex(bytes: usize, upper: bool) -> String {
    let mut buf = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut buf).is_err() {
        panic!("the OS random number generator failed");
    }
    buf.iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// `\n` → `\r\n`, as the AEM Developer Console writes PEM text into its JSON.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

impl DemoCredentials {
    /// Generates a fresh set (the RSA key is generated once per process).
    ///
    /// # Panics
    /// If key generation or the OS random number generator fails.
    pub fn generate() -> DemoCredentials {
        let org_id = "DEMO0000000000000000@AdobeOrg".to_string();
        let jwt_key = keys::rsa(2048);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let certificate = keys::certificate_pem(&jwt_key, now - 60, now + 365 * 24 * 60 * 60);
        let oauth = OAuthClient {
            client_id: random_hex(16, false),
            client_secret: format!("p8e-{}", random_hex(16, false)),
            scopes: [
                "openid",
                "AdobeID",
                "read_organizations",
                "additional_info.projectedProductContext",
                "additional_info.roles",
            ]
            .map(String::from)
            .to_vec(),
            org_id: org_id.clone(),
        };
        let jwt = JwtClient {
            client_id: random_hex(16, false),
            client_secret: format!("p8e-{}", random_hex(16, false)),
            org_id: org_id.clone(),
            technical_account_id: format!("{}@techacct.adobe.com", random_hex(12, true)),
            metascopes: vec![
                "ent_analytics_bulk_ingest_sdk".into(),
                "ent_dataservices_sdk".into(),
            ],
            public_key_der: jwt_key.public_der.clone(),
        };
        let aem = JwtClient {
            client_id: "cm-p12345-e67890-integration".into(),
            client_secret: format!("p8e-{}", random_hex(16, false)),
            org_id: org_id.clone(),
            technical_account_id: format!("{}@techacct.adobe.com", random_hex(12, true)),
            metascopes: vec!["ent_aem_cloud_api".into()],
            public_key_der: jwt_key.public_der.clone(),
        };
        let dev_token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","x5u":"ims_na1-key-at-1.cer"}"#),
            URL_SAFE_NO_PAD.encode(
                json!({"type": "access_token", "as": "ims-na1", "id": random_hex(16, false)}).to_string()
            ),
            URL_SAFE_NO_PAD.encode(random_hex(64, false)),
        );
        DemoCredentials {
            org_id,
            oauth,
            jwt,
            aem_email: format!("{}@techacct.adobe.com", random_hex(16, false)),
            aem_certificate_pem: crlf(&certificate),
            jwt_key,
            aem,
            dev_token,
            analytics_company_id: "demoorg0".into(),
            analytics_rsid: "demo.rsid".into(),
        }
    }

    /// The same credentials with the AEM certificate re-issued to expire `days` days (and one
    /// hour) from now; a negative `days` gives a certificate that has already expired. The key is
    /// unchanged, so IMS still accepts the credential: only the action's expiry check sees it.
    /// `adobe-emulator --aem-cert-days N` uses it to show the warning and error states.
    ///
    /// # Panics
    /// If certificate generation fails.
    pub fn with_aem_certificate_days(mut self, days: i64) -> DemoCredentials {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let not_after = now + days * 24 * 60 * 60 + 60 * 60;
        let not_before = (now - 60).min(not_after - 365 * 24 * 60 * 60);
        self.aem_certificate_pem = crlf(&keys::certificate_pem(&self.jwt_key, not_before, not_after));
        self
    }

    /// Registers every credential with `emulator`.
    pub fn register(&self, emulator: &Emulator) {
        emulator.add_oauth_client(self.oauth.clone());
        emulator.add_jwt_client(self.jwt.clone());
        emulator.add_jwt_client(self.aem.clone());
        emulator.add_dev_token(&self.dev_token);
    }

    /// The AEM service-credentials JSON, as the AEM Developer Console downloads it, with
    /// `imsEndpoint` pointing at `emulator` (as an `http://` URL so the demo works without TLS).
    pub fn aem_service_credentials(&self, emulator: &Emulator) -> serde_json::Value {
        json!({
            "ok": true,
            "integration": {
                "imsEndpoint": emulator.base_url(),
                "metascopes": self.aem.metascopes.join(","),
                "technicalAccount": {
                    "clientId": self.aem.client_id,
                    "clientSecret": self.aem.client_secret,
                },
                "email": self.aem_email,
                "id": self.aem.technical_account_id,
                "org": self.aem.org_id,
                "privateKey": crlf(&self.jwt_key.pkcs1_pem),
                "publicKey": self.aem_certificate_pem,
            },
            "statusCode": 200,
        })
    }

    /// The `.env` text for the action, pointing every service at `emulator`.
    pub fn to_env(&self, emulator: &Emulator) -> String {
        let base = emulator.base_url();
        let metascopes = format!(
            "{},{base}/s/{}",
            self.jwt.metascopes[0],
            self.jwt.metascopes[1..].join(&format!(",{base}/s/"))
        );
        let vars: Vec<(&str, String)> = vec![
            ("OAUTHS2S_CLIENT_ID", self.oauth.client_id.clone()),
            ("OAUTHS2S_CLIENT_SECRET", self.oauth.client_secret.clone()),
            (
                "OAUTHS2S_CECREDENTIALS_METASCOPES",
                self.oauth.scopes[..4].join(","),
            ),
            ("IMS_ORG_ID", self.org_id.clone()),
            ("JWT_CLIENT_ID", self.jwt.client_id.clone()),
            ("JWT_CLIENT_SECRET", self.jwt.client_secret.clone()),
            ("JWT_TECHNICAL_ACCOUNT_ID", self.jwt.technical_account_id.clone()),
            ("JWT_IMS_ORG", self.jwt.org_id.clone()),
            ("JWT_METASCOPES", metascopes),
            ("JWT_PRIVATE_KEY", STANDARD.encode(&self.jwt_key.pkcs8_pem)),
            (
                "AEM_SERVICE_CREDENTIALS",
                STANDARD.encode(self.aem_service_credentials(emulator).to_string()),
            ),
            ("AEM_DEV_TOKEN", self.dev_token.clone()),
            ("ANALYTICS_COMPANY_ID", self.analytics_company_id.clone()),
            ("ANALYTICS_RSID", self.analytics_rsid.clone()),
            ("IMS_BASE_URL", base.clone()),
            ("AEM_DATA_SERVICE_BASE_URL", base.clone()),
            ("ANALYTICS_BASE_URL", base.clone()),
            ("AEM_AUTHOR_URL", base.clone()),
            ("IMS_ACTION_ALLOW_HOSTS", emulator.host_port()),
        ];
        let mut out = String::from(
            "# Throwaway demo credentials for the local adobe-emulator (generated by\n\
             # `adobe-emulator --env-file`). They are random, work only against the emulator\n\
             # instance that wrote them, and are worthless anywhere else.\n",
        );
        out.push_str(&format!("# Emulator: {base}\n"));
        for (name, value) in vars {
            out.push_str(&format!("{name}={value}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn demo_env_is_complete() {
        let emulator = Emulator::start().unwrap();
        let demo = DemoCredentials::generate();
        demo.register(&emulator);
        let env = demo.to_env(&emulator);
        for name in [
            "OAUTHS2S_CLIENT_ID=",
            "JWT_PRIVATE_KEY=",
            "AEM_SERVICE_CREDENTIALS=",
            "IMS_ACTION_ALLOW_HOSTS=127.0.0.1:",
            "ANALYTICS_COMPANY_ID=demoorg0",
            "ANALYTICS_RSID=demo.rsid",
            "IMS_ORG_ID=DEMO0000000000000000@AdobeOrg",
        ] {
            assert!(env.contains(name), "{name} missing");
        }
        let scopes_line = env.lines().find(|l| l.starts_with("JWT_METASCOPES=")).unwrap();
        assert_eq!(
            scopes_line,
            format!(
                "JWT_METASCOPES=ent_analytics_bulk_ingest_sdk,{}/s/ent_dataservices_sdk",
                emulator.base_url()
            )
        );
        let aem = demo.aem_service_credentials(&emulator);
        let integration = &aem["integration"];
        let key = integration["privateKey"].as_str().unwrap();
        assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----\r\n"));
        assert!(!key.replace("\r\n", "").contains('\n'));
        let cert = integration["publicKey"].as_str().unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\r\n"));
        assert_eq!(integration["imsEndpoint"].as_str().unwrap(), emulator.base_url());

        // The AEM technical account can exchange a JWT built from the JSON, as aemcs-lib does.
        let base = emulator.base_url();
        let claims = json!({
            "exp": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() + 8 * 3600,
            "iss": integration["org"],
            "sub": integration["id"],
            "aud": format!("{base}/c/{}", integration["technicalAccount"]["clientId"].as_str().unwrap()),
            format!("{base}/s/ent_aem_cloud_api"): true,
        });
        let jwt = crate::ims::tests::sign(&claims, &demo.jwt_key);
        let claims_back = crate::ims::verify_jwt(&jwt, &demo.aem, emulator.state.now_ms()).unwrap();
        assert_eq!(claims_back, claims);
    }
}
