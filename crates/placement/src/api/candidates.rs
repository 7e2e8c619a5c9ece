//! `GET /allocation_candidates` (1.10): parses the request groups ([`crate::query`]), runs
//! the search ([`crate::candidates`]) through [`PlacementService::allocation_candidates`] and
//! renders `allocation_requests` and `provider_summaries` in the shape of the microversion
//! (list allocations before 1.12, traits from 1.17, every inventory class from 1.27, tree
//! fields and whole trees from 1.29, `mappings` from 1.34).

use super::need;
use crate::candidates::{Candidate, Snapshot};
use crate::error::PlacementResult;
use crate::extract::{Auth, Mv, Pairs};
use crate::query::{parse_candidates, CandidateRequest};
use crate::version::Microversion;
use crate::PlacementService;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

pub fn routes() -> Router<PlacementService> {
    Router::new().route("/allocation_candidates", get(allocation_candidates_list))
}

pub async fn allocation_candidates_list(
    State(svc): State<PlacementService>,
    _auth: Auth,
    Mv(mv): Mv,
    Pairs(pairs): Pairs,
) -> PlacementResult<Response> {
    need(mv, 10)?;
    let req = parse_candidates(&pairs, mv)?;
    let (found, snap) = svc.allocation_candidates(&req, mv).await?;
    Ok(axum::Json(view(&snap, &req, &found, mv)).into_response())
}

/// The response body for `found` at `mv`.
pub fn view(
    snap: &Snapshot,
    req: &CandidateRequest,
    found: &[Candidate],
    mv: Microversion,
) -> Value {
    let requests: Vec<Value> = found
        .iter()
        .map(|c| {
            let allocations = if mv.at_least(12) {
                let m: Map<String, Value> = c
                    .allocations
                    .iter()
                    .map(|(rp, r)| (rp.clone(), json!({"resources": r})))
                    .collect();
                Value::Object(m)
            } else {
                Value::Array(
                    c.allocations
                        .iter()
                        .map(|(rp, r)| json!({"resource_provider": {"uuid": rp}, "resources": r}))
                        .collect(),
                )
            };
            let mut v = json!({"allocations": allocations});
            if mv.at_least(34) {
                v["mappings"] = json!(c.mappings);
            }
            v
        })
        .collect();
    // The providers to summarise: those allocated from, and from 1.29 every provider of their
    // trees (and of the trees of resourceless groups' providers).
    let mut providers: BTreeSet<&str> = BTreeSet::new();
    for c in found {
        providers.extend(c.allocations.keys().map(|s| s.as_str()));
        providers.extend(c.mappings.values().flatten().map(|s| s.as_str()));
    }
    if mv.at_least(29) {
        let roots: BTreeSet<&str> = providers.iter().filter_map(|p| snap.root_of(p)).collect();
        for p in snap.providers.values() {
            if roots.contains(p.provider.root_uuid.as_str()) {
                providers.insert(p.provider.uuid.as_str());
            }
        }
    }
    let requested = req.classes();
    let mut summaries = Map::new();
    for uuid in providers {
        let Some(p) = snap.get(uuid) else { continue };
        let mut resources = Map::new();
        for (rc, inv) in &p.inventories {
            if !mv.at_least(27) && !requested.contains(rc) {
                continue;
            }
            resources.insert(
                rc.clone(),
                json!({
                    "capacity": inv.capacity(),
                    "used": p.used.get(rc).copied().unwrap_or(0),
                }),
            );
        }
        let mut s = json!({"resources": resources});
        if mv.at_least(17) {
            s["traits"] = json!(p.traits);
        }
        if mv.at_least(29) {
            s["parent_provider_uuid"] = json!(p.provider.parent_uuid);
            s["root_provider_uuid"] = json!(p.provider.root_uuid);
        }
        summaries.insert(uuid.to_string(), s);
    }
    json!({"allocation_requests": requests, "provider_summaries": summaries})
}
