//! Field lookup and validation, edge by edge.
#![allow(clippy::unwrap_used)]

use cairn_model::{field, fields, parse_assignment, validate, FieldType, ModelError, Value};

fn rejects(key: &str, raw: &str) -> bool {
    matches!(validate(key, raw), Err(ModelError::InvalidValue { .. }))
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let err = field("persn.name").unwrap_err();
    assert_eq!(
        err,
        ModelError::UnknownField {
            key: "persn.name".into(),
            suggestion: Some("person.name".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown field `persn.name`; did you mean `person.name`?"
    );
    // A misspelt value of a choice gets the same help as a misspelt key.
    let err = validate("incident.cause", "targted_strike").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value `targted_strike` for `incident.cause`: expected one of: targeted_strike, \
         captivity, other_violence, unknown; did you mean `targeted_strike`?"
    );
    let err = validate("incident.cause", "banana").unwrap_err();
    assert!(err.to_string().ends_with("unknown."), "{err}");
    // A bare leaf finds its group.
    assert!(matches!(
        field("lat"),
        Err(ModelError::UnknownField { suggestion: Some(s), .. }) if s == "found.lat"
    ));
    let far = field("zzzzqqq").unwrap_err();
    assert!(matches!(
        far,
        ModelError::UnknownField {
            suggestion: None,
            ..
        }
    ));
    assert_eq!(far.to_string(), "unknown field `zzzzqqq`.");
}

#[test]
fn keys_are_case_insensitive_and_header_keys_are_not_settable() {
    assert_eq!(field("Person.Name").unwrap().key, "person.name");
    for key in [
        "id",
        "reference",
        "created_at",
        "created_by",
        "schema",
        "notes",
        "custody",
        "sources",
    ] {
        assert_eq!(
            field(key),
            Err(ModelError::NotSettable(key.into())),
            "{key}"
        );
    }
    assert_eq!(
        validate("notes", "x").unwrap_err().to_string(),
        "`notes` cannot be set: it is an append-only list, so add an entry to it instead."
    );
    assert_eq!(
        validate("reference", "x").unwrap_err().to_string(),
        "`reference` cannot be set: it is fixed when the case is created."
    );
}

#[test]
fn every_listed_field_validates_through_its_key() {
    assert_eq!(fields().len(), 42);
    for spec in fields() {
        assert_eq!(field(spec.key).unwrap(), spec);
        assert!(!spec.help.is_empty());
        assert!(!spec.ty.describe().is_empty());
    }
}

#[test]
fn assignments_split_at_the_first_equals_sign() {
    assert_eq!(
        parse_assignment("incident.narrative=a=b").unwrap(),
        ("incident.narrative".into(), "a=b".into())
    );
    assert_eq!(
        parse_assignment("person.name=").unwrap(),
        ("person.name".into(), String::new())
    );
    for bad in ["person.name", "=x", " =x", ""] {
        assert_eq!(
            parse_assignment(bad),
            Err(ModelError::BadAssignment(bad.into()))
        );
    }
    assert!(ModelError::BadAssignment("x".into())
        .to_string()
        .starts_with("expected key=value, got `x`"));
}

#[test]
fn choices() {
    assert_eq!(validate("kind", "killed"), Ok(Value::Str("killed".into())));
    assert_eq!(
        validate("kind", " Remains "),
        Ok(Value::Str("remains".into()))
    );
    assert!(rejects("kind", "dead"));
    assert!(rejects("kind", ""));
    assert_eq!(
        validate("kind", "dead").unwrap_err().to_string(),
        "invalid value `dead` for `kind`: expected one of: killed, injured, missing, remains, detained."
    );
    assert!(validate("status", "under_investigation").is_ok());
    assert!(validate("found.scene", "mass_grave").is_ok());
    assert!(validate("source.consent", "yes").is_err()); // not a field
}

#[test]
fn numbers() {
    assert_eq!(validate("found.lat", "90"), Ok(Value::Float(90.0)));
    assert_eq!(validate("found.lat", "-90"), Ok(Value::Float(-90.0)));
    assert!(rejects("found.lat", "90.1"));
    assert!(rejects("found.lat", "-90.0001"));
    assert!(rejects("found.lat", "NaN"));
    assert!(rejects("found.lat", "inf"));
    assert!(rejects("found.lat", ""));
    assert!(rejects("found.lat", "north"));
    assert_eq!(
        validate("found.lat", "200").unwrap_err().to_string(),
        "invalid value `200` for `found.lat`: expected a number from -90 to 90."
    );
    assert!(validate("found.lon", "180").is_ok());
    assert!(rejects("found.lon", "180.5"));
    assert_eq!(validate("found.alt", "-412.5"), Ok(Value::Float(-412.5)));
    assert!(rejects("found.alt", "infinity"));
    assert!(validate("found.accuracy_m", "0").is_ok());
    assert!(rejects("found.accuracy_m", "-0.5"));
    assert_eq!(validate("person.age_years", "0"), Ok(Value::Int(0)));
    assert_eq!(validate("person.age_years", "130"), Ok(Value::Int(130)));
    assert!(rejects("person.age_years", "131"));
    assert!(rejects("person.age_years", "-1"));
    assert!(rejects("person.age_years", "12.5"));
}

#[test]
fn dates_and_ranges() {
    assert_eq!(
        validate("forensic.date", "2024-02-29"),
        Ok(Value::Str("2024-02-29".into()))
    );
    assert!(rejects("forensic.date", "2026-02-30"));
    assert!(rejects("forensic.date", "2023-02-29"));
    assert!(rejects("forensic.date", "2024-13-01"));
    assert!(rejects("forensic.date", "2024-1-01"));
    assert!(rejects("forensic.date", "01/02/2024"));
    assert!(rejects("forensic.date", "2024-01-01/2024-01-02"));
    assert!(validate("incident.date", "2024-01-01").is_ok());
    assert!(validate("incident.date", "2024-01-01/2024-01-01").is_ok());
    assert!(validate("incident.date", "2024-01-01/2024-03-31").is_ok());
    assert!(rejects("incident.date", "2024-03-31/2024-01-01"));
    assert!(validate("incident.date", "2024-03-31/2024-01-01")
        .unwrap_err()
        .to_string()
        .contains("start is on or before its end"));
    assert!(rejects("incident.date", "2024-01-01/2026-02-30"));
    assert!(rejects("incident.date", "2024-01-01/"));
    assert!(rejects("incident.date", ""));
}

#[test]
fn timestamps() {
    assert_eq!(
        validate("found.at", "2024-05-01T14:30:00Z"),
        Ok(Value::Str("2024-05-01T14:30:00Z".into()))
    );
    assert!(validate("found.at", "2024-05-01T14:30:00.250+03:00").is_ok());
    assert!(rejects("found.at", "2024-05-01 14:30"));
    assert!(rejects("found.at", "2024-05-01"));
    assert!(rejects("found.at", "2024-02-30T10:00:00Z"));
    assert!(rejects("found.at", ""));
}

#[test]
fn text_and_strings_accept_empty_to_clear() {
    assert_eq!(
        validate("person.name", "  Ali  "),
        Ok(Value::Str("Ali".into()))
    );
    assert_eq!(validate("person.name", ""), Ok(Value::Str(String::new())));
    assert_eq!(
        validate("incident.narrative", "  spaced  "),
        Ok(Value::Text("  spaced  ".into()))
    );
    assert_eq!(validate("injuries", ""), Ok(Value::Text(String::new())));
}

#[test]
fn descriptions() {
    assert_eq!(
        field("found.lat").unwrap().ty.describe(),
        "a number from -90 to 90"
    );
    assert_eq!(
        field("incident.date").unwrap().ty.describe(),
        "a date YYYY-MM-DD or a range YYYY-MM-DD/YYYY-MM-DD"
    );
    assert_eq!(
        FieldType::Float {
            min: Some(0.0),
            max: None
        }
        .describe(),
        "a number of 0 or more"
    );
    assert_eq!(
        FieldType::Int { min: 0, max: 130 }.describe(),
        "a whole number from 0 to 130"
    );
}

#[test]
fn a_decimal_comma_gets_a_hint_to_use_a_dot() {
    let err = validate("found.lat", "31,5").unwrap_err();
    assert!(err.to_string().contains("use a dot: 31.5"), "{err}");
    assert!(matches!(err, ModelError::InvalidValue { .. }));
    // Not a number either way: no hint that would mislead.
    for raw in ["31,5,2", "abc", ",", "31,5x"] {
        let err = validate("found.lat", raw).unwrap_err();
        assert!(!err.to_string().contains("use a dot"), "{raw}: {err}");
    }
    assert_eq!(validate("found.lat", "31.5").unwrap(), Value::Float(31.5));
}

#[test]
fn moments_as_people_type_them() {
    use cairn_model::parse_moment;
    let now = time::macros::datetime!(2026-11-02 09:40:12.345 +03:00);
    let cases = [
        ("now", "2026-11-02T09:40:12+03:00"),
        ("NOW", "2026-11-02T09:40:12+03:00"),
        ("2026-11-01", "2026-11-01T00:00:00+03:00"),
        ("2026-11-01 08:15", "2026-11-01T08:15:00+03:00"),
        ("2026-11-01T08:15:30", "2026-11-01T08:15:30+03:00"),
        (" 2026-11-01 23:59:59 ", "2026-11-01T23:59:59+03:00"),
        ("2026-11-01T08:15:00Z", "2026-11-01T08:15:00Z"),
        ("2026-11-01T08:15:00-05:00", "2026-11-01T08:15:00-05:00"),
    ];
    for (raw, expected) in cases {
        let got = parse_moment(raw, now);
        assert_eq!(got.as_deref(), Some(expected), "{raw}");
        // What it gives is what the strict field accepts.
        assert!(validate("found.at", expected).is_ok());
    }
    for raw in [
        "",
        "yesterday",
        "2026-02-30",
        "2026-11-01 24:00",
        "2026-11-01 8:15",
        "2026-11-01 08:60",
        "2026-11-01 08",
        "2026-11-01x08:15",
        "2026-11-01 08:15:00:00",
        "02/11/2026",
    ] {
        assert_eq!(parse_moment(raw, now), None, "{raw:?}");
    }
}
