//! The guard on every request the server makes to a URL it was given (Web
//! Push endpoints, client logos, the alert webhook): by default only
//! `https` on public addresses, checked on the URL and again on every
//! address its name resolves to at connect time, never following a
//! redirect, bounded in time and in how much of the answer is read.
//!
//! A proxy is used only when the operator configures one
//! (`outbound_proxy`), never from `HTTPS_PROXY` and the like: a proxy
//! resolves names itself, past the resolver's check, so with one the target's
//! name is resolved and checked here before the proxy is asked to connect.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use reqwest::{dns, Url};

/// Which endpoints may be contacted.
///
/// By default only `https` endpoints on public addresses: a device must not
/// be able to make the server send requests into its own network. The
/// operator can allow specific hosts (a UnifiedPush distributor on the LAN,
/// a test receiver on loopback); only those may also use plain `http`.
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    allowed: Vec<(String, Option<u16>)>,
}

impl EndpointPolicy {
    pub fn new(allowed_hosts: &[String]) -> Self {
        let allowed = allowed_hosts
            .iter()
            .map(|entry| match entry.rsplit_once(':') {
                Some((host, port)) if port.parse::<u16>().is_ok() && !host.contains(':') => {
                    (host.trim_matches(['[', ']']).to_string(), port.parse().ok())
                }
                _ => (entry.trim_matches(['[', ']']).to_string(), None),
            })
            .collect();
        Self { allowed }
    }

    fn is_allowed(&self, host: &str, port: Option<u16>) -> bool {
        self.allowed
            .iter()
            .any(|(h, p)| h.eq_ignore_ascii_case(host) && (p.is_none() || *p == port))
    }

    fn host_listed(&self, host: &str) -> bool {
        self.allowed
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case(host))
    }

    /// Checks scheme and literal addresses; names are checked by the resolver.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().ok_or("the endpoint has no host")?;
        let host = host.trim_matches(['[', ']']);
        let port = url.port_or_known_default();
        let allowed = self.is_allowed(host, port);
        // An entry with a port admits that port only, for https as for
        // http: the resolver, which lets a listed name reach private
        // addresses, does not see the port, so it is held here.
        if !allowed && self.host_listed(host) {
            return Err(format!(
                "{host} is allowed only on the port(s) listed for it, not {}",
                port.map_or("this one".to_string(), |p| p.to_string())
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            "http" => return Err(format!("plain http endpoint not allowed ({host})")),
            other => return Err(format!("unsupported endpoint scheme {other}")),
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !allowed && !is_public(ip) {
                return Err(format!("endpoint address {ip} is not public"));
            }
        }
        Ok(())
    }
}

/// Whether an address is reachable on the public internet (not loopback,
/// private, link-local, shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // Prefixes that embed or translate to IPv4 (NAT64, 6to4, Teredo,
            // IPv4-compatible) could reach any IPv4 network, private ones
            // included, through a translator: never public here.
            let embeds_ipv4 = (s[0] == 0x0064 && s[1] == 0xff9b) // 64:ff9b::/96 and 64:ff9b:1::/48
                || s[0] == 0x2002 // 6to4 2002::/16
                || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo 2001::/32
                || s[..6].iter().all(|&x| x == 0); // IPv4-compatible ::/96
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || embeds_ipv4
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed inside sites)
                || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0)) // discard-only 100::/64
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// Resolves push endpoint names, dropping non-public addresses unless the
/// host is allowed: checked at connect time, so DNS cannot be used to
/// smuggle a private address past a check made earlier. The configured
/// proxy's own name (typically on the operator's network) is exempt.
pub struct SafeResolver {
    policy: Arc<EndpointPolicy>,
    proxy_host: Option<String>,
}

impl SafeResolver {
    pub fn new(policy: Arc<EndpointPolicy>) -> Self {
        Self {
            policy,
            proxy_host: None,
        }
    }
}

/// The addresses of `host` that `policy` lets the server reach.
async fn permitted_addresses(
    policy: &EndpointPolicy,
    host: &str,
) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, 0))
        .await?
        .filter(|a| policy.host_listed(host) || is_public(a.ip()))
        .collect())
}

impl dns::Resolve for SafeResolver {
    fn resolve(&self, name: dns::Name) -> dns::Resolving {
        let policy = self.policy.clone();
        let proxy_host = self.proxy_host.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            if proxy_host.as_deref() == Some(host.as_str()) {
                let addrs: Vec<SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                return Ok(Box::new(addrs.into_iter()) as dns::Addrs);
            }
            let addrs = permitted_addresses(&policy, &host).await?;
            if addrs.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as dns::Addrs)
        })
    }
}

