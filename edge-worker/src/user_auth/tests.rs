//! `user_auth` against tokens made here: guest tokens from the module itself, JWTs signed with
//! keys generated for this run by `openssl genpkey` (RSA 2048, P-256, Ed25519), so no private
//! key is committed.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef-guest";
const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210-other";
const JWT_SECRET: &str = "jwt-shared-secret-with-the-idp-0123456789";
const ISS: &str = "https://id.example.test/";
const AUD: &str = "seedsync";

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_files(path: &str) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no file {path} in tests"),
    ))
}

fn settings(pairs: &[(&str, &str)]) -> Result<UserAuth, SettingsError> {
    UserAuth::from_lookup(lookup(pairs), no_files)
}

fn err(pairs: &[(&str, &str)]) -> SettingsError {
    settings(pairs).expect_err("settings should be refused")
}

fn guest(secret: &str, previous: Option<&str>) -> GuestTokens {
    GuestTokens::new(
        &Secret::from(secret),
        previous.map(Secret::from).as_ref(),
        DEFAULT_GUEST_TOKEN_TTL_S,
    )
    .unwrap()
}

// ---------------------------------------------------------------- mode and settings

#[test]
fn user_auth_mode_parses_and_errors_name_the_variable() {
    assert_eq!(Mode::parse(None), Ok(Mode::Off));
    assert_eq!(Mode::parse(Some(" ")), Ok(Mode::Off));
    assert_eq!(Mode::parse(Some("off")), Ok(Mode::Off));
    assert_eq!(Mode::parse(Some("guest")), Ok(Mode::Guest));
    assert_eq!(Mode::parse(Some(" JWT ")), Ok(Mode::Jwt));
    let e = Mode::parse(Some("oauth")).unwrap_err();
    assert_eq!(e.variable, USER_AUTH);
    assert!(e.to_string().starts_with("invalid USER_AUTH:"), "{e}");
    for mode in [Mode::Off, Mode::Guest, Mode::Jwt] {
        assert_eq!(Mode::parse(Some(mode.name())), Ok(mode));
    }
    assert!(matches!(settings(&[]), Ok(UserAuth::Off)));
    // `off` reads no secret, so a broken one does not matter.
    assert!(matches!(
        settings(&[(USER_AUTH, "off"), (USER_TOKEN_SECRET, "short")]),
        Ok(UserAuth::Off)
    ));
}

#[test]
fn guest_settings_need_a_long_secret_and_a_sane_ttl() {
    assert_eq!(err(&[(USER_AUTH, "guest")]).variable, USER_TOKEN_SECRET);
    let short = err(&[(USER_AUTH, "guest"), (USER_TOKEN_SECRET, "tooshort")]);
    assert_eq!(short.variable, USER_TOKEN_SECRET);
    assert!(!short.to_string().contains("tooshort"), "{short}");
    let prev = err(&[
        (USER_AUTH, "guest"),
        (USER_TOKEN_SECRET, SECRET),
        (USER_TOKEN_PREVIOUS_SECRET, "tiny"),
    ]);
    assert_eq!(prev.variable, USER_TOKEN_PREVIOUS_SECRET);
    // The edge has no files: a *_FILE setting there is an error naming it.
    let file = err(&[
        (USER_AUTH, "guest"),
        (USER_TOKEN_SECRET_FILE, "/run/secret"),
    ]);
    assert_eq!(file.variable, USER_TOKEN_SECRET_FILE);
    for bad in ["soon", "-1", "59", "34560001"] {
        let e = err(&[
            (USER_AUTH, "guest"),
            (USER_TOKEN_SECRET, SECRET),
            (GUEST_TOKEN_TTL_SECONDS, bad),
        ]);
        assert_eq!(e.variable, GUEST_TOKEN_TTL_SECONDS, "{bad}");
    }
    let Ok(UserAuth::Guest(g)) = settings(&[
        (USER_AUTH, "guest"),
        (USER_TOKEN_SECRET, SECRET),
        (GUEST_TOKEN_TTL_SECONDS, "3600"),
    ]) else {
        panic!("guest settings refused")
    };
    assert_eq!(g.ttl_s(), 3600);
    let Ok(UserAuth::Guest(g)) = settings(&[(USER_AUTH, "guest"), (USER_TOKEN_SECRET, SECRET)])
    else {
        panic!("guest settings refused")
    };
    assert_eq!(g.ttl_s(), DEFAULT_GUEST_TOKEN_TTL_S);
    // The secret never prints.
    assert!(!format!("{g:?}").contains(SECRET));
}

