//! Detects an AWS EC2 host through the instance metadata service (IMDSv2).
//!
//! A host that hands out a session token at `PUT /latest/api/token` is an
//! EC2 instance, which this service treats as production. The probe is a
//! single short request made in the background: off EC2 the address does not
//! answer and the probe gives up after its timeout, never delaying startup.

use std::time::Duration;

/// Path of the IMDSv2 session-token endpoint.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// IMDSv2 refuses a token request without a TTL header.
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ec2Probe {
    /// The metadata service issued a token.
    OnEc2,
    /// No metadata service: the reason, for the log.
    NotEc2(String),
}

/// Asks `base_url` for an IMDSv2 token, giving up after `timeout`.
pub async fn probe(base_url: &str, timeout: Duration) -> Ec2Probe {
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // The metadata service is never behind a proxy.
        .no_proxy()
        .build()
    {
        Ok(client) => client,
        Err(e) => return Ec2Probe::NotEc2(format!("http client: {e}")),
    };
    let url = format!("{}{TOKEN_PATH}", base_url.trim_end_matches('/'));
    let response = client.put(&url).header(TTL_HEADER, "60").send().await;
    match response {
        Ok(r) if r.status().is_success() => match r.text().await {
            // The token is a credential: only its presence matters.
            Ok(token) if !token.trim().is_empty() => Ec2Probe::OnEc2,
            Ok(_) => Ec2Probe::NotEc2("empty token".into()),
            Err(e) => Ec2Probe::NotEc2(format!("reading the token: {e}")),
        },
        Ok(r) => Ec2Probe::NotEc2(format!("metadata service answered {}", r.status())),
        Err(e) if e.is_timeout() => Ec2Probe::NotEc2(format!("no answer within {timeout:?}")),
        Err(e) if e.is_connect() => Ec2Probe::NotEc2("no metadata service".into()),
        Err(e) => Ec2Probe::NotEc2(format!("request failed: {e}")),
    }
}
