//! Tokens: signed, self-contained, verifiable without a database read.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`. The payload is a
//! small JSON document naming the signing key, the user, the methods, the scope, the expiry, the
//! issue time and the audit ids. Keys live in the store (`identity_signing_key`), the newest
//! signs, the newest `max_active_keys` verify, and every replica holds them in memory.
//! Revocation follows Keystone's event model: an event matches a token when each of its set
//! fields equals the token's and the token was issued at or before the event; events are held
//! in memory too and refreshed when identity data changes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token is scoped to, by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScopeRef {
    #[serde(rename = "n")]
    Unscoped,
    #[serde(rename = "p")]
    Project(String),
    #[serde(rename = "d")]
    Domain(String),
    #[serde(rename = "s")]
    System,
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Signing key id.
    pub k: String,
    /// User id.
    pub u: String,
    /// Authentication methods.
    pub m: Vec<String>,
    /// Scope.
    pub s: ScopeRef,
    /// Expiry, microseconds since the epoch.
    pub e: i64,
    /// Issue time, microseconds since the epoch.
    pub i: i64,
    /// Audit ids: this token's, then its parent's when rescoped.
    pub a: Vec<String>,
    /// Application credential id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
    /// Trust id, for a trust-scoped token (`u` is then the trustee, `s` the trust's project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

/// A signing key.
#[derive(Clone)]
pub struct Key {
    pub id: String,
    pub secret: Vec<u8>,
    pub created_at: i64,
}

impl Key {
    /// A fresh random key.
    pub fn generate(now: i64) -> Key {
        let mut secret = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Key {
            id: strata_core::ids::hex_id()[..12].to_string(),
            secret,
            created_at: now,
        }
    }
}

/// A new audit id as Keystone spells them: 22 characters of URL-safe base64.
pub fn audit_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    B64.encode(b)
}

/// Signs `payload` with `key`, which must be the key `payload.k` names.
pub fn sign(payload: &Payload, key: &Key) -> String {
    let body = serde_json::to_vec(payload).expect("payload serialises");
    let body = B64.encode(body);
    let mut mac = HmacSha256::new_from_slice(&key.secret).expect("hmac accepts any key length");
    mac.update(body.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{body}.{sig}")
}

/// Why a token failed verification.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a token of ours at all, or tampered with.
    Malformed,
    /// Names a key we do not hold (maybe a newer one; reload and retry once).
    UnknownKey(String),
    /// The signature does not match.
    BadSignature,
}

/// Reads the payload without checking the signature (to learn the key id).
pub fn peek(token: &str) -> Result<Payload, VerifyError> {
    let (body, _) = token.split_once('.').ok_or(VerifyError::Malformed)?;
    let raw = B64.decode(body).map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&raw).map_err(|_| VerifyError::Malformed)
}