/// The resolver's refusal: the endpoint's name only has non-public addresses.
#[derive(Debug)]
pub struct NotPublic(String);

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} has no public address", self.0)
    }
}

impl std::error::Error for NotPublic {}

pub fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cause = Some(err);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<T>() {
            return Some(found);
        }
        cause = c.source();
    }
    None
}

pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An HTTP client under `policy`: no redirects, `timeout` for connecting
/// and for the whole exchange, names resolved by [`SafeResolver`], through
/// `proxy` when the operator configured one and never otherwise.
pub fn guarded_client(
    policy: Arc<EndpointPolicy>,
    timeout: Duration,
    proxy: Option<&Url>,
) -> anyhow::Result<GuardedClient> {
    let resolver = SafeResolver {
        policy: policy.clone(),
        proxy_host: proxy.and_then(|p| p.host_str()).map(str::to_string),
    };
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("assent-server/", env!("CARGO_PKG_VERSION")));
    let builder = match proxy {
        // Only this one: `proxy` also turns off the proxies of the environment.
        Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy.clone()).context("outbound_proxy")?),
        // reqwest follows HTTP(S)_PROXY from the environment by default.
        None => builder.no_proxy(),
    };
    Ok(GuardedClient {
        http: builder.build().context("outbound HTTP client")?,
        policy,
        proxied: proxy.is_some(),
    })
}

/// An HTTP client whose every request goes through the outbound guard.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    http: reqwest::Client,
    policy: Arc<EndpointPolicy>,
    proxied: bool,
}

/// Why an outbound request did not get an answer.
#[derive(Debug)]
pub enum OutboundError {
    /// The guard refused the target: nothing was sent, no proxy was asked.
    Refused(String),
    TimedOut,
    Failed(String),
}

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundError::Refused(why) => write!(f, "refused: {why}"),
            OutboundError::TimedOut => f.write_str("timed out"),
            OutboundError::Failed(why) => f.write_str(why),
        }
    }
}

impl GuardedClient {
    pub fn get(&self, url: Url) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    pub fn post(&self, url: Url) -> reqwest::RequestBuilder {
        self.http.post(url)
    }

    /// Sends `request` if its target passes the guard: the URL always; with
    /// a proxy, also every address its name has now, checked before the
    /// proxy is asked to connect (without one, the resolver checks them at
    /// connect time).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OutboundError> {
        let request = request
            .build()
            .map_err(|e| OutboundError::Failed(root_cause(&e)))?;
        self.policy
            .check(request.url())
            .map_err(OutboundError::Refused)?;
        if self.proxied {
            let host = request
                .url()
                .host_str()
                .ok_or_else(|| OutboundError::Refused("the endpoint has no host".into()))?
                .trim_matches(['[', ']'])
                .to_string();
            if host.parse::<IpAddr>().is_err() {
                let all = tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| OutboundError::Failed(format!("resolving {host}: {e}")))?
                    .collect::<Vec<_>>();
                // Every address, not some: the proxy may pick any of them.
                let listed = self.policy.host_listed(&host);
                if all.is_empty() || !(listed || all.iter().all(|a| is_public(a.ip()))) {
                    return Err(OutboundError::Refused(NotPublic(host).to_string()));
                }
            }
        }
        self.http.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                OutboundError::TimedOut
            } else if let Some(refused) = find_cause::<NotPublic>(&e) {
                OutboundError::Refused(refused.to_string())
            } else {
                OutboundError::Failed(root_cause(&e))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "::10.0.0.1",
            "::7f00:1",
            "fec0::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_port_in_an_allow_list_entry_binds_https_too() {
        let policy = EndpointPolicy::new(&["push.lan:8443".to_string(), "10.0.0.5".to_string()]);
        let check = |u: &str| policy.check(&Url::parse(u).unwrap());
        assert!(check("https://push.lan:8443/x").is_ok());
        assert!(check("http://push.lan:8443/x").is_ok());
        for refused in [
            "https://push.lan/x",
            "https://push.lan:22/x",
            "http://push.lan:80/x",
        ] {
            let e = check(refused).unwrap_err();
            assert!(e.contains("allowed only on the port"), "{refused}: {e}");
        }
        // An entry without a port admits every port.
        assert!(check("https://10.0.0.5:9000/x").is_ok());
    }
}
