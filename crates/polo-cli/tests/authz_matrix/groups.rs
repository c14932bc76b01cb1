//! The groups' rows of the matrix, and the groups' own matrix.
//!
//! In the main matrix the owner made the group (and is its admin), so
//! another user and the administrator are outsiders: every group route is
//! 404 for them, as if the group did not exist. [`group_routes_by_standing`]
//! plays the callers a group has besides: a plain member, a member made
//! admin, the maker, and outsiders, on a fresh group per cell, so each
//! cell's answer shows what that standing may do and nothing a previous
//! cell did.

use serde_json::{Value, json};

use super::common::{self, add_user, basic, http, serve};
use super::{Ctx, OWNER_LAT, PASSWORD, Request, Role, Row, json_request, no_check, only_owner_sees};

/// The user who joins the owner's groups in the main matrix.
pub(super) const MEMBER: &str = "member";

const fn outsiders_404(owner: u16) -> [u16; 5] {
    [401, 404, owner, owner, 404]
}

fn post(addr: &str, path: &str, auth: &str, body: &Value) -> common::Response {
    json_request(addr, "POST", path, auth, body)
}

/// A new group of `owner`'s named `name` (its id).
fn group_of(addr: &str, owner: &str, name: &str) -> i64 {
    let r = post(addr, "/api/v1/groups", owner, &json!({"name": name}));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_i64().unwrap()
}

/// A new invitation to group `id`, made by `admin` (its id and token).
fn invitation(addr: &str, admin: &str, id: i64, max_uses: u32) -> (i64, String) {
    let r = post(addr, &format!("/api/v1/groups/{id}/invitations"), admin, &json!({"max_uses": max_uses}));
    assert_eq!(r.status, 201, "{}", r.body);
    let body = r.json();
    assert_eq!(body["url"].as_str().unwrap(), format!("/join/{}", body["token"].as_str().unwrap()));
    (body["id"].as_i64().unwrap(), body["token"].as_str().unwrap().to_owned())
}

/// `user` joins group `id` of `admin`'s.
fn join(addr: &str, admin: &str, id: i64, user: &str) {
    let (_, token) = invitation(addr, admin, id, 1);
    let r = post(addr, &format!("/api/v1/groups/join/{token}"), user, &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["joined"], true, "{}", r.body);
}

