//! What a server grants one authenticated peer.

use std::fmt;
use std::sync::Arc;

use super::PeerIdentity;
use crate::{NetRef, Object, Policy};

/// The root object, and optionally the [`Policy`], one peer gets.
///
/// Returned by the function given to
/// [`Server::serve_per_identity`](crate::Server::serve_per_identity) or
/// [`Builder::grant_per_identity`](crate::Builder::grant_per_identity), which
/// sees the peer's [`PeerIdentity`] once the handshake has authenticated it
/// and before the peer is accepted.
///
/// ```
/// # use tether::{Grant, NetRef, Policy};
/// # #[derive(Clone)] struct Notes;
/// # impl tether::Object for Notes { fn type_name(&self) -> &str { "Notes" } }
/// // Full access, with setattr allowed.
/// let admin = Grant::new(Notes).policy(Policy::default().allow_setattr(true));
/// // A read-only view (see `tether::restrict`), with the connection's policy.
/// let reader = Grant::from_ref(tether::restrict(&NetRef::new(Notes), &["list"]).unwrap());
/// ```
pub struct Grant {
    pub(crate) root: NetRef,
    pub(crate) policy: Option<Policy>,
}

impl Grant {
    /// Serve `root` to this peer.
    pub fn new<O: Object>(root: O) -> Grant {
        Grant::from_ref(NetRef::new(root))
    }

    /// Serve an object already in a `NetRef` (a [`restrict`](crate::restrict)ed
    /// view, say) to this peer.
    pub fn from_ref(root: NetRef) -> Grant {
        Grant { root, policy: None }
    }

    /// Use `policy` on this peer's connection instead of the one in its
    /// [`Config`](crate::Config).
    pub fn policy(mut self, policy: Policy) -> Grant {
        self.policy = Some(policy);
        self
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("root", &self.root)
            .field("policy", &self.policy)
            .finish()
    }
}

/// Decides, per peer identity (`None`: unauthenticated), what it gets;
/// `None` denies the peer.
pub(crate) type GrantFn = Arc<dyn Fn(Option<&PeerIdentity>) -> Option<Grant> + Send + Sync>;
