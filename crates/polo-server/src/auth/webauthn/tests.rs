//! Registration and sign-in against a software authenticator built here:
//! authenticator data, attestation objects and client data written byte by
//! byte, signed with a P-256 key made for the test and an Ed25519 key from a
//! fixed seed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use polo_domain::{Timestamp, UserId};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::cbor::{Value, encode::encode};
use super::verify::{self, AuthData, FLAG_AT, FLAG_ED, FLAG_UP, FLAG_UV, PublicKey, WebAuthnError};
use super::*;

const RP: &str = "polo.example";
const ORIGIN: &str = "https://polo.example";

fn rp() -> RelyingParty {
    RelyingParty { id: RP.into(), origin: ORIGIN.into() }
}

fn t(s: i64) -> Timestamp {
    Timestamp(s * 1000)
}

enum Key {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Key {
    fn p256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Self::P256(EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap())
    }

    /// RFC 8032's first test key.
    fn ed25519() -> Self {
        let seed: Vec<u8> = (0..32)
            .map(|i| {
                u8::from_str_radix(
                    &"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"[i * 2..i * 2 + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        Self::Ed25519(Ed25519KeyPair::from_seed_unchecked(&seed).unwrap())
    }

    fn cose(&self) -> Value {
        let int = Value::Int;
        match self {
            Self::P256(pair) => {
                let point = pair.public_key().as_ref();
                Value::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (int(-2), Value::Bytes(point[1..33].to_vec())),
                    (int(-3), Value::Bytes(point[33..].to_vec())),
                ])
            }
            Self::Ed25519(pair) => Value::Map(vec![
                (int(1), int(1)),
                (int(3), int(-8)),
                (int(-1), int(6)),
                (int(-2), Value::Bytes(pair.public_key().as_ref().to_vec())),
            ]),
        }
    }

    fn cose_bytes(&self) -> Vec<u8> {
        encode(&self.cose())
    }

    fn alg(&self) -> i128 {
        match self {
            Self::P256(_) => -7,
            Self::Ed25519(_) => -8,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::P256(pair) => pair.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }
}

fn auth_data(rp_id: &str, flags: u8, count: u32, credential: Option<(&[u8], &Key)>) -> Vec<u8> {
    let mut out = sha256(rp_id.as_bytes()).to_vec();
    out.push(flags | if credential.is_some() { FLAG_AT } else { 0 });
    out.extend(count.to_be_bytes());
    if let Some((id, key)) = credential {
        out.extend([0xAA; 16]);
        out.extend(u16::try_from(id.len()).unwrap().to_be_bytes());
        out.extend(id);
        out.extend(encode(&key.cose()));
    }
    out
}

fn client_json(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    serde_json::json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
        .to_string()
        .into_bytes()
}

fn attestation_none(auth: &[u8]) -> Vec<u8> {
    encode(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text("none".into())),
        (Value::Text("attStmt".into()), Value::Map(vec![])),
        (Value::Text("authData".into()), Value::Bytes(auth.to_vec())),
    ]))
}

fn attestation_packed(auth: &[u8], statement: Vec<(Value, Value)>) -> Vec<u8> {
    encode(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text("packed".into())),
        (Value::Text("attStmt".into()), Value::Map(statement)),
        (Value::Text("authData".into()), Value::Bytes(auth.to_vec())),
    ]))
}

/// Registers `key` as credential `id` for `user` with `none` attestation.
fn register_none(
    store: &dyn Store,
    user: UserId,
    id: &[u8],
    key: &Key,
    flags: u8,
) -> Result<StoredPasskey, WebAuthnError> {
    let challenge = start(store, Purpose::Register(user.0), &rp(), t(100)).unwrap();
    let client = client_json("webauthn.create", &challenge, ORIGIN);
    let object = attestation_none(&auth_data(RP, flags, 0, Some((id, key))));
    let answer = Registration { client_data_json: &client, attestation_object: &object };
    register(store, user, "laptop", answer, t(101)).unwrap()
}

struct Signed {
    id: String,
    client: Vec<u8>,
    data: Vec<u8>,
    sig: Vec<u8>,
    handle: Vec<u8>,
}

