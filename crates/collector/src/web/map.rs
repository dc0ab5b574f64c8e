//! A map of where cases were found (or, for the missing, last seen), drawn here as SVG with no
//! script: the cases' positions (from their summaries, so 100,000 cases cost no document
//! load) on a Web Mercator projection, gathered into clusters per zoom level and view, over
//! the office's base map tiles (`--basemap`) or the bundled world outline, each place's name
//! (from the configuration's `[places]`) over its cases. Zoom and pan are links: the buttons
//! above the map, a click on a part of the map (zoomed in there) or on a cluster (zoomed in on
//! it); a single case links to its page. Nothing comes from outside.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::layout::{shell, Section};
use super::table::Filter;
use super::{AppState, WebError};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 600.0;
/// The side of a tile, in pixels, at every zoom.
const TILE: f64 = 256.0;
/// The deepest zoom offered.
pub(crate) const MAX_ZOOM: u8 = 19;
/// Cases closer than this (pixels, at the zoom shown) are drawn as one cluster.
const CELL: f64 = 64.0;
/// Web Mercator's latitude limit: the map is square.
const MAX_LAT: f64 = 85.051_128_78;
/// The parts of the map a click zooms into: columns and rows.
const PARTS: (u32, u32) = (6, 4);

/// Where the map looks: a zoom and the point at its centre; unset, it fits the cases.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct View {
    #[serde(skip_serializing_if = "Option::is_none")]
    z: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
}

/// A case with a place to draw it.
struct Point<'a> {
    reference: &'a str,
    kind: &'a str,
    place: &'a str,
    lat: f64,
    lon: f64,
}

/// A point on the whole world's picture at zoom `z` (pixels from its top left).
fn project(lat: f64, lon: f64, z: u8) -> (f64, f64) {
    let size = TILE * f64::from(1u32 << z);
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let x = (lon + 180.0) / 360.0 * size;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * size;
    (x, y)
}

/// The latitude and longitude of a point of the world's picture at zoom `z`.
fn unproject(x: f64, y: f64, z: u8) -> (f64, f64) {
    let size = TILE * f64::from(1u32 << z);
    let lon = x / size * 360.0 - 180.0;
    let lat = (PI * (1.0 - 2.0 * y / size)).sinh().atan().to_degrees();
    (lat.clamp(-MAX_LAT, MAX_LAT), lon.clamp(-180.0, 180.0))
}

/// The view drawn: its zoom and where its top left falls on the world's picture.
#[derive(Clone, Copy, Debug)]
struct Frame {
    z: u8,
    left: f64,
    top: f64,
}

impl Frame {
    fn centred(z: u8, lat: f64, lon: f64) -> Frame {
        let z = z.min(MAX_ZOOM);
        let (x, y) = project(lat, lon, z);
        Frame {
            z,
            left: x - WIDTH / 2.0,
            top: y - HEIGHT / 2.0,
        }
    }

    /// The deepest zoom at which every point fits, centred on them; the world without any.
    fn fitting(points: &[Point]) -> Frame {
        let Some(first) = points.first() else {
            return Frame::centred(1, 20.0, 0.0);
        };
        let (mut south, mut north, mut west, mut east) =
            (first.lat, first.lat, first.lon, first.lon);
        for p in points {
            south = south.min(p.lat);
            north = north.max(p.lat);
            west = west.min(p.lon);
            east = east.max(p.lon);
        }
        let z = (1..=16u8)
            .rev()
            .find(|&z| {
                let (x0, y0) = project(north, west, z);
                let (x1, y1) = project(south, east, z);
                x1 - x0 <= WIDTH * 0.8 && y1 - y0 <= HEIGHT * 0.8
            })
            .unwrap_or(1);
        let (x0, y0) = project(north, west, z);
        let (x1, y1) = project(south, east, z);
        let (lat, lon) = unproject((x0 + x1) / 2.0, (y0 + y1) / 2.0, z);
        Frame::centred(z, lat, lon)
    }

