//! Where a stream may send events: destinations on loopback, link-local,
//! private or otherwise special addresses are refused (a stream must not
//! become a way into the server's own network), unless the operator lists
//! them in the `stream_allow_private` setting. The check runs when a
//! stream is created or changed and again before every connection, on the
//! addresses the name resolves to then, and the connection goes to exactly
//! those checked addresses (no DNS rebinding past the check).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Networks the operator allows although they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<(IpAddr, u8)>);

impl AllowList {
    /// `127.0.0.1/32,10.0.0.0/8,::1` (an address alone is one host); empty: none.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (address, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let ip: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix length must be 0 to {max}"))?,
                None => max,
            };
            networks.push((ip, bits));
        }
        Ok(Self(networks))
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|(network, bits)| contains(*network, *bits, ip))
    }

    /// The list as the setting writes it.
    pub fn to_setting(&self) -> String {
        self.0
            .iter()
            .map(|(ip, bits)| format!("{ip}/{bits}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn contains(network: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Why an address is not public, or `None` when it is.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => not_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return not_public_v4(v4);
            }
            not_public_v6(v6)
        }
    }
}

fn not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("documentation or benchmarking")
    } else {
        None
    }
}

fn not_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("documentation")
    } else {
        None
    }
}

/// A destination URL taken apart: what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub port: u16,
}

/// Checks the form of a destination URL: `http://` or `https://` with a
/// host, no credentials in it. The addresses are checked by [`resolve`].
pub fn parse_url(url: &str) -> Result<Destination, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "url: the scheme must be http or https, not {other:?}"
            ))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: credentials in the URL are not allowed".into());
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    Ok(Destination { host, port })
}

/// The addresses `destination` resolves to now, each allowed: public, or
/// on the allow-list. Refused (naming the address and why) if any is not.
pub async fn resolve(
    destination: &Destination,
    allow: &AllowList,
) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((destination.host.as_str(), destination.port))
            .await
            .map_err(|e| format!("url: cannot resolve {}: {e}", destination.host))?
            .collect();
    if addresses.is_empty() {
        return Err(format!("url: {} resolves to no address", destination.host));
    }
    check_addresses(&destination.host, &addresses, allow)?;
    Ok(addresses)
}

/// Every address must be public or allowed.
pub fn check_addresses(
    host: &str,
    addresses: &[SocketAddr],
    allow: &AllowList,
) -> Result<(), String> {
    for address in addresses {
        let ip = address.ip();
        if let Some(why) = not_public(ip) {
            if !allow.allows(ip) {
                return Err(format!(
                    "url: {host} is {ip}, a {why} address; destinations must be public, unless \
                     the server's stream_allow_private setting lists them"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_addresses_are_not_public() {
        for (address, why) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("255.255.255.255", "broadcast, multicast or reserved"),
            ("224.0.0.1", "broadcast, multicast or reserved"),
            ("192.0.2.1", "documentation or benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private (unique local)"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            assert_eq!(not_public(ip(address)), Some(why), "{address}");
        }
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(not_public(ip(address)), None, "{address}");
        }
    }

    #[test]
    fn the_allow_list_lets_listed_networks_through() {
        let allow = AllowList::parse("127.0.0.1, 10.0.0.0/8,fd00::/8").unwrap();
        assert_eq!(allow.to_setting(), "127.0.0.1/32,10.0.0.0/8,fd00::/8");
        let check = |a: &str| {
            let address = SocketAddr::new(ip(a), 80);
            check_addresses("h", &[address], &allow)
        };
        assert!(check("127.0.0.1").is_ok());
        assert!(check("10.200.3.4").is_ok());
        assert!(check("fd12::1").is_ok());
        assert!(check("8.8.8.8").is_ok(), "public is always allowed");
        let refused = check("127.0.0.2").unwrap_err();
        assert!(
            refused.contains("127.0.0.2, a loopback address"),
            "{refused}"
        );
        assert!(refused.contains("stream_allow_private"), "{refused}");
        assert!(check("192.168.0.1").is_err());
        // One refused address among several refuses the destination.
        let mixed = [
            SocketAddr::new(ip("8.8.8.8"), 80),
            SocketAddr::new(ip("169.254.169.254"), 80),
        ];
        assert!(check_addresses("h", &mixed, &allow).is_err());
        assert!(AllowList::parse("").unwrap().0.is_empty());
        assert!(AllowList::parse("10.0.0.0/33")
            .unwrap_err()
            .contains("0 to 32"));
        assert!(AllowList::parse("nope").unwrap_err().contains("not an IP"));
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        let local = parse_url("http://localhost:9/hook").unwrap();
        assert_eq!(local.port, 9);
        let refused = resolve(&local, &AllowList::default()).await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        let allowed = AllowList::parse("127.0.0.0/8,::1").unwrap();
        assert!(!resolve(&local, &allowed).await.unwrap().is_empty());
        let v6 = parse_url("http://[::1]:8080/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        assert_eq!(
            parse_url("https://example.com/").unwrap(),
            Destination {
                host: "example.com".into(),
                port: 443
            }
        );
        assert!(parse_url("ftp://example.com/")
            .unwrap_err()
            .contains("scheme"));
        assert!(parse_url("http://user:pw@example.com/")
            .unwrap_err()
            .contains("credentials"));
        assert!(parse_url("not a url").unwrap_err().contains("not a URL"));
        assert_eq!(
            parse_url("http://example.com/x").unwrap(),
            Destination {
                host: "example.com".into(),
                port: 80
            }
        );
    }
}