impl Signed {
    fn assertion(&self) -> Assertion {
        Assertion {
            credential_id: self.id.clone(),
            client_data_json: self.client.clone(),
            authenticator_data: self.data.clone(),
            signature: self.sig.clone(),
            user_handle: Some(self.handle.clone()),
        }
    }
}

/// The authenticator's answer to a fresh login challenge.
fn sign_in(store: &dyn Store, id: &[u8], key: &Key, user: UserId, flags: u8, count: u32, at: i64) -> Signed {
    let challenge = start(store, Purpose::Login, &rp(), t(at)).unwrap();
    let client = client_json("webauthn.get", &challenge, ORIGIN);
    let data = auth_data(RP, flags, count, None);
    let sig = key.sign(&verify::signed_data(&data, &client));
    Signed { id: URL_SAFE_NO_PAD.encode(id), client, data, sig, handle: user_handle(user).to_vec() }
}

#[test]
fn a_passkey_is_registered_listed_used_and_removed() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ann = store.create_user("ann", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let key = Key::p256();
    assert!(!has_passkey(&store, ann).unwrap());
    let made = register_none(&store, ann, b"cred-1", &key, FLAG_UP | FLAG_UV).unwrap();
    assert_eq!((made.id.as_str(), made.user, made.passkey.name.as_str()), ("Y3JlZC0x", ann, "laptop"));
    assert_eq!(made.algorithm(), Some(verify::ES256));
    assert_eq!(made.passkey.aaguid, "aa".repeat(16));
    assert!(has_passkey(&store, ann).unwrap() && !has_passkey(&store, bob).unwrap());
    assert_eq!(list(&store, ann).unwrap(), vec![made.clone()]);
    assert_eq!(register_none(&store, bob, b"cred-1", &key, FLAG_UP).unwrap_err(), WebAuthnError::Registered);

    // Alone, with user verification; the counter and the time of use are kept.
    let signed = sign_in(&store, b"cred-1", &key, ann, FLAG_UP | FLAG_UV, 5, 200);
    let used = authenticate(&store, &signed.assertion(), Use::Alone, t(201)).unwrap().unwrap();
    assert_eq!((used.user, used.passkey.sign_count, used.passkey.last_used_ms), (ann, 5, Some(201_000)));
    // The challenge was used up: the same answer again is refused.
    assert_eq!(authenticate(&store, &signed.assertion(), Use::Alone, t(202)).unwrap(), Err(WebAuthnError::Challenge));

    // Without verification: enough after the password, not alone.
    let present = sign_in(&store, b"cred-1", &key, ann, FLAG_UP, 6, 300);
    assert_eq!(
        authenticate(&store, &present.assertion(), Use::Alone, t(301)).unwrap(),
        Err(WebAuthnError::NotVerified)
    );
    let present = sign_in(&store, b"cred-1", &key, ann, FLAG_UP, 6, 300);
    assert!(authenticate(&store, &present.assertion(), Use::SecondFactor(ann), t(301)).unwrap().is_ok());
    // Not after someone else's password.
    let other = sign_in(&store, b"cred-1", &key, ann, FLAG_UP, 7, 310);
    assert_eq!(
        authenticate(&store, &other.assertion(), Use::SecondFactor(bob), t(311)).unwrap(),
        Err(WebAuthnError::UnknownPasskey)
    );
    // A counter that does not move forward: a copied key.
    let cloned = sign_in(&store, b"cred-1", &key, ann, FLAG_UP | FLAG_UV, 6, 320);
    assert_eq!(
        authenticate(&store, &cloned.assertion(), Use::Alone, t(321)).unwrap(),
        Err(WebAuthnError::Counter { stored: 6, given: 6 })
    );
    // Nobody else removes it; its owner does.
    assert_eq!(remove(&store, bob, &made.id).unwrap(), None);
    assert_eq!(remove(&store, ann, &made.id).unwrap().map(|p| p.id), Some(made.id.clone()));
    assert!(list(&store, ann).unwrap().is_empty());
    let gone = sign_in(&store, b"cred-1", &key, ann, FLAG_UP | FLAG_UV, 9, 400);
    assert_eq!(
        authenticate(&store, &gone.assertion(), Use::Alone, t(401)).unwrap(),
        Err(WebAuthnError::UnknownPasskey)
    );
}