    /// A point's place in the drawing.
    fn at(&self, lat: f64, lon: f64) -> (f64, f64) {
        let (x, y) = project(lat, lon, self.z);
        (x - self.left, y - self.top)
    }

    /// The view centred on a point of the drawing, at zoom `z`.
    fn view(&self, x: f64, y: f64, z: u8) -> View {
        let (lat, lon) = unproject(self.left + x, self.top + y, self.z);
        View {
            z: Some(z.min(MAX_ZOOM)),
            lat: Some((lat * 1e6).round() / 1e6),
            lon: Some((lon * 1e6).round() / 1e6),
        }
    }
}

/// Cases near one another at the zoom shown.
struct Cluster<'a> {
    count: usize,
    x: f64,
    y: f64,
    /// How many of each kind, in [`cairn_model::Kind::ALL`]'s order.
    kinds: [usize; 8],
    first: &'a str,
}

impl Cluster<'_> {
    /// The kind most of its cases are, for its colour.
    fn kind(&self) -> &'static str {
        let all = cairn_model::Kind::ALL;
        let most = (0..all.len()).max_by_key(|&i| self.kinds[i]).unwrap_or(0);
        all.get(most).map_or("killed", |k| k.as_str())
    }
}

/// The points in (or just outside) the view, gathered by the cells of a grid fixed on the
/// world's picture, so a cluster stays where it is as the view pans.
fn clusters<'a>(points: &[Point<'a>], frame: &Frame) -> Vec<Cluster<'a>> {
    let mut cells: BTreeMap<(i64, i64), Cluster<'a>> = BTreeMap::new();
    let kinds = cairn_model::Kind::ALL;
    for p in points {
        let (x, y) = frame.at(p.lat, p.lon);
        if !(-CELL..=WIDTH + CELL).contains(&x) || !(-CELL..=HEIGHT + CELL).contains(&y) {
            continue;
        }
        let key = (
            ((x + frame.left) / CELL).floor() as i64,
            ((y + frame.top) / CELL).floor() as i64,
        );
        let c = cells.entry(key).or_insert(Cluster {
            count: 0,
            x: 0.0,
            y: 0.0,
            kinds: [0; 8],
            first: p.reference,
        });
        c.count += 1;
        c.x += x;
        c.y += y;
        if let Some(i) = kinds.iter().position(|k| k.as_str() == p.kind) {
            c.kinds[i.min(7)] += 1;
        }
    }
    let mut found: Vec<Cluster<'a>> = cells
        .into_values()
        .map(|mut c| {
            c.x /= c.count as f64;
            c.y /= c.count as f64;
            c
        })
        .collect();
    // Cases either side of a cell's edge fall in two cells: a cluster that close to a larger
    // one joins it, so no two discs sit on top of each other.
    found.sort_by_key(|c| std::cmp::Reverse(c.count));
    let mut kept: Vec<Cluster<'a>> = Vec::with_capacity(found.len());
    for c in found {
        let near = kept
            .iter_mut()
            .find(|k| (k.x - c.x).hypot(k.y - c.y) < CELL * 0.75);
        match near {
            Some(k) => {
                let n = (k.count + c.count) as f64;
                k.x = (k.x * k.count as f64 + c.x * c.count as f64) / n;
                k.y = (k.y * k.count as f64 + c.y * c.count as f64) / n;
                k.count += c.count;
                for (a, b) in k.kinds.iter_mut().zip(c.kinds) {
                    *a += b;
                }
            }
            None => kept.push(c),
        }
    }
    kept
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
    Query(view): Query<View>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, state| {
            let cases = state.cases(vault)?;
            let as_of = cases.data_as_of(vault)?;
            let mut points = Vec::new();
            let mut unplaced = 0usize;
            for c in cases.all.iter().filter(|c| filter.matches(c, state)) {
                let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
                match (finite(c.profile.lat), finite(c.profile.lon)) {
                    (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => {
                        points.push(Point {
                            reference: &c.reference,
                            kind: &c.kind,
                            place: &c.place,
                            lat,
                            lon,
                        })
                    }
                    _ => unplaced += 1,
                }
            }
            let frame = match (view.z, view.lat, view.lon) {
                (Some(z), Some(lat), Some(lon)) if lat.is_finite() && lon.is_finite() => {
                    Frame::centred(z, lat, lon)
                }
                _ => Frame::fitting(&points),
            };
            let query = filter.query();
            let link = |v: View| {
                let view = serde_urlencoded::to_string(v).unwrap_or_default();
                match (query.is_empty(), view.is_empty()) {
                    (true, _) => format!("/map?{view}"),
                    (false, true) => format!("/map?{query}"),
                    (false, false) => format!("/map?{query}&{view}"),
                }
            };
            let (cx, cy) = (WIDTH / 2.0, HEIGHT / 2.0);
            let z = frame.z;
            let body = html! {
                (filter.form("/map", &cases.places, &cases.teams, state))
                p.as-of { (as_of) }
                p.count {
                    (points.len()) " cases on the map; " (unplaced) " without coordinates. "
                    a href={ "/?" (query) } { "Show these in the table" }
                }
                nav.mapnav {
                    @if z < MAX_ZOOM { a.zoom-in href=(link(frame.view(cx, cy, z + 1))) { "Zoom in" } }
                    @if z > 0 { a.zoom-out href=(link(frame.view(cx, cy, z - 1))) { "Zoom out" } }
                    a href=(link(frame.view(cx, cy - HEIGHT / 2.0, z))) { "North" }
                    a href=(link(frame.view(cx, cy + HEIGHT / 2.0, z))) { "South" }
                    a href=(link(frame.view(cx - WIDTH / 2.0, cy, z))) { "West" }
                    a href=(link(frame.view(cx + WIDTH / 2.0, cy, z))) { "East" }
                    a href=(link(View::default())) { "Fit the cases" }
                    span.zoom { "zoom " (z) }
                }
                (draw(&points, &frame, state, &link))
                @if let Some(map) = &state.basemap {
                    @if let Some(attribution) = &map.attribution { p.attribution { "Base map: " (attribution) } }
                } @else {
                    p.attribution { "Land: Natural Earth (1:110m), from world-atlas." }
                }
            };
            Ok(shell(Some(Section::Map), "Map", body))
        })
        .await
}

