//! A map of where cases were found, drawn here as SVG: the cases' `found.lat` and `found.lon`
//! on a plain latitude/longitude projection with a graticule, each place's name (from the
//! configuration's `[places]`) over its cases. No tile, no font, nothing from outside.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{html, Markup};

use super::layout::{shell, Section};
use super::table::Filter;
use super::{AppState, WebError};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 600.0;
const MARGIN: f64 = 48.0;
/// Graticule spacings tried, in degrees, finest first.
const STEPS: [f64; 15] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
];
/// At most this many graticule lines across the larger side.
const MAX_LINES: f64 = 6.0;

/// A case with a place to draw it.
struct Point {
    reference: String,
    kind: String,
    place: String,
    lat: f64,
    lon: f64,
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, state| {
            let all = vault.list()?;
            let mut points = Vec::new();
            let mut unplaced = 0usize;
            for c in all.iter().filter(|c| filter.matches(c, state)) {
                let json = vault.case_by_id(&c.id)?.to_json()?;
                let coordinate = |key: &str| json["found"][key].as_f64().filter(|v| v.is_finite());
                match (coordinate("lat"), coordinate("lon")) {
                    (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => points
                        .push(Point {
                            reference: c.reference.clone(),
                            kind: c.kind.clone(),
                            place: c.place.clone(),
                            lat,
                            lon,
                        }),
                    _ => unplaced += 1,
                }
            }
            let body = html! {
                (filter.form("/map", &all, state))
                p.count {
                    (points.len()) " cases on the map; " (unplaced) " without coordinates. "
                    a href={ "/?" (filter.query()) } { "Show these in the table" }
                }
                @if points.is_empty() {
                    p { "No case here has coordinates (found.lat and found.lon)." }
                } @else {
                    (draw(&points, state))
                }
            };
            Ok(shell(Some(Section::Map), "Map", body))
        })
        .await
}

/// Where on the drawing a latitude and longitude fall.
struct Frame {
    lat_min: f64,
    lat_max: f64,
    lon_min: f64,
    lon_max: f64,
    /// Pixels per degree of latitude; a degree of longitude is `cos(mid-latitude)` of it.
    scale: f64,
    squeeze: f64,
    left: f64,
    top: f64,
}

impl Frame {
    fn around(points: &[Point]) -> Frame {
        let (mut lat_min, mut lat_max, mut lon_min, mut lon_max) = (90.0, -90.0, 180.0, -180.0);
        for p in points {
            lat_min = p.lat.min(lat_min);
            lat_max = p.lat.max(lat_max);
            lon_min = p.lon.min(lon_min);
            lon_max = p.lon.max(lon_max);
        }
        // A margin round the cases, and at least about a kilometre across.
        let pad = |span: f64| (span * 0.15).max(0.005);
        let (lat_pad, lon_pad) = (pad(lat_max - lat_min), pad(lon_max - lon_min));
        let (lat_min, lat_max) = (
            (lat_min - lat_pad).max(-90.0),
            (lat_max + lat_pad).min(90.0),
        );
        let (lon_min, lon_max) = (
            (lon_min - lon_pad).max(-180.0),
            (lon_max + lon_pad).min(180.0),
        );
        let squeeze = ((lat_min + lat_max) / 2.0).to_radians().cos().max(0.05);
        let (wide, high) = ((lon_max - lon_min) * squeeze, lat_max - lat_min);
        let scale = ((WIDTH - 2.0 * MARGIN) / wide).min((HEIGHT - 2.0 * MARGIN) / high);
        Frame {
            lat_min,
            lat_max,
            lon_min,
            lon_max,
            scale,
            squeeze,
            left: (WIDTH - wide * scale) / 2.0,
            top: (HEIGHT - high * scale) / 2.0,
        }
    }

    fn x(&self, lon: f64) -> f64 {
        self.left + (lon - self.lon_min) * self.squeeze * self.scale
    }

    fn y(&self, lat: f64) -> f64 {
        self.top + (self.lat_max - lat) * self.scale
    }

    /// The graticule's spacing: the finest that draws at most [`MAX_LINES`] lines.
    fn step(&self) -> f64 {
        let span = (self.lat_max - self.lat_min).max(self.lon_max - self.lon_min);
        STEPS
            .into_iter()
            .find(|s| span / s <= MAX_LINES)
            .unwrap_or(30.0)
    }
}

