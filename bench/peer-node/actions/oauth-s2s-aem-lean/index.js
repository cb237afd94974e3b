// Adobe's sample action "Generate server-to-server access token in App Builder action"
// (Experience League, AEM as a Cloud Service > App Builder, KT-14724, 2024-02-29), kept as
// published except for the lines marked
// "BENCH:" -- the published bugs fixed (undefined IMS_ORG_ID / access_token, ignored input
// check) and the two base URLs made overridable so that the action can talk to adobe-emulator.
const fetch = require("node-fetch");
const { Core } = require("../lean-core"); // BENCH(lean): Core.Logger without @adobe/aio-sdk
const { errorResponse, stringParameters, checkMissingRequestInputs } = require("../utils");

async function main(params) {
  const logger = Core.Logger("main", { level: params.LOG_LEVEL || "info" });

  try {
    // Perform any necessary input error checking
    const systemErrorMessage = checkMissingRequestInputs(params, ["OAUTHS2S_CLIENT_ID", "OAUTHS2S_CLIENT_SECRET", "OAUTHS2S_CECREDENTIALS_METASCOPES"], []);
    // BENCH: the published sample computes the message and ignores it.
    if (systemErrorMessage) { return errorResponse(400, systemErrorMessage, logger); }

    // BENCH: the published sample reads an undefined IMS_ORG_ID variable.
    const IMS_ORG_ID = params.IMS_ORG_ID;
    // BENCH: base URLs overridable (defaults are the published ones).
    const IMS_BASE_URL = params.IMS_BASE_URL || 'https://ims-na1.adobelogin.com';
    const AEM_DATA_SERVICE_BASE_URL = params.AEM_DATA_SERVICE_BASE_URL || 'https://api.adobeaemcloud.com';

    // The Adobe IMS token endpoint URL
    const adobeIMSV3TokenEndpointURL = `${IMS_BASE_URL}/ims/token/v3`; // BENCH: base URL

    // The POST request options
    const options = {
        method: 'POST',
        headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        },
        body: `grant_type=client_credentials&client_id=${params.OAUTHS2S_CLIENT_ID}&client_secret=${params.OAUTHS2S_CLIENT_SECRET}&scope=${params.OAUTHS2S_CECREDENTIALS_METASCOPES}`,
    };

    // Make a POST request to the Adobe IMS token endpoint to get the access token
    const tokenResponse = await fetch(adobeIMSV3TokenEndpointURL, options);
    const tokenResponseJSON = await tokenResponse.json();

    // The 24-hour IMS Access Token is used to call the AEM Data Service API
    // Can look at caching this token for 24 hours to reduce calls
    const accessToken = tokenResponseJSON.access_token;

    // Invoke an AEM Data Service API using the access token
    const aemDataResponse = await fetch(`${AEM_DATA_SERVICE_BASE_URL}/adobe/stats/statistics/contentRequestsQuota?imsOrgId=${IMS_ORG_ID}&current=true`, { // BENCH: base URL
      headers: {
        'X-Adobe-Accept-Experimental': '1',
        'x-gw-ims-org-id': IMS_ORG_ID,
        'X-Api-Key': params.OAUTHS2S_CLIENT_ID,
        Authorization: `Bearer ${accessToken}`, // The 24-hour IMS Access Token  // BENCH: was the undefined access_token
      },
      method: "GET",
    });

    if (!aemDataResponse.ok) { throw new Error("Request to API failed with status code " + aemDataResponse.status);}

    // API data
    let data = await aemDataResponse.json();

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