/// The land's outline as one SVG path: the rings that reach into the view.
fn outline(frame: &Frame) -> String {
    let mut d = String::new();
    for ring in super::world::land() {
        let projected: Vec<(f64, f64)> =
            ring.iter().map(|(lon, lat)| frame.at(*lat, *lon)).collect();
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (x, y) in &projected {
            x0 = x0.min(*x);
            y0 = y0.min(*y);
            x1 = x1.max(*x);
            y1 = y1.max(*y);
        }
        if x1 < 0.0 || y1 < 0.0 || x0 > WIDTH || y0 > HEIGHT {
            continue;
        }
        for (i, (x, y)) in projected.iter().enumerate() {
            let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
        }
        d.push('Z');
    }
    d
}

/// The base map's tiles that cover the view: at the zoom shown, or the file's deepest zoom
/// drawn larger; none above its shallowest.
fn tiles(frame: &Frame, state: &AppState) -> Vec<(String, f64, f64, f64)> {
    let Some(map) = &state.basemap else {
        return Vec::new();
    };
    if frame.z < map.min_zoom {
        return Vec::new();
    }
    let tz = frame.z.min(map.max_zoom);
    let size = TILE * f64::from(1u32 << (frame.z - tz));
    let count = 1i64 << tz;
    let first = |from: f64| ((from / size).floor() as i64).clamp(0, count - 1);
    let mut out = Vec::new();
    for ty in first(frame.top)..=first(frame.top + HEIGHT) {
        for tx in first(frame.left)..=first(frame.left + WIDTH) {
            out.push((
                format!("/basemap/{tz}/{tx}/{ty}"),
                tx as f64 * size - frame.left,
                ty as f64 * size - frame.top,
                size,
            ));
        }
    }
    out
}

