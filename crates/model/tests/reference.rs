//! Case references: PLACE-TEAM-TAG-NNNN.
#![allow(clippy::unwrap_used)]

use cairn_model::{validate_place, validate_team, ModelError, Reference};

#[test]
fn display_and_parse_round_trip() {
    let r = Reference::new("khr", "t03", "7kq2", 17).unwrap();
    assert_eq!(r.to_string(), "KHR-T03-7KQ2-0017");
    assert_eq!("KHR-T03-7KQ2-0017".parse::<Reference>().unwrap(), r);
    assert_eq!("khr-t03-7kq2-0017".parse::<Reference>().unwrap(), r);
    assert_eq!("KHR-T03-7KQ2-17".parse::<Reference>().unwrap(), r);

    let big = Reference::new("KH", "T", "ZZZZ", 123_456).unwrap();
    assert_eq!(big.to_string(), "KH-T-ZZZZ-123456");
    assert_eq!(big.to_string().parse::<Reference>().unwrap(), big);
    assert_eq!(
        Reference::new("AB", "T", "0000", 0).unwrap().to_string(),
        "AB-T-0000-0000"
    );
}

#[test]
fn bad_references_are_refused() {
    for bad in [
        "",
        "KHR-T03-0017",
        "KHR-T03-7KQ2-0017-1",
        "KHR-T03-7KQ2-",
        "KHR-T03-7KQ2-+17",
        "KHR-T03-7KQ2-99999999999",
        "K-T03-7KQ2-0017",
        "KHR-T03-7KQI-0017",
        "KHR--7KQ2-0017",
    ] {
        assert_eq!(
            bad.parse::<Reference>(),
            Err(ModelError::InvalidReference(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn place_team_and_tag_codes() {
    assert_eq!(validate_place("khr").unwrap(), "KHR");
    assert_eq!(validate_place("AB1234").unwrap(), "AB1234");
    for bad in ["K", "ABCDEFG", "KH R", "KH-R", "", "ÄBC"] {
        assert_eq!(
            validate_place(bad),
            Err(ModelError::InvalidPlace(bad.into()))
        );
    }
    assert_eq!(validate_team("t").unwrap(), "T");
    assert_eq!(validate_team("team0003").unwrap(), "TEAM0003");
    assert!(validate_team("").is_err());
    assert!(validate_team("team00003").is_err());
    assert!(matches!(
        Reference::new("KHR", "T03", "7KU2", 1),
        Err(ModelError::InvalidDeviceTag(_))
    ));
    assert!(validate_place("k")
        .unwrap_err()
        .to_string()
        .contains("2 to 6 letters or digits"));
}
