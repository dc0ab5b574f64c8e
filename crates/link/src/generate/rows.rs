//! Rows in Cairn's import columns, the records the linkage sees for them, and the CSVs.

use std::io::Write;

use time::Date;

use crate::{AgeGroup, Kind, Record, Sex};

/// One row of a source list, in Cairn's import columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// `source_id`: unique per row.
    pub source_id: String,
    /// `kind`: killed, injured, missing or remains.
    pub kind: String,
    /// `incident.date`.
    pub incident_date: Option<Date>,
    /// `incident.place`.
    pub incident_place: Option<String>,
    /// `incident.cause`.
    pub incident_cause: Option<String>,
    /// `found.at` (a day; written at 10:00 UTC).
    pub found_at: Option<Date>,
    /// `found.lat`.
    pub found_lat: Option<f64>,
    /// `found.lon`.
    pub found_lon: Option<f64>,
    /// `person.name`.
    pub name: Option<String>,
    /// `person.sex`.
    pub sex: Option<Sex>,
    /// `person.age_years`.
    pub age_years: Option<u32>,
    /// `person.age_group`.
    pub age_group: Option<AgeGroup>,
    /// `person.height_cm`.
    pub height_cm: Option<f64>,
    /// `person.clothing`.
    pub clothing: Option<String>,
    /// `person.effects`.
    pub effects: Option<String>,
    /// `person.marks`.
    pub marks: Option<String>,
    /// `last_seen.at`.
    pub last_seen_at: Option<Date>,
    /// `last_seen.place`.
    pub last_seen_place: Option<String>,
    /// `last_seen.lat`.
    pub last_seen_lat: Option<f64>,
    /// `last_seen.lon`.
    pub last_seen_lon: Option<f64>,
    /// `remains.height_cm`.
    pub remains_height_cm: Option<f64>,
    /// `remains.clothing`.
    pub remains_clothing: Option<String>,
    /// `remains.effects`.
    pub remains_effects: Option<String>,
    /// `remains.marks`.
    pub remains_marks: Option<String>,
}

/// The import columns, in order.
pub const COLUMNS: &[&str] = &[
    "place",
    "kind",
    "source_id",
    "incident.date",
    "incident.place",
    "incident.cause",
    "found.at",
    "found.lat",
    "found.lon",
    "person.name",
    "person.sex",
    "person.age_years",
    "person.age_group",
    "person.height_cm",
    "person.clothing",
    "person.effects",
    "person.marks",
    "last_seen.at",
    "last_seen.place",
    "last_seen.lat",
    "last_seen.lon",
    "remains.height_cm",
    "remains.clothing",
    "remains.effects",
    "remains.marks",
];

impl Row {
    /// The record the linkage sees for this row, mapped as `cairn office match` maps a case.
    pub fn to_record(&self) -> Record {
        let remains = self.kind == "remains";
        Record {
            id: self.source_id.clone(),
            kind: Kind::parse(&self.kind),
            name: self.name.clone(),
            sex: self.sex,
            age_years: self.age_years,
            age_group: self.age_group,
            incident_day: self.incident_date,
            found_day: self.found_at,
            last_seen_day: self.last_seen_at,
            place: self.incident_place.clone().or(self.last_seen_place.clone()),
            lat: self.found_lat.or(self.last_seen_lat),
            lon: self.found_lon.or(self.last_seen_lon),
            height_cm: self.height_cm.or(self.remains_height_cm),
            clothing: if remains {
                self.remains_clothing.clone()
            } else {
                self.clothing.clone()
            },
            effects: if remains {
                self.remains_effects.clone()
            } else {
                self.effects.clone()
            },
            marks: if remains {
                self.remains_marks.clone()
            } else {
                self.marks.clone()
            },
        }
    }

    fn fields(&self) -> Vec<String> {
        let o = |s: &Option<String>| s.clone().unwrap_or_default();
        let d = |d: &Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        let f = |x: &Option<f64>, p: usize| x.map(|x| format!("{x:.p$}")).unwrap_or_default();
        vec![
            "KY".to_string(),
            self.kind.clone(),
            self.source_id.clone(),
            d(&self.incident_date),
            o(&self.incident_place),
            o(&self.incident_cause),
            self.found_at
                .map(|d| format!("{d}T10:00:00Z"))
                .unwrap_or_default(),
            f(&self.found_lat, 5),
            f(&self.found_lon, 5),
            o(&self.name),
            self.sex.map(|s| s.as_str().to_string()).unwrap_or_default(),
            self.age_years.map(|a| a.to_string()).unwrap_or_default(),
            self.age_group
                .map(|g| g.as_str().to_string())
                .unwrap_or_default(),
            f(&self.height_cm, 0),
            o(&self.clothing),
            o(&self.effects),
            o(&self.marks),
            d(&self.last_seen_at),
            o(&self.last_seen_place),
            f(&self.last_seen_lat, 5),
            f(&self.last_seen_lon, 5),
            f(&self.remains_height_cm, 0),
            o(&self.remains_clothing),
            o(&self.remains_effects),
            o(&self.remains_marks),
        ]
    }
}

/// Generated lists: rows, the records the linkage sees, and the truth.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The rows as sources wrote them.
    pub rows: Vec<Row>,
    /// One record per row (`Row::to_record`).
    pub records: Vec<Record>,
    /// The true person of each record.
    pub truth: Vec<u64>,
}

impl Generated {
    /// Writes the rows as a CSV in Cairn's import format (header first).
    pub fn write_csv(&self, out: impl Write) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(COLUMNS)?;
        for r in &self.rows {
            w.write_record(r.fields())?;
        }
        w.flush()?;
        Ok(())
    }

    /// Writes the truth as a CSV: `source_id,person`.
    pub fn write_truth(&self, out: impl Write) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["source_id", "person"])?;
        for (r, p) in self.rows.iter().zip(&self.truth) {
            w.write_record([r.source_id.clone(), p.to_string()])?;
        }
        w.flush()?;
        Ok(())
    }
}
