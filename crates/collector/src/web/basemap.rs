//! The office's own base map (`cairn office serve --basemap FILE`): an MBTiles file (SQLite,
//! <https://github.com/mapbox/mbtiles-spec>) of raster tiles, read on this machine and served
//! at `/basemap/{z}/{x}/{y}` for the map to draw. Vector tiles (which need a style and a
//! renderer) and files whose tiles are no known image are refused at start; each tile served
//! is checked again from its bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::attachments::image_type;
use super::{AppState, WebError};
use crate::error::CliError;

/// The deepest zoom a tile is asked for at (as the map's).
const MAX_ZOOM: u8 = 22;

/// An MBTiles file checked at start.
pub(crate) struct Basemap {
    path: PathBuf,
    /// The zooms it holds tiles for.
    pub(crate) min_zoom: u8,
    pub(crate) max_zoom: u8,
    /// What the file says of where its data comes from, shown under the map.
    pub(crate) attribution: Option<String>,
}

impl Basemap {
    /// Opens and checks `path`: an MBTiles file whose tiles are PNG, JPEG or WebP images.
    pub(crate) fn open(path: &Path) -> Result<Basemap, CliError> {
        let refuse = |why: &str| {
            CliError::usage(format!(
                "--basemap {}: {why}. Give an MBTiles file of raster tiles (PNG, JPEG or WebP)",
                path.display()
            ))
        };
        if !path.is_file() {
            return Err(refuse("there is no such file"));
        }
        let conn = connect(path).map_err(|e| refuse(&format!("cannot be read ({e})")))?;
        let meta = |key: &str| -> Option<String> {
            conn.query_row("SELECT value FROM metadata WHERE name = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .ok()
            .flatten()
        };
        let format = meta("format").map(|f| f.trim().to_ascii_lowercase());
        match format.as_deref() {
            Some("png" | "jpg" | "jpeg" | "webp") | None => {}
            Some("pbf" | "mvt") => {
                return Err(refuse(
                    "it holds vector tiles (format pbf), which Cairn does not draw",
                ))
            }
            Some(other) => {
                return Err(refuse(&format!(
                    "its tiles are in a format Cairn does not know (`{}`)",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
        let zooms: Option<(i64, i64)> = conn
            .query_row(
                "SELECT min(zoom_level), max(zoom_level) FROM tiles",
                [],
                |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
            )
            .map_err(|_| refuse("it is not an MBTiles file (no table of tiles)"))?;
        let Some((min, max)) = zooms else {
            return Err(refuse("it holds no tile"));
        };
        // The first tile says what the others are, whatever the metadata claims.
        let first: Vec<u8> = conn
            .query_row("SELECT tile_data FROM tiles LIMIT 1", [], |r| r.get(0))
            .map_err(|_| refuse("its first tile cannot be read"))?;
        match image_type(&first) {
            Some("image/png" | "image/jpeg" | "image/webp") => {}
            _ if first.starts_with(&[0x1f, 0x8b]) => {
                return Err(refuse(
                    "its tiles are compressed vector tiles, which Cairn does not draw",
                ))
            }
            _ => return Err(refuse("its tiles are not PNG, JPEG or WebP images")),
        }
        let zoom = |z: i64| u8::try_from(z.clamp(0, i64::from(MAX_ZOOM))).unwrap_or(0);
        Ok(Basemap {
            path: path.to_path_buf(),
            min_zoom: zoom(min),
            max_zoom: zoom(max),
            attribution: meta("attribution")
                .filter(|a| !a.trim().is_empty())
                .map(|a| a.chars().take(300).collect()),
        })
    }

    /// The tile at zoom `z`, column `x` and row `y` counted from the top (as the map asks);
    /// MBTiles counts rows from the bottom.
    fn tile(&self, z: u8, x: u32, y: u32) -> Result<Option<Vec<u8>>, CliError> {
        let rows = 1u64 << z;
        if u64::from(x) >= rows || u64::from(y) >= rows {
            return Ok(None);
        }
        let row = rows - 1 - u64::from(y);
        let conn = connect(&self.path).map_err(|e| CliError::failure(e.to_string()))?;
        conn.query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            rusqlite::params![z, x, row],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()
        .map_err(|e| {
            CliError::failure(format!(
                "cannot read the base map {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// The file, read only: the office's file is never written.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `/basemap/{z}/{x}/{y}`: a tile, with the content type its bytes show.
pub(crate) async fn tile(
    State(state): State<Arc<AppState>>,
    UrlPath((z, x, y)): UrlPath<(u8, u32, u32)>,
) -> Result<Response, WebError> {
    let missing = || WebError::new(StatusCode::NOT_FOUND, "there is no such tile");
    if state.basemap.is_none() || z > MAX_ZOOM {
        return Err(missing());
    }
    let bytes = tokio::task::spawn_blocking(move || match &state.basemap {
        Some(map) => map.tile(z, x, y),
        None => Ok(None),
    })
    .await
    .map_err(|e| WebError::failure(format!("a request failed: {e}")))??
    .ok_or_else(missing)?;
    match image_type(&bytes) {
        Some(kind @ ("image/png" | "image/jpeg" | "image/webp")) => {
            Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
        }
        _ => Err(WebError::new(
            StatusCode::NOT_FOUND,
            "this tile is not a PNG, JPEG or WebP image",
        )),
    }
}