#[test]
fn wrong_answers_are_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ann = store.create_user("ann", "h", false).unwrap().id;
    let key = Key::p256();
    register_none(&store, ann, b"k", &key, FLAG_UP).unwrap();
    let refused = |mutate: &dyn Fn(&mut Signed), expected: WebAuthnError| {
        let mut signed = sign_in(&store, b"k", &key, ann, FLAG_UP | FLAG_UV, 0, 100);
        mutate(&mut signed);
        assert_eq!(authenticate(&store, &signed.assertion(), Use::Alone, t(101)).unwrap(), Err(expected));
    };
    refused(&|s| s.sig[10] ^= 1, WebAuthnError::Signature);
    refused(&|s| s.handle = user_handle(UserId(99)).to_vec(), WebAuthnError::UnknownPasskey);
    refused(&|s| s.id = "bm9wZQ".into(), WebAuthnError::UnknownPasskey);
    // Another site's relying party id, signed correctly.
    refused(
        &|s| {
            s.data = auth_data("evil.example", FLAG_UP | FLAG_UV, 0, None);
            s.sig = key.sign(&verify::signed_data(&s.data, &s.client));
        },
        WebAuthnError::RelyingParty,
    );
    refused(
        &|s| {
            s.data = auth_data(RP, FLAG_UV, 0, None);
            s.sig = key.sign(&verify::signed_data(&s.data, &s.client));
        },
        WebAuthnError::NotPresent,
    );
    // Client data of another origin, of a registration, or of a challenge never given.
    let challenge_of = |client: &[u8]| verify::client_data(client).unwrap().challenge;
    refused(
        &|s| s.client = client_json("webauthn.get", &challenge_of(&s.client), "https://evil.example"),
        WebAuthnError::Origin { found: "https://evil.example".into(), expected: ORIGIN.into() },
    );
    refused(
        &|s| s.client = client_json("webauthn.create", &challenge_of(&s.client), ORIGIN),
        WebAuthnError::WrongType { found: "webauthn.create".into(), expected: "webauthn.get" },
    );
    refused(&|s| s.client = client_json("webauthn.get", "bm90IGdpdmVu", ORIGIN), WebAuthnError::Challenge);
    let mut broken = sign_in(&store, b"k", &key, ann, FLAG_UP | FLAG_UV, 0, 100);
    broken.client = b"{".to_vec();
    assert!(matches!(
        authenticate(&store, &broken.assertion(), Use::Alone, t(101)).unwrap(),
        Err(WebAuthnError::ClientData(_))
    ));

    // A challenge expires, and one for registering does not sign in.
    let late = sign_in(&store, b"k", &key, ann, FLAG_UP | FLAG_UV, 0, 1_000);
    let after = Timestamp(t(1_000).0 + ttl_ms() + 1);
    assert_eq!(authenticate(&store, &late.assertion(), Use::Alone, after).unwrap(), Err(WebAuthnError::Challenge));
    let challenge = start(&store, Purpose::Register(ann.0), &rp(), t(2_000)).unwrap();
    let client = client_json("webauthn.get", &challenge, ORIGIN);
    let data = auth_data(RP, FLAG_UP | FLAG_UV, 0, None);
    let sig = key.sign(&verify::signed_data(&data, &client));
    let signed = Signed { id: URL_SAFE_NO_PAD.encode(b"k"), client, data, sig, handle: user_handle(ann).to_vec() };
    assert_eq!(authenticate(&store, &signed.assertion(), Use::Alone, t(2_001)).unwrap(), Err(WebAuthnError::Challenge));
}

