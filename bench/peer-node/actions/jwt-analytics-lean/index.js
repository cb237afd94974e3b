// Adobe's sample action "Generate JWT access token in App Builder action" (Experience League,
// AEM as a Cloud Service > App Builder, KT-11743, 2023-01-17), kept as published except for
// the lines marked
// "BENCH:" -- the published bugs fixed (accessToken destructured from a field jwt-auth does not
// return, then redeclared from an undefined getAccessToken(); ignored input check), the
// "... An Analytics query ..." / 'example' placeholders filled in, and the base URLs made
// overridable (jwt-auth's documented `ims` option) so that the action can talk to adobe-emulator.
const fetch = require("node-fetch");
const { Core } = require("../lean-core"); // BENCH(lean): Core.Logger without @adobe/aio-sdk
const { errorResponse, stringParameters, checkMissingRequestInputs } = require("../utils");
const auth = require("@adobe/jwt-auth");

async function main(params) {
  const logger = Core.Logger("main", { level: params.LOG_LEVEL || "info" });

  try {
    // Perform any necessary input error checking
    const systemErrorMessage = checkMissingRequestInputs(params, [
            "JWT_CLIENT_ID", "JWT_TECHNICAL_ACCOUNT_ID", "JWT_IMS_ORG", "JWT_CLIENT_SECRET", "JWT_METASCOPES", "JWT_PRIVATE_KEY"], []);
    // BENCH: the published sample computes the message and ignores it.
    if (systemErrorMessage) { return errorResponse(400, systemErrorMessage, logger); }

    // BENCH: base URLs overridable (defaults are the published ones); placeholders filled in.
    const IMS_BASE_URL = params.IMS_BASE_URL || 'https://ims-na1.adobelogin.com';
    const ANALYTICS_BASE_URL = params.ANALYTICS_BASE_URL || 'https://analytics.adobe.io';
    const companyId = params.ANALYTICS_COMPANY_ID || 'example';

    // Split the metascopes into an array (they are comma delimited in the .env file)
    const metascopes = params.JWT_METASCOPES?.split(',') || [];

    // Base64 decode the private key value
    const privateKey = Buffer.from(params.JWT_PRIVATE_KEY, 'base64').toString('utf-8');

    // Exchange the JWT credentials for an 24-hour Access Token
    // BENCH: jwt-auth resolves { access_token, ... }; the published `let { accessToken }` is undefined.
    let { access_token: accessToken } = await auth({
      clientId: params.JWT_CLIENT_ID,                          // Client Id
      technicalAccountId: params.JWT_TECHNICAL_ACCOUNT_ID,     // Technical Account Id
      orgId: params.JWT_IMS_ORG,                               // Adobe IMS Org Id
      clientSecret: params.JWT_CLIENT_SECRET,                  // Client Secret
      metaScopes: metascopes,                                  // Metadcopes defining level of access the access token should provide
      privateKey: privateKey,                                  // Private Key to sign the JWT
      ims: IMS_BASE_URL,                                       // BENCH: base URL
    });

    // The 24-hour IMS Access Token is used to call the Analytics APIs
    // Can look at caching this token for 24 hours to reduce calls
    // BENCH: removed `const accessToken = await getAccessToken(params);` (redeclaration, undefined function).

    // Invoke an exmaple Adobe API endpoint using the generated accessToken
    const res = await fetch(`${ANALYTICS_BASE_URL}/api/${companyId}/reports`, { // BENCH: base URL, company
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Proxy-Global-Company-Id": companyId, // BENCH: was 'example'
        "Authorization": `Bearer ${accessToken}`,
        "x-Api-Key": params.JWT_CLIENT_ID,
      },
      method: "POST",
      // BENCH: the published `{... An Analytics query ... }` placeholder, filled with the minimal
      // report of the Analytics 2.0 docs (visits per day over last month).
      body: JSON.stringify({
        rsid: params.ANALYTICS_RSID,
        globalFilters: [{ type: "dateRange", dateRange: "tm-1m/tm" }],
        metricContainer: { metrics: [{ columnId: "0", id: "metrics/visits" }] },
        dimension: "variables/daterangeday",
        settings: { limit: 10, page: 0 },
      }),
    });

    if (!res.ok) { throw new Error("Request to API failed with status code " + res.status);}

    // Analytics API data
    let data = await res.json();

    const response = {
      statusCode: 200,
      body: data,
    };

    return response;
  } catch (error) {
    logger.error(error);
    return errorResponse(500, "server error", logger);
  }
}

exports.main = main;