#[test]
fn jwt_settings_need_exactly_one_key_source_an_issuer_and_an_audience() {
    let base = [
        (USER_AUTH, "jwt"),
        (USER_JWT_ISSUER, ISS),
        (USER_JWT_AUDIENCE, AUD),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        settings(&pairs)
    };
    assert_eq!(with(&[]).unwrap_err().variable, USER_AUTH);
    let two = with(&[
        (USER_JWT_SECRET, JWT_SECRET),
        (USER_JWT_JWKS_URL, "https://id.example.test/jwks"),
    ])
    .unwrap_err();
    assert_eq!(two.variable, USER_AUTH);
    assert!(two.message.contains("only one"), "{two}");
    let short = with(&[(USER_JWT_SECRET, "short-secret")]).unwrap_err();
    assert_eq!(short.variable, USER_JWT_SECRET);
    assert!(!short.to_string().contains("short-secret"));
    assert_eq!(
        with(&[(USER_JWT_JWKS, "{\"keys\": []}")])
            .unwrap_err()
            .variable,
        USER_JWT_JWKS
    );
    assert_eq!(
        with(&[(USER_JWT_JWKS, "not json")]).unwrap_err().variable,
        USER_JWT_JWKS
    );
    for bad in [
        "http://id.example.test/jwks",
        "https://user:pw@id.example.test/jwks",
        "ftp://x",
        "https://",
    ] {
        let e = with(&[(USER_JWT_JWKS_URL, bad)]).unwrap_err();
        assert_eq!(e.variable, USER_JWT_JWKS_URL, "{bad}");
    }
    let Ok(UserAuth::Jwt(local)) = with(&[(USER_JWT_JWKS_URL, "http://127.0.0.1:8999/jwks")])
    else {
        panic!("a loopback JWKS URL is for local tests")
    };
    assert!(matches!(
        local.keys,
        JwtKeySource::Url {
            cache_ttl_s: DEFAULT_JWKS_CACHE_S,
            ..
        }
    ));
    assert!(local.static_keys().is_none());
    for missing in [USER_JWT_ISSUER, USER_JWT_AUDIENCE] {
        let pairs: Vec<_> = base
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .chain([(USER_JWT_SECRET, JWT_SECRET)])
            .collect();
        assert_eq!(settings(&pairs).unwrap_err().variable, missing);
    }
    assert_eq!(
        with(&[
            (USER_JWT_SECRET, JWT_SECRET),
            (USER_JWT_LEEWAY_SECONDS, "601")
        ])
        .unwrap_err()
        .variable,
        USER_JWT_LEEWAY_SECONDS
    );
    assert_eq!(
        with(&[
            (USER_JWT_JWKS_URL, "https://id.example.test/jwks"),
            (USER_JWT_JWKS_CACHE_SECONDS, "1")
        ])
        .unwrap_err()
        .variable,
        USER_JWT_JWKS_CACHE_SECONDS
    );
    let Ok(UserAuth::Jwt(hs)) = with(&[(USER_JWT_SECRET, JWT_SECRET)]) else {
        panic!("HS256 settings refused")
    };
    assert_eq!(hs.leeway_s, DEFAULT_LEEWAY_S);
    assert_eq!((hs.issuer.as_str(), hs.audience.as_str()), (ISS, AUD));
    assert!(!format!("{hs:?}").contains(JWT_SECRET));
}

// ---------------------------------------------------------------- guest identities

