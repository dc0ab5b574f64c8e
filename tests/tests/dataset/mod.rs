//! A seeded dataset of cases for the import and export tests, written as CSV and as JSON
//! Lines with the same values.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

/// The columns a generated row may fill, in CSV order.
pub const COLUMNS: &[&str] = &[
    "place",
    "kind",
    "status",
    "status_basis",
    "incident.date",
    "incident.place",
    "incident.cause",
    "incident.narrative",
    "found.at",
    "found.lat",
    "found.lon",
    "found.accuracy_m",
    "found.scene",
    "person.name",
    "person.sex",
    "person.age_years",
    "person.civilian",
    "remains.condition",
    "torture_signs",
];

/// One generated case: its value per column ("" = not set).
#[derive(Debug, Clone)]
pub struct Row(pub Vec<(&'static str, String)>);

impl Row {
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn set(&mut self, key: &'static str, value: &str) {
        if let Some(cell) = self.0.iter_mut().find(|(k, _)| *k == key) {
            cell.1 = value.to_string();
        }
    }
}

fn pick<'a>(rng: &mut StdRng, options: &[&'a str]) -> &'a str {
    options[rng.gen_range(0..options.len())]
}

/// `n` cases from `seed`. With `office`, some are confirmed or rejected (with a basis).
pub fn generate(seed: u64, n: usize, office: bool) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let maybe = |rng: &mut StdRng, value: String| {
                if rng.gen_bool(0.8) {
                    value
                } else {
                    String::new()
                }
            };
            let statuses: &[&str] = if office {
                &[
                    "alleged",
                    "under_investigation",
                    "confirmed",
                    "rejected",
                    "",
                ]
            } else {
                &["alleged", "under_investigation", ""]
            };
            let status = pick(&mut rng, statuses).to_string();
            let basis = match status.as_str() {
                "confirmed" | "rejected" => format!("Forensic report FR-{i}, two witnesses"),
                "under_investigation" if rng.gen_bool(0.5) => "Reported by the family".into(),
                _ => String::new(),
            };
            let month = rng.gen_range(1..=12);
            let day = rng.gen_range(1..=28);
            let date = match rng.gen_range(0..10) {
                0 => String::new(),
                1 => format!("2020-{month:02}-{day:02}/2021-{month:02}-{day:02}"),
                _ => format!("2020-{month:02}-{day:02}"),
            };
            let narrative = match rng.gen_range(0..4) {
                0 => String::new(),
                // Commas, quotes and line breaks: quoted CSV cells over several lines.
                1 => format!("Found by the road, \"near\" the well.\nSecond line of case {i}."),
                _ => format!("Reported on day {day}, case {i}."),
            };
            let lat = rng.gen_range(-9000..9000) as f64 / 100.0;
            let lon = rng.gen_range(-18000..18000) as f64 / 100.0;
            let (lat, lon) = if rng.gen_bool(0.85) {
                (lat.to_string(), lon.to_string())
            } else {
                (String::new(), String::new())
            };
            let found_at = format!(
                "2021-{month:02}-{day:02}T{:02}:30:00Z",
                rng.gen_range(0..24)
            );
            let place = pick(&mut rng, &["KHR", "MRV", "DNT"]).to_string();
            let kind = pick(&mut rng, &["killed", "injured", "missing", "remains"]).to_string();
            let cause = pick(
                &mut rng,
                &["targeted_strike", "captivity", "other_violence", "unknown"],
            )
            .to_string();
            let accuracy = rng.gen_range(1..50).to_string();
            let scene = pick(&mut rng, &["surface", "grave", "rubble"]).to_string();
            let sex = pick(&mut rng, &["female", "male", "unknown"]).to_string();
            let age = rng.gen_range(0..90).to_string();
            let civilian = pick(&mut rng, &["yes", "no", "unknown"]).to_string();
            let condition = pick(&mut rng, &["fresh", "burned"]).to_string();
            let torture = pick(&mut rng, &["yes", "no"]).to_string();
            let values = vec![
                ("place", place),
                ("kind", kind),
                ("status", status),
                ("status_basis", basis),
                ("incident.date", date),
                (
                    "incident.place",
                    maybe(&mut rng, format!("Village {}", i % 17)),
                ),
                ("incident.cause", maybe(&mut rng, cause)),
                ("incident.narrative", narrative),
                ("found.at", maybe(&mut rng, found_at)),
                ("found.lat", lat),
                ("found.lon", lon),
                ("found.accuracy_m", maybe(&mut rng, accuracy)),
                ("found.scene", maybe(&mut rng, scene)),
                // Unique and found nowhere else, so a redaction test can look for it.
                (
                    "person.name",
                    maybe(&mut rng, format!("Zqname Person{i:04}x")),
                ),
                ("person.sex", maybe(&mut rng, sex)),
                ("person.age_years", maybe(&mut rng, age)),
                ("person.civilian", maybe(&mut rng, civilian)),
                ("remains.condition", maybe(&mut rng, condition)),
                ("torture_signs", maybe(&mut rng, torture)),
            ];
            Row(values)
        })
        .collect()
}

