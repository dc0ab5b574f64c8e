//! A case's attachment, decrypted on the fly as `cairn case attachment get` decrypts it (each
//! chunk checked, the whole checked against the SHA-256 recorded at capture) and sent with
//! headers that keep a hostile file from becoming a page: an image type only when the bytes
//! are a JPEG, PNG, WebP or GIF image (never SVG, never HTML), anything else as a download.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_vault::VaultError;
use serde::Deserialize;

use super::{AppState, WebError};
use crate::error::CliError;

/// The largest attachment the page decrypts into memory; a larger one is fetched with
/// `cairn case attachment get`, which streams it to a file.
pub(crate) const SHOW_LIMIT: u64 = 64 * 1024 * 1024;

/// The image types shown in the page, from the bytes: nothing a browser runs (SVG, HTML).
pub(crate) fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// Whether the case lists this media type as an image the page can show.
pub(crate) fn shown_as_image(media_type: &str) -> bool {
    matches!(
        media_type,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Download {
    /// `yes`: save it rather than show it.
    download: String,
}

/// `/case/{reference}/attachment/{hash}`: the attachment's bytes.
pub(crate) async fn attachment(
    State(state): State<Arc<AppState>>,
    Path((reference, hash)): Path<(String, String)>,
    Query(download): Query<Download>,
) -> Result<Response, WebError> {
    let (entry, bytes) = state
        .with_vault(move |vault, state| match vault.attachment_bytes(
            &state.case_key(vault, &reference)?,
            &hash,
            SHOW_LIMIT,
        ) {
            Err(VaultError::AttachmentNotHere { name, .. }) => Err(CliError::usage(format!(
                "the bytes of {name} are not on this machine yet: the next `cairn sync` fetches them once the device that took it has sent them"
            ))),
            Err(VaultError::AttachmentTooLarge { name, size, .. }) => Err(CliError::usage(format!(
                "{name} is {size} bytes, too large to show here: save it with `cairn case attachment get`"
            ))),
            Err(e @ (VaultError::UnknownAttachment(_) | VaultError::AmbiguousAttachment { .. })) => {
                Err(CliError::usage(e.to_string()))
            }
            other => Ok(other?),
        })
        .await?;
    let kind = image_type(&bytes);
    let disposition = match (kind, download.download == "yes") {
        (Some(_), false) => "inline".to_owned(),
        _ => format!(
            "attachment; filename=\"{}\"",
            crate::output::safe_file_name(&entry.name, true)
        ),
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.unwrap_or("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_images() {
        assert_eq!(image_type(b"\xff\xd8\xff\xe0rest"), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"GIF89a..."), Some("image/gif"));
        for hostile in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
            b"<!DOCTYPE html><script>alert(1)</script>",
            b"RIFF\0\0\0\0WAVE",
            b"\x89PN",
            b"",
        ] {
            assert_eq!(image_type(hostile), None, "{hostile:?}");
        }
    }
}
