//! TCP transport: host parsing and resolution, connecting, dual-stack listening,
//! socket tuning. One of the few modules of this crate that does I/O.
//!
//! - [`resolve`] turns "127.0.0.1", "::1", "[::1]", "fe80::1%eth0" or a host
//!   name into socket addresses;
//! - [`connect`] tries each of them in turn within one connect timeout;
//! - [`listen`] binds "::" dual-stack by default (IPv4 peers arrive as
//!   `::ffff:a.b.c.d` and are reported as IPv4 by [`normalize_addr`]), falling back
//!   to 0.0.0.0 where IPv6 is unavailable;
//! - [`tune`]: TCP_NODELAY (a DIMSE message is written as several small writes, so
//!   Nagle plus delayed ACK would stall every command by up to 40 ms) and
//!   large socket buffers for long transfers.

mod error;

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

pub use error::{describe_abort, describe_reject, NetError, Timeouts};

/// Socket send and receive buffer size we ask for (best effort: the kernel may
/// cap it, e.g. at `net.core.rmem_max`).
pub const SOCKET_BUFFER_SIZE: usize = 4 << 20;

/// Listen backlog.
const BACKLOG: i32 = 128;

/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_IFNAME_LEN: usize = 15;

/// Resolves `host` and `port` to the addresses to try, in order.
///
/// `host` may be an IPv4 address, an IPv6 literal with or without brackets, an
/// IPv6 literal with a zone (`fe80::1%eth0` by interface name, or `fe80::1%2` by
/// index), or a host name (resolved by the system resolver).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
    let host = host.trim();
    if host.is_empty() {
        return Err(NetError::InvalidArgument("empty host".into()));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Some((addr, zone)) = bare.split_once('%') {
        let ip: Ipv6Addr = addr.parse().map_err(|_| {
            NetError::InvalidArgument(format!("{host:?}: a zone (%...) needs an IPv6 address"))
        })?;
        let scope = scope_id(zone)?;
        return Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))]);
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if bare.len() != host.len() {
        return Err(NetError::InvalidArgument(format!(
            "{host:?} is not an IPv6 address"
        )));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            NetError::Io(io::Error::new(
                e.kind(),
                format!("cannot resolve host {host:?}: {e}"),
            ))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(NetError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("host {host:?} has no address"),
        )));
    }
    Ok(addrs)
}

/// The scope ID of an IPv6 zone: a number, or an interface name looked up in
/// `/sys/class/net/<name>/ifindex` (Linux).
pub fn scope_id(zone: &str) -> Result<u32, NetError> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    // The name becomes part of a path: allow only what an interface name can hold.
    let valid = !zone.is_empty()
        && zone.len() <= MAX_IFNAME_LEN
        && zone != "."
        && zone != ".."
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if !valid {
        return Err(NetError::InvalidArgument(format!(
            "{zone:?} is not a network interface name"
        )));
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{zone}/ifindex")).map_err(|e| {
        NetError::InvalidArgument(format!("unknown network interface {zone:?}: {e}"))
    })?;
    text.trim()
        .parse()
        .map_err(|_| NetError::InvalidArgument(format!("bad ifindex for interface {zone:?}")))
}

/// Connects to `host`:`port`, trying each resolved address in turn; all attempts
/// together take at most `timeout`. The stream is [`tune`]d.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, NetError> {
    let addrs = resolve(host, port)?;
    let deadline = Instant::now().checked_add(timeout);
    let mut last_err: Option<io::Error> = None;
    for addr in addrs {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                tune(&stream);
                return Ok(stream);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(match last_err {
        Some(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            NetError::Timeout {
                what: "TCP connect",
            }
        }
        Some(e) => NetError::Io(io::Error::new(
            e.kind(),
            format!("cannot connect to {host} port {port}: {e}"),
        )),
        None => NetError::Timeout {
            what: "TCP connect",
        },
    })
}

/// TCP_NODELAY and large buffers, best effort (a failure only costs speed).
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = SockRef::from(stream);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER_SIZE);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER_SIZE);
}