/// Verifies the signature of `token` with whichever of `keys` it names.
pub fn verify(token: &str, keys: &[Key]) -> Result<Payload, VerifyError> {
    if token.len() > 4096 {
        return Err(VerifyError::Malformed);
    }
    let (body, sig) = token.split_once('.').ok_or(VerifyError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| VerifyError::Malformed)?;
    let payload = peek(token)?;
    let key = keys
        .iter()
        .find(|k| k.id == payload.k)
        .ok_or_else(|| VerifyError::UnknownKey(payload.k.clone()))?;
    let mut mac = HmacSha256::new_from_slice(&key.secret).expect("hmac accepts any key length");
    mac.update(body.as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(payload)
}

/// A revocation event (Keystone's model).
#[derive(Debug, Clone, Default)]
pub struct RevocationEvent {
    pub audit_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub app_cred_id: Option<String>,
    pub trust_id: Option<String>,
    pub issued_before: i64,
}

impl RevocationEvent {
    /// Whether this event revokes the token with `payload`. `project_domain` is the domain of
    /// the token's project, when project-scoped.
    pub fn matches(&self, p: &Payload, project_domain: Option<&str>) -> bool {
        if p.i > self.issued_before {
            return false;
        }
        // An audit-id event revokes that token only, not tokens rescoped from it (which carry
        // it second in their chain).
        if let Some(a) = &self.audit_id {
            if p.a.first() != Some(a) {
                return false;
            }
        }
        if let Some(u) = &self.user_id {
            if &p.u != u {
                return false;
            }
        }
        if let Some(pid) = &self.project_id {
            if p.s != ScopeRef::Project(pid.clone()) {
                return false;
            }
        }
        if let Some(d) = &self.domain_id {
            let scoped_here = p.s == ScopeRef::Domain(d.clone()) || project_domain == Some(d);
            if !scoped_here {
                return false;
            }
        }
        if let Some(c) = &self.app_cred_id {
            if p.c.as_deref() != Some(c) {
                return false;
            }
        }
        if let Some(t) = &self.trust_id {
            if p.t.as_deref() != Some(t) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(k: &Key) -> Payload {
        Payload {
            k: k.id.clone(),
            u: "u1".into(),
            m: vec!["password".into()],
            s: ScopeRef::Project("p1".into()),
            e: 2_000,
            i: 1_000,
            a: vec![audit_id()],
            c: None,
            t: None,
        }
    }

    #[test]
    fn sign_verify_round_trip() {
        let k = Key::generate(0);
        let p = payload(&k);
        let t = sign(&p, &k);
        assert_eq!(verify(&t, std::slice::from_ref(&k)).unwrap(), p);
    }

    #[test]
    fn tampering_and_foreign_keys_fail() {
        let k = Key::generate(0);
        let t = sign(&payload(&k), &k);
        // Flip one character of the signature, and separately of the body.
        let mut chars: Vec<char> = t.chars().collect();
        let last = chars.len() - 2;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let bad_sig: String = chars.iter().collect();
        assert_eq!(
            verify(&bad_sig, std::slice::from_ref(&k)),
            Err(VerifyError::BadSignature)
        );
        let forged_body = {
            let mut p = payload(&k);
            p.u = "admin".into();
            let other = sign(&p, &k);
            let (body, _) = other.split_once('.').unwrap();
            let (_, sig) = t.split_once('.').unwrap();
            format!("{body}.{sig}")
        };
        assert_eq!(
            verify(&forged_body, std::slice::from_ref(&k)),
            Err(VerifyError::BadSignature)
        );
        // Same key id, different secret: a foreign signer.
        let mut foreign = Key::generate(0);
        foreign.id = k.id.clone();
        let t2 = sign(&payload(&k), &foreign);
        assert_eq!(
            verify(&t2, std::slice::from_ref(&k)),
            Err(VerifyError::BadSignature)
        );
        let other = Key::generate(0);
        assert!(matches!(
            verify(&sign(&payload(&other), &other), &[k]),
            Err(VerifyError::UnknownKey(_))
        ));
        assert_eq!(verify("garbage", &[]), Err(VerifyError::Malformed));
    }

    #[test]
    fn revocation_events_match_on_every_set_field() {
        let k = Key::generate(0);
        let p = payload(&k);
        let by_audit = RevocationEvent {
            audit_id: Some(p.a[0].clone()),
            issued_before: 1_000,
            ..Default::default()
        };
        assert!(by_audit.matches(&p, None));
        let later_token = Payload {
            i: 1_001,
            ..p.clone()
        };
        assert!(!by_audit.matches(&later_token, None));
        let by_user = RevocationEvent {
            user_id: Some("u1".into()),
            issued_before: 5_000,
            ..Default::default()
        };
        assert!(by_user.matches(&p, None));
        let other_user = RevocationEvent {
            user_id: Some("u2".into()),
            issued_before: 5_000,
            ..Default::default()
        };
        assert!(!other_user.matches(&p, None));
        let user_project = RevocationEvent {
            user_id: Some("u1".into()),
            project_id: Some("p2".into()),
            issued_before: 5_000,
            ..Default::default()
        };
        assert!(!user_project.matches(&p, None));
        let by_domain = RevocationEvent {
            domain_id: Some("d".into()),
            issued_before: 5_000,
            ..Default::default()
        };
        assert!(by_domain.matches(&p, Some("d")));
        assert!(!by_domain.matches(&p, Some("e")));
    }
}

/// What a token resolves by: the cache key for [`crate::Resolved`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey {
    pub user: String,
    pub scope: ScopeRef,
    pub app_cred: Option<String>,
    pub trust: Option<String>,
}

/// Revocation events indexed by the field that makes them selective, so checking a token costs
/// a few hash lookups however many events there are.
#[derive(Debug, Default)]
pub struct Revocations {
    by_audit: std::collections::HashMap<String, Vec<RevocationEvent>>,
    by_user: std::collections::HashMap<String, Vec<RevocationEvent>>,
    by_project: std::collections::HashMap<String, Vec<RevocationEvent>>,
    by_app_cred: std::collections::HashMap<String, Vec<RevocationEvent>>,
    by_trust: std::collections::HashMap<String, Vec<RevocationEvent>>,
    rest: Vec<RevocationEvent>,
}

impl Revocations {
    pub fn new(events: Vec<RevocationEvent>) -> Self {
        let mut r = Revocations::default();
        for e in events {
            let slot = if let Some(a) = &e.audit_id {
                r.by_audit.entry(a.clone()).or_default()
            } else if let Some(u) = &e.user_id {
                r.by_user.entry(u.clone()).or_default()
            } else if let Some(p) = &e.project_id {
                r.by_project.entry(p.clone()).or_default()
            } else if let Some(c) = &e.app_cred_id {
                r.by_app_cred.entry(c.clone()).or_default()
            } else if let Some(t) = &e.trust_id {
                r.by_trust.entry(t.clone()).or_default()
            } else {
                &mut r.rest
            };
            slot.push(e);
        }
        r
    }

    /// Whether any event revokes the token with payload `p`.
    pub fn revokes(&self, p: &Payload, project_domain: Option<&str>) -> bool {
        let hit = |v: Option<&Vec<RevocationEvent>>| {
            v.is_some_and(|es| es.iter().any(|e| e.matches(p, project_domain)))
        };
        let project = match &p.s {
            ScopeRef::Project(id) => self.by_project.get(id),
            _ => None,
        };
        p.a.first().is_some_and(|a| hit(self.by_audit.get(a)))
            || hit(self.by_user.get(&p.u))
            || hit(project)
            || p.c.as_ref().is_some_and(|c| hit(self.by_app_cred.get(c)))
            || p.t.as_ref().is_some_and(|t| hit(self.by_trust.get(t)))
            || self.rest.iter().any(|e| e.matches(p, project_domain))
    }
}

#[cfg(test)]
mod revocations_tests {
    use super::*;

    #[test]
    fn index_finds_every_kind_of_event() {
        let k = Key::generate(0);
        let p = Payload {
            k: k.id.clone(),
            u: "u1".into(),
            m: vec![],
            s: ScopeRef::Project("p1".into()),
            e: 10,
            i: 5,
            a: vec!["a1".into()],
            c: Some("c1".into()),
            t: Some("t1".into()),
        };
        let ev = |f: fn(&mut RevocationEvent)| {
            let mut e = RevocationEvent {
                issued_before: 5,
                ..Default::default()
            };
            f(&mut e);
            Revocations::new(vec![e])
        };
        assert!(!Revocations::new(vec![]).revokes(&p, Some("d")));
        assert!(ev(|e| e.audit_id = Some("a1".into())).revokes(&p, None));
        assert!(!ev(|e| e.audit_id = Some("a2".into())).revokes(&p, None));
        assert!(ev(|e| e.user_id = Some("u1".into())).revokes(&p, None));
        assert!(ev(|e| e.project_id = Some("p1".into())).revokes(&p, None));
        assert!(ev(|e| e.app_cred_id = Some("c1".into())).revokes(&p, None));
        assert!(ev(|e| e.trust_id = Some("t1".into())).revokes(&p, None));
        assert!(!ev(|e| e.trust_id = Some("t2".into())).revokes(&p, None));
        let untrusted = Payload {
            t: None,
            ..p.clone()
        };
        assert!(!ev(|e| e.trust_id = Some("t1".into())).revokes(&untrusted, None));
        assert!(ev(|e| e.domain_id = Some("d".into())).revokes(&p, Some("d")));
        assert!(!ev(|e| e.domain_id = Some("d".into())).revokes(&p, Some("x")));
    }
}