#[test]
fn a_guest_identity_verifies_and_is_a_valid_user_id() {
    let g = guest(SECRET, None);
    let issued = g.issue([0xab; 16], NOW);
    assert_eq!(
        issued.user_id.as_str(),
        format!("guest-{}", "ab".repeat(16))
    );
    assert!(UserId::parse(issued.user_id.as_str()).is_ok());
    assert_eq!(issued.expires_at_s, NOW + DEFAULT_GUEST_TOKEN_TTL_S);
    let identity = g.verify(&issued.user_token, NOW + 1).unwrap();
    assert_eq!(identity.user_id, issued.user_id);
    assert_eq!(identity.expires_at_s, issued.expires_at_s);
    // Two guests get two ids.
    assert_ne!(g.issue([1; 16], NOW).user_id, issued.user_id);
    // Through the header, as a start presents it.
    let auth = UserAuth::Guest(g.clone());
    let header = format!("Bearer {}", issued.user_token);
    assert_eq!(
        auth.authenticate(Some(&header), None, NOW).unwrap(),
        Some(identity)
    );
    assert_eq!(auth.authenticate(None, None, NOW), Err(AuthError::Missing));
    assert_eq!(
        auth.authenticate(Some("Basic abc"), None, NOW),
        Err(AuthError::Malformed)
    );
    assert_eq!(UserAuth::Off.authenticate(None, None, NOW), Ok(None));
}

#[test]
fn a_guest_token_cannot_be_altered_forged_or_used_after_expiry() {
    let g = guest(SECRET, None);
    let issued = g.issue([7; 16], NOW);
    let token = issued.user_token.as_str();
    // Another user id under the same MAC.
    let other_user = token.replace(issued.user_id.as_str(), "alice");
    assert_eq!(g.verify(&other_user, NOW), Err(AuthError::BadSignature));
    // A later expiry under the same MAC.
    let exp = issued.expires_at_s.to_string();
    let later = token.replace(&exp, &(issued.expires_at_s + 1_000_000).to_string());
    assert_eq!(g.verify(&later, NOW), Err(AuthError::BadSignature));
    // Another deployment's secret.
    let foreign = guest(OTHER_SECRET, None).sign(&UserId::parse("alice").unwrap(), NOW + 60);
    assert_eq!(g.verify(&foreign, NOW), Err(AuthError::BadSignature));
    // One flipped MAC character.
    let mut flipped = token.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    assert!(g.verify(&flipped, NOW).is_err());
    // Expired (the expiry instant itself is already too late).
    assert_eq!(
        g.verify(token, issued.expires_at_s),
        Err(AuthError::Expired)
    );
    assert!(g.verify(token, issued.expires_at_s - 1).is_ok());
    for junk in [
        "",
        "gt1",
        "gt1.x.y",
        "gt1.1.alice.!!!",
        "gt2.1.alice.AAAA",
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert!(g.verify(junk, NOW).is_err(), "{junk:?}");
    }
}

#[test]
fn guest_tokens_survive_a_secret_rotation_until_the_previous_secret_is_dropped() {
    let old = guest(OTHER_SECRET, None);
    let token = old.issue([3; 16], NOW).user_token;
    let rotating = guest(SECRET, Some(OTHER_SECRET));
    assert!(rotating.verify(&token, NOW).is_ok());
    // New tokens are signed with the new secret only.
    let fresh = rotating.issue([4; 16], NOW).user_token;
    assert!(guest(SECRET, None).verify(&fresh, NOW).is_ok());
    assert_eq!(old.verify(&fresh, NOW), Err(AuthError::BadSignature));
    // Rotation done: the old tokens stop working.
    assert_eq!(
        guest(SECRET, None).verify(&token, NOW),
        Err(AuthError::BadSignature)
    );
}

// ---------------------------------------------------------------- JWTs

/// Keys for this test run, generated once by `openssl genpkey` (PKCS#8 PEM).
struct TestKeys {
    rsa: String,
    rsa_other: String,
    p256: String,
    ed25519: String,
}

fn genpkey(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .output()
        .expect("the tests need the openssl CLI to generate keys");
    assert!(out.status.success(), "openssl genpkey {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        rsa: genpkey(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        rsa_other: genpkey(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        p256: genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ed25519: genpkey(&["-algorithm", "ED25519"]),
    })
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(keys().rsa.as_bytes()).unwrap()
}