/// Listens on `host`:`port` (port 0 picks a free port).
///
/// `host` "::" or "" binds dual-stack (IPV6_V6ONLY off): one socket takes IPv4
/// and IPv6; if IPv6 is unavailable it binds 0.0.0.0 instead. Any other host is
/// resolved and its first address bound. SO_REUSEADDR is set so a restarted
/// server can bind while old connections linger in TIME_WAIT.
pub fn listen(host: &str, port: u16) -> Result<TcpListener, NetError> {
    let host = host.trim();
    if host.is_empty() || host == "::" || host == "[::]" {
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        return match bind(any6, true) {
            Ok(l) => Ok(l),
            Err(_) => Ok(bind(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                false,
            )?),
        };
    }
    let addrs = resolve(host, port)?;
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match bind(addr, false) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(NetError::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no address to listen on")
    })))
}

fn bind(addr: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    socket.set_reuse_address(true)?;
    // Accepted sockets inherit the buffer sizes; the receive buffer must be set
    // before the handshake for the window scale to allow it.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_SIZE);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_SIZE);
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Accepts connections on `listener` until `stop` is set: each goes to
/// `on_conn` with its peer's address ([`normalize_addr`]ed), and `between` runs
/// after every wake-up. The listener needs a read timeout (accept honours it on
/// Linux) for `stop` to be seen while nobody connects.
pub fn accept_until(
    listener: &TcpListener,
    stop: &AtomicBool,
    mut on_conn: impl FnMut(TcpStream, SocketAddr),
    mut between: impl FnMut(),
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, addr)) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                on_conn(stream, normalize_addr(addr));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => {}
            // Out of file descriptors and the like: back off, keep serving.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
        between();
    }
}

/// `::ffff:a.b.c.d` (an IPv4 peer on a dual-stack socket) as the IPv4 address it is.
pub fn normalize_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// An address to connect to in order to reach a listener bound to `bound`:
/// the unspecified address becomes the loopback of its family.
pub fn connectable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound.port())
        }
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
        }
        _ => bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_ipv6_literals() {
        assert_eq!(
            resolve("127.0.0.1", 104).unwrap(),
            vec!["127.0.0.1:104".parse().unwrap()]
        );
        assert_eq!(
            resolve("::1", 104).unwrap(),
            vec!["[::1]:104".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", 104).unwrap(),
            vec!["[::1]:104".parse().unwrap()]
        );
        assert_eq!(
            resolve(" 10.0.0.1 ", 1).unwrap(),
            vec!["10.0.0.1:1".parse().unwrap()]
        );
    }

    #[test]
    fn zones() {
        let a = resolve("fe80::1%3", 11112).unwrap();
        match a.as_slice() {
            [SocketAddr::V6(v6)] => {
                assert_eq!(v6.scope_id(), 3);
                assert_eq!(v6.port(), 11112);
            }
            other => panic!("{other:?}"),
        }
        let lo = resolve("[fe80::1%lo]", 1).unwrap();
        match lo.as_slice() {
            [SocketAddr::V6(v6)] => assert!(v6.scope_id() > 0),
            other => panic!("{other:?}"),
        }
        for bad in [
            "fe80::1%../../etc",
            "fe80::1%",
            "fe80::1%no-such-if0",
            "10.0.0.1%1",
        ] {
            assert!(resolve(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_errors() {
        let a = resolve("localhost", 5).unwrap();
        assert!(a.iter().all(|a| a.ip().is_loopback() && a.port() == 5));
        assert!(resolve("", 1).is_err());
        assert!(resolve("[localhost]", 1).is_err());
        assert!(resolve("[::1", 1).is_err());
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let m: SocketAddr = "[::ffff:192.0.2.7]:4000".parse().unwrap();
        assert_eq!(normalize_addr(m), "192.0.2.7:4000".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(normalize_addr(v6), v6);
    }

    #[test]
    fn dual_stack_listener() {
        let l = listen("::", 0).unwrap();
        let addr = l.local_addr().unwrap();
        let target = connectable(addr);
        let _c = TcpStream::connect(target).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
    }
}
