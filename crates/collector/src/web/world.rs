//! The low-detail world outline drawn under the map when the office gives no base map:
//! Natural Earth's 1:110m land from the npm package `world-atlas` (vendored in `vendor/`, with
//! its licence), compiled into the binary and decoded once from its TopoJSON.

use std::sync::OnceLock;

use serde::Deserialize;

/// `world-atlas@2.0.2`'s `land-110m.json`.
const LAND: &str = include_str!("vendor/world-atlas/land-110m.json");

/// A closed ring of (longitude, latitude) points, in degrees.
pub(crate) type Ring = Vec<(f64, f64)>;

#[derive(Deserialize)]
struct Topology {
    transform: Transform,
    arcs: Vec<Vec<[i64; 2]>>,
    objects: Objects,
}

#[derive(Deserialize)]
struct Transform {
    scale: [f64; 2],
    translate: [f64; 2],
}

#[derive(Deserialize)]
struct Objects {
    land: Collection,
}

#[derive(Deserialize)]
struct Collection {
    geometries: Vec<Geometry>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Geometry {
    Polygon {
        arcs: Vec<Vec<i64>>,
    },
    MultiPolygon {
        arcs: Vec<Vec<Vec<i64>>>,
    },
    #[serde(other)]
    Other,
}

/// Every ring of the land (outer rings and holes alike: drawn with the even-odd rule).
pub(crate) fn land() -> &'static [Ring] {
    static RINGS: OnceLock<Vec<Ring>> = OnceLock::new();
    // The file is compiled in and checked by a test: a failure here is a build gone wrong,
    // and the map then draws no outline rather than failing.
    RINGS.get_or_init(|| decode(LAND).unwrap_or_default())
}

/// The rings of a TopoJSON topology's `land` object.
fn decode(json: &str) -> Result<Vec<Ring>, serde_json::Error> {
    let topology: Topology = serde_json::from_str(json)?;
    let t = &topology.transform;
    // Arcs are quantized and delta-encoded: each point is the sum of those before it.
    let arcs: Vec<Ring> = topology
        .arcs
        .iter()
        .map(|arc| {
            let (mut x, mut y) = (0i64, 0i64);
            arc.iter()
                .map(|[dx, dy]| {
                    x += dx;
                    y += dy;
                    (
                        x as f64 * t.scale[0] + t.translate[0],
                        y as f64 * t.scale[1] + t.translate[1],
                    )
                })
                .collect()
        })
        .collect();
    // A ring is its arcs joined, each after the first without its first point (the last of
    // the one before); a negative index `!i` is arc `i` reversed.
    let ring = |indices: &Vec<i64>| -> Ring {
        let mut out: Ring = Vec::new();
        for &i in indices {
            let (index, reversed) = if i < 0 { (!i, true) } else { (i, false) };
            let Some(arc) = usize::try_from(index).ok().and_then(|i| arcs.get(i)) else {
                continue;
            };
            let mut points: Ring = arc.clone();
            if reversed {
                points.reverse();
            }
            let skip = usize::from(!out.is_empty());
            out.extend(points.into_iter().skip(skip));
        }
        out
    };
    let mut rings = Vec::new();
    for geometry in &topology.objects.land.geometries {
        match geometry {
            Geometry::Polygon { arcs } => rings.extend(arcs.iter().map(ring)),
            Geometry::MultiPolygon { arcs } => {
                rings.extend(arcs.iter().flat_map(|polygon| polygon.iter().map(ring)))
            }
            Geometry::Other => {}
        }
    }
    rings.retain(|r| r.len() >= 3);
    Ok(rings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether (lon, lat) is inside an odd number of rings: on land.
    fn on_land(lon: f64, lat: f64) -> bool {
        let crossings = land()
            .iter()
            .map(|ring| {
                let mut inside = false;
                for (a, b) in ring.iter().zip(ring.iter().cycle().skip(1)) {
                    if (a.1 > lat) != (b.1 > lat)
                        && lon < (b.0 - a.0) * (lat - a.1) / (b.1 - a.1) + a.0
                    {
                        inside = !inside;
                    }
                }
                inside
            })
            .filter(|inside| *inside)
            .count();
        crossings % 2 == 1
    }

    #[test]
    fn the_bundled_world_has_land_where_land_is() {
        assert!(land().len() > 100, "{} rings", land().len());
        for (lon, lat, place) in [
            (2.35, 48.85, "Paris"),
            (44.5, 40.2, "Yerevan"),
            (31.2, 30.0, "Cairo"),
            (-60.0, -10.0, "Amazonia"),
            (135.0, -25.0, "Australia"),
        ] {
            assert!(on_land(lon, lat), "{place} is not on land");
        }
        for (lon, lat, sea) in [
            (-140.0, 0.0, "Pacific"),
            (-30.0, 30.0, "Atlantic"),
            (18.0, 34.0, "Mediterranean"),
        ] {
            assert!(!on_land(lon, lat), "the {sea} is land");
        }
        for ring in land() {
            for (lon, lat) in ring {
                assert!(lon.abs() <= 180.0 && lat.abs() <= 90.0, "{lon} {lat}");
            }
        }
    }

    #[test]
    fn arcs_are_joined_and_reversed_as_topojson_says() {
        let json = r#"{"type":"Topology","transform":{"scale":[1,1],"translate":[0,0]},
            "arcs":[[[0,0],[10,0],[0,10]],[[10,10],[-10,0],[0,-10]]],
            "objects":{"land":{"type":"GeometryCollection","geometries":[
                {"type":"Polygon","arcs":[[0,1]]},
                {"type":"MultiPolygon","arcs":[[[-2,-1]]]},
                {"type":"Point","coordinates":[0,0]}]}}}"#;
        let rings = decode(json).unwrap();
        let square = [
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (0.0, 0.0),
        ];
        assert_eq!(rings[0], square);
        let mut reversed = square.to_vec();
        reversed.reverse();
        assert_eq!(rings[1], reversed);
        assert_eq!(rings.len(), 2);
        assert!(decode("{\"type\":\"Topology\"}").is_err());
    }
}