/// The public JWK of a private key, with a key id (and, if asked, its `alg`).
fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str, with_alg: bool) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    if !with_alg {
        jwk.common.key_algorithm = None;
    }
    serde_json::to_value(jwk).unwrap()
}

fn jwks(keys: Vec<Value>) -> KeySet {
    KeySet::from_jwks_json(&json!({ "keys": keys }).to_string()).unwrap()
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISS, "aud": AUD, "iat": NOW, "exp": NOW + 600 })
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn verifier(keys: KeySet) -> JwtSettings {
    JwtSettings {
        keys: JwtKeySource::Static(keys),
        issuer: ISS.into(),
        audience: AUD.into(),
        leeway_s: 30,
    }
}

fn hs() -> (JwtSettings, EncodingKey) {
    let keys = KeySet::hs256(&Secret::from(JWT_SECRET)).unwrap();
    (
        verifier(keys),
        EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn hs256_jwts_prove_their_subject() {
    let (v, key) = hs();
    let keys = v.static_keys().unwrap();
    let token = sign(Algorithm::HS256, None, &key, &claims("alice"));
    let identity = v.verify(&token, keys, NOW).unwrap();
    assert_eq!(identity.user_id.as_str(), "alice");
    assert_eq!(identity.expires_at_s, NOW + 600);
    // Through UserAuth and the header.
    let auth = UserAuth::Jwt(v.clone());
    let header = format!("Bearer {token}");
    assert_eq!(
        auth.authenticate(Some(&header), Some(keys), NOW)
            .unwrap()
            .unwrap()
            .user_id
            .as_str(),
        "alice"
    );
    assert_eq!(
        auth.authenticate(Some(&header), None, NOW),
        Err(AuthError::KeysUnavailable)
    );
    // Another secret.
    let forged = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another-secret-another-secret-another").unwrap(),
        &claims("alice"),
    );
    assert_eq!(v.verify(&forged, keys, NOW), Err(AuthError::BadSignature));
    // The payload swapped under a valid signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(&claims("mallory"));
    assert_eq!(
        v.verify(&parts.join("."), keys, NOW),
        Err(AuthError::BadSignature)
    );
    // HS384 with the same secret is not the configured algorithm.
    let hs384 = sign(Algorithm::HS384, None, &key, &claims("alice"));
    assert_eq!(v.verify(&hs384, keys, NOW), Err(AuthError::WrongAlgorithm));
}

#[test]
fn jwt_claims_are_checked_issuer_audience_time_and_subject() {
    let (v, key) = hs();
    let keys = v.static_keys().unwrap();
    let with = |patch: Value| {
        let mut c = claims("alice");
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = val.clone();
            }
        }
        v.verify(&sign(Algorithm::HS256, None, &key, &c), keys, NOW)
    };
    assert_eq!(
        with(json!({"iss": "https://evil.test/"})),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        with(json!({"aud": "another-app"})),
        Err(AuthError::WrongAudience)
    );
    assert!(with(json!({"aud": ["another-app", AUD]})).is_ok());
    for claim in ["iss", "aud", "exp", "sub"] {
        assert_eq!(
            with(json!({ claim: null })),
            Err(AuthError::BadClaims),
            "without {claim}"
        );
    }
    assert_eq!(with(json!({"exp": "tomorrow"})), Err(AuthError::BadClaims));
    // exp with 30 s of leeway: 29 s late passes, 30 s late does not.
    assert!(with(json!({"exp": NOW - 29})).is_ok());
    assert_eq!(with(json!({"exp": NOW - 30})), Err(AuthError::Expired));
    assert_eq!(with(json!({"exp": NOW - 3600})), Err(AuthError::Expired));
    // nbf likewise.
    assert!(with(json!({"nbf": NOW + 30})).is_ok());
    assert_eq!(with(json!({"nbf": NOW + 31})), Err(AuthError::NotYetValid));
    // Fractional NumericDates are allowed (RFC 7519 §2).
    assert!(with(json!({"exp": (NOW + 10) as f64 + 0.5})).is_ok());
    // sub must be a userId the API accepts.
    for bad in ["a b", "", "x/y", &"x".repeat(65)] {
        assert_eq!(
            with(json!({"sub": bad})),
            Err(AuthError::BadSubject),
            "{bad:?}"
        );
    }
    assert_eq!(with(json!({"sub": 42})), Err(AuthError::BadClaims));
}

