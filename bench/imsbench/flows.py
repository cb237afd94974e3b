"""The two credential flows measured, and the params both sides get for them."""
from __future__ import annotations

S2S_KEYS = ["OAUTHS2S_CLIENT_ID", "OAUTHS2S_CLIENT_SECRET", "OAUTHS2S_CECREDENTIALS_METASCOPES",
            "IMS_ORG_ID", "IMS_BASE_URL", "AEM_DATA_SERVICE_BASE_URL"]
JWT_KEYS = ["JWT_CLIENT_ID", "JWT_CLIENT_SECRET", "JWT_TECHNICAL_ACCOUNT_ID", "JWT_IMS_ORG",
            "JWT_METASCOPES", "JWT_PRIVATE_KEY", "IMS_BASE_URL", "ANALYTICS_BASE_URL",
            "ANALYTICS_COMPANY_ID", "ANALYTICS_RSID"]

FLOWS = {
    "s2s": {"title": "OAuth S2S → AEM Data Service quota", "short": "OAuth S2S → AEM",
            "keys": S2S_KEYS, "operation": "aem-quota", "action": "oauth-s2s-aem"},
    "jwt": {"title": "JWT (Service Account) → Analytics report", "short": "JWT → Analytics",
            "keys": JWT_KEYS, "operation": "analytics-report", "action": "jwt-analytics"},
}


class MissingInput(Exception):
    pass


def flow_params(env: dict, flow: dict, **overrides: str) -> dict:
    """The flow's keys from the emulator's .env (base URLs replaceable), plus OPERATION."""
    missing = [k for k in flow["keys"] if k not in env]
    if missing:
        raise MissingInput(f"emulator .env lacks {', '.join(missing)}")
    params = {k: env[k] for k in flow["keys"]}
    params.update({k: v for k, v in overrides.items() if k in params})
    if "JWT_METASCOPES" in params:
        params["JWT_METASCOPES"] = jwt_auth_metascopes(params["JWT_METASCOPES"])
    params["OPERATION"] = flow["operation"]
    return params


def jwt_auth_metascopes(value: str) -> str:
    """@adobe/jwt-auth passes a metascope through verbatim only if it contains 'https'; any other
    entry gets '{ims}/s/' prefixed. The emulator's full-URL metascopes are http://127.0.0.1:PORT/s/X,
    which jwt-auth would double-prefix (and IMS reject), so both sides get the bare name X instead:
    the same claims the https form yields against real IMS. Entries already bare or https stay."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if item.startswith("http://") and "/s/" in item:
            item = item.rsplit("/s/", 1)[1]
        out.append(item)
    return ",".join(out)


def result_ok(result) -> bool:
    """An activation result that succeeded: a JSON object without `error`, statusCode 2xx."""
    if not isinstance(result, dict) or "error" in result:
        return False
    code = result.get("statusCode")
    return code is None or (isinstance(code, int) and 200 <= code < 300)
