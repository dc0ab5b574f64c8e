//! The office's key in shares, with the real binary: split 3 of 5, lose the office's home,
//! rebuild the key from three shares (one of them read off its QR code) into a new vault
//! that is the same office to the server and to devices; fewer shares, damaged shares and
//! shares of two splits are refused, each named.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use cairn_e2e::{read_qr, Device, Run, Server};

/// The split's files: share `i`'s text and QR code.
struct Split {
    dir: PathBuf,
    office: String,
}

impl Split {
    fn text(&self, i: u8) -> PathBuf {
        self.dir
            .join(format!("office-{}-share-{i}-of-5.txt", self.office))
    }
    fn png(&self, i: u8) -> PathBuf {
        self.dir
            .join(format!("office-{}-share-{i}-of-5.png", self.office))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn refused(run: &Run, code: i32, says: &str) {
    assert_eq!(run.code, code, "{}", run.stderr);
    assert!(
        run.stderr.contains(says),
        "expected `{says}` in: {}",
        run.stderr
    );
}

/// `cairn office key recover SHARES... --kdf-cost 4` into `device`'s home.
fn recover(device: &Device, shares: &[&Path]) -> Run {
    let mut args = vec!["office", "key", "recover"];
    args.extend(shares.iter().map(|p| path(p)));
    args.extend(["--kdf-cost", "4"]);
    device.run(&args)
}

#[test]
fn the_office_key_split_three_of_five_is_rebuilt_from_any_three() {
    let office = Device::office();
    let pubkey = office.ok(&["office", "pubkey"]);
    let id = office.json(&["id"])["device"].clone();
    let server = Server::start(&office);
    let place = tempfile::tempdir().unwrap();
    let split = Split {
        dir: place.path().join("shares"),
        office: office.keys().id().short(),
    };
    let said = office.ok(&[
        "office",
        "key",
        "split",
        "--shares",
        "5",
        "--threshold",
        "3",
        "--out",
        path(&split.dir),
    ]);
    assert!(
        said.contains("Wrote 5 shares of the key of office"),
        "{said}"
    );
    assert!(said.contains("any 3 of them rebuild it"), "{said}");

    // The folder and every file are this user's only.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&split.dir), 0o700);
    for i in 1..=5 {
        assert_eq!(mode(&split.text(i)), 0o600, "share {i}");
        assert_eq!(mode(&split.png(i)), 0o600, "share {i}");
    }
    assert_eq!(std::fs::read_dir(&split.dir).unwrap().count(), 10);
    // A share names its office, split, number and threshold.
    let two = std::fs::read_to_string(split.text(2)).unwrap();
    assert!(two.starts_with("cairn office key share v1\n"), "{two}");
    assert!(
        two.contains(&format!("office: {}\n", split.office)),
        "{two}"
    );
    assert!(two.contains("share: 2 of 5\nthreshold: 3\n"), "{two}");
    // What a camera reads off the QR code is the share's text, byte for byte.
    let scanned = read_qr(&split.png(2));
    assert_eq!(scanned, two);

    // A second split into the same folder overwrites nothing.
    let before = cairn_e2e::files_under(&split.dir);
    let run = office.run(&[
        "office",
        "key",
        "split",
        "--shares",
        "5",
        "--threshold",
        "3",
        "--out",
        path(&split.dir),
    ]);
    refused(&run, 1, "already exists; shares are never overwritten");
    assert_eq!(cairn_e2e::files_under(&split.dir), before);

    // The office's laptop is lost.
    std::fs::remove_dir_all(office.home()).unwrap();
    let typed = place.path().join("typed-from-the-qr-code.txt");
    std::fs::write(&typed, &scanned).unwrap();

    // Two shares are not enough, and nothing is made.
    let new = Device::empty();
    refused(
        &recover(&new, &[&split.text(1), &split.text(4)]),
        1,
        "2 shares given; this split needs 3",
    );
    // The same share twice is one share.
    refused(
        &recover(&new, &[&split.text(1), &split.text(4), &split.text(1)]),
        1,
        "2 different shares given (3 in all, the same share more than once); this split needs 3",
    );
    // One word changed, to another word of the list: the file is named, and the word.
    let mut said_word = String::new();
    let changed: Vec<String> = two
        .lines()
        .map(|line| {
            if !line.starts_with(" 8 ") {
                return line.to_owned();
            }
            // The line of words 8 to 14: word 10 becomes another word of the list.
            let mut tokens: Vec<&str> = line.split_whitespace().collect();
            said_word = tokens[3].to_owned();
            tokens[3] = if tokens[3] == "zoo" { "zone" } else { "zoo" };
            tokens.join(" ")
        })
        .collect();
    let mistyped = place.path().join("mistyped.txt");
    std::fs::write(&mistyped, changed.join("\n")).unwrap();
    let run = recover(&new, &[&split.text(1), &mistyped, &split.text(4)]);
    refused(
        &run,
        1,
        &format!("{}: its checksum does not match", path(&mistyped)),
    );
    assert!(
        run.stderr
            .contains(&format!("word 10 may be `{said_word}`")),
        "{}",
        run.stderr
    );
    // A cut-off file, and the QR code image given instead of its text.
    let cut = place.path().join("cut.txt");
    std::fs::write(&cut, &two[..two.len() - 40]).unwrap();
    let run = recover(&new, &[&split.text(1), &cut, &split.text(4)]);
    refused(&run, 1, &format!("{}: it has ", path(&cut)));
    assert!(run.stderr.contains("words are missing"), "{}", run.stderr);
    let run = recover(&new, &[&split.text(1), &split.png(3), &split.text(4)]);
    refused(
        &run,
        1,
        &format!("{}: it is not text but a PNG image", path(&split.png(3))),
    );
    let huge = place.path().join("huge.txt");
    std::fs::write(&huge, two.repeat(200)).unwrap();
    let run = recover(&new, &[&split.text(1), &huge, &split.text(4)]);
    refused(
        &run,
        1,
        &format!(
            "{}: it is not a share that cairn makes: it is larger than 64 KiB",
            path(&huge)
        ),
    );
    let run = recover(&new, &[&split.text(1), Path::new("/nonexistent/share.txt")]);
    refused(&run, 1, "cannot read /nonexistent/share.txt");
    assert!(!new.home().exists(), "a refused recovery leaves nothing");

    // Any three: two files and the text read off the QR code.
    let said = recover(&new, &[&split.text(1), &typed, &split.text(4)]);
    assert_eq!(said.code, 0, "{}", said.stderr);
    assert!(
        said.stdout
            .contains(&format!("Rebuilt the key of office {}", split.office)),
        "{}",
        said.stdout
    );
    assert!(
        said.stdout.contains(
            "restore the cases with `cairn office restore --server URL --fingerprint FP`"
        ),
        "{}",
        said.stdout
    );
    // The same office: its public keys and id, as `cairn-server init` and devices know them.
    assert_eq!(new.ok(&["office", "pubkey"]), pubkey);
    assert_eq!(new.json(&["id"])["device"], id);
    // Never over a vault.
    refused(
        &recover(&new, &[&split.text(2), &split.text(3), &split.text(5)]),
        1,
        "already holds a vault",
    );

    // The server set up for the lost office takes the rebuilt one: it admits a device, which
    // joins and syncs, and the office reads its case.
    let field = Device::init("T03");
    server.join(&new, &field, "T03", &server.url());
    let reference = field.new_case(&["--kind", "killed", "--place", "KHR"]);
    field.ok(&["sync"]);
    new.ok(&["sync"]);
    assert_eq!(
        new.json(&["case", "show", &reference])["reference"],
        reference
    );
}

#[test]
fn shares_of_two_splits_are_refused_and_bounds_are_usage_errors() {
    let office = Device::office();
    let place = tempfile::tempdir().unwrap();
    let short = office.keys().id().short();
    let mut splits = Vec::new();
    for name in ["first", "second"] {
        let dir = place.path().join(name);
        office.ok(&[
            "office",
            "key",
            "split",
            "--shares",
            "5",
            "--threshold",
            "2",
            "--out",
            path(&dir),
        ]);
        splits.push(Split {
            dir,
            office: short.clone(),
        });
    }
    let new = Device::empty();
    let run = recover(&new, &[&splits[0].text(1), &splits[1].text(2)]);
    refused(&run, 1, "give shares of one split only");
    assert!(
        run.stderr.contains(path(&splits[0].text(1))),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(path(&splits[1].text(2))),
        "{}",
        run.stderr
    );
    assert!(!new.home().exists());
    // Two of one split do.
    let run = recover(&new, &[&splits[1].text(5), &splits[1].text(2)]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    for (k, n, says) in [
        ("4", "3", "--threshold 4 is more than --shares 3"),
        ("1", "3", "--threshold <K>"),
        ("2", "17", "--shares <N>"),
    ] {
        let dir = place.path().join(format!("bounds-{k}-{n}"));
        let run = office.run(&[
            "office",
            "key",
            "split",
            "--shares",
            n,
            "--threshold",
            k,
            "--out",
            path(&dir),
        ]);
        refused(&run, 2, says);
        assert!(!dir.exists());
    }
    // A field device has no office key to split.
    let field = Device::init("T03");
    let run = field.run(&[
        "office",
        "key",
        "split",
        "--shares",
        "3",
        "--threshold",
        "2",
        "--out",
        path(&place.path().join("field")),
    ]);
    refused(&run, 2, "this is a field vault");
}
