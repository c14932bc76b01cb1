//! The OpenAPI document against the real server.
//!
//! * The document and the Swagger UI page are served by polo itself, the
//!   page's scripts and styles from the same origin, so it works offline and
//!   under the front door's Content-Security-Policy.
//! * schemathesis (pinned in `.ci/requirements.txt`, found through
//!   `$POLO_PYTHON`) generates requests for every operation from the
//!   document and checks the answers against it: no 5xx, statuses, content
//!   types, headers and bodies as documented, invalid input refused, valid
//!   input accepted, authentication enforced. Without the interpreter the
//!   test says SKIPPED, unless `POLO_REQUIRE_SERVICES` is set (CI).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{http, polo, serve};
use serde_json::Value;

const PASSWORD: &str = "a long password";

fn add_admin(data: &std::path::Path, name: &str) {
    let mut child = polo(data)
        .args(["user", "add", name, "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_document_and_the_docs_page_are_served_by_polo() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let spec = http(&server.addr, "GET", "/api/openapi.json", &[], b"");
    assert_eq!(spec.status, 200, "{}", spec.body);
    let spec: Value = spec.json();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    for scheme in ["bearer", "basic", "session", "csrf"] {
        assert!(spec["components"]["securitySchemes"][scheme].is_object(), "no {scheme} scheme");
    }
    let codes = &spec["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(
        codes.as_array().is_some_and(|c| {
            c.len() == 13
                && c.contains(&Value::from("exposure_disabled"))
                && c.contains(&Value::from("two_factor_required"))
        }),
        "{codes}"
    );

    // `/api/docs` redirects to the page; the page loads only same-origin assets, under the CSP.
    let redirect = http(&server.addr, "GET", "/api/docs", &[], b"");
    assert_eq!((redirect.status, redirect.header("location")), (303, Some("/api/docs/")));
    let page = http(&server.addr, "GET", "/api/docs/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let csp = page.header("content-security-policy").expect("the page gets the CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(!page.body.contains("://"), "no external URL in the page: {}", page.body);
    assert!(!page.body.contains("<script>") && !page.body.contains("<style"), "no inline script or style");
    for asset in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-initializer.js", "swagger-ui.css"]
    {
        assert!(page.body.contains(asset), "the page loads {asset}");
        let r = http(&server.addr, "GET", &format!("/api/docs/{asset}"), &[], b"");
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 100, "{asset} is served from the binary");
    }
    let init = http(&server.addr, "GET", "/api/docs/swagger-initializer.js", &[], b"");
    assert!(init.body.contains("\"/api/openapi.json\""), "the page loads polo's document: {}", init.body);
    let missing = http(&server.addr, "GET", "/api/docs/nothing.js", &[], b"");
    assert_eq!((missing.status, missing.json()["code"].as_str()), (404, Some("not_found")));
}

/// The interpreter with schemathesis, or why there is none.
fn schemathesis_python() -> Result<String, String> {
    let python = std::env::var("POLO_PYTHON").map_err(|_| "POLO_PYTHON is not set".to_owned())?;
    let probe = Command::new(&python)
        .args(["-c", "import schemathesis; print(schemathesis.__version__)"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!("{python} has no schemathesis: {}", String::from_utf8_lossy(&probe.stderr)));
    }
    Ok(python)
}

/// schemathesis' settings: every check is on by default (`--checks all` would also override the
/// per-operation exceptions below, which exist where the protocol, not the server, decides).
/// `{session}` and `{csrf}` are filled in: naming the security schemes lets the `ignored_auth`
/// check remove or spoil exactly those credentials.
const SCHEMATHESIS_CONFIG: &str = r#"
[auth.openapi.session]
api_key = "{session}"
[auth.openapi.csrf]
api_key = "{csrf}"

# Links between operations come from the schema alone. Inferring them from the URLs responses
# carry (location headers, body URLs) pairs the import jobs' `id` with `GET /api/v1/me/2fa`, which
# takes no parameter (its last segment starts with a digit, like an id), and schemathesis then
# refuses the link it made.
[phases.stateful.inference]
algorithms = ["dependency-analysis"]

# Logging out would end the session this run authenticates with; the matrix test covers it.
[[operations]]
include-name = "DELETE /api/v1/session"
enabled = false

# The tracker protocols accept what they cannot use with a 2xx and count it (the apps would
# resend a refused message forever), and refuse fixes older than 1985 or in the future, which
# no schema can say: neither "invalid is refused" nor "valid is accepted" holds for them.
[[operations]]
include-tag = "ingest"
checks.negative_data_rejection.enabled = false
checks.positive_data_acceptance.enabled = false

# Constraints between parameters that JSON Schema cannot state: `from` <= `to`, a bounding box's
# south <= north, cursors the server issued, calendar dates (no 2024-02-30), device names the
# caller has and tile numbers below 2^z. Such requests are refused with 400 (404 for devices).
[[operations]]
include-name = ["GET /api/v1/points", "GET /api/v1/export", "GET /api/v1/intervals", "GET /api/v1/timeline/day",
                "GET /api/v1/timeline/entries", "GET /api/v1/timeline/trips", "GET /api/v1/stats",
                "GET /api/v1/map/overview", "GET /api/v1/map/heatmap/{z}/{x}/{y}", "GET /api/v1/map/fog/{z}/{x}/{y}",
                "GET /api/v1/together", "GET /api/v1/together/{friend}"]
checks.positive_data_acceptance.enabled = false

# Endless answers (Server-Sent Events, and the stream's WebSocket): a request never completes, so
# there is nothing to check but the head, which the authorisation matrix, tests/sharing.rs and
# tests/webhooks/streams.rs do (`GET /api/v1/live` answers JSON unless asked for an event stream,
# which a generated request may do; the matrix and streams.rs check its JSON answer).
[[operations]]
include-name = ["GET /api/v1/live", "GET /api/v1/public/shares/{token}/live", "GET /api/v1/stream"]
enabled = false

# Share links and friends name things that must exist (a token polo issued, a user), shares have
# constraints between members (`from` before `to`, one of `expires_in_s`/`expires_at`, a future
# expiry) and tile URLs need their placeholders; such requests get 400 or 404 with the reason.
[[operations]]
include-name = ["POST /api/v1/shares", "GET /api/v1/public/shares/{token}", "GET /api/v1/public/shares/{token}/points",
                "GET /api/v1/public/shares/{token}/timeline", "GET /api/v1/public/shares/{token}/track",
                "POST /api/v1/friends", "DELETE /api/v1/friends/{user}", "PUT /api/v1/admin/settings"]
checks.positive_data_acceptance.enabled = false

# Edits name things the caller must have (a leg at that instant, a place id) and settings have
# ranges between fields (a positive radius, a night window) that the schema does not spell out;
# such requests get 400 or 404 with the reason.
[[operations]]
include-name = ["PUT /api/v1/timeline/legs/mode", "PUT /api/v1/timeline/settings", "PATCH /api/v1/places/{id}",
                "POST /api/v1/places/{id}/merge", "PUT /api/v1/points/flag"]
checks.positive_data_acceptance.enabled = false

# Deleting and editing: members that exclude each other (`everything` with a range, `deleted` with
# new times), a visit that must exist at `start`, `from` before `to`; retention counts are whole
# numbers (a JSON 1638.0 is refused as not one). Such requests get 400, 404 or 422 with the reason.
[[operations]]
include-name = ["POST /api/v1/points/delete", "POST /api/v1/points/restore", "PUT /api/v1/timeline/visits",
                "PUT /api/v1/retention"]
checks.positive_data_acceptance.enabled = false

# Deleting an account needs the current password (403 without it), a user that exists (404), and
# never deletes the only administrator (409): the run's own admin survives every request.
[[operations]]
include-name = ["POST /api/v1/me/delete", "DELETE /api/v1/users/{name}"]
checks.positive_data_acceptance.enabled = false

# Exposure (the run's user is the health authority, and the feature is on when the run starts):
# cases, contacts and decisions name things that must exist (a user, a case id, a pending proposal),
# an infectious period has constraints between members (`from` before `to`, at most 60 days, not in
# the future), a role names a user, and the run's own PUT /api/v1/admin/exposure may turn the feature
# off, after which every exposure route answers 404 `exposure_disabled`. Such requests get 400, 404
# or 409 with the reason.
[[operations]]
include-tag = "exposure"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-name = "PUT /api/v1/users/{name}/role"
checks.positive_data_acceptance.enabled = false

# Passkeys: the options answer 400 to a client that reached polo by an IP address, as this run
# does (browsers refuse IP addresses as a passkey's site), and registering or signing in needs an
# authenticator's signed answer to a challenge polo gave; anything else is refused with 400, 401
# or 403 and the reason (web_e2e.rs drives the real ceremonies in Chromium).
[[operations]]
include-name = ["POST /api/v1/me/passkeys/options", "POST /api/v1/me/passkeys", "POST /api/v1/session/passkey/options",
                "POST /api/v1/session/passkey"]
checks.positive_data_acceptance.enabled = false

# Zones and webhooks: a position's latitude and longitude ranges inside a `[lat, lon]` pair, a
# polygon with no area or wider than 50 km, a name of blanks, a URL without a host or of another
# scheme, and the per-user limits (1,000 zones, 20 subscriptions) are refused with 400 and the field;
# so is a friend-nearby leave distance that is not more than the enter distance. Switching a
# webhook off or on names a subscription that must exist (404 otherwise).
[[operations]]
include-name = ["POST /api/v1/zones", "PUT /api/v1/zones/{id}", "POST /api/v1/webhooks", "PUT /api/v1/nearby",
                "PATCH /api/v1/webhooks/{id}"]
checks.positive_data_acceptance.enabled = false

# Reviewing photo positions: `from` before `to`, a cursor (`after`) the server issued, and a batch
# names either photo ids or a filter, not both or neither, with ids of the caller's own photos (a list
# naming none of them is a 404); such requests get 400 or 404 with the reason.
[[operations]]
include-name = ["GET /api/v1/photos/proposals", "POST /api/v1/photos/proposals/apply",
                "POST /api/v1/photos/proposals/undo"]
checks.positive_data_acceptance.enabled = false
"#;

#[test]
fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let python = match schemathesis_python() {
        Ok(python) => python,
        Err(why) if std::env::var_os("POLO_REQUIRE_SERVICES").is_some() => {
            panic!("POLO_REQUIRE_SERVICES is set but schemathesis is unavailable: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: schemathesis run ({why}; .ci/run installs it from .ci/requirements.txt)");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_admin(&data, "fuzz");
    let role = polo(&data).args(["user", "role", "fuzz", "health-authority"]).output().unwrap();
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    // `ignored_auth` sends wrong credentials to every operation on purpose: without a higher
    // threshold the back-off would answer 429 from the sixth on.
    let server = serve(&data, &["--access-log", "off", "--auth-free-failures", "1000000"]);
    // A web session: password-grade, so the admin and token-minting routes are reachable.
    let login = format!(r#"{{"username":"fuzz","password":"{PASSWORD}"}}"#);
    let r = http(&server.addr, "POST", "/api/v1/session", &[("Content-Type", "application/json")], login.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let set_cookie = r.header("set-cookie").unwrap();
    let session = set_cookie.split(';').next().unwrap().trim_start_matches("polo_session=").to_owned();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_owned();
    // Exposure checks on, so that their routes answer more than `exposure_disabled`.
    let cookie = format!("polo_session={session}");
    let headers = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str()), ("Content-Type", "application/json")];
    let on = http(&server.addr, "PUT", "/api/v1/admin/exposure", &headers, br#"{"enabled":true}"#);
    assert_eq!(on.status, 200, "{}", on.body);
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, SCHEMATHESIS_CONFIG.replace("{session}", &session).replace("{csrf}", &csrf)).unwrap();
    let examples = std::env::var("POLO_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "30".to_owned());

    let output = Command::new(&python)
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(&config)
        .arg("run")
        .arg(format!("http://{}/api/openapi.json", server.addr))
        // One worker: hypothesis' lambda introspection is not thread-safe on Python 3.11.
        .args(["--max-examples", &examples, "--seed", "20240501", "--workers", "1", "--request-timeout", "20"])
        .args(["--suppress-health-check", "too_slow,filter_too_much"])
        .arg("--report-dir")
        .arg(dir.path().join("report"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found problems (see above)");
    // Every operation but logging out and the three event streams was tested.
    let spec = http(&server.addr, "GET", "/api/openapi.json", &[], b"").json();
    let operations: usize =
        spec["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert!(stdout.contains(&format!("Tested: {}", operations - 4)), "not every operation was tested");
}
