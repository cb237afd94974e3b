// Adobe's OAuth S2S sample (../oauth-s2s-aem) as a careful author would write it for warm
// containers, the fair Node peer of ims-action's actionloop:
//   - the access token is cached in the container for 5 minutes, keyed by the credentials and
//     the IMS host: what @adobe/aio-lib-core-auth's generateAccessToken gives (a 5-minute
//     TTLCache keyed by client id, secret, org, scopes and IMS environment); that library itself
//     cannot be pointed at the emulator (its IMS hosts are fixed) and calls /ims/token/v2, so the
//     same logic is written out here against the sample's /ims/token/v3;
//   - requests go through Node's built-in fetch (undici), which keeps connections alive, as
//     aio-lib-core-auth's does;
//   - a 401 from the API drops the cached token and retries once with a fresh one;
//   - no @adobe/aio-sdk load: a console logger (../lean-core.js).
// Same inputs, same requests, same result as the sample.
const crypto = require("crypto");
const { Core } = require("../lean-core");
const { errorResponse, checkMissingRequestInputs } = require("../utils");

const TOKEN_TTL_MS = 5 * 60 * 1000;
const tokens = new Map(); // cache key -> { token, expires }

function cacheKey(params, imsBaseUrl) {
  return crypto.createHash("sha1")
    .update([params.OAUTHS2S_CLIENT_ID, params.OAUTHS2S_CLIENT_SECRET, params.IMS_ORG_ID,
      params.OAUTHS2S_CECREDENTIALS_METASCOPES, imsBaseUrl].join(":"))
    .digest("hex");
}

async function fetchToken(params, imsBaseUrl) {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: params.OAUTHS2S_CLIENT_ID,
    client_secret: params.OAUTHS2S_CLIENT_SECRET,
    scope: params.OAUTHS2S_CECREDENTIALS_METASCOPES,
  });
  const res = await fetch(`${imsBaseUrl}/ims/token/v3`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: body.toString(),
  });
  const json = await res.json();
  if (!res.ok || !json.access_token) {
    throw new Error(`IMS token request failed with status ${res.status}`);
  }
  return json.access_token;
}

async function getToken(params, imsBaseUrl, fresh) {
  const key = cacheKey(params, imsBaseUrl);
  const hit = tokens.get(key);
  if (!fresh && hit && hit.expires > Date.now()) return hit.token;
  const token = await fetchToken(params, imsBaseUrl);
  tokens.set(key, { token, expires: Date.now() + TOKEN_TTL_MS });
  return token;
}

async function main(params) {
  const logger = Core.Logger("main", { level: params.LOG_LEVEL || "info" });
  try {
    const missing = checkMissingRequestInputs(params, ["OAUTHS2S_CLIENT_ID", "OAUTHS2S_CLIENT_SECRET", "OAUTHS2S_CECREDENTIALS_METASCOPES"], []);
    if (missing) { return errorResponse(400, missing, logger); }
    const IMS_ORG_ID = params.IMS_ORG_ID;
    const IMS_BASE_URL = params.IMS_BASE_URL || "https://ims-na1.adobelogin.com";
    const AEM_DATA_SERVICE_BASE_URL = params.AEM_DATA_SERVICE_BASE_URL || "https://api.adobeaemcloud.com";
    const url = `${AEM_DATA_SERVICE_BASE_URL}/adobe/stats/statistics/contentRequestsQuota?imsOrgId=${IMS_ORG_ID}&current=true`;
    const call = async (token) => fetch(url, {
      headers: {
        "X-Adobe-Accept-Experimental": "1",
        "x-gw-ims-org-id": IMS_ORG_ID,
        "X-Api-Key": params.OAUTHS2S_CLIENT_ID,
        Authorization: `Bearer ${token}`,
      },
      method: "GET",
    });
    let res = await call(await getToken(params, IMS_BASE_URL, false));
    if (res.status === 401) {
      await res.arrayBuffer();
      res = await call(await getToken(params, IMS_BASE_URL, true));
    }
    if (!res.ok) { throw new Error("Request to API failed with status code " + res.status); }
    return { statusCode: 200, body: await res.json() };
  } catch (error) {
    logger.error(error);
    return errorResponse(500, "server error", logger);
  }
}

exports.main = main;