#[test]
fn alg_none_and_malformed_jwts_are_refused() {
    let (v, _) = hs();
    let keys = v.static_keys().unwrap();
    let payload = b64(&claims("alice"));
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE"}),
        json!({"typ": "JWT"}),
    ] {
        let token = format!("{}.{payload}.", b64(&header));
        assert!(v.verify(&token, keys, NOW).is_err(), "{header}");
    }
    for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(MAX_TOKEN_LEN + 1)] {
        assert!(v.verify(junk, keys, NOW).is_err(), "{junk:?}");
    }
}

#[test]
fn rs256_es256_and_eddsa_jwts_verify_against_a_jwks() {
    let rsa = rsa_key();
    let p256 = EncodingKey::from_ec_pem(keys().p256.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(keys().ed25519.as_bytes()).unwrap();
    // alg given for RSA, implied by the key type and curve for the others.
    let set = jwks(vec![
        public_jwk(&rsa, Algorithm::RS256, "rsa-1", true),
        public_jwk(&p256, Algorithm::ES256, "ec-1", false),
        public_jwk(&ed, Algorithm::EdDSA, "ed-1", false),
    ]);
    assert_eq!(set.len(), 3);
    let v = verifier(set.clone());
    for (alg, kid, key, sub) in [
        (Algorithm::RS256, "rsa-1", &rsa, "rsa-user"),
        (Algorithm::ES256, "ec-1", &p256, "ec-user"),
        (Algorithm::EdDSA, "ed-1", &ed, "ed-user"),
    ] {
        let token = sign(alg, Some(kid), key, &claims(sub));
        assert_eq!(
            v.verify(&token, &set, NOW).unwrap().user_id.as_str(),
            sub,
            "{alg:?}"
        );
        // Without a kid, the key is found by trying those of the header's algorithm.
        let token = sign(alg, None, key, &claims(sub));
        assert!(v.verify(&token, &set, NOW).is_ok(), "{alg:?} without kid");
    }
    // A kid the set lacks: the caller may refetch the JWKS.
    let token = sign(Algorithm::RS256, Some("rsa-2"), &rsa, &claims("alice"));
    assert_eq!(v.verify(&token, &set, NOW), Err(AuthError::UnknownKey));
    // Another RSA key claiming the known kid.
    let other = EncodingKey::from_rsa_pem(keys().rsa_other.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, Some("rsa-1"), &other, &claims("alice"));
    assert_eq!(v.verify(&token, &set, NOW), Err(AuthError::BadSignature));
    // A known key, but the header claims another algorithm than the key's.
    let token = sign(Algorithm::RS512, Some("rsa-1"), &rsa, &claims("alice"));
    assert_eq!(v.verify(&token, &set, NOW), Err(AuthError::WrongAlgorithm));
    // Issuer and audience apply to asymmetric keys just the same.
    let mut c = claims("alice");
    c["aud"] = json!("another-app");
    let token = sign(Algorithm::ES256, Some("ec-1"), &p256, &c);
    assert_eq!(v.verify(&token, &set, NOW), Err(AuthError::WrongAudience));
}

#[test]
fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    // Algorithm confusion: the attacker knows the public key (it is published) and "signs"
    // an HS256 token with it as the HMAC secret, hoping the verifier uses the key bytes as
    // whatever the header says.
    let rsa = rsa_key();
    let public = public_jwk(&rsa, Algorithm::RS256, "rsa-1", true);
    let set = jwks(vec![public.clone()]);
    let v = verifier(set.clone());
    let public_der = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(keys().rsa.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap()
        .stdout;
    let n = public["n"].as_str().unwrap().as_bytes().to_vec();
    for hmac_key in [public_der, public.to_string().into_bytes(), n] {
        let forged = sign(
            Algorithm::HS256,
            Some("rsa-1"),
            &EncodingKey::from_secret(&hmac_key).unwrap(),
            &claims("alice"),
        );
        assert_eq!(v.verify(&forged, &set, NOW), Err(AuthError::WrongAlgorithm));
        let no_kid = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(&hmac_key).unwrap(),
            &claims("alice"),
        );
        assert_eq!(v.verify(&no_kid, &set, NOW), Err(AuthError::WrongAlgorithm));
    }
}