fn draw(
    points: &[Point],
    frame: &Frame,
    state: &AppState,
    link: &dyn Fn(View) -> String,
) -> Markup {
    let clusters = clusters(points, frame);
    // Each place's label over the middle of its cases in view.
    let mut places: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for p in points {
        let (x, y) = frame.at(p.lat, p.lon);
        if (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y) {
            let entry = places.entry(p.place).or_default();
            *entry = (entry.0 + x, entry.1 + y, entry.2 + 1.0);
        }
    }
    let (part_w, part_h) = (WIDTH / f64::from(PARTS.0), HEIGHT / f64::from(PARTS.1));
    let kinds: Vec<&str> = cairn_model::Kind::ALL.iter().map(|k| k.as_str()).collect();
    let f = |v: f64| format!("{v:.1}");
    let zoom_in = (frame.z + 2).min(MAX_ZOOM);
    html! {
        svg.map xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            role="img" aria-label="Map of where cases were found" {
            @if state.basemap.is_none() {
                path.land d=(outline(frame)) fill-rule="evenodd" {}
            }
            @for (href, x, y, size) in tiles(frame, state) {
                image.tile href=(href) x=(f(x)) y=(f(y)) width=(f(size)) height=(f(size)) {}
            }
            @if frame.z < MAX_ZOOM {
                @for col in 0..PARTS.0 {
                    @for row in 0..PARTS.1 {
                        @let (x, y) = (f64::from(col) * part_w, f64::from(row) * part_h);
                        a.part href=(link(frame.view(x + part_w / 2.0, y + part_h / 2.0, frame.z + 1))) {
                            rect x=(f(x)) y=(f(y)) width=(f(part_w)) height=(f(part_h)) {
                                title { "Zoom in here" }
                            }
                        }
                    }
                }
            }
            @for c in &clusters {
                @if c.count == 1 {
                    a.case href={ "/case/" (c.first) } {
                        circle class={ "case k-" (c.kind()) } cx=(f(c.x)) cy=(f(c.y)) r="6" {
                            title { (c.first) " (" (c.kind()) ")" }
                        }
                    }
                } @else {
                    @let r = (10.0 + 3.5 * (c.count as f64).log10()).min(CELL * 0.4);
                    @let label = format!("{} cases, most {}: zoom in", c.count, c.kind());
                    @if frame.z < MAX_ZOOM {
                        a.cluster href=(link(frame.view(c.x, c.y, zoom_in))) {
                            circle.cluster cx=(f(c.x)) cy=(f(c.y)) r=(f(r)) { title { (label) } }
                            text.count x=(f(c.x)) y=(f(c.y + 4.0)) text-anchor="middle" { (c.count) }
                        }
                    } @else {
                        g.cluster {
                            circle.cluster cx=(f(c.x)) cy=(f(c.y)) r=(f(r)) { title { (c.count) " cases at one place" } }
                            text.count x=(f(c.x)) y=(f(c.y + 4.0)) text-anchor="middle" { (c.count) }
                        }
                    }
                }
            }
            // Over the clusters, letting clicks through to them.
            @for (code, (x, y, n)) in &places {
                text.place x=(f(x / n)) y=(f(y / n)) text-anchor="middle" { (state.place_name(code)) }
            }
            rect.legend x=(f(WIDTH - 132.0)) y="6" width="126" height=(f(12.0 + 18.0 * kinds.len() as f64)) {}
            @for (i, kind) in kinds.iter().enumerate() {
                circle class={ "case k-" (kind) } cx=(f(WIDTH - 120.0)) cy=(f(20.0 + 18.0 * i as f64)) r="6" {}
                text.legend x=(f(WIDTH - 108.0)) y=(f(25.0 + 18.0 * i as f64)) { (kind) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lat: f64, lon: f64) -> Point<'static> {
        Point {
            reference: "KHR-T03-7KQ2-0001",
            kind: "killed",
            place: "KHR",
            lat,
            lon,
        }
    }

    #[test]
    fn the_projection_goes_there_and_back() {
        for (lat, lon) in [(31.5, 34.45), (-33.9, 151.2), (0.0, 0.0), (60.0, -150.0)] {
            for z in [0, 5, 12, MAX_ZOOM] {
                let (x, y) = project(lat, lon, z);
                let (lat2, lon2) = unproject(x, y, z);
                assert!(
                    (lat - lat2).abs() < 1e-9 && (lon - lon2).abs() < 1e-9,
                    "{z}"
                );
            }
        }
        // North is up, east is right; the world at zoom 0 is one tile.
        let (x, y) = project(0.0, 0.0, 0);
        assert!((x - 128.0).abs() < 1e-9 && (y - 128.0).abs() < 1e-9);
        assert!(project(31.5, 34.0, 8).1 < project(31.3, 34.0, 8).1);
        assert!(project(31.5, 34.5, 8).0 > project(31.5, 34.3, 8).0);
    }

    #[test]
    fn the_fitted_view_holds_every_case() {
        let points = [
            point(31.34, 34.30),
            point(31.52, 34.46),
            point(31.50, 34.47),
        ];
        let frame = Frame::fitting(&points);
        assert!(frame.z >= 8, "{frame:?}");
        for p in &points {
            let (x, y) = frame.at(p.lat, p.lon);
            assert!(
                (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                "{x} {y}"
            );
        }
        // One zoom deeper they would not all fit.
        let deeper = Frame::centred(frame.z + 1, 31.43, 34.385);
        let spread = deeper.at(31.34, 34.30).1 - deeper.at(31.52, 34.46).1;
        assert!(
            spread > HEIGHT * 0.8
                || deeper.at(31.50, 34.47).0 - deeper.at(31.34, 34.30).0 > WIDTH * 0.8
        );
        // One case, and none, still have a view.
        assert!(Frame::fitting(&points[..1]).z == 16);
        assert_eq!(Frame::fitting(&[]).z, 1);
    }

    #[test]
    fn near_cases_cluster_and_far_ones_do_not() {
        let mut points: Vec<Point> = (0..1000)
            .map(|i| {
                point(
                    31.5 + f64::from(i % 10) * 1e-4,
                    34.45 + f64::from(i / 10) * 1e-4,
                )
            })
            .collect();
        points.push(point(31.2, 34.2));
        let frame = Frame::fitting(&points);
        let found = clusters(&points, &frame);
        assert_eq!(found.iter().map(|c| c.count).sum::<usize>(), 1001);
        assert!(found.len() <= 4, "{}", found.len());
        assert!(found.iter().any(|c| c.count == 1));
        // Zoomed right in on the crowd, it falls apart into many; the far case is out of view.
        let close = Frame::centred(MAX_ZOOM, 31.5005, 34.455);
        let found = clusters(&points, &close);
        assert!(found.len() > 20, "{}", found.len());
        assert!(found.iter().map(|c| c.count).sum::<usize>() <= 1000);
    }

    #[test]
    fn a_view_link_centres_where_it_says() {
        let frame = Frame::centred(10, 31.5, 34.45);
        let view = frame.view(WIDTH / 2.0, HEIGHT / 2.0, 11);
        assert_eq!(view.z, Some(11));
        assert!((view.lat.unwrap() - 31.5).abs() < 1e-5);
        assert!((view.lon.unwrap() - 34.45).abs() < 1e-5);
        // Half a view north is north.
        assert!(frame.view(WIDTH / 2.0, 0.0, 10).lat.unwrap() > 31.5);
        assert_eq!(Frame::centred(200, 0.0, 0.0).z, MAX_ZOOM);
    }
}