/// The multiples of `step` between `min` and `max`.
fn ticks(min: f64, max: f64, step: f64) -> Vec<f64> {
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).take(64).map(|i| i as f64 * step).collect()
}

fn degrees(value: f64, step: f64, positive: char, negative: char) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let hemisphere = if value < 0.0 { negative } else { positive };
    format!("{:.*}°{hemisphere}", decimals, value.abs())
}

fn draw(points: &[Point], state: &AppState) -> Markup {
    let frame = Frame::around(points);
    let step = frame.step();
    let (top, bottom) = (frame.y(frame.lat_max), frame.y(frame.lat_min));
    let (left, right) = (frame.x(frame.lon_min), frame.x(frame.lon_max));
    // Each place's label over the middle of its cases.
    let mut places: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for p in points {
        let entry = places.entry(&p.place).or_default();
        *entry = (entry.0 + p.lat, entry.1 + p.lon, entry.2 + 1.0);
    }
    let kinds: Vec<&str> = cairn_model::Kind::ALL.iter().map(|k| k.as_str()).collect();
    let f = |v: f64| format!("{v:.1}");
    html! {
        svg.map xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            role="img" aria-label="Map of where cases were found" {
            rect.land x=(f(left)) y=(f(top)) width=(f(right - left)) height=(f(bottom - top)) {}
            @for lat in ticks(frame.lat_min, frame.lat_max, step) {
                line.graticule x1=(f(left)) x2=(f(right)) y1=(f(frame.y(lat))) y2=(f(frame.y(lat))) {}
                text.degrees x=(f(left - 4.0)) y=(f(frame.y(lat) + 4.0)) text-anchor="end" { (degrees(lat, step, 'N', 'S')) }
            }
            @for lon in ticks(frame.lon_min, frame.lon_max, step) {
                line.graticule x1=(f(frame.x(lon))) x2=(f(frame.x(lon))) y1=(f(top)) y2=(f(bottom)) {}
                text.degrees x=(f(frame.x(lon))) y=(f(bottom + 16.0)) text-anchor="middle" { (degrees(lon, step, 'E', 'W')) }
            }
            @for (code, (lat, lon, n)) in &places {
                text.place x=(f(frame.x(lon / n))) y=(f(frame.y(lat / n) - 14.0)) text-anchor="middle" { (state.place_name(code)) }
            }
            @for p in points {
                a href={ "/case/" (p.reference) } {
                    circle class={ "case k-" (p.kind) } cx=(f(frame.x(p.lon))) cy=(f(frame.y(p.lat))) r="6" {
                        title { (p.reference) " (" (p.kind) ")" }
                    }
                }
            }
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

    fn point(lat: f64, lon: f64) -> Point {
        Point {
            reference: "KHR-T03-7KQ2-0001".into(),
            kind: "killed".into(),
            place: "KHR".into(),
            lat,
            lon,
        }
    }

    #[test]
    fn every_case_falls_inside_the_drawing() {
        let points = [
            point(31.34, 34.30),
            point(31.52, 34.46),
            point(31.50, 34.47),
        ];
        let frame = Frame::around(&points);
        for p in &points {
            let (x, y) = (frame.x(p.lon), frame.y(p.lat));
            assert!((MARGIN..=WIDTH - MARGIN).contains(&x), "{x}");
            assert!((MARGIN..=HEIGHT - MARGIN).contains(&y), "{y}");
        }
        // North is up, east is right.
        assert!(frame.y(31.52) < frame.y(31.34));
        assert!(frame.x(34.46) > frame.x(34.30));
        let step = frame.step();
        let lines = ticks(frame.lat_min, frame.lat_max, step).len();
        assert!(
            (1..=MAX_LINES as usize + 1).contains(&lines),
            "{step} {lines}"
        );
    }

    #[test]
    fn one_case_still_has_a_frame_and_a_graticule() {
        let frame = Frame::around(&[point(0.0, 0.0)]);
        assert!(frame.scale.is_finite() && frame.scale > 0.0);
        assert!(!ticks(frame.lat_min, frame.lat_max, frame.step()).is_empty());
    }

    #[test]
    fn degrees_read_as_people_write_them() {
        assert_eq!(degrees(31.5, 0.1, 'N', 'S'), "31.5°N");
        assert_eq!(degrees(-0.25, 0.05, 'E', 'W'), "0.25°W");
        assert_eq!(degrees(30.0, 10.0, 'N', 'S'), "30°N");
    }
}
