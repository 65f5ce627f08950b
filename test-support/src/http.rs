//! HTTP clients that behave like a browser: cookies kept, no redirects followed (tests look at
//! each), and `*.localhost` workspace origins resolved to loopback.

/// Resolves every name to loopback, as a browser does for `*.localhost`.
pub struct Loopback;

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            let addrs: reqwest::dns::Addrs =
                Box::new(vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))].into_iter());
            Ok(addrs)
        })
    }
}

/// A browser for workspace origins: cookies per host, no redirects followed,
/// `*.ws.localhost` on loopback.
pub fn workspace_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(Loopback))
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("client")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header on a {} response", response.status()))
        .to_owned()
}

/// Follows `open_url` (the platform's `/workspace/open`) through the platform's and the
/// workspace origin's redirects (the origin's nonce, then the platform again) up to the link
/// that carries the one-time code, which is returned not yet redeemed.
pub async fn handoff_link(client: &reqwest::Client, open_url: String) -> String {
    let mut next = open_url;
    for _ in 0..4 {
        let r = client.get(&next).send().await.expect("open the workspace");
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        next = location(&r);
        if next.contains("code=") {
            return next;
        }
    }
    panic!("no handoff code after four redirects: {next}");
}

/// A browser-like HTTP client: keeps cookies, follows no redirects (tests look at each).
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