/// A new group of the owner's with [`MEMBER`] in it, made an admin when `admin` (its id).
fn spare_group(ctx: &Ctx, admin: bool) -> i64 {
    let id = group_of(&ctx.addr, &ctx.owner_basic, "owner-group");
    join(&ctx.addr, &ctx.owner_basic, id, &basic(MEMBER, PASSWORD));
    if admin {
        let r = http(
            &ctx.addr,
            "PUT",
            &format!("/api/v1/groups/{id}/members/{MEMBER}/admin"),
            &[("Authorization", ctx.owner_basic.as_str())],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    id
}

/// The rows of the main matrix.
pub(super) fn rows() -> Vec<Row> {
    vec![
        Row {
            method: "GET",
            path: "/api/v1/groups",
            expect: [401, 200, 200, 200, 200],
            device: 403,
            request: |ctx, _| {
                spare_group(ctx, false);
                Request::new("GET", "/api/v1/groups")
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, "owner-group");
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/groups",
            expect: [401, 201, 201, 201, 201],
            device: 403,
            request: |_, role| {
                Request::new("POST", "/api/v1/groups").json(&json!({"name": format!("by {}", role.name())}))
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    let body = r.json();
                    assert_eq!(body["admin"], true, "the maker is its admin: {}", r.body);
                    assert_eq!(body["member_list"][0]["user"].as_str(), role.user(), "{}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/groups/{id}",
            expect: outsiders_404(200),
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/groups/{}", spare_group(ctx, false))),
            check: |_, role, r| {
                if matches!(role, Role::Owner | Role::Token) {
                    assert_eq!(r.json()["member_list"][1]["user"], MEMBER, "{}", r.body);
                }
            },
        },
        Row {
            method: "PUT",
            path: "/api/v1/groups/{id}",
            expect: outsiders_404(200),
            device: 403,
            request: |ctx, _| {
                Request::new("PUT", format!("/api/v1/groups/{}", spare_group(ctx, false)))
                    .json(&json!({"name": "renamed"}))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/groups/{id}",
            expect: outsiders_404(204),
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/groups/{}", spare_group(ctx, false))),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/groups/{id}/members/{user}/admin",
            expect: outsiders_404(200),
            device: 403,
            request: |ctx, _| {
                Request::new("PUT", format!("/api/v1/groups/{}/members/{MEMBER}/admin", spare_group(ctx, false)))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/groups/{id}/members/{user}/admin",
            expect: outsiders_404(200),
            device: 403,
            request: |ctx, _| {
                Request::new("DELETE", format!("/api/v1/groups/{}/members/{MEMBER}/admin", spare_group(ctx, true)))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/groups/{id}/members/{user}",
            expect: outsiders_404(204),
            device: 403,
            request: |ctx, _| {
                Request::new("DELETE", format!("/api/v1/groups/{}/members/{MEMBER}", spare_group(ctx, false)))
            },
            check: no_check,
        },
        Row {
            // The owner leaves a group where the member is an admin too.
            method: "POST",
            path: "/api/v1/groups/{id}/leave",
            expect: outsiders_404(204),
            device: 403,
            request: |ctx, _| Request::new("POST", format!("/api/v1/groups/{}/leave", spare_group(ctx, true))),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/groups/{id}/invitations",
            expect: outsiders_404(200),
            device: 403,
            request: |ctx, _| {
                let id = spare_group(ctx, false);
                Request::new("GET", format!("/api/v1/groups/{id}/invitations"))
            },
            check: |_, role, r| {
                if matches!(role, Role::Owner | Role::Token) {
                    let list = r.json();
                    assert_eq!(list["invitations"][0]["uses"], 1, "{}", r.body);
                    assert!(!r.body.contains("token"), "lists never show secrets: {}", r.body);
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/groups/{id}/invitations",
            expect: outsiders_404(201),
            device: 403,
            request: |ctx, _| {
                let id = spare_group(ctx, false);
                Request::new("POST", format!("/api/v1/groups/{id}/invitations")).json(&json!({"expires_in_s": 3600}))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/groups/{id}/invitations/{invitation}",
            expect: outsiders_404(204),
            device: 403,
            request: |ctx, _| {
                let id = spare_group(ctx, false);
                let (invitation, _) = invitation(&ctx.addr, &ctx.owner_basic, id, 1);
                Request::new("DELETE", format!("/api/v1/groups/{id}/invitations/{invitation}"))
            },
            check: no_check,
        },
        Row {
            // Anyone logged in may read what an invitation is for; a device token may not.
            method: "GET",
            path: "/api/v1/groups/join/{token}",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |ctx, _| {
                let id = group_of(&ctx.addr, &ctx.owner_basic, "joinable");
                let (_, token) = invitation(&ctx.addr, &ctx.owner_basic, id, 1);
                Request::new("GET", format!("/api/v1/groups/join/{token}"))
            },
            check: |_, role, r| {
                if r.status == 200 {
                    let body = r.json();
                    assert_eq!((body["group"].as_str(), body["valid"].as_bool()), (Some("joinable"), Some(true)));
                    assert_eq!(body["member"], role.user() == Some("owner"), "{}", r.body);
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/groups/join/{token}",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |ctx, _| {
                let id = group_of(&ctx.addr, &ctx.owner_basic, "joinable");
                let (_, token) = invitation(&ctx.addr, &ctx.owner_basic, id, 1);
                Request::new("POST", format!("/api/v1/groups/join/{token}"))
            },
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["joined"], role.user() != Some("owner"), "{}", r.body);
                }
            },
        },
    ]
}

/// A caller in [`group_routes_by_standing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Anonymous,
    /// Logged in, not in the group.
    Other,
    /// In the group.
    Member,
    /// In the group, made an admin by its maker.
    GroupAdmin,
    /// Made the group (an admin).
    Owner,
    /// The instance's administrator, not in the group.
    Admin,
    /// The administrator from outside the admin networks: the group routes are no admin routes,
    /// so the same answers as [`Standing::Admin`].
    AdminOutside,
}

const STANDINGS: [Standing; 7] = [
    Standing::Anonymous,
    Standing::Other,
    Standing::Member,
    Standing::GroupAdmin,
    Standing::Owner,
    Standing::Admin,
    Standing::AdminOutside,
];

impl Standing {
    fn user(self) -> Option<&'static str> {
        match self {
            Self::Anonymous => None,
            Self::Other => Some("other"),
            Self::Member => Some("member"),
            Self::GroupAdmin => Some("gadmin"),
            Self::Owner => Some("owner"),
            Self::Admin | Self::AdminOutside => Some("admin"),
        }
    }
}

/// A fresh group of the owner's with "member" in it and "gadmin" as a second admin, a zone of the
/// group's the owner made, and an invitation.
struct Fixture {
    group: i64,
    zone: i64,
    invitation: i64,
    token: String,
}

fn fixture(addr: &str) -> Fixture {
    let owner = basic("owner", PASSWORD);
    let group = group_of(addr, &owner, "the-group");
    join(addr, &owner, group, &basic("member", PASSWORD));
    join(addr, &owner, group, &basic("gadmin", PASSWORD));
    let promote = http(
        addr,
        "PUT",
        &format!("/api/v1/groups/{group}/members/gadmin/admin"),
        &[("Authorization", owner.as_str())],
        b"",
    );
    assert_eq!(promote.status, 200, "{}", promote.body);
    let zone = json!({"name": "group-home", "group": group,
        "shape": {"type": "circle", "center": [OWNER_LAT, 8.5], "radius_m": 100.0}});
    let zone = post(addr, "/api/v1/zones", &owner, &zone);
    assert_eq!(zone.status, 201, "{}", zone.body);
    let (invitation, token) = invitation(addr, &owner, group, 10);
    Fixture { group, zone: zone.json()["id"].as_i64().unwrap(), invitation, token }
}

struct GroupRow {
    method: &'static str,
    path: &'static str,
    /// Anonymous, other, member, group admin, owner, admin.
    expect: [u16; 6],
    request: fn(&Fixture, Standing) -> (String, Option<Value>),
    check: fn(&Fixture, Standing, &common::Response),
}

fn none(_: &Fixture, _: Standing, _: &common::Response) {}

fn group_rows() -> Vec<GroupRow> {
    vec![
        GroupRow {
            method: "GET",
            path: "/api/v1/groups",
            expect: [401, 200, 200, 200, 200, 200],
            request: |_, _| ("/api/v1/groups".into(), None),
            check: |f, s, r| {
                let inside = matches!(s, Standing::Member | Standing::GroupAdmin | Standing::Owner);
                let listed = r.json()["groups"].as_array().is_some_and(|all| all.iter().any(|g| g["id"] == f.group));
                assert_eq!(listed, inside, "{s:?}: {}", r.body);
            },
        },
        GroupRow {
            method: "POST",
            path: "/api/v1/groups",
            expect: [401, 201, 201, 201, 201, 201],
            request: |_, _| ("/api/v1/groups".into(), Some(json!({"name": "another"}))),
            check: none,
        },
        GroupRow {
            method: "GET",
            path: "/api/v1/groups/{id}",
            expect: [401, 404, 200, 200, 200, 404],
            request: |f, _| (format!("/api/v1/groups/{}", f.group), None),
            check: |_, s, r| {
                if r.status == 200 {
                    let body = r.json();
                    let admins: Vec<&str> = body["member_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|m| m["admin"] == true)
                        .map(|m| m["user"].as_str().unwrap())
                        .collect();
                    assert_eq!(admins, ["owner", "gadmin"], "{}", r.body);
                    assert_eq!(body["admin"], s != Standing::Member, "{}", r.body);
                    assert_eq!(body["zones"].as_array().unwrap().len(), 1, "{}", r.body);
                }
            },
        },
        GroupRow {
            method: "PUT",
            path: "/api/v1/groups/{id}",
            expect: [401, 404, 403, 200, 200, 404],
            request: |f, _| (format!("/api/v1/groups/{}", f.group), Some(json!({"name": "renamed"}))),
            check: none,
        },
        GroupRow {
            method: "DELETE",
            path: "/api/v1/groups/{id}",
            expect: [401, 404, 403, 204, 204, 404],
            request: |f, _| (format!("/api/v1/groups/{}", f.group), None),
            check: none,
        },
        GroupRow {
            method: "PUT",
            path: "/api/v1/groups/{id}/members/{user}/admin",
            expect: [401, 404, 403, 200, 200, 404],
            request: |f, _| (format!("/api/v1/groups/{}/members/member/admin", f.group), None),
            check: none,
        },
        GroupRow {
            // gadmin steps down (the owner stays an admin); the owner demotes gadmin.
            method: "DELETE",
            path: "/api/v1/groups/{id}/members/{user}/admin",
            expect: [401, 404, 403, 200, 200, 404],
            request: |f, _| (format!("/api/v1/groups/{}/members/gadmin/admin", f.group), None),
            check: none,
        },
        GroupRow {
            method: "DELETE",
            path: "/api/v1/groups/{id}/members/{user}",
            expect: [401, 404, 403, 204, 204, 404],
            request: |f, _| (format!("/api/v1/groups/{}/members/member", f.group), None),
            check: none,
        },
        GroupRow {
            method: "POST",
            path: "/api/v1/groups/{id}/leave",
            expect: [401, 404, 204, 204, 204, 404],
            request: |f, _| (format!("/api/v1/groups/{}/leave", f.group), None),
            check: none,
        },
        GroupRow {
            method: "GET",
            path: "/api/v1/groups/{id}/invitations",
            expect: [401, 404, 403, 200, 200, 404],
            request: |f, _| (format!("/api/v1/groups/{}/invitations", f.group), None),
            check: none,
        },
        GroupRow {
            method: "POST",
            path: "/api/v1/groups/{id}/invitations",
            expect: [401, 404, 403, 201, 201, 404],
            request: |f, _| (format!("/api/v1/groups/{}/invitations", f.group), Some(json!({"max_uses": 3}))),
            check: none,
        },
        GroupRow {
            method: "DELETE",
            path: "/api/v1/groups/{id}/invitations/{invitation}",
            expect: [401, 404, 403, 204, 204, 404],
            request: |f, _| (format!("/api/v1/groups/{}/invitations/{}", f.group, f.invitation), None),
            check: none,
        },
        GroupRow {
            method: "GET",
            path: "/api/v1/groups/join/{token}",
            expect: [401, 200, 200, 200, 200, 200],
            request: |f, _| (format!("/api/v1/groups/join/{}", f.token), None),
            check: |_, s, r| {
                if r.status == 200 {
                    let inside = matches!(s, Standing::Member | Standing::GroupAdmin | Standing::Owner);
                    assert_eq!(r.json()["member"], inside, "{s:?}: {}", r.body);
                }
            },
        },
        GroupRow {
            method: "POST",
            path: "/api/v1/groups/join/{token}",
            expect: [401, 200, 200, 200, 200, 200],
            request: |f, _| (format!("/api/v1/groups/join/{}", f.token), None),
            check: |_, s, r| {
                if r.status == 200 {
                    let inside = matches!(s, Standing::Member | Standing::GroupAdmin | Standing::Owner);
                    assert_eq!(r.json()["joined"], !inside, "{s:?}: {}", r.body);
                }
            },
        },
        // The group's zones: every member sees them, its admins change them.
        GroupRow {
            method: "GET",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 200, 200, 200, 404],
            request: |f, _| (format!("/api/v1/zones/{}", f.zone), None),
            check: |_, s, r| {
                if r.status == 200 {
                    let body = r.json();
                    assert_eq!(body["group_name"], "the-group", "{}", r.body);
                    assert_eq!(body["editable"], s != Standing::Member, "{s:?}: {}", r.body);
                }
            },
        },
        GroupRow {
            method: "GET",
            path: "/api/v1/zones",
            expect: [401, 200, 200, 200, 200, 200],
            request: |_, _| ("/api/v1/zones".into(), None),
            check: |f, s, r| {
                let inside = matches!(s, Standing::Member | Standing::GroupAdmin | Standing::Owner);
                let listed = r.json()["zones"].as_array().is_some_and(|all| all.iter().any(|z| z["id"] == f.zone));
                assert_eq!(listed, inside, "{s:?}: {}", r.body);
            },
        },
        GroupRow {
            method: "POST",
            path: "/api/v1/zones",
            expect: [401, 404, 403, 201, 201, 404],
            request: |f, _| {
                let body = json!({"name": "new-group-zone", "group": f.group,
                    "shape": {"type": "circle", "center": [OWNER_LAT, 8.5], "radius_m": 50.0}});
                ("/api/v1/zones".into(), Some(body))
            },
            check: |_, _, r| {
                if r.status == 404 {
                    assert!(r.json()["message"].as_str().unwrap().starts_with("group: "), "{}", r.body);
                }
            },
        },
        GroupRow {
            method: "PUT",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 403, 200, 200, 404],
            request: |f, _| {
                let body = json!({"name": "group-home moved",
                    "shape": {"type": "circle", "center": [OWNER_LAT, 8.6], "radius_m": 100.0}});
                (format!("/api/v1/zones/{}", f.zone), Some(body))
            },
            check: none,
        },
        GroupRow {
            method: "DELETE",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 403, 204, 204, 404],
            request: |f, _| (format!("/api/v1/zones/{}", f.zone), None),
            check: none,
        },
    ]
}

/// Every group route (and the group's zones) called by every standing a caller can have towards
/// the group, and by the administrator from outside the admin networks, each on a fresh group.
#[test]
fn group_routes_by_standing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for user in ["owner", "other", "member", "gadmin"] {
        add_user(data, user);
    }
    common::add_admin(data, "admin");
    let server = serve(data, &["--trusted-proxy", "127.0.0.1/32"]);
    let addr = server.addr.clone();

    let rows = group_rows();
    let mut failures = Vec::new();
    let mut table = format!(
        "{:<52}{}\n",
        "route",
        ["anonymous", "other", "member", "gadmin", "owner", "admin", "outside"].map(|r| format!("{r:>10}")).join("")
    );
    for row in &rows {
        let mut line = format!("{:<52}", format!("{} {}", row.method, row.path));
        // The administrator from outside is answered as inside.
        let expect = row.expect.iter().copied().chain([row.expect[5]]);
        for (standing, want) in STANDINGS.into_iter().zip(expect) {
            let fixture = fixture(&addr);
            let (path, body) = (row.request)(&fixture, standing);
            let auth = standing.user().map(|u| basic(u, PASSWORD));
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(auth) = &auth {
                headers.push(("Authorization", auth.as_str()));
            }
            if standing == Standing::AdminOutside {
                headers.push(("X-Forwarded-For", "198.51.100.7"));
            }
            let r = http(&addr, row.method, &path, &headers, body.as_bytes());
            line.push_str(&format!("{:>10}", r.status));
            if r.status == want {
                (row.check)(&fixture, standing, &r);
            } else {
                failures.push(format!("{} {path} as {standing:?}: {} (want {want}): {}", row.method, r.status, r.body));
            }
            if r.status >= 400 {
                let error = r.json();
                assert!(error["code"].is_string() && error["message"].is_string(), "error shape: {}", r.body);
            }
        }
        table.push_str(&line);
        table.push('\n');
    }
    println!("{table}");
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
}

/// An invitation admits as many people as it says, until it expires or is revoked; each refusal
/// says why; the last admin can neither leave nor step down; admin actions are in the audit log.
#[test]
fn invitations_refuse_with_a_reason_and_groups_keep_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for user in ["owner", "ann", "ben", "cat"] {
        add_user(data, user);
    }
    common::add_admin(data, "admin");
    let server = serve(data, &[]);
    let addr = server.addr.clone();
    let owner = basic("owner", PASSWORD);
    let as_user = |u: &str| basic(u, PASSWORD);
    let (ann, ben) = (as_user("ann"), as_user("ben"));
    let group = group_of(&addr, &owner, "Family");

    // Single use: ann joins, ben is refused.
    let (_, once) = invitation(&addr, &owner, group, 1);
    let join_as =
        |user: &str, token: &str| post(&addr, &format!("/api/v1/groups/join/{token}"), &as_user(user), &json!({}));
    assert_eq!(join_as("ann", &once).status, 200);
    let used = join_as("ben", &once);
    assert_eq!(used.status, 409, "{}", used.body);
    assert_eq!(
        used.json()["message"],
        "this invitation to \"Family\" has been used 1 of 1 times already; ask an admin of the group for a new link"
    );
    let preview = http(&addr, "GET", &format!("/api/v1/groups/join/{once}"), &[("Authorization", ben.as_str())], b"");
    assert_eq!(preview.json()["valid"], false, "{}", preview.body);
    assert!(preview.json()["reason"].as_str().unwrap().contains("used 1 of 1"), "{}", preview.body);

    // Revoked.
    let (id, revoked) = invitation(&addr, &owner, group, 5);
    let r = http(
        &addr,
        "DELETE",
        &format!("/api/v1/groups/{group}/invitations/{id}"),
        &[("Authorization", owner.as_str())],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = join_as("ben", &revoked);
    assert_eq!(r.status, 409);
    assert!(r.json()["message"].as_str().unwrap().contains("withdrawn by an admin"), "{}", r.body);

    // Expired: the shortest expiry is a minute, so this one is made in the store's past.
    let (_, short) = {
        let r = post(&addr, &format!("/api/v1/groups/{group}/invitations"), &owner, &json!({"expires_in_s": 59}));
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.json()["message"].as_str().unwrap().starts_with("expires_in_s: 59 is not within"), "{}", r.body);
        let r = post(&addr, &format!("/api/v1/groups/{group}/invitations"), &owner, &json!({"max_uses": 0}));
        assert_eq!(r.json()["message"], "max_uses: 0 is not within 1..100", "{}", r.body);
        invitation(&addr, &owner, group, 2)
    };
    expire_invitations(data);
    let r = join_as("cat", &short);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("this invitation to \"Family\" expired at "),
        "{}",
        r.body
    );
    let r = join_as("cat", "not-a-token");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().starts_with("this invitation link is unknown"), "{}", r.body);

    // The last admin can neither leave nor step down; after promoting ann, they can.
    let leave = post(&addr, &format!("/api/v1/groups/{group}/leave"), &owner, &json!({}));
    assert_eq!(leave.status, 409, "{}", leave.body);
    assert_eq!(
        leave.json()["message"],
        "you are the only admin of \"Family\": make another member an admin first, or delete the group"
    );
    let demote = http(
        &addr,
        "DELETE",
        &format!("/api/v1/groups/{group}/members/owner/admin"),
        &[("Authorization", owner.as_str())],
        b"",
    );
    assert_eq!(demote.status, 409, "{}", demote.body);
    let promote = http(
        &addr,
        "PUT",
        &format!("/api/v1/groups/{group}/members/ann/admin"),
        &[("Authorization", owner.as_str())],
        b"",
    );
    assert_eq!(promote.status, 200, "{}", promote.body);
    // Whoever stops being an admin stops letting people in: their links are withdrawn.
    let admin_of = |user: &str, method: &str| {
        let r = http(
            &addr,
            method,
            &format!("/api/v1/groups/{group}/members/{user}/admin"),
            &[("Authorization", owner.as_str())],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let (_, anns_link) = invitation(&addr, &ann, group, 3);
    admin_of("ann", "DELETE");
    let r = join_as("cat", &anns_link);
    assert_eq!(r.status, 409, "a demoted admin's link: {}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("withdrawn by an admin"), "{}", r.body);
    admin_of("ann", "PUT");
    let (_, owners_link) = invitation(&addr, &owner, group, 3);
    assert_eq!(post(&addr, &format!("/api/v1/groups/{group}/leave"), &owner, &json!({})).status, 204);
    let r = join_as("cat", &owners_link);
    assert_eq!(r.status, 409, "the link of an admin who left: {}", r.body);
    let mine = http(&addr, "GET", "/api/v1/groups", &[("Authorization", ann.as_str())], b"").json();
    assert_eq!(mine["groups"][0]["admin"], true, "{mine}");
    assert_eq!(mine["groups"][0]["members"], 1, "{mine}");

    // Joining shares no location.
    let friends = http(&addr, "GET", "/api/v1/friends", &[("Authorization", ann.as_str())], b"").json();
    assert_eq!(friends["friends"], json!([]), "{friends}");

    // The admin actions are in the audit log.
    let audit = http(
        &addr,
        "GET",
        "/api/v1/admin/audit?action=group.",
        &[("Authorization", basic("admin", PASSWORD).as_str())],
        b"",
    );
    assert_eq!(audit.status, 200, "{}", audit.body);
    let actions: Vec<String> =
        audit.json()["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    for action in [
        "group.create",
        "group.invitation.create",
        "group.join",
        "group.invitation.revoke",
        "group.member.promote",
        "group.leave",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} not in {actions:?}");
    }
}

/// Moves every stored invitation's expiry into the past, as time passing would.
fn expire_invitations(data: &std::path::Path) {
    let db = rusqlite::Connection::open(data.join("polo.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute("UPDATE group_invitations SET expires_ms = 1", []).unwrap();
}
