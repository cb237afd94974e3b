//! A sealed deployment, built the way a user builds one: a wskdeploy manifest whose inputs come
//! from the demo `.env`, sealed by `ims-action seal` (the binary under test), the seal shipped
//! as `ims-action.seal.json` beside `exec` in the action's zip.

use std::collections::HashMap;
use std::process::Command;

use ims_action::runtime::config;
use serde_json::Value;

use crate::common::{World, temp_path};
use crate::invoker::{Code, action_binary, action_zip};

/// Two web actions of one package: the package binds the credentials, endpoints, the log level
/// and the callers' orgs; `aem-get` lets callers choose `AEM_PATH`.
const MANIFEST: &str = "\
packages:
  ims-action:
    inputs:
      OAUTHS2S_CLIENT_ID: $OAUTHS2S_CLIENT_ID
      OAUTHS2S_CLIENT_SECRET: $OAUTHS2S_CLIENT_SECRET
      OAUTHS2S_CECREDENTIALS_METASCOPES: $OAUTHS2S_CECREDENTIALS_METASCOPES
      IMS_ORG_ID: $IMS_ORG_ID
      IMS_BASE_URL: $IMS_BASE_URL
      AEM_DATA_SERVICE_BASE_URL: $AEM_DATA_SERVICE_BASE_URL
      ANALYTICS_BASE_URL: $ANALYTICS_BASE_URL
      AEM_AUTHOR_URL: $AEM_AUTHOR_URL
      LOG_LEVEL: $IMS_ACTION_LOG_LEVEL
      ALLOWED_IMS_ORGS: $ALLOWED_IMS_ORGS
    actions:
      aem-quota:
        function: ims-action.zip
        web: true
        inputs:
          OPERATION: aem-quota
      aem-get:
        function: ims-action.zip
        web: true
        inputs:
          OPERATION: aem-get
          CALLER_INPUTS: AEM_PATH
";

pub struct Deployment {
    /// The zip: `exec` and `ims-action.seal.json`.
    pub code: Code,
    /// Each action's bound params, as the platform passes them.
    bound: HashMap<String, Value>,
}

impl Deployment {
    /// Seals the manifest for this world's emulator and credentials, with the action's log
    /// level at debug and only the demo org allowed to call.
    pub fn sealed(w: &World) -> Deployment {
        let dir = temp_path("deployment");
        std::fs::create_dir_all(&dir).expect("deployment folder");
        let manifest = dir.join("manifest.yaml");
        std::fs::write(&manifest, MANIFEST).expect("write the manifest");
        let env_file = w.env_file();
        let seal_file = dir.join("ims-action.seal.json");
        // The variables that are not in the demo `.env` come from the environment, which `seal`
        // reads first (as aio and wskdeploy do); nothing else of ours leaks in.
        let extra = [
            ("IMS_ACTION_LOG_LEVEL", "debug".to_string()),
            ("ALLOWED_IMS_ORGS", w.env["IMS_ORG_ID"].clone()),
        ];
        let out = Command::new(action_binary())
            .args(["seal", "--config"])
            .arg(&manifest)
            .arg("--env")
            .arg(&env_file)
            .arg("--out")
            .arg(&seal_file)
            .env_clear()
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("ims-action seal runs");
        assert!(
            out.status.success(),
            "ims-action seal failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seal = std::fs::read(&seal_file).expect("the seal was written");
        let code = Code::of(&action_zip(&[("ims-action.seal.json", &seal)]));

        // What wskdeploy binds: the same manifest, resolved from the same variables.
        let vars: HashMap<String, String> = (w.env.clone().into_iter())
            .chain(extra.map(|(k, v)| (k.to_string(), v)))
            .collect();
        let lookup = |name: &str| vars.get(name).cloned();
        let bound = config::actions(&manifest, &lookup)
            .expect("the manifest resolves")
            .into_iter()
            .map(|(name, inputs)| (name, Value::Object(inputs)))
            .collect();
        let _ = std::fs::remove_file(&env_file);
        let _ = std::fs::remove_dir_all(&dir);
        Deployment { code, bound }
    }

    /// The params bound to `action`.
    pub fn bound(&self, action: &str) -> Value {
        self.bound
            .get(action)
            .unwrap_or_else(|| panic!("no action {action} in the manifest"))
            .clone()
    }
}
