//! Who may associate: peer networks, calling and called AE titles, client
//! certificate identities and user identity (PS3.7 D.3.3.7), checked in that
//! order before presentation contexts are negotiated. Each refusal carries the
//! A-ASSOCIATE-RJ result, source and reason of PS3.8 Table 9-21 that fits, and
//! a sentence for the log.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::{ScpConfig, StoreHandler};
use crate::pdu::{AssociateRj, AssociateRq, UserIdentityAc};
use crate::tls::PeerCertificate;

/// An IPv4 or IPv6 network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`;
/// a bare address is a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A network that is not valid CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a network in CIDR notation (e.g. 192.0.2.0/24 or 2001:db8::/32): {why}")]
pub struct InvalidNetwork {
    text: String,
    why: &'static str,
}

impl FromStr for Network {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |why| InvalidNetwork {
            text: text.to_owned(),
            why,
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| fail("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().map_err(|_| fail("bad prefix length"))?,
        };
        if prefix > max {
            return Err(fail("prefix length too long for the address family"));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Network {
    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let drop = u32::from(bits.saturating_sub(prefix));
    a.checked_shr(drop).unwrap_or(0) == b.checked_shr(drop).unwrap_or(0)
}

/// The identity a peer asserted in its A-ASSOCIATE-RQ (PS3.7 D.3.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// 1 username, 2 username and passcode, 3 Kerberos service ticket, 4 SAML
    /// assertion, 5 JSON Web Token.
    pub kind: u8,
    /// The username, ticket, assertion or token.
    pub primary: Vec<u8>,
    /// The passcode (kind 2); empty otherwise.
    pub secondary: Vec<u8>,
    /// Whether the peer asked for a positive response.
    pub response_requested: bool,
}

/// What the verification callback decided about a user identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserVerdict {
    /// Accept. `response` is the server response returned when the peer asked
    /// for one (a Kerberos server ticket, SAML response or JWT; empty for
    /// usernames and passcodes).
    Accept {
        /// Server response.
        response: Vec<u8>,
    },
    /// Refuse the association, with a reason for the log.
    Reject(String),
}

/// A refusal: the A-ASSOCIATE-RJ to send and why, for the log.
pub(super) type Refusal = (AssociateRj, String);

/// Rejected-permanent by the service user (PS3.8 Table 9-21) with `reason`:
/// 1 no-reason-given, 3 calling-AE-title-not-recognized.
fn permanent(reason: u8, why: String) -> Refusal {
    (
        AssociateRj {
            result: 1,
            source: 1,
            reason,
        },
        why,
    )
}

/// The checks that do not depend on presentation contexts (the called AE title
/// and application context are [`super::negotiate`]'s): peer network, calling
/// AE title, certificate identity, user identity. On
/// success, the user identity answer to put in the A-ASSOCIATE-AC, if any.
pub(super) fn admit(
    config: &ScpConfig,
    handler: &dyn StoreHandler,
    peer: SocketAddr,
    rq: &AssociateRq,
    cert: Option<&PeerCertificate>,
) -> Result<Option<UserIdentityAc>, Refusal> {
    if !config.allowed_networks.is_empty()
        && !config
            .allowed_networks
            .iter()
            .any(|n| n.contains(peer.ip()))
    {
        // Table 9-21 has no reason for an address; the log says which.
        return Err(permanent(
            1,
            format!("address {} is not in an allowed network", peer.ip()),
        ));
    }
    let calling = rq.calling_ae.trim();
    if !config.calling_ae_allow_list.is_empty()
        && !config
            .calling_ae_allow_list
            .iter()
            .any(|a| a.trim() == calling)
    {
        return Err(permanent(
            3,
            format!("calling AE title {calling:?} is not allowed"),
        ));
    }
    if !super::identity_allows(config, cert, calling) {
        return Err(permanent(
            3,
            format!("the client certificate may not use calling AE title {calling:?}"),
        ));
    }
    user_identity(config, handler, peer, rq)
}

/// User identity negotiation: handed to the handler when the peer sent one;
/// required when the configuration says so.
fn user_identity(
    config: &ScpConfig,
    handler: &dyn StoreHandler,
    peer: SocketAddr,
    rq: &AssociateRq,
) -> Result<Option<UserIdentityAc>, Refusal> {
    let Some(item) = &rq.user_info.user_identity_rq else {
        if config.require_user_identity {
            return Err(permanent(1, "no user identity given (required)".into()));
        }
        return Ok(None);
    };
    let identity = UserIdentity {
        kind: item.identity_type,
        primary: item.primary_field.clone(),
        secondary: item.secondary_field.clone(),
        response_requested: item.positive_response_requested,
    };
    match handler.verify_user(peer, &identity) {
        // No verifier: the identity is not checked, and nothing is answered
        // (PS3.7 D.3.3.7: an acceptor may ignore it), unless it is required.
        None if config.require_user_identity => Err(permanent(
            1,
            "user identity required but nothing verifies it".into(),
        )),
        None => Ok(None),
        Some(UserVerdict::Reject(why)) => {
            Err(permanent(1, format!("user identity refused: {why}")))
        }
        Some(UserVerdict::Accept { response }) => {
            Ok(identity.response_requested.then_some(UserIdentityAc {
                server_response: response,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        assert!(net("192.0.2.0/24").contains(ip("192.0.2.200")));
        assert!(!net("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.1")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("::/0").contains(ip("::1")));
        assert!(net("::1").contains(ip("::1")) && !net("::1").contains(ip("::2")));
        assert!(net("198.18.0.7").contains(ip("198.18.0.7")));
        assert_eq!(net("2001:2::/48").to_string(), "2001:2::/48");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "fe80::/x",
            "host/8",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
