//! Creating, sealing and storing cases: the work `cairn case new` does after unlocking.
//!
//! Run: `cargo bench -p cairn-vault --bench capture`. Results go in docs/BENCHMARKS.md.

use cairn_crypto::{DeviceKeys, KeyFileCost, SealedChange, SealedKind, SecretString};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use cairn_vault::{Home, NewVault, Role};
use criterion::{criterion_group, criterion_main, Criterion};

fn edits() -> Vec<Edit> {
    [
        ("incident.cause", "targeted_strike"),
        ("incident.date", "2026-11-02"),
        (
            "incident.narrative",
            "Found at the edge of the orchard, north of the road.",
        ),
        ("found.lat", "31.5017"),
        ("found.lon", "34.4668"),
        ("person.sex", "male"),
        ("person.age_group", "adult"),
    ]
    .into_iter()
    .map(|(k, v)| Edit::Set {
        key: k.into(),
        value: v.into(),
    })
    .chain([Edit::Note {
        text: "Recovered by team T03 with the civil defence.".into(),
    }])
    .collect()
}

fn capture(c: &mut Criterion) {
    let edits = edits();
    let now = time::OffsetDateTime::now_utc();
    let keys = DeviceKeys::generate();
    let reference = Reference {
        place: "KHR".into(),
        team: "T03".into(),
        device_tag: keys.id().tag(),
        number: 1,
    };

    c.bench_function("model: build a case document", |b| {
        b.iter(|| {
            CaseDoc::create(
                &keys.id().0,
                uuid::Uuid::new_v4(),
                &reference,
                Kind::Killed,
                "bench",
                now,
                &edits,
            )
            .map(|(_, change)| change.len())
        })
    });

    let (_, change) = CaseDoc::create(
        &keys.id().0,
        uuid::Uuid::new_v4(),
        &reference,
        Kind::Killed,
        "bench",
        now,
        &edits,
    )
    .expect("bench case");
    let team_key = cairn_crypto::TeamKey::generate("T03", 1);
    c.bench_function("crypto: seal one change under the team key", |b| {
        b.iter(|| {
            SealedChange::seal(
                &keys,
                &team_key,
                SealedKind::CaseChange,
                [1; 16],
                1,
                &change,
            )
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::new(dir.path().join("vault"));
    let pass = SecretString::from("bench".to_owned());
    let new = NewVault {
        team: "T03".into(),
        name: None,
        role: Role::Field,
    };
    let mut vault = home
        .create(&pass, KeyFileCost::LogN(2), new, now)
        .expect("bench vault");
    c.bench_function(
        "vault: create, seal and store a case (synchronous=FULL)",
        |b| {
            b.iter(|| {
                vault
                    .create_case(Kind::Killed, "KHR", &edits, now)
                    .map(|c| c.seq)
            })
        },
    );

    // What the guided form pays after every answer: its draft saved again in full (here 7
    // answers) in a transaction of its own, with the head's fsyncs.
    let mut draft = cairn_vault::Draft::new(None, now);
    for edit in &edits {
        if let Edit::Set { key, value } = edit {
            draft.answers.insert(key.clone(), value.clone());
            draft.asked.push(key.clone());
        }
    }
    c.bench_function("vault: save a form's draft (synchronous=FULL)", |b| {
        b.iter(|| vault.save_draft(&draft))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = capture
}
criterion_main!(benches);
