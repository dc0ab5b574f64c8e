//! No module of the vault imports one that imports it (issue #24): calls run one way, from the
//! jobs (cases, blobs, sync...) down to the storage they share, never back up.
//!
//! Reads `src/*.rs` and `src/*/*.rs` (a sub-module counts as its top-level module), collects
//! every `crate::NAME` path outside `#[cfg(test)]` items (`use crate::x`, `use crate::{x, y}`
//! and inline `crate::x::f()`), and fails naming each pair of top-level modules that refer to
//! each other, then any longer chain that leads back to its start.
//!
//! A name re-exported at the root (`crate::Vault`, `crate::VaultError`, `crate::Role`) counts
//! as a reference to lib.rs, not to the module defining it, and lib.rs (which declares every
//! module) is left out of the pairs: `Vault` is defined in home.rs but each job's module adds
//! its own `impl Vault`, so counting it would tie every module to home.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The source with comments, string and char literals blanked out, so a `crate::` or a brace
/// inside them is not read as code.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(chars.get(i.wrapping_sub(1)))
        {
            // A raw string: r"...", r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The code with every `#[cfg(test)]` item removed: up to the end of its block if it has one
/// (`mod tests { .. }`, `fn helper() { .. }`), else up to its `;` (a statement or a `use`).
fn without_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let brace = item.find('{');
        let semi = item.find(';');
        let end = match (brace, semi) {
            (Some(b), s) if s.is_none_or(|s| b < s) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (k, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(s)) => s + 1,
            _ => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The first names after each `crate::` in `code`: `x` for `crate::x::..`, `x` and `y` for
/// `crate::{x::.., y}`.
fn crate_names(code: &str) -> Vec<String> {
    const PREFIX: &str = "crate::";
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(PREFIX) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + PREFIX.len()..];
        if ident_char(before.as_ref()) || before == Some(':') {
            continue; // `$crate::` or `pub(crate)`-like, not a path from the root.
        }
        let trimmed = rest.trim_start();
        if let Some(group) = trimmed.strip_prefix('{') {
            let mut depth = 1usize;
            let mut item = String::new();
            let mut at_start = true;
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        at_start = true;
                        if !item.is_empty() {
                            names.push(std::mem::take(&mut item));
                        }
                        continue;
                    }
                    _ => {}
                }
                if at_start && depth == 1 {
                    if ch.is_alphanumeric() || ch == '_' {
                        item.push(ch);
                    } else if !item.is_empty() {
                        at_start = false;
                    }
                }
            }
            if !item.is_empty() {
                names.push(item);
            }
        } else {
            let name: String = trimmed
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// Each top-level module of the vault and the other top-level modules its code refers to.
fn references(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(src).expect("read src/") {
        let path = entry.expect("entry of src/").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 name")
            .to_owned();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).expect("read a sub-module directory") {
                let inner = inner.expect("entry of a sub-module directory").path();
                if inner.extension().is_some_and(|e| e == "rs") {
                    files.push((stem.clone(), inner));
                }
            }
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" {
            files.push((stem, path));
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &files {
        let source = std::fs::read_to_string(path).expect("read a source file");
        let code = without_tests(&code_only(&source));
        let entry = refs.entry(module.clone()).or_default();
        for name in crate_names(&code) {
            if modules.contains(&name) && &name != module {
                entry.insert(name);
            }
        }
    }
    refs
}

/// The pairs of modules that refer to each other, as "a <-> b" with a before b.
fn mutual(refs: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut pairs = Vec::new();
    for (a, uses) in refs {
        for b in uses {
            if a < b && refs.get(b).is_some_and(|back| back.contains(a)) {
                pairs.push(format!("{a} <-> {b}"));
            }
        }
    }
    pairs
}

/// A chain of modules that leads back to its first (a -> b -> c -> a), if there is one.
fn cycle(refs: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        refs: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == at) {
            let mut found = path[start..].to_vec();
            found.push(at.to_owned());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in refs.get(at).into_iter().flatten() {
            if let Some(found) = walk(next, refs, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    refs.keys()
        .find_map(|m| walk(m, refs, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let refs = references(&src);
    // The reader must see the modules' references at all, or this test could not fail.
    assert!(
        refs.get("cases").is_some_and(|r| r.contains("head")),
        "cases' call of head::commit not seen: {refs:?}"
    );
    assert!(
        refs.get("sync").is_some_and(|r| r.contains("budget")),
        "sync/mod.rs' `use crate::budget` not seen"
    );
    let pairs = mutual(&refs);
    assert!(
        pairs.is_empty(),
        "modules of the vault that import each other: {}",
        pairs.join(", ")
    );
    // Nor through others: the modules stay in layers.
    if let Some(found) = cycle(&refs) {
        panic!(
            "modules of the vault that import each other through others: {}",
            found.join(" -> ")
        );
    }
}

#[test]
fn the_reader_sees_groups_inline_paths_and_skips_tests() {
    let code = code_only(
        "use crate::{a::{X, Y}, b, C};\nfn f() { crate::d::g(\"crate::e\"); }\n// crate::h\n\
         #[cfg(test)]\nmod tests { use crate::i; fn t() { let _ = '{'; crate::j::k(); } }\n\
         #[cfg(test)]\nuse crate::l;\nfn z() { crate::m::n() }",
    );
    let names = crate_names(&without_tests(&code));
    assert_eq!(names, ["a", "b", "C", "d", "m"]);
    let refs = BTreeMap::from([
        ("x".to_owned(), BTreeSet::from(["y".to_owned()])),
        (
            "y".to_owned(),
            BTreeSet::from(["x".to_owned(), "z".to_owned()]),
        ),
        ("z".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(mutual(&refs), ["x <-> y"]);
    assert_eq!(cycle(&refs).unwrap(), ["x", "y", "x"]);
    let ring = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert!(mutual(&ring).is_empty());
    assert_eq!(cycle(&ring).unwrap(), ["a", "b", "c", "a"]);
    let layered = BTreeMap::from([
        (
            "a".to_owned(),
            BTreeSet::from(["b".to_owned(), "c".to_owned()]),
        ),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
    ]);
    assert_eq!(cycle(&layered), None);
}
