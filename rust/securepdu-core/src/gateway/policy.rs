//! Routes and who may use them: pure decisions, no I/O.
//!
//! A route is chosen by the called AE title of the A-ASSOCIATE-RQ; its policy
//! (peer networks, client certificate common names, calling AE titles) is then
//! checked in that order. Each refusal carries the A-ASSOCIATE-RJ of PS3.8
//! Table 9-21 that fits and a sentence for the log.

use std::fmt;
use std::net::IpAddr;

use crate::integrity::IntegrityConfig;
use crate::pdu::AssociateRj;
use crate::scp::{common_name, Network};
use crate::tls::TlsClient;

/// Where associations for one called AE title go, and who may send them.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name for logs and counters.
    pub name: String,
    /// The called AE title this route serves; `None`: any (a default route,
    /// used when no route names the called AE title).
    pub called_ae: Option<String>,
    /// Onward peer: host name or address (IPv4 or IPv6).
    pub to_host: String,
    /// Onward peer's port.
    pub to_port: u16,
    /// Called AE title proposed onward; `None`: the one the peer called.
    pub to_called_ae: Option<String>,
    /// Calling AE titles allowed; empty: any.
    pub allowed_calling_aes: Vec<String>,
    /// Networks peers may connect from; empty: any.
    pub allowed_networks: Vec<Network>,
    /// Common names (CN) of verified client certificates allowed; empty: any
    /// (and no certificate needed).
    pub allowed_cert_cns: Vec<String>,
    /// TLS towards the onward peer (`None`: plain TCP).
    pub tls: Option<TlsClient>,
    /// securepdu integrity towards the onward peer (`None`: off).
    pub integrity: Option<IntegrityConfig>,
}

impl Route {
    /// A route to `host`:`port` for any called AE title, open to everyone.
    pub fn to(name: &str, host: &str, port: u16) -> Self {
        Self {
            name: name.to_owned(),
            called_ae: None,
            to_host: host.to_owned(),
            to_port: port,
            to_called_ae: None,
            allowed_calling_aes: Vec::new(),
            allowed_networks: Vec::new(),
            allowed_cert_cns: Vec::new(),
            tls: None,
            integrity: None,
        }
    }

    /// `host:port` of the onward peer, IPv6 in brackets.
    pub fn destination(&self) -> String {
        if self.to_host.contains(':') && !self.to_host.starts_with('[') {
            format!("[{}]:{}", self.to_host, self.to_port)
        } else {
            format!("{}:{}", self.to_host, self.to_port)
        }
    }
}

/// Why an association was refused, with the A-ASSOCIATE-RJ sent for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The A-ASSOCIATE-RJ (result, source, reason).
    pub rj: AssociateRj,
    /// Why, for the log.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (A-ASSOCIATE-RJ {}/{}/{})",
            self.reason, self.rj.result, self.rj.source, self.rj.reason
        )
    }
}

/// Rejected-permanent (1), service-user (1), with `reason` (PS3.8 Table 9-21):
/// 1 no-reason-given, 3 calling-AE-title-not-recognized,
/// 7 called-AE-title-not-recognized.
fn permanent(reason: u8, why: String) -> Refusal {
    Refusal {
        rj: AssociateRj {
            result: 1,
            source: 1,
            reason,
        },
        reason: why,
    }
}

/// The answer when the onward peer cannot be reached or refuses the TLS
/// handshake: rejected-transient (2), service-user (1), no-reason-given (1).
/// Transient because the receiver may come back, so a retry later is right;
/// service-user because, seen through the gateway, it is the called
/// application that is missing. Table 9-21's only other transient choices
/// belong to the presentation service provider (2/3/1 temporary congestion,
/// 2/3/2 local limit exceeded) and would blame the gateway's own capacity,
/// which would mislead whoever reads the sender's log.
pub fn onward_unavailable(why: String) -> Refusal {
    Refusal {
        rj: AssociateRj {
            result: 2,
            source: 1,
            reason: 1,
        },
        reason: why,
    }
}

/// The route for `called_ae`: the first naming it, else the first default
/// route; otherwise called-AE-title-not-recognized (1/1/7).
pub fn select_route<'a>(routes: &'a [Route], called_ae: &str) -> Result<&'a Route, Refusal> {
    let called = called_ae.trim();
    routes
        .iter()
        .find(|r| r.called_ae.as_deref().is_some_and(|ae| ae.trim() == called))
        .or_else(|| routes.iter().find(|r| r.called_ae.is_none()))
        .ok_or_else(|| permanent(7, format!("no route for called AE title {called:?}")))
}