#[test]
fn a_jwks_keeps_only_signature_keys_whose_type_fits_their_algorithm() {
    let rsa = rsa_key();
    let p256 = EncodingKey::from_ec_pem(keys().p256.as_bytes()).unwrap();
    let mut enc = public_jwk(&rsa, Algorithm::RS256, "enc", true);
    enc["use"] = json!("enc");
    let mut mislabelled = public_jwk(&rsa, Algorithm::RS256, "mislabelled", true);
    mislabelled["alg"] = json!("ES256");
    let mut ec_as_rsa = public_jwk(&p256, Algorithm::ES256, "ec-as-rs", true);
    ec_as_rsa["alg"] = json!("RS256");
    let oct = json!({"kty": "oct", "kid": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(JWT_SECRET)});
    let unknown = json!({"kty": "XYZ", "kid": "xyz"});
    let good = public_jwk(&rsa, Algorithm::RS256, "good", true);
    let set = jwks(vec![
        enc,
        mislabelled,
        ec_as_rsa,
        oct.clone(),
        unknown,
        good,
    ]);
    assert_eq!(set.len(), 1, "{set:?}");
    // An HS256 token for the oct key of a JWKS is refused: no symmetric key from a key set.
    let v = verifier(set.clone());
    let token = sign(
        Algorithm::HS256,
        Some("oct"),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
        &claims("alice"),
    );
    assert_eq!(v.verify(&token, &set, NOW), Err(AuthError::UnknownKey));
    assert!(KeySet::from_jwks_json(&json!({ "keys": [oct] }).to_string()).is_err());
    assert!(KeySet::from_jwks_json(&"x".repeat(MAX_JWKS_BYTES + 1)).is_err());
    // The whole JwkSet round trip a provider would serve.
    let served = serde_json::to_string(&JwkSet {
        keys: vec![Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap()],
    })
    .unwrap();
    assert_eq!(KeySet::from_jwks_json(&served).unwrap().len(), 1);
}

#[test]
fn the_jwks_cache_fetches_when_stale_or_on_an_unknown_kid_but_not_in_a_loop() {
    let ttl = 300;
    let rsa = rsa_key();
    let body = json!({ "keys": [public_jwk(&rsa, Algorithm::RS256, "k1", true)] }).to_string();
    let mut cache = JwksCache::default();
    assert!(cache.keys().is_none());
    assert!(cache.should_fetch(NOW, ttl, false));
    // A failed first fetch: retried, but not before the minimum interval.
    assert!(cache.record(NOW, Err(())).is_err());
    assert!(cache.keys().is_none());
    assert!(!cache.should_fetch(NOW + 1, ttl, false));
    assert!(cache.should_fetch(NOW + JWKS_MIN_REFETCH_S, ttl, false));
    let t = NOW + JWKS_MIN_REFETCH_S;
    cache.record(t, Ok(&body)).unwrap();
    assert_eq!(cache.keys().unwrap().len(), 1);
    assert!(!cache.should_fetch(t + ttl - 1, ttl, false));
    assert!(cache.should_fetch(t + ttl, ttl, false));
    // An unknown kid refetches early, once per interval.
    assert!(!cache.should_fetch(t + 1, ttl, true));
    assert!(cache.should_fetch(t + JWKS_MIN_REFETCH_S, ttl, true));
    // A bad body or a failure keeps the keys held.
    assert!(cache.record(t + 40, Ok("{\"keys\": []}")).is_err());
    assert!(cache.record(t + 80, Err(())).is_err());
    assert_eq!(cache.keys().unwrap().len(), 1);
    assert!(!cache.should_fetch(t + 81, ttl, true));
}