#[test]
fn registration_checks_its_challenge_origin_and_attestation() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ann = store.create_user("ann", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let key = Key::ed25519();
    let try_register = |user: UserId, client_for: &dyn Fn(&str) -> Vec<u8>, object: &dyn Fn(&[u8]) -> Vec<u8>| {
        let challenge = start(&store, Purpose::Register(ann.0), &rp(), t(10)).unwrap();
        let client = client_for(&challenge);
        let object = object(&client);
        register(&store, user, "key", Registration { client_data_json: &client, attestation_object: &object }, t(11))
            .unwrap()
    };
    let create = |c: &str| client_json("webauthn.create", c, ORIGIN);
    let auth = auth_data(RP, FLAG_UP, 3, Some((b"ed", &key)));
    let packed_self = |client: &[u8]| {
        let sig = key.sign(&verify::signed_data(&auth, client));
        attestation_packed(
            &auth,
            vec![(Value::Text("alg".into()), Value::Int(key.alg())), (Value::Text("sig".into()), Value::Bytes(sig))],
        )
    };
    // Another user's challenge is no challenge of Bob's.
    assert_eq!(try_register(bob, &create, &packed_self).unwrap_err(), WebAuthnError::Challenge);
    assert_eq!(
        try_register(ann, &|c| client_json("webauthn.create", c, "http://polo.example"), &packed_self).unwrap_err(),
        WebAuthnError::Origin { found: "http://polo.example".into(), expected: ORIGIN.into() }
    );
    let forged = |client: &[u8]| {
        let sig = key.sign(&verify::signed_data(&auth, client));
        let mut other = verify::signed_data(&auth, client);
        other[0] ^= 1;
        let wrong = key.sign(&other);
        assert_ne!(sig, wrong);
        attestation_packed(
            &auth,
            vec![(Value::Text("alg".into()), Value::Int(key.alg())), (Value::Text("sig".into()), Value::Bytes(wrong))],
        )
    };
    assert_eq!(try_register(ann, &create, &forged).unwrap_err(), WebAuthnError::Signature);
    let with_certificate = |client: &[u8]| {
        let sig = key.sign(&verify::signed_data(&auth, client));
        attestation_packed(
            &auth,
            vec![
                (Value::Text("alg".into()), Value::Int(key.alg())),
                (Value::Text("sig".into()), Value::Bytes(sig)),
                (Value::Text("x5c".into()), Value::Array(vec![Value::Bytes(vec![0x30])])),
            ],
        )
    };
    assert!(matches!(try_register(ann, &create, &with_certificate), Err(WebAuthnError::Attestation(_))));
    let other_format = |_: &[u8]| {
        encode(&Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("tpm".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth.clone())),
        ]))
    };
    assert!(
        matches!(try_register(ann, &create, &other_format), Err(WebAuthnError::Attestation(m)) if m.contains("tpm"))
    );
    let none_with_statement = |_: &[u8]| {
        encode(&Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![(Value::Text("sig".into()), Value::Bytes(vec![1]))])),
            (Value::Text("authData".into()), Value::Bytes(auth.clone())),
        ]))
    };
    assert!(matches!(try_register(ann, &create, &none_with_statement), Err(WebAuthnError::Attestation(_))));
    let absent = |_: &[u8]| attestation_none(&auth_data(RP, 0, 0, Some((b"ed", &key))));
    assert_eq!(try_register(ann, &create, &absent).unwrap_err(), WebAuthnError::NotPresent);

    // Packed self attestation with the fixed Ed25519 key is accepted, with its counter.
    let made = try_register(ann, &create, &packed_self).unwrap();
    assert_eq!((made.algorithm(), made.passkey.sign_count), (Some(verify::EDDSA), 3));
    let signed = sign_in(&store, b"ed", &key, ann, FLAG_UP | FLAG_UV, 4, 50);
    assert!(authenticate(&store, &signed.assertion(), Use::Alone, t(51)).unwrap().is_ok());
}

#[test]
fn authenticator_data_is_read_to_its_last_byte() {
    let key = Key::ed25519();
    let mut with_extensions = auth_data(RP, FLAG_UP | FLAG_ED, 1, Some((b"id", &key)));
    with_extensions.extend(encode(&Value::Map(vec![(Value::Text("credProtect".into()), Value::Int(2))])));
    let parsed = AuthData::parse(&with_extensions).unwrap();
    let credential = parsed.credential.unwrap();
    assert_eq!((credential.id.as_slice(), parsed.sign_count), (&b"id"[..], 1));
    assert_eq!(credential.key, PublicKey::from_cose(&key.cose()).unwrap());
    assert_eq!(credential.cose_key, encode(&key.cose()));

    let mut trailing = auth_data(RP, FLAG_UP, 1, None);
    trailing.push(0);
    assert!(matches!(AuthData::parse(&trailing), Err(WebAuthnError::AuthData(_))));
    assert!(matches!(AuthData::parse(&[0; 36]), Err(WebAuthnError::AuthData(_))));
    let mut cut = auth_data(RP, FLAG_UP, 1, Some((b"id", &key)));
    cut.truncate(cut.len() - 1);
    assert!(AuthData::parse(&cut).is_err());
}