/// Whether `route` admits a peer at `ip` with client certificate `subject`
/// (verified, when TLS is on) calling as `calling_ae`.
pub fn admit(
    route: &Route,
    ip: IpAddr,
    subject: Option<&str>,
    calling_ae: &str,
) -> Result<(), Refusal> {
    if !route.allowed_networks.is_empty() && !route.allowed_networks.iter().any(|n| n.contains(ip))
    {
        // Table 9-21 has no reason for an address; the log says which.
        return Err(permanent(
            1,
            format!(
                "address {ip} is not in an allowed network of route {}",
                route.name
            ),
        ));
    }
    if !route.allowed_cert_cns.is_empty() {
        let cn = subject.and_then(common_name);
        let allowed = cn.is_some_and(|cn| route.allowed_cert_cns.iter().any(|a| a == cn));
        if !allowed {
            let what = match (subject, cn) {
                (None, _) => "no client certificate".to_owned(),
                (Some(s), None) => format!("client certificate {s:?} has no CN"),
                (Some(_), Some(cn)) => format!("client certificate CN {cn:?} is not allowed"),
            };
            return Err(permanent(1, format!("{what} on route {}", route.name)));
        }
    }
    let calling = calling_ae.trim();
    if !route.allowed_calling_aes.is_empty()
        && !route
            .allowed_calling_aes
            .iter()
            .any(|a| a.trim() == calling)
    {
        return Err(permanent(
            3,
            format!(
                "calling AE title {calling:?} is not allowed on route {}",
                route.name
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<Route> {
        let mut pacs = Route::to("pacs", "10.0.0.5", 104);
        pacs.called_ae = Some("PACS".into());
        pacs.allowed_calling_aes = vec!["CT1".into()];
        pacs.allowed_networks = vec![
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let mut lab = Route::to("lab", "::1", 11112);
        lab.called_ae = Some("LAB".into());
        lab.allowed_cert_cns = vec!["site-b".into()];
        vec![pacs, lab]
    }

    #[test]
    fn routing_by_called_ae() {
        let mut rs = routes();
        assert_eq!(select_route(&rs, "PACS ").unwrap().name, "pacs");
        assert_eq!(select_route(&rs, "LAB").unwrap().name, "lab");
        let rj = select_route(&rs, "OTHER").unwrap_err();
        assert_eq!((rj.rj.result, rj.rj.source, rj.rj.reason), (1, 1, 7));
        assert!(rj.reason.contains("OTHER"));
        rs.push(Route::to("default", "127.0.0.1", 4242));
        assert_eq!(select_route(&rs, "OTHER").unwrap().name, "default");
        assert_eq!(select_route(&rs, "PACS").unwrap().name, "pacs");
        assert_eq!(rs[1].destination(), "[::1]:11112");
        assert_eq!(rs[2].destination(), "127.0.0.1:4242");
    }

    #[test]
    fn policy_refusals() {
        let rs = routes();
        let (pacs, lab) = (&rs[0], &rs[1]);
        let ok: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(admit(pacs, ok, None, "CT1").is_ok());
        assert!(admit(pacs, "2001:db8::9".parse().unwrap(), None, "CT1").is_ok());
        assert!(admit(pacs, "::ffff:192.0.2.1".parse().unwrap(), None, "CT1").is_ok());
        let r = admit(pacs, "198.51.100.1".parse().unwrap(), None, "CT1").unwrap_err();
        assert_eq!((r.rj.result, r.rj.source, r.rj.reason), (1, 1, 1));
        let r = admit(pacs, ok, None, "MR9").unwrap_err();
        assert_eq!((r.rj.result, r.rj.source, r.rj.reason), (1, 1, 3));
        // Certificates: the CN must be listed; no certificate is refused.
        assert!(admit(lab, ok, Some("O=Hospital,CN=site-b"), "ANY").is_ok());
        for subject in [None, Some("CN=site-c"), Some("O=NoCn")] {
            let r = admit(lab, ok, subject, "ANY").unwrap_err();
            assert_eq!(
                (r.rj.result, r.rj.source, r.rj.reason),
                (1, 1, 1),
                "{subject:?}"
            );
        }
        let r = onward_unavailable("down".into());
        assert_eq!((r.rj.result, r.rj.source, r.rj.reason), (2, 1, 1));
        assert!(r.to_string().contains("2/1/1"));
    }
}
