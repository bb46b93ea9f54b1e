//! The file-level import graph of a crate's `src/`, and its cycles: the
//! services' tests assert that their files import each other one way only
//! (issue 16 found circles of 7 files in command-service's `http/` and of 8
//! in query-api). A circle makes every file in it a place to change when any
//! of them does.
//!
//! An edge A -> B: file A names a path that resolves to file B: a `use`
//! (groups expanded), or any `crate::`/`super::`/`self::` path or path
//! through one of A's child modules, in code or attributes. Inline test
//! modules are left out (their `super::*` is their own file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root (`["http", "alerts"]`).
type Module = Vec<String>;

/// The file-level import graph of the crate whose sources are in `src`:
/// each file (relative to `src`) with the files it imports.
pub fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    edges(src, &modules(src))
}

/// Panics, naming the files around it, if the crate in `src` has a circle
/// of imports, or if the scan found fewer than `min_edges` edges (a scan
/// that finds nothing proves nothing).
pub fn assert_no_cycles(src: &Path, min_edges: usize) {
    let graph = graph(src);
    let edges = graph.values().map(BTreeSet::len).sum::<usize>();
    assert!(
        edges >= min_edges,
        "the scan found {edges} edges, fewer than {min_edges}: {graph:#?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// Every `.rs` file under `src`, by its module path.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module
                .last()
                .is_some_and(|m| m == "mod" || m == "lib" || m == "main")
            {
                module.pop();
            }
            if !rel.ends_with("main") {
                found.insert(module, rel);
            }
        }
    }
    found
}

fn edges(src: &Path, files: &BTreeMap<Module, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let name = |m: &Module| format!("{}.rs", files[m].display());
    let mut graph = BTreeMap::new();
    for (module, rel) in files {
        let text = std::fs::read_to_string(src.join(rel).with_extension("rs")).expect("read");
        let text = code_only(&text);
        let children: BTreeSet<&str> = files
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .filter_map(|m| m.last().map(String::as_str))
            .collect();
        let mut targets = BTreeSet::new();
        for path in paths(&text) {
            let Some(first) = path.first() else { continue };
            let full: Module = match first.as_str() {
                "crate" => path[1..].to_vec(),
                "self" | "super" => {
                    let mut base = module.clone();
                    let mut rest = &path[..];
                    if rest[0] == "self" {
                        rest = &rest[1..];
                    }
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    base
                }
                child if children.contains(child) => {
                    module.iter().chain(path.iter()).cloned().collect()
                }
                _ => continue,
            };
            // The longest prefix that is a file is the file it names.
            if let Some(target) = (1..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|m| files.contains_key(m))
                && &target != module
            {
                targets.insert(name(&target));
            }
        }
        graph.insert(name(module), targets);
    }
    graph
}

/// The text without comments and without an inline `mod tests`.
fn code_only(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Every path `a::b::c` in the code, with `use` groups expanded
/// (`use a::{b, c::d}` gives `a::b` and `a::c::d`).
fn paths(code: &str) -> Vec<Module> {
    let mut found = Vec::new();
    // A `use` ends at its `;`, so each piece holds at most one, last.
    for piece in code.split(';') {
        let mut offset = 0;
        for line in piece.split_inclusive('\n') {
            let trimmed = line.trim_start();
            let item = trimmed
                .strip_prefix("pub ")
                .or_else(|| trimmed.strip_prefix("pub(crate) "))
                .or_else(|| trimmed.strip_prefix("pub(super) "))
                .unwrap_or(trimmed);
            if let Some(tree) = item.strip_prefix("use ") {
                let start = offset + (line.len() - tree.len());
                let tree: String = piece[start..]
                    .replace(" as ", "@")
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                expand("", &tree, &mut found);
                break;
            }
            offset += line.len();
        }
    }
    // Paths anywhere: a run of `ident::ident...` not itself after `::`.
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) && !code[..i].ends_with("::") {
            let mut segments = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                segments.push(code[s..j].to_owned());
                if code[j..].starts_with("::")
                    && code[j + 2..].starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segments.len() > 1 {
                found.push(segments);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<Module>) {
    let Some(open) = tree.find('{') else {
        let path = format!("{prefix}{tree}");
        let segments: Module = path
            .split('@')
            .next()
            .unwrap_or_default()
            .split("::")
            .filter(|s| !s.is_empty() && *s != "*")
            .map(str::to_owned)
            .collect();
        if !segments.is_empty() {
            out.push(segments);
        }
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand(&head, &inner[start..], out);
    }
}

/// A cycle in `graph`, as the files around it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        trail: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = trail.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = trail[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        trail.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, trail) {
                return Some(cycle);
            }
        }
        trail.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}