#[test]
fn auth_errors_are_bearer_challenges_that_never_echo_the_token() {
    for e in [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::BadSignature,
        AuthError::WrongAlgorithm,
        AuthError::UnknownKey,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::BadClaims,
        AuthError::BadSubject,
        AuthError::KeysUnavailable,
    ] {
        assert!(e.www_authenticate().starts_with("Bearer"), "{e:?}");
        assert!(!e.message().is_empty());
    }
    assert_eq!(AuthError::Missing.www_authenticate(), "Bearer");
    assert_eq!(
        AuthError::Expired.www_authenticate(),
        "Bearer error=\"invalid_token\""
    );
}

// ---------------------------------------------------------------- starts

fn identity(user: &str) -> Identity {
    Identity {
        user_id: UserId::parse(user).unwrap(),
        expires_at_s: NOW + 60,
    }
}

#[test]
fn a_start_as_another_user_is_forbidden_once_users_are_authenticated() {
    let alice = UserId::parse("alice").unwrap();
    assert!(start_user(None, &alice).is_ok());
    assert!(start_user(Some(&identity("alice")), &alice).is_ok());
    let e = start_user(Some(&identity("mallory")), &alice).unwrap_err();
    assert_eq!(e.status(), 403);
    assert_eq!(e.field.as_deref(), Some("userId"));
}

fn game_view(user: &str, status: api::GameStatus, token: Option<&str>) -> api::GameView {
    serde_json::from_value(json!({
        "gameId": "0b7e2d4c-1f1a-4b5e-9c1d-2a3b4c5d6e7f",
        "userId": user,
        "region": "eu",
        "seed": 7,
        "startAt": 1_800_000_003_000_i64,
        "tickMs": 100,
        "breakEvery": 10,
        "algorithm": "mix32-v1",
        "status": status.as_str(),
        "createdAt": 1_800_000_000_000_i64,
        "ownerToken": token,
    }))
    .unwrap()
}

#[test]
fn the_authenticated_owner_gets_the_same_owner_token_back_on_another_device() {
    let ring = owner_token::Keyring::new(&[9u8; 32], &[], owner_token::DEFAULT_TTL_MS).unwrap();
    let active = game_view("alice", api::GameStatus::Active, None);
    // The very token the origin issued when the game was created.
    let first = ring.issue(&active.game_id.to_string(), "alice", active.created_at);
    let minted = owner_token_for(Some(&ring), Some(&identity("alice")), &active).unwrap();
    assert_eq!(minted, first);
    let claims = ring.verify_for_game(&minted, &active.game_id.to_string(), 1_800_000_001_000);
    assert!(claims.is_ok(), "{claims:?}");
    // Nobody else, no identity (USER_AUTH=off), no keyring, an ended game, or an answer that
    // already carries the token: nothing minted.
    assert_eq!(
        owner_token_for(Some(&ring), Some(&identity("mallory")), &active),
        None
    );
    assert_eq!(owner_token_for(Some(&ring), None, &active), None);
    assert_eq!(
        owner_token_for(None, Some(&identity("alice")), &active),
        None
    );
    let exited = game_view("alice", api::GameStatus::Exited, None);
    assert_eq!(
        owner_token_for(Some(&ring), Some(&identity("alice")), &exited),
        None
    );
    let answered = game_view("alice", api::GameStatus::Active, Some("st1.x"));
    assert_eq!(
        owner_token_for(Some(&ring), Some(&identity("alice")), &answered),
        None
    );
}

#[test]
fn wrangler_toml_runs_guest_identities_locally_and_in_production() {
    let toml = include_str!("../../../wrangler.toml");
    let modes: Vec<Mode> = toml
        .lines()
        .filter_map(|line| line.trim().strip_prefix("USER_AUTH = "))
        .map(|v| Mode::parse(Some(v.trim_matches('"'))).unwrap())
        .collect();
    assert_eq!(modes, [Mode::Guest, Mode::Guest]);
    // The secret is never a [vars] entry.
    assert!(
        !toml
            .lines()
            .any(|l| l.trim_start().starts_with(USER_TOKEN_SECRET))
    );
}