/// The rows as CSV with a header, and the line each row starts on.
pub fn to_csv(rows: &[Row]) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record(COLUMNS).expect("header");
        w.flush().expect("flush");
    }
    for row in rows {
        lines.push(out.iter().filter(|b| **b == b'\n').count() as u64 + 1);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(&mut out);
        w.write_record(COLUMNS.iter().map(|c| row.get(c)))
            .expect("row");
        w.flush().expect("flush");
    }
    (out, lines)
}

/// The rows as JSON Lines: numbers as JSON numbers, groups nested or flat by turns, unset
/// fields left out or null.
pub fn to_jsonl(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut object = Map::new();
        for (key, value) in &row.0 {
            if value.is_empty() {
                if i % 2 == 0 {
                    object.insert(key.to_string(), Value::Null);
                }
                continue;
            }
            let json = match *key {
                "found.lat" | "found.lon" | "found.accuracy_m" | "person.age_years" => {
                    serde_json::from_str(value).expect("number")
                }
                _ => Value::String(value.clone()),
            };
            match key.split_once('.') {
                Some((group, leaf)) if i % 3 == 0 => {
                    let entry = object
                        .entry(group.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    entry
                        .as_object_mut()
                        .expect("group")
                        .insert(leaf.to_string(), json);
                }
                _ => {
                    object.insert(key.to_string(), json);
                }
            }
        }
        out.extend(serde_json::to_vec(&Value::Object(object)).expect("json"));
        out.push(b'\n');
    }
    out
}

/// A case's JSON (`case show --json`) without what differs between two vaults holding the
/// same data: ids, references, creation stamps and who wrote list entries when.
pub fn comparable(mut case: Value) -> Value {
    if let Value::Object(map) = &mut case {
        for key in [
            "id",
            "reference",
            "created_at",
            "created_by",
            "created_signed_by",
        ] {
            map.remove(key);
        }
        for (_, v) in map.iter_mut() {
            if let Value::Array(items) = v {
                for item in items {
                    if let Value::Object(entry) = item {
                        entry.remove("at");
                        entry.remove("author");
                        entry.remove("signed_by");
                    }
                }
            }
        }
    }
    case
}

/// Parses a generated value the way `case show --json` prints it.
pub fn expected_json(key: &str, value: &str) -> Value {
    match key {
        "found.lat" | "found.lon" | "found.accuracy_m" => {
            Value::from(value.parse::<f64>().expect("float"))
        }
        "person.age_years" => Value::from(value.parse::<i64>().expect("int")),
        "found.at" => Value::String(value.to_string()),
        _ => Value::String(value.to_string()),
    }
}

/// A field's value in a case's JSON.
pub fn field<'a>(case: &'a Value, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        Some((group, leaf)) => case.get(group)?.get(leaf),
        None => case.get(key),
    }
}