#[test]
fn keys_other_than_es256_eddsa_and_rs256_are_refused() {
    let int = Value::Int;
    let p384 = Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-35)),
        (int(-1), int(2)),
        (int(-2), Value::Bytes(vec![0; 48])),
        (int(-3), Value::Bytes(vec![0; 48])),
    ]);
    assert!(matches!(PublicKey::from_cose(&p384), Err(WebAuthnError::Key(_))));
    let wrong_curve = Value::Map(vec![(int(1), int(2)), (int(3), int(-7)), (int(-1), int(2))]);
    assert!(matches!(PublicKey::from_cose(&wrong_curve), Err(WebAuthnError::Key(m)) if m.contains("P-256")));
    let short_rsa = Value::Map(vec![
        (int(1), int(3)),
        (int(3), int(-257)),
        (int(-1), Value::Bytes(vec![0xff; 128])),
        (int(-2), Value::Bytes(vec![1, 0, 1])),
    ]);
    assert!(matches!(PublicKey::from_cose(&short_rsa), Err(WebAuthnError::Key(m)) if m.contains("1024 bits")));
    let rsa = Value::Map(vec![
        (int(1), int(3)),
        (int(3), int(-257)),
        (int(-1), Value::Bytes(vec![0xc5; 256])),
        (int(-2), Value::Bytes(vec![1, 0, 1])),
    ]);
    assert_eq!(PublicKey::from_cose(&rsa).unwrap().algorithm(), verify::RS256);
}

#[test]
fn the_counter_must_move_forward_when_either_side_counts() {
    assert!(verify::check_counter(0, 0).is_ok(), "authenticators without a counter send 0");
    assert!(verify::check_counter(0, 1).is_ok() && verify::check_counter(5, 6).is_ok());
    assert!(verify::check_counter(5, 5).is_err() && verify::check_counter(5, 0).is_err());
}

#[test]
fn the_relying_party_is_the_host_name() {
    assert_eq!(
        RelyingParty::from_host("Polo.Example:8443", true).unwrap(),
        RelyingParty { id: "polo.example".into(), origin: "https://polo.example:8443".into() }
    );
    assert_eq!(
        RelyingParty::from_host("localhost:8080", false).unwrap(),
        RelyingParty { id: "localhost".into(), origin: "http://localhost:8080".into() }
    );
    for refused in ["127.0.0.1:8080", "[::1]:8080", "", ":80"] {
        assert!(RelyingParty::from_host(refused, false).is_err(), "{refused}");
    }
}

