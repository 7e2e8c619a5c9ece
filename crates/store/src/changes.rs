//! The change log: `(revision, seq, kind, id, op)` rows written in the same transaction as the
//! mutation they describe. The table is the truth; the in-process broadcast only wakes watchers.

use serde::{Deserialize, Serialize};

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "create" => Some(Op::Create),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The global revision of the transaction that made the change.
    pub revision: i64,
    /// Order within that transaction.
    pub seq: i64,
    /// Resource kind, e.g. `identity.user`.
    pub kind: String,
    /// Resource id.
    pub id: String,
    pub op: Op,
}
