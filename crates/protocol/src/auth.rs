//! Request authentication: every request but `/healthz` carries
//!
//! ```text
//! authorization: Cairn device=<64 hex>,time=<unix seconds>,signature=<128 hex>
//! ```
//!
//! The device signs, under the domain [`REQUEST_DOMAIN`], the text
//! `METHOD \n path-and-query \n time \n hex(SHA-256(body))`. The server refuses a time more than
//! `max_skew_secs` away from its clock. Within that window a captured request could be
//! replayed by whoever can see it (TLS prevents that); replaying a push or a pull is
//! harmless anyway, since both are idempotent.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys};
use sha2::{Digest, Sha256};

use crate::hexser::{parse_device_id, parse_signature};
use crate::ProtocolError;

/// The signature domain of requests.
pub const REQUEST_DOMAIN: &str = "cairn request v2";
/// The scheme name in the `authorization` header.
pub const AUTH_SCHEME: &str = "Cairn";
const MAX_HEADER: usize = 512;

/// The bytes a device signs for a request.
pub fn request_signed_bytes(method: &str, path_and_query: &str, time: u64, body: &[u8]) -> Vec<u8> {
    format!(
        "{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        time,
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// Builds the `authorization` header value for a request.
pub fn sign_request(
    keys: &DeviceKeys,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
) -> String {
    let signature = keys.sign(
        REQUEST_DOMAIN,
        &request_signed_bytes(method, path_and_query, now, body),
    );
    format!(
        "{AUTH_SCHEME} device={},time={},signature={}",
        keys.id(),
        now,
        hex::encode(signature)
    )
}

/// Checks an `authorization` header; returns the device that signed the request.
///
/// Errors: `BadAuth` (missing or unparsable header), `ClockSkew` (time too far from `now`),
/// `BadSignature` (the signature does not match this request).
pub fn verify_request(
    header: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
    max_skew_secs: u64,
) -> Result<DeviceId, ProtocolError> {
    let (device, time, signature) = parse_header(header)?;
    let skew = now.abs_diff(time);
    if skew > max_skew_secs {
        return Err(ProtocolError::ClockSkew {
            skew_secs: skew,
            max_secs: max_skew_secs,
        });
    }
    verify_signature(
        &device,
        REQUEST_DOMAIN,
        &request_signed_bytes(method, path_and_query, time, body),
        &signature,
    )
    .map_err(|_| {
        ProtocolError::BadSignature(format!("the request by device {}", device.short()))
    })?;
    Ok(device)
}

fn parse_header(header: &str) -> Result<(DeviceId, u64, [u8; 64]), ProtocolError> {
    let bad = |what: &str| {
        ProtocolError::BadAuth(format!(
            "{what}; this client does not speak Cairn's protocol v2"
        ))
    };
    if header.len() > MAX_HEADER {
        return Err(bad("the authorization header is too long"));
    }
    let params = header
        .strip_prefix(AUTH_SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| bad("the authorization header does not use the Cairn scheme"))?;
    let (mut device, mut time, mut signature) = (None, None, None);
    for part in params.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| bad("the authorization header has a part without `=`"))?;
        let slot = match key {
            "device" => &mut device,
            "time" => &mut time,
            "signature" => &mut signature,
            _ => return Err(bad("the authorization header has an unknown part")),
        };
        if slot.replace(value).is_some() {
            return Err(bad("the authorization header repeats a part"));
        }
    }
    let device =
        parse_device_id(device.ok_or_else(|| bad("the authorization header names no device"))?)
            .map_err(|e| bad(&e))?;
    let time = time
        .ok_or_else(|| bad("the authorization header has no time"))?
        .parse::<u64>()
        .map_err(|_| bad("the authorization time is not a number of seconds"))?;
    let signature =
        parse_signature(signature.ok_or_else(|| bad("the authorization header has no signature"))?)
            .map_err(|e| bad(&e))?;
    Ok((device, time, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_every_binding() {
        let keys = DeviceKeys::generate();
        let h = sign_request(&keys, "post", "/v2/push", b"body", 1_000);
        assert!(h.starts_with("Cairn device="));
        assert_eq!(
            verify_request(&h, "POST", "/v2/push", b"body", 1_000, 300).unwrap(),
            keys.id()
        );
        assert_eq!(
            verify_request(&h, "POST", "/v2/push", b"body", 1_300, 300).unwrap(),
            keys.id()
        );
        assert_eq!(
            verify_request(&h, "POST", "/v2/push", b"body", 1_301, 300),
            Err(ProtocolError::ClockSkew {
                skew_secs: 301,
                max_secs: 300
            })
        );
        assert!(matches!(
            verify_request(&h, "POST", "/v2/push", b"body", 699, 300),
            Err(ProtocolError::ClockSkew { .. })
        ));
        for (m, p, b) in [
            ("GET", "/v2/push", &b"body"[..]),
            ("POST", "/v2/pull", b"body"),
            ("POST", "/v2/push", b"bodY"),
        ] {
            assert!(matches!(
                verify_request(&h, m, p, b, 1_000, 300),
                Err(ProtocolError::BadSignature(_))
            ));
        }
        let other = DeviceKeys::generate();
        let swapped = h.replace(&keys.id().to_string(), &other.id().to_string());
        assert!(matches!(
            verify_request(&swapped, "POST", "/v2/push", b"body", 1_000, 300),
            Err(ProtocolError::BadSignature(_))
        ));
    }

    #[test]
    fn garbage_headers_are_bad_auth() {
        let keys = DeviceKeys::generate();
        let good = sign_request(&keys, "GET", "/v2/roster", b"", 5);
        let id = keys.id().to_string();
        let sig = good.rsplit('=').next().unwrap().to_string();
        let cases = vec![
            String::new(),
            "Bearer x".into(),
            "Cairn".into(),
            "Cairn ".into(),
            format!("Cairn device={id}"),
            format!("Cairn device={id},time=5"),
            format!("Cairn device={id},time=x,signature={sig}"),
            format!("Cairn device={id},time=-5,signature={sig}"),
            format!("Cairn device={id},time=5,signature=abc"),
            format!("Cairn device=abc,time=5,signature={sig}"),
            format!("Cairn device={id},time=5,time=5,signature={sig}"),
            format!("Cairn device={id},time=5,signature={sig},x=1"),
            format!("Cairn device={id},time=5,signature={sig},"),
            format!("Cairn device={},time=5,signature={sig}", id.to_uppercase()),
            "Cairn ".to_string() + &"a".repeat(600),
        ];
        for h in cases {
            assert!(
                matches!(
                    verify_request(&h, "GET", "/v2/roster", b"", 5, 300),
                    Err(ProtocolError::BadAuth(_))
                ),
                "{h}"
            );
        }
        assert!(good.len() < MAX_HEADER);
    }
}
