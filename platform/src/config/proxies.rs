//! Who the client is when the platform sits behind proxies: `X-Forwarded-For` is believed
//! only as far as the configured proxies wrote it. Each proxy appends the address it saw,
//! so the client is the rightmost address that no trusted proxy claims: never the leftmost,
//! which the client writes itself. Rate limits count IPv6 clients by their /64, since one
//! host commonly holds a whole /64.

use std::net::{IpAddr, SocketAddr};

/// The proxies in front of the platform (`WEBSPLAT_TRUSTED_PROXIES`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustedProxies {
    /// None: the TCP peer is the client and `X-Forwarded-For` is ignored.
    #[default]
    None,
    /// This many proxies, one behind the other, each appending what it saw.
    Hops(u8),
    /// Proxies at these networks, wherever they sit in the chain.
    Networks(Vec<Network>),
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(raw: &str) -> Result<Network, String> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let base: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not an address or a CIDR block"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} has a prefix length beyond {max}"))?,
        };
        Ok(Network { base, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => same_prefix(
                u128::from(base.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                same_prefix(base.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    shift >= 128 || (a >> shift) == (b >> shift)
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// `""`/`none`, a hop count (`1`), or CIDR blocks separated by commas.
    pub fn parse(raw: &str) -> Result<TrustedProxies, String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.eq_ignore_ascii_case("none") {
            return Ok(TrustedProxies::None);
        }
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            return match raw.parse::<u8>() {
                Ok(0) => Ok(TrustedProxies::None),
                Ok(n) if n <= 16 => Ok(TrustedProxies::Hops(n)),
                _ => Err(format!("{raw} hops is more than the 16 this allows")),
            };
        }
        raw.split(',')
            .map(Network::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies::Networks)
    }

    /// The client behind `peer` (the TCP peer), given the `X-Forwarded-For` it sent.
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer.map(unmapped);
        let hops: Vec<Option<IpAddr>> = match (self, forwarded_for) {
            (TrustedProxies::None, _) | (_, None) => return peer,
            (_, Some(chain)) => chain.split(',').map(hop).collect(),
        };
        // Right to left: the peer, then what each proxy appended.
        let mut from_right = std::iter::once(peer).chain(hops.into_iter().rev());
        let mut nearest = from_right.next().flatten();
        match self {
            TrustedProxies::None => nearest,
            TrustedProxies::Hops(n) => {
                for _ in 0..*n {
                    match from_right.next() {
                        Some(Some(ip)) => nearest = Some(ip),
                        // Garbage where an address belongs: the proxy that received it
                        // is as far as the chain can be believed.
                        Some(None) => return nearest,
                        None => return nearest,
                    }
                }
                nearest
            }
            TrustedProxies::Networks(networks) => {
                let trusted = |ip: IpAddr| networks.iter().any(|n| n.contains(ip));
                while let Some(ip) = nearest.filter(|ip| trusted(*ip)) {
                    match from_right.next() {
                        Some(Some(next)) => nearest = Some(next),
                        Some(None) | None => return Some(ip),
                    }
                }
                nearest
            }
        }
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(unmapped)
}

/// The rate limits' name for a client: its address, or for IPv6 its /64.
pub fn rate_key(ip: IpAddr) -> String {
    match unmapped(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let peer = ip("10.0.0.2");
        let chain = Some("6.6.6.6, 203.0.113.9");
        assert_eq!(TrustedProxies::None.client(peer, chain), peer);
        assert_eq!(
            TrustedProxies::Hops(1).client(peer, chain),
            ip("203.0.113.9")
        );
        assert_eq!(TrustedProxies::Hops(2).client(peer, chain), ip("6.6.6.6"));
        assert_eq!(TrustedProxies::Hops(5).client(peer, chain), ip("6.6.6.6"));
        assert_eq!(TrustedProxies::Hops(1).client(peer, None), peer);
        let nets = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").expect("parse");
        assert_eq!(nets.client(peer, chain), ip("203.0.113.9"));
        assert_eq!(
            nets.client(peer, Some("6.6.6.6, 203.0.113.9, 192.168.1.1")),
            ip("203.0.113.9")
        );
        // A peer that is no trusted proxy: its header means nothing.
        assert_eq!(nets.client(ip("198.51.100.1"), chain), ip("198.51.100.1"));
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        assert_eq!(
            TrustedProxies::Hops(2).client(peer, Some("x, 203.0.113.9")),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::Hops(1).client(peer, Some("203.0.113.9:4711")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn settings_parse_or_say_what_is_wrong() {
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::None));
        assert_eq!(TrustedProxies::parse("2"), Ok(TrustedProxies::Hops(2)));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
        assert!(TrustedProxies::parse("99").is_err());
        let v6 = Network::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::5".parse().expect("ip")));
        assert!(
            Network::parse("0.0.0.0/0")
                .expect("all")
                .contains("8.8.8.8".parse().expect("ip"))
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_slash_64() {
        let a = rate_key("2001:db8:7:9::1".parse().expect("ip"));
        let b = rate_key("2001:db8:7:9:ffff::2".parse().expect("ip"));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:7:9::/64");
        assert_eq!(
            rate_key("::ffff:192.0.2.1".parse().expect("ip")),
            "192.0.2.1"
        );
    }
}