/// The routes, in process, with the software authenticator: registering, the sign-in alone and as
/// the second factor, what a passkey changes for the password, `require_admin_2fa`, removal and
/// the audit entries.
mod routes {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Method, Request, StatusCode, header};
    use polo_store::AuditQuery;
    use polo_test_support::TestStore;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    const HOST: &str = "polo.example:8080";
    const HTTP_ORIGIN: &str = "http://polo.example:8080";
    const PASSWORD: &str = "ann's long password";

    struct Reply {
        status: StatusCode,
        cookie: Option<String>,
        body: Value,
    }

    async fn call(router: &Router, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, HOST);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        request.extensions_mut().insert(ConnectInfo("127.0.0.1:40000".parse::<SocketAddr>().unwrap()));
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let cookie =
            parts.headers.get(header::SET_COOKIE).map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status: parts.status, cookie, body }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The authenticator's answer to the options of `POST /api/v1/session/passkey/options`.
    async fn answer(router: &Router, id: &[u8], key: &Key, user: UserId, flags: u8, count: u32) -> Value {
        let options = call(router, Method::POST, "/api/v1/session/passkey/options", &[], None).await;
        assert_eq!(options.status, StatusCode::OK, "{}", options.body);
        assert_eq!(
            (&options.body["rpId"], &options.body["userVerification"], &options.body["allowCredentials"]),
            (&json!("polo.example"), &json!("required"), &json!([]))
        );
        let client = client_json("webauthn.get", options.body["challenge"].as_str().unwrap(), HTTP_ORIGIN);
        let data = auth_data("polo.example", flags, count, None);
        let sig = key.sign(&verify::signed_data(&data, &client));
        json!({"id": b64(id), "type": "public-key", "rawId": b64(id), "response": {
            "clientDataJSON": b64(&client), "authenticatorData": b64(&data), "signature": b64(&sig),
            "userHandle": b64(&user_handle(user))}, "clientExtensionResults": {}})
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn register_sign_in_alone_and_after_the_password_then_remove() {
        let backend = TestStore::new();
        let store = backend.store.clone();
        let ann = store.create_user("ann", &crate::auth::hash_password(PASSWORD).unwrap(), true).unwrap().id;
        let router = crate::router(crate::AppState::new(Arc::clone(&store)).unwrap());
        let login = json!({"username": "ann", "password": PASSWORD});
        let r = call(&router, Method::POST, "/api/v1/session", &[], Some(login.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let (cookie, csrf) = (r.cookie.unwrap(), r.body["csrf_token"].as_str().unwrap().to_owned());
        let session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];

        // The options name this host, the account by its handle, and the keys polo verifies.
        let options = call(&router, Method::POST, "/api/v1/me/passkeys/options", &session, None).await;
        assert_eq!(options.status, StatusCode::OK, "{}", options.body);
        let o = &options.body;
        assert_eq!(
            (&o["rp"]["id"], &o["user"]["id"], &o["user"]["name"]),
            (&json!("polo.example"), &json!(b64(&user_handle(ann))), &json!("ann"))
        );
        assert_eq!(
            o["pubKeyCredParams"],
            json!([{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8}, {"type": "public-key", "alg": -257}])
        );
        assert_eq!(
            (&o["authenticatorSelection"]["residentKey"], &o["attestation"], &o["excludeCredentials"]),
            (&json!("required"), &json!("none"), &json!([]))
        );

        let key = Key::p256();
        let client = client_json("webauthn.create", o["challenge"].as_str().unwrap(), HTTP_ORIGIN);
        let object = attestation_none(&auth_data("polo.example", FLAG_UP | FLAG_UV, 0, Some((b"ann-key", &key))));
        let body = json!({"name": " Laptop ", "credential": {"id": b64(b"ann-key"), "type": "public-key",
            "response": {"clientDataJSON": b64(&client), "attestationObject": b64(&object), "transports": ["internal"]}}});
        let made = call(&router, Method::POST, "/api/v1/me/passkeys", &session, Some(body.clone())).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        assert_eq!(
            (&made.body["id"], &made.body["name"], &made.body["algorithm"]),
            (&json!(b64(b"ann-key")), &json!("Laptop"), &json!(-7))
        );
        // The same answer again: its challenge is gone.
        let again = call(&router, Method::POST, "/api/v1/me/passkeys", &session, Some(body)).await;
        assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.body);
        let listed = call(&router, Method::GET, "/api/v1/me/passkeys", &session, None).await;
        assert_eq!(listed.body["passkeys"].as_array().unwrap().len(), 1, "{}", listed.body);
        let options = call(&router, Method::POST, "/api/v1/me/passkeys/options", &session, None).await;
        assert_eq!(options.body["excludeCredentials"], json!([{"type": "public-key", "id": b64(b"ann-key")}]));
        let status = call(&router, Method::GET, "/api/v1/me/2fa", &session, None).await;
        assert_eq!((&status.body["enabled"], &status.body["passkeys"]), (&json!(false), &json!(1)));

        // Now the password alone signs nobody in, in the login form or in Basic.
        let alone = call(&router, Method::POST, "/api/v1/session", &[], Some(login.clone())).await;
        assert_eq!((alone.status, &alone.body["code"]), (StatusCode::UNAUTHORIZED, &json!("two_factor_required")));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ann:{PASSWORD}")));
        let r = call(&router, Method::GET, "/api/v1/me", &[("authorization", &basic)], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

        // The passkey alone, verifying the user.
        let credential = answer(&router, b"ann-key", &key, ann, FLAG_UP | FLAG_UV, 1).await;
        let r =
            call(&router, Method::POST, "/api/v1/session/passkey", &[], Some(json!({"credential": credential}))).await;
        assert_eq!((r.status, &r.body["user"]["name"]), (StatusCode::OK, &json!("ann")), "{}", r.body);
        let me = call(&router, Method::GET, "/api/v1/me", &[("cookie", r.cookie.as_deref().unwrap())], None).await;
        assert_eq!(me.body["user"]["name"], "ann", "{}", me.body);
        // Replayed: refused.
        let r =
            call(&router, Method::POST, "/api/v1/session/passkey", &[], Some(json!({"credential": credential}))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("challenge"), "{}", r.body);
        // Presence only is not enough alone…
        let present = answer(&router, b"ann-key", &key, ann, FLAG_UP, 2).await;
        let r = call(&router, Method::POST, "/api/v1/session/passkey", &[], Some(json!({"credential": present}))).await;
        assert!(r.body["message"].as_str().unwrap().contains("user verification"), "{}", r.body);
        // …but is after the password; not after a wrong one.
        let present = answer(&router, b"ann-key", &key, ann, FLAG_UP, 3).await;
        let wrong = json!({"username": "ann", "password": "not it", "passkey": present});
        assert_eq!(
            call(&router, Method::POST, "/api/v1/session", &[], Some(wrong)).await.status,
            StatusCode::UNAUTHORIZED
        );
        let present = answer(&router, b"ann-key", &key, ann, FLAG_UP, 4).await;
        let both = json!({"username": "ann", "password": PASSWORD, "passkey": present});
        let r = call(&router, Method::POST, "/api/v1/session", &[], Some(both)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);

        // A passkey is the second factor `require_admin_2fa` asks administrators for.
        store.set_instance_setting(crate::auth::totp::REQUIRE_ADMIN_SETTING, Some("true")).unwrap();
        let audit = call(&router, Method::GET, "/api/v1/admin/audit?action=auth.", &session, None).await;
        assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);

        // IP addresses are no passkey site.
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/session/passkey/options")
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo("127.0.0.1:40000".parse::<SocketAddr>().unwrap()));
        assert_eq!(router.clone().oneshot(request).await.unwrap().status(), StatusCode::BAD_REQUEST);

        let r =
            call(&router, Method::DELETE, &format!("/api/v1/me/passkeys/{}", b64(b"ann-key")), &session, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r =
            call(&router, Method::DELETE, &format!("/api/v1/me/passkeys/{}", b64(b"ann-key")), &session, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(call(&router, Method::POST, "/api/v1/session", &[], Some(login)).await.status, StatusCode::OK);

        let entries = store.audit_log(&AuditQuery::newest(100)).unwrap();
        let detail = |e: &polo_store::AuditEntry| serde_json::from_str::<Value>(&e.detail).unwrap();
        let find = |action: &str, key: &str, value: &str| {
            entries.iter().filter(|e| e.action == action && detail(e)[key] == value).count()
        };
        let id = b64(b"ann-key");
        assert_eq!(find("auth.passkey.register", "passkey", &id), 1, "{entries:?}");
        assert_eq!(find("auth.passkey.register", "name", "Laptop"), 1, "{entries:?}");
        assert_eq!(find("auth.login", "method", "passkey"), 1, "{entries:?}");
        assert_eq!(find("auth.login", "second_factor", "passkey"), 1, "{entries:?}");
        assert_eq!(find("auth.login_failed", "method", "passkey"), 2, "the replay and the missing verification");
        assert_eq!(find("auth.passkey.remove", "passkey", &id), 1, "{entries:?}");
        assert!(entries.iter().all(|e| !e.detail.contains(&b64(&key.cose_bytes()))), "no key material in the log");
    }
}
